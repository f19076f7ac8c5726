"""aiohttp middleware that turns X-Auth-Token / Authorization: Bearer (a JWT), or an SDK-HMAC-SHA256 signature
(an access key, auth/sdk_hmac.py), into request['principal']."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import PRINCIPAL, TOKEN_VERIFIER
from gatewaycerts.auth import sdk_hmac
from gatewaycerts.domain.errors import AuthenticationError


def bearer_token(request: web.Request) -> str | None:
    token = request.headers.get("X-Auth-Token")
    if token:
        return token.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if getattr(request.match_info.handler, "public_route", False):
        return await handler(request)  # e.g. CRL distribution points: relying parties have no token
    token = bearer_token(request)
    if token is None and sdk_hmac.is_signed(request):
        request[PRINCIPAL] = await sdk_hmac.verify(request)
        return await handler(request)
    if token is None:
        raise AuthenticationError("Incorrect token or token resolution failed: no X-Auth-Token header")
    request[PRINCIPAL] = await request.config_dict[TOKEN_VERIFIER].verify(token)
    return await handler(request)
