"""Builds the gateway delivery sub-app: its routes, the APIG-style envelope, gateway authentication.

Only what these routes need runs here: the credential check (no body parsing, no per-route validation
middleware). The root app's request middleware (request id, access log without the query string, metrics)
also answers their errors in the APIG envelope (`use_dialect`), so no error middleware layer runs here.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import GATEWAY_KEY_SERVICE, PRINCIPAL, TOKEN_VERIFIER
from gatewaycerts.auth.middleware import bearer_token, root_app
from gatewaycerts.core.delivery.keys import is_gateway_key
from gatewaycerts.domain.errors import AuthenticationError
from gatewaycerts.facades.gateway.errors import GatewayDialect
from gatewaycerts.facades.gateway.routes import add_routes
from gatewaycerts.facades.gateway.views import CADDY_QUERIES
from gatewaycerts.web.errors import use_dialect

MOUNT = "/gateway/v1"
TITLE = "gatewaycerts gateway delivery API"
DESCRIPTION = (
    "Delivery of bound certificates and their private keys to API gateways (Caddy, Traefik, the sync agent). "
    'Errors are {"error_code": "APIG.xxxx", "error_msg": "..."}. Only gateway credentials are accepted: a JWT '
    "with role gateway and an instances claim, or a gateway key (gk_...) in Authorization: Bearer, "
    "X-Auth-Token or the key query parameter."
)


@web.middleware
async def gateway_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    credential = bearer_token(request)
    in_query = None
    if not credential:  # the query string is parsed only when no header carries a credential
        credential = in_query = CADDY_QUERIES.query(request).get("key")  # Caddy's key: a kept query's, if kept
    if not credential:
        raise AuthenticationError("Incorrect token or token resolution failed: no gateway credential")
    if is_gateway_key(credential):
        keys = root_app(request)[GATEWAY_KEY_SERVICE]
        # a key verified before is answered without a coroutine (the same check authenticate makes first)
        request[PRINCIPAL] = keys.remembered(credential) or await keys.authenticate(credential)
    elif credential is in_query:
        raise AuthenticationError("Incorrect token or token resolution failed: only a gateway key may be a parameter")
    else:
        request[PRINCIPAL] = await root_app(request)[TOKEN_VERIFIER].verify(credential)
    return await handler(request)


def create_gateway_app(*, client_max_size: int) -> web.Application:
    app = web.Application(middlewares=[gateway_auth_middleware], client_max_size=client_max_size)
    use_dialect(app, GatewayDialect())  # its errors are answered by the root's request middleware: no layer here
    add_routes(app)
    return app
