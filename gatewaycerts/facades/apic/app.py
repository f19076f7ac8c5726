"""Builds the APIC sub-app: its routes, its error envelope, token authentication.

Its errors are answered in the APIC envelope by the root app's request middleware (`use_dialect`), the same
answers as an `error_middleware(ApicDialect())` layer here gave, without that layer on every request."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.apic.errors import ApicDialect
from gatewaycerts.facades.apic.routes import add_routes
from gatewaycerts.web.errors import use_dialect

MOUNT = "/v2"
TITLE = "gatewaycerts APIC SSL certificate API"
DESCRIPTION = (
    "Huawei ROMA Connect / APIG compatible SSL certificate management. Errors are "
    '{"error_code": "APIG.xxxx", "error_msg": "..."}. Authenticate with X-Auth-Token or Authorization: Bearer.'
)


def create_apic_app(*, client_max_size: int) -> web.Application:
    app = web.Application(middlewares=[auth_middleware], client_max_size=client_max_size)
    use_dialect(app, ApicDialect())  # its errors are answered by the root's request middleware: no layer here
    add_routes(app)
    return app
