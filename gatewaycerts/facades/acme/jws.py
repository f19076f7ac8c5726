"""Reading an ACME request: flattened JWS only, the protected header's rules (RFC 8555 6.2, 6.4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.pki.jws import JoseError, b64d

MAX_JWS_BYTES = 64 * 1024  # a JWS with a 4096-bit key and a large CSR is ~8 KiB
_FLATTENED = {"protected", "payload", "signature"}


@dataclass(frozen=True, slots=True)
class Jws:
    header: dict[str, Any]
    protected: str  # as sent (base64url): part of the signing input
    payload_raw: str
    payload: dict[str, Any] | None  # None: POST-as-GET (empty payload)
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected}.{self.payload_raw}".encode("ascii")


def _problem(error: JoseError) -> AcmeProblem:
    return AcmeProblem(error.problem, error.detail)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body up to EOF or `limit` bytes. One `content.read(n)` returns only what is buffered: a body sent in
    several TLS records (Go's HTTP client, as in cert-manager's and lego's ACME clients) came back cut short."""
    body = bytearray()
    while len(body) < limit:
        piece = await request.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)


async def read_jws(request: web.Request) -> Jws:
    if request.content_type != "application/jose+json":
        raise AcmeProblem("malformed", "requests must be application/jose+json", 415)
    if request.content_length is not None and request.content_length > MAX_JWS_BYTES:
        raise AcmeProblem("malformed", f"the JWS is larger than {MAX_JWS_BYTES} bytes", 413)
    body = await _read_body(request, MAX_JWS_BYTES + 1)
    if len(body) > MAX_JWS_BYTES:
        raise AcmeProblem("malformed", f"the JWS is larger than {MAX_JWS_BYTES} bytes", 413)
    try:
        outer = json.loads(body)
    except ValueError:
        raise AcmeProblem("malformed", "the body is not JSON") from None
    if not isinstance(outer, dict):
        raise AcmeProblem("malformed", "the body must be a flattened JWS object")
    if "signatures" in outer:
        raise AcmeProblem("malformed", "the general JWS serialization is not accepted; use the flattened form")
    if "header" in outer:
        raise AcmeProblem("malformed", "unprotected JWS headers are not accepted")
    if set(outer) != _FLATTENED or not all(isinstance(outer[k], str) for k in _FLATTENED):
        raise AcmeProblem("malformed", "a flattened JWS has exactly protected, payload and signature (strings)")
    try:
        header = json.loads(b64d(outer["protected"], "protected"))
        signature = b64d(outer["signature"], "signature")
        payload_bytes = b64d(outer["payload"], "payload")
    except JoseError as exc:
        raise _problem(exc) from None
    except ValueError:
        raise AcmeProblem("malformed", "the protected header is not JSON") from None
    if not isinstance(header, dict):
        raise AcmeProblem("malformed", "the protected header must be a JSON object")
    if ("jwk" in header) == ("kid" in header):
        raise AcmeProblem("malformed", "the protected header must carry exactly one of jwk and kid")
    if not isinstance(header.get("url"), str):
        raise AcmeProblem("malformed", "the protected header has no url")
    if not isinstance(header.get("alg"), str):
        raise AcmeProblem("badSignatureAlgorithm", "the protected header has no alg")
    payload = None
    if payload_bytes:
        try:
            payload = json.loads(payload_bytes)
        except ValueError:
            raise AcmeProblem("malformed", "the payload is not JSON") from None
        if not isinstance(payload, dict):
            raise AcmeProblem("malformed", "the payload must be a JSON object")
    return Jws(header, outer["protected"], outer["payload"], payload, signature)
