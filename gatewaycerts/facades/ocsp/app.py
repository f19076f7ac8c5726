"""Builds the /pki sub-app. Unauthenticated like a CRL distribution point; OCSP errors are OCSP responses."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from email.utils import format_datetime

from aiohttp import web
from aiohttp_apigami import docs
from multidict import CIMultiDict

from gatewaycerts.appkeys import OCSP_RESPONDER, REQUEST_ID
from gatewaycerts.auth.middleware import root_app
from gatewaycerts.core.authorities import CA_ISSUERS_PATH, OCSP_PATH
from gatewaycerts.core.ocsp import OcspAnswer, unsuccessful_answer
from gatewaycerts.facades.ocsp import flat
from gatewaycerts.web.direct import DirectResponse

log = logging.getLogger(__name__)

MOUNT = "/pki"
TITLE = "gatewaycerts public PKI endpoints"
DESCRIPTION = (
    "What relying parties fetch without a token, at the URLs the AIA extension of every issued certificate "
    "names: each CA's OCSP responder (RFC 6960 in the RFC 5019 profile, GET and POST) and each CA's "
    "certificate (id-ad-caIssuers). An OCSP error is an OCSP response (malformedRequest, unauthorized, "
    "tryLater, internalError), never JSON. Each CA's CRL is in the CCM document "
    "(GET /v1/private-certificate-authorities/{ca_id}/crl) and the Notary one. See docs/api/ocsp.md."
)
MAX_REQUEST_BYTES = 4096  # a one-certificate request with a 32-octet nonce is under 200 bytes
MAX_GET_CHARS = 6000  # its base64 in a GET path, percent-encoded
OCSP_REQUEST, OCSP_RESPONSE = "application/ocsp-request", "application/ocsp-response"
HTTP_MAX_AGE = 300  # as the CRL's; never beyond the response's nextUpdate (RFC 5019 6.2)


# Header blocks built once: web.Response copies a CIMultiDict in C, a dict header by header.
_NO_STORE = CIMultiDict({"Content-Type": OCSP_RESPONSE, "Cache-Control": "no-store"})
MAX_REMEMBERED = 65536
MAX_REMEMBERED_CHARS = 512  # so the GET cache below stays under ~40 MB whatever is sent
_decoded: dict[str, bytes] = {}  # GET path -> DER request: clients repeat a request byte for byte
_cache_headers: dict[int, tuple[bytes, CIMultiDict[str]]] = {}  # id(answer.der) -> (der, headers): once per answer


def _http_cache_headers(answer: OcspAnswer) -> CIMultiDict[str]:
    """RFC 5019 6.2's HTTP caching headers of a GET answer, computed once per signed response."""
    known = _cache_headers.get(id(answer.der))
    if known is not None and known[0] is answer.der:
        return known[1]
    assert answer.this_update is not None and answer.next_update is not None
    remaining = int((answer.next_update - answer.this_update).total_seconds())
    headers = CIMultiDict(
        {
            "Content-Type": OCSP_RESPONSE,
            "Cache-Control": f"public, max-age={max(0, min(HTTP_MAX_AGE, remaining))}, no-transform, must-revalidate",
            "Last-Modified": format_datetime(answer.this_update, usegmt=True),
            "Expires": format_datetime(answer.next_update, usegmt=True),
            "ETag": '"' + hashlib.sha256(answer.der).hexdigest()[:32] + '"',
        }
    )
    if len(_cache_headers) >= MAX_REMEMBERED:
        _cache_headers.clear()
    _cache_headers[id(answer.der)] = (answer.der, headers)
    return headers


def _response(answer: OcspAnswer, *, http_status: int = 200, get: bool = False) -> web.Response:
    headers = _NO_STORE
    if get and answer.cacheable and answer.this_update is not None and answer.next_update is not None:
        headers = _http_cache_headers(answer)
    return DirectResponse(body=answer.der, status=http_status, headers=headers)  # Content-Type in headers


async def _answer(request: web.Request, der: bytes, *, get: bool) -> web.Response:
    ca_id = request.match_info["ca_id"]
    try:
        answer = await root_app(request)[OCSP_RESPONDER].respond(ca_id, der)
    except Exception:  # an OCSP client reads OCSP, never a stack trace
        log.exception("OCSP for CA %s failed request_id=%s", ca_id, request.get(REQUEST_ID, "-"))
        return _response(unsuccessful_answer("internalError"), http_status=500)
    return _response(answer, get=get)


_TAG = ["OCSP and CA certificates"]
_BINARY = {"type": "string", "format": "binary"}
_CA_ID = {
    "in": "path",
    "name": "ca_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The CA's id (36-character UUID), as in the AIA URLs",
}


def _ocsp_answer(description: str) -> dict[str, object]:
    return {"description": description, "content": {OCSP_RESPONSE: {"schema": _BINARY}}}


_OCSP_ANSWERS = {
    200: _ocsp_answer(
        "A DER OCSPResponse: successful (good, revoked or unknown, signed by the CA or its delegated responder) "
        "or an unsuccessful status (malformedRequest, unauthorized for another CA's CertID or no such CA, "
        "tryLater while the store is unavailable)"
    ),
    500: _ocsp_answer("internalError, as a DER OCSPResponse"),
}


@docs(
    tags=_TAG,
    summary="OCSP over POST (RFC 6960 A.1): one DER OCSPRequest for one certificate, with or without a nonce",
    security=[],
    parameters=[_CA_ID],
    requestBody={"required": True, "content": {OCSP_REQUEST: {"schema": {**_BINARY, "maxLength": MAX_REQUEST_BYTES}}}},
    responses={
        **_OCSP_ANSWERS,
        413: _ocsp_answer(f"The body is over {MAX_REQUEST_BYTES} bytes: malformedRequest"),
        415: _ocsp_answer(f"The Content-Type is not {OCSP_REQUEST}: malformedRequest"),
    },
)
async def ocsp_post(request: web.Request) -> web.Response:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != OCSP_REQUEST:
        return _response(unsuccessful_answer("malformedRequest"), http_status=415)
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return _response(unsuccessful_answer("malformedRequest"), http_status=413)
    der = await request.content.read(MAX_REQUEST_BYTES + 1)
    if len(der) > MAX_REQUEST_BYTES:
        return _response(unsuccessful_answer("malformedRequest"), http_status=413)
    return await _answer(request, der, get=False)


@docs(
    tags=_TAG,
    summary="OCSP over GET (RFC 6960 A.1, RFC 5019): the base64 of the DER OCSPRequest, URL-encoded, in the path",
    description="Answers without a nonce carry RFC 5019 HTTP caching headers (Cache-Control max-age, "
    "Last-Modified, Expires, ETag). base64url is accepted too.",
    security=[],
    parameters=[
        _CA_ID,
        {
            "in": "path",
            "name": "request",
            "required": True,
            "schema": {"type": "string", "maxLength": MAX_GET_CHARS},
            "description": "URL-encoded base64 (or base64url) of one DER OCSPRequest",
        },
    ],
    responses={**_OCSP_ANSWERS, 414: _ocsp_answer(f"Over {MAX_GET_CHARS} characters: malformedRequest")},
)
async def ocsp_get(request: web.Request) -> web.Response:
    """RFC 6960 appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}."""
    encoded = request.match_info["request"]
    der = _decoded.get(encoded)
    if der is not None:
        return await _answer(request, der, get=True)
    if len(encoded) > MAX_GET_CHARS:
        return _response(unsuccessful_answer("malformedRequest"), http_status=414)
    text = encoded.replace(" ", "+").replace("-", "+").replace("_", "/")  # tolerate '+' decoded as ' ', base64url
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return _response(unsuccessful_answer("malformedRequest"))
    if len(encoded) <= MAX_REMEMBERED_CHARS:  # a one-certificate request is ~100-200 characters
        if len(_decoded) >= MAX_REMEMBERED:
            _decoded.clear()
        _decoded[encoded] = der
    return await _answer(request, der, get=True)


@docs(
    tags=_TAG,
    summary="OCSP over GET without a request: always malformedRequest (the request goes in the path)",
    security=[],
    parameters=[_CA_ID],
    responses={200: _ocsp_answer("malformedRequest, as a DER OCSPResponse")},
)
async def ocsp_get_empty(request: web.Request) -> web.Response:
    return _response(unsuccessful_answer("malformedRequest"))


@docs(
    tags=_TAG,
    summary="The CA's certificate, DER (where id-ad-caIssuers points, RFC 5280 4.2.2.1)",
    security=[],
    parameters=[_CA_ID],
    responses={
        200: {"description": "The certificate", "content": {"application/pkix-cert": {"schema": _BINARY}}},
        404: {"description": "No such CA (or deleted)", "content": {"text/plain": {"schema": {"type": "string"}}}},
    },
)
async def ca_certificate(request: web.Request) -> web.Response:
    """The CA certificate as DER (application/pkix-cert), where id-ad-caIssuers points (RFC 5280 4.2.2.1)."""
    der = await request.config_dict[OCSP_RESPONDER].ca_certificate_der(request.match_info["ca_id"])
    if der is None:
        raise web.HTTPNotFound(text="no such CA")
    return web.Response(
        body=der, content_type="application/pkix-cert", headers={"Cache-Control": "public, max-age=300"}
    )


for _handler in (ocsp_post, ocsp_get, ocsp_get_empty, ca_certificate):
    _handler.public_route = True  # type: ignore[attr-defined]


def create_ocsp_app(*, client_max_size: int) -> web.Application:
    app = web.Application(client_max_size=min(client_max_size, MAX_REQUEST_BYTES))
    ocsp = OCSP_PATH.removeprefix(MOUNT)
    app.router.add_post(ocsp + "/{ca_id}", ocsp_post)
    app.router.add_get(ocsp + "/{ca_id}", ocsp_get_empty, allow_head=False)
    app.router.add_get(ocsp + "/{ca_id}/{request:.*}", ocsp_get, allow_head=False)
    app.router.add_get(CA_ISSUERS_PATH.removeprefix(MOUNT) + "/{ca_id:[0-9A-Za-z-]+}.cer", ca_certificate)
    return app


def install_flat_routes(root: web.Application, pki_app: web.Application) -> None:
    """Match the OCSP GET and POST routes flat, in front of the root's router (facades/ocsp/flat.py); call it
    once `pki_app` is mounted."""
    flat.install(root, pki_app, post=ocsp_post, get=ocsp_get, get_empty=ocsp_get_empty)
