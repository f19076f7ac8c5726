"""aiohttp middleware that turns X-Auth-Token / Authorization: Bearer (a JWT), or an SDK-HMAC-SHA256 signature
(an access key, auth/sdk_hmac.py), into request['principal']."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import PRINCIPAL, TOKEN_VERIFIER
from gatewaycerts.auth import sdk_hmac
from gatewaycerts.domain.errors import AuthenticationError


def bearer_token(request: web.Request) -> str | None:
    headers = request.headers
    token = headers.get("X-Auth-Token")
    if token:
        return token.strip()
    auth = headers.get("Authorization")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        value = value.strip()
        if value:
            return value
    return None


def root_app(request: web.Request) -> web.Application:
    """The root application, where app.py puts the services (TOKEN_VERIFIER, the delivery and OCSP services and
    the others): the first of the match's applications (aiohttp puts the root in front of the sub-app chain, and
    so does web/hot.py). Cheaper than `request.config_dict`, which builds a ChainMapProxy on every look-up (4.6
    against 0.9 µs, stop 27); no sub-app sets a service of its own that config_dict would have found first."""
    return request.match_info.apps[0]


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
    request[PRINCIPAL] = await root_app(request)[TOKEN_VERIFIER].verify(token)
    return await handler(request)
