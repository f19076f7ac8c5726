"""Builds the Barbican sub-apps: routes, the {code, title, description} envelope, token authentication."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.barbican.errors import BarbicanDialect
from gatewaycerts.facades.barbican.routes import ROUTES
from gatewaycerts.facades.barbican.views import versions
from gatewaycerts.web.errors import error_middleware

__all__ = ["DESCRIPTION", "TITLE", "create_barbican_apps", "versions"]

TITLE = "gatewaycerts Barbican API"
DESCRIPTION = (
    "OpenStack Barbican v1 compatible orders: keys, key pairs and certificates (signed by the project's CAs, "
    "the same CAs as the CCM API) ordered asynchronously (PENDING -> ACTIVE | ERROR), and the secrets, "
    'containers and CAs needed to collect them. Errors are {"code", "title", "description"}. The project '
    "comes from the token (X-Project-Id picks one when the token covers several). GET / is the version "
    "document OpenStack clients discover the API with."
)


def create_barbican_apps(*, client_max_size: int) -> dict[str, web.Application]:
    """{mount point: sub-app}."""
    apps = {}
    for mount, add_routes in ROUTES.items():
        app = web.Application(
            middlewares=[error_middleware(BarbicanDialect()), auth_middleware], client_max_size=client_max_size
        )
        add_routes(app)
        apps[mount] = app
    return apps
