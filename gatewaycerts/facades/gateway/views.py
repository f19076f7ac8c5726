"""Delivery handlers: parse, make one core call, present. Every answer carries private keys: no caching."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, match_info_schema, querystring_schema
from multidict import CIMultiDict, MultiMapping

from gatewaycerts.appkeys import DELIVERY_SERVICE, PRINCIPAL
from gatewaycerts.auth.middleware import root_app
from gatewaycerts.domain.errors import InvalidInputError
from gatewaycerts.facades.gateway import schemas as s
from gatewaycerts.web.direct import DirectResponse
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.hot import hot
from gatewaycerts.web.requests import QueryMemo

STALE_HEADER = "X-Gateway-Stale-Seconds"
_NO_STORE = "no-store"
_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad parameter (APIG.2012)"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid gateway credential (APIG.1002)"},
    403: {"schema": s.ErrorSchema, "description": "Not a gateway credential of this project and instance (APIG.1005)"},
    503: {"schema": s.ErrorSchema, "description": "The delivery state was never loaded and the store is down"},
}
_TAG = ["Gateway delivery"]
MAX_PARAMETER = 1024
# The Caddy route's query strings, kept parsed (web/requests.QueryMemo) with the four parameters the route read
# from them: Caddy sends the same one for a server name at every handshake. As many as the delivery core keeps
# server names; Caddy's is ~200-400 characters.
CaddyParameters = tuple[str | None, str | None, str | None, str | None]
CADDY_QUERIES: QueryMemo[CaddyParameters] = QueryMemo(10_000, 1024)


def _ctx(request: web.Request) -> tuple:
    info = request.match_info
    return request[PRINCIPAL], info["project_id"], info["instance_id"], root_app(request)[DELIVERY_SERVICE]


def _param(query: MultiMapping[str], name: str) -> str | None:
    value = query.get(name)
    if value is not None and len(value) > MAX_PARAMETER:
        raise InvalidInputError(f"Invalid parameter value, parameterName:{name}. It is too long", field=name)
    return value


def _headers(stale: int, version: str | None = None) -> dict[str, str]:
    headers = {"Cache-Control": _NO_STORE}
    if version is not None:
        headers["ETag"] = f'"{version}"'
    if stale:
        headers[STALE_HEADER] = str(stale)
    return headers


# Prebuilt header blocks of the hot answers while the index is fresh (stale 0): the Caddy answer's, and the
# snapshot's per version (bounded). web.Response copies a CIMultiDict in C; the same headers, in the same order,
# as `_headers(...)` plus `content_type=` give (tests/unit/test_gateway_headers.py).
_CADDY_HEADERS = CIMultiDict({"Cache-Control": _NO_STORE, "Content-Type": "text/plain"})
_VERSION_HEADERS: dict[str, CIMultiDict[str]] = {}
_MAX_VERSION_HEADERS = 1024


def _versioned(stale: int, version: str) -> CIMultiDict[str] | dict[str, str]:
    if stale:
        return _headers(stale, version)
    headers = _VERSION_HEADERS.get(version)
    if headers is None:
        if len(_VERSION_HEADERS) >= _MAX_VERSION_HEADERS:
            _VERSION_HEADERS.clear()  # versions come and go: a bounded memo, started again when full
        headers = _VERSION_HEADERS[version] = CIMultiDict(_headers(0, version))
    return headers


def _if_none_match(request: web.Request) -> str | None:
    raw = request.headers.get("If-None-Match")
    if not raw:
        return None
    value = _TAGS.get(raw)
    if value is None:
        if len(_TAGS) >= _MAX_VERSION_HEADERS:
            _TAGS.clear()
        value = _TAGS[raw] = _etag_of(raw)
    return value


def _etag_of(raw: str) -> str:
    value = raw.split(",")[0].strip()
    value = value.removeprefix("W/")
    return value.strip('"')[:128]


_TAGS: dict[str, str] = {}  # If-None-Match as sent -> the version it names (a poller sends the same one again)


def _wait(request: web.Request) -> float:
    if not request.rel_url.raw_query_string:
        return 0.0  # no query string: nothing to parse (a 304 poll without a wait)
    raw = _param(request.query, "wait")
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:wait. Use seconds, 0 to 60", field="wait"
        ) from None
    if math.isnan(value):
        raise InvalidInputError("Invalid parameter value, parameterName:wait. Use seconds, 0 to 60", field="wait")
    return value  # clamped to 0..60 by the core


@docs(
    tags=_TAG,
    summary="Caddy get_certificate: chain and PKCS#8 key for a server name",
    description="text/plain PEM blocks: leaf, intermediates, private key. An ECC certificate for clients whose "
    "signature_schemes include ECDSA and whose cipher_suites can use it, else RSA. 404 (never 204) when "
    "nothing is bound for the name.",
    responses={
        200: {"description": "PEM blocks"},
        404: {"schema": s.ErrorSchema, "description": "Nothing bound for the name (APIG.3466)"},
        **_ERRORS,
    },
)
@match_info_schema(s.InstancePathSchema)
@querystring_schema(s.CaddyQuerySchema)
@hot
async def get_caddy_certificate(request: web.Request) -> web.Response:
    principal, project_id, instance_id, service = _ctx(request)
    kept = CADDY_QUERIES.kept(request)
    asked = _caddy_parameters(request.query) if kept is None else kept.values
    server_name, signature_schemes, local_ip, cipher_suites = asked
    answer = await service.caddy(
        principal,
        project_id,
        instance_id,
        server_name=server_name,
        signature_schemes=signature_schemes,
        local_ip=local_ip,
        cipher_suites=cipher_suites,
    )
    if kept is None:
        # authenticated and answered: its next handshake's query is neither parsed nor read again
        CADDY_QUERIES.keep(request, asked)
    return _caddy_response(answer.pem, answer.stale_seconds)


def _caddy_parameters(query: MultiMapping[str]) -> CaddyParameters:
    """server_name, signature_schemes, local_ip, cipher_suites: each checked (InvalidInputError), in that order."""
    return (
        _param(query, "server_name"),
        _param(query, "signature_schemes"),
        _param(query, "local_ip"),
        _param(query, "cipher_suites"),
    )


def _caddy_response(pem: bytes, stale: int) -> web.Response:
    if stale:
        return DirectResponse(body=pem, content_type="text/plain", headers=_headers(stale))
    return DirectResponse(body=pem, headers=_CADDY_HEADERS)


@docs(
    tags=_TAG,
    summary="Snapshot of the certificates bound on the instance (long poll with wait and If-None-Match)",
    responses={
        200: {"schema": s.BundleSchema, "description": "The snapshot; ETag is its version"},
        304: {"description": "Unchanged since If-None-Match"},
        **_ERRORS,
    },
)
@match_info_schema(s.InstancePathSchema)
@querystring_schema(s.BundleQuerySchema)
@hot
async def get_bundle(request: web.Request) -> web.Response:
    principal, project_id, instance_id, service = _ctx(request)
    bundle = await service.bundle(
        principal, project_id, instance_id, if_none_match=_if_none_match(request), wait=_wait(request)
    )
    if bundle.items is None:
        return DirectResponse(status=304, headers=_versioned(bundle.stale_seconds, bundle.version))
    body: dict[str, Any] = {"version": bundle.version, "items": list(bundle.items)}
    return json_response(body, headers=_headers(bundle.stale_seconds, bundle.version))


@docs(
    tags=_TAG,
    summary="Traefik dynamic configuration (HTTP provider) with the certificates inline",
    responses={
        200: {"schema": s.TraefikSchema, "description": "Dynamic configuration"},
        304: {"description": "Unchanged"},
        **_ERRORS,
    },
)
@match_info_schema(s.InstancePathSchema)
@querystring_schema(s.KeyQuerySchema)
@hot
async def get_traefik_configuration(request: web.Request) -> web.Response:
    principal, project_id, instance_id, service = _ctx(request)
    answer = await service.traefik(principal, project_id, instance_id)
    headers = _headers(answer.stale_seconds, answer.version)
    if _if_none_match(request) == answer.version:
        return web.Response(status=304, headers=headers)
    return json_response(answer.document, headers=headers)
