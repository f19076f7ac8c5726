"""Requests signed with an access key (`Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=...,
Signature=...`): the canonical request and string to sign, computed exactly as Huawei's SDK signer
(huaweicloudsdkcore/signer/signer.py) computes them; the core finds the key and checks the HMAC.

Canonical request = method, canonical URI, canonical query, canonical headers, signed headers, payload hash,
joined by newlines, where
- the URI is the raw path percent-decoded, split at "/", each segment percent-encoded (all but A-Z a-z 0-9
  - _ . ~), joined, with a "/" added at the end when missing;
- the query is the raw query's pairs decoded, sorted by (name, value), encoded the same way, "n=v" joined by "&";
- each signed header is "name:value" (value stripped), in the order SignedHeaders lists them, each followed by
  a newline; SignedHeaders must name `host` and `x-sdk-date`, and each exactly once on the request;
- the payload hash is the hex SHA-256 of the body (of b"" when there is none). The SDK sends
  `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` for bodies that are not JSON, which would leave the body unsigned;
  every body this service takes is JSON, so a body the signature does not cover is refused.
String to sign = "SDK-HMAC-SHA256\\n" + X-Sdk-Date + "\\n" + hex SHA-256 of the canonical request.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote

from aiohttp import web

from gatewaycerts.appkeys import ACCESS_KEY_SERVICE
from gatewaycerts.domain.access_keys import SignedRequest
from gatewaycerts.domain.errors import AuthenticationError
from gatewaycerts.domain.models import Principal

SCHEME = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
CONTENT_HEADER = "X-Sdk-Content-Sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
REQUIRED_SIGNED = ("host", "x-sdk-date")
_EMPTY_HASH = hashlib.sha256(b"").hexdigest()
_INVALID = "Incorrect IAM authentication information"
MAX_HEADER = 4096


def is_signed(request: web.Request) -> bool:
    """The request carries an SDK-HMAC-SHA256 signature (and should be checked as one)."""
    return request.headers.get("Authorization", "").startswith(SCHEME + " ")


def _refuse(why: str) -> AuthenticationError:
    return AuthenticationError(f"{_INVALID}: {why}")


def parse_authorization(value: str) -> tuple[str, list[str], str]:
    """(access, signed header names, signature) of `SDK-HMAC-SHA256 Access=a, SignedHeaders=h1;h2, Signature=s`."""
    if len(value) > MAX_HEADER or not value.startswith(SCHEME + " "):
        raise _refuse("the Authorization header is not an SDK-HMAC-SHA256 signature")
    fields: dict[str, str] = {}
    for part in value[len(SCHEME) + 1 :].split(","):
        name, sep, text = part.strip().partition("=")
        if not sep or name not in ("Access", "SignedHeaders", "Signature") or name in fields:
            raise _refuse(
                "the Authorization header must be SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=..."
            )
        fields[name] = text.strip()
    if set(fields) != {"Access", "SignedHeaders", "Signature"} or not all(fields.values()):
        raise _refuse("the Authorization header must name Access, SignedHeaders and Signature")
    signed = fields["SignedHeaders"].split(";")
    if any(not h or h != h.lower() for h in signed) or len(set(signed)) != len(signed):
        raise _refuse("SignedHeaders must list distinct lower-case header names separated by ';'")
    missing = [h for h in REQUIRED_SIGNED if h not in signed]
    if missing:
        raise _refuse(f"SignedHeaders must include {' and '.join(missing)}")
    return fields["Access"], signed, fields["Signature"]


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(raw_path: str) -> str:
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    pairs.sort()
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in pairs)


def canonical_headers(request: web.Request, signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = request.headers.getall(name, [])
        if len(values) != 1:
            raise _refuse(f"the signed header {name} must be sent exactly once")
        lines.append(f"{name}:{values[0].strip()}")
    return "\n".join(lines) + "\n"


async def payload_hash(request: web.Request) -> str:
    # request.read() keeps the body, so the handler's own read gets the same bytes.
    body = await request.read()
    if not body:
        return _EMPTY_HASH
    digest = hashlib.sha256(body).hexdigest()
    declared = request.headers.get(CONTENT_HEADER)
    if declared is not None and declared != digest:
        if declared == UNSIGNED_PAYLOAD:
            raise _refuse(f"{CONTENT_HEADER}: {UNSIGNED_PAYLOAD} is not accepted; send JSON bodies with their hash")
        raise _refuse(f"{CONTENT_HEADER} is not the SHA-256 of the body")
    return digest


async def signed_request(request: web.Request) -> SignedRequest:
    """The parts of `request` the core checks (raises AuthenticationError when the request cannot be one)."""
    access, signed, signature = parse_authorization(request.headers.get("Authorization", ""))
    dates = request.headers.getall(DATE_HEADER, [])
    if len(dates) != 1:
        raise _refuse(f"send the signing time in one {DATE_HEADER} header")
    raw_path, _, raw_query = request.raw_path.partition("?")
    canonical = "\n".join(
        (
            request.method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            canonical_headers(request, signed),
            ";".join(signed),
            await payload_hash(request),
        )
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return SignedRequest(
        access=access,
        sdk_date=dates[0].strip(),
        string_to_sign=f"{SCHEME}\n{dates[0].strip()}\n{digest}",
        signature=signature,
        project_header=request.headers.get("X-Project-Id"),
    )


async def verify(request: web.Request) -> Principal:
    return await request.config_dict[ACCESS_KEY_SERVICE].verify(await signed_request(request))
