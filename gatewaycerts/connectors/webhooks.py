"""Standard Webhooks delivery: sign a message and POST it to a receiver, through the address guard.

Signing is the specification's (https://www.standardwebhooks.com): headers `webhook-id`,
`webhook-timestamp` (integer unix seconds) and `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, msg))
with key = the base64-decoded secret after `whsec_` and msg = `{id}.{timestamp}.{body}`.

The URL's host is resolved once and every address checked by `AddressPolicy`; the connection goes to the
checked address only (a resolver that answers with it), so a name cannot be rebound to an internal address
between the check and the connection. Redirects are not followed (a 3xx is a failed attempt), proxies from
the environment are not used, the answer's body is read up to a small cap and discarded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gatewaycerts.connectors.addresses import AddressPolicy, AddressRefused, IPAddress
from gatewaycerts.domain.notifications import SendResult

SECRET_PREFIX = "whsec_"
USER_AGENT = "gatewaycerts-webhooks/1"
MAX_RESPONSE_BYTES = 4096


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret (the base64 after the prefix, decoded)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message."""
    mac = hmac.new(secret_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


class _CheckedResolver(AbstractResolver):
    """Answers for the one host with the addresses the guard checked, and nothing else."""

    def __init__(self, host: str, addresses: list[IPAddress]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"unexpected host {host!r}")
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for ip in self._addresses
        ]

    async def close(self) -> None:
        return None


class WebhookSender:
    """Sends one signed message per call; a failure is a result (status or error), never an exception."""

    def __init__(self, policy: AddressPolicy, *, timeout: float = 10.0, connect_timeout: float = 5.0) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)

    async def send(self, url: str, secret: str, message_id: str, timestamp: int, body: bytes) -> SendResult:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            return SendResult(error="not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self._timeout.connect):
                addresses = list(await self._policy.resolve(host, port))
        except AddressRefused as exc:
            return SendResult(error=str(exc))
        except TimeoutError:
            return SendResult(error="timed out resolving the host")
        connector = aiohttp.TCPConnector(resolver=_CheckedResolver(host, addresses), use_dns_cache=False, limit=1)
        headers = signed_headers(secret, message_id, timestamp, body)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False) as session,
                session.post(url, data=body, headers=headers, allow_redirects=False) as response,
            ):
                await response.content.read(MAX_RESPONSE_BYTES)  # drained a little, kept nowhere
                status = response.status
        except TimeoutError:
            return SendResult(error="timed out")
        except aiohttp.ClientConnectorCertificateError:
            return SendResult(error="the receiver's TLS certificate was not accepted")
        except aiohttp.ClientSSLError:
            return SendResult(error="TLS handshake failed")
        except aiohttp.ClientConnectorError as exc:
            return SendResult(error=f"cannot connect: {_reason(exc)}")
        except (aiohttp.ClientError, asyncio.IncompleteReadError, OSError) as exc:
            return SendResult(error=f"connection failed: {type(exc).__name__}")
        if 200 <= status < 300:
            return SendResult(status_code=status)
        return SendResult(status_code=status, error=f"HTTP {status}")


def _reason(exc: Any) -> str:
    """The OS's reason (connection refused, unreachable) without the URL or address aiohttp puts around it."""
    os_error = getattr(exc, "os_error", None)
    number = getattr(os_error, "errno", None)
    return os.strerror(number).lower() if isinstance(number, int) else "no connection"
