"""Builds the Notary sub-app: routes, the {"error": ...} envelope, token authentication (CRLs are public)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.notary.errors import NotaryDialect
from gatewaycerts.facades.notary.routes import MOUNT, add_routes
from gatewaycerts.web.errors import error_middleware

__all__ = ["DESCRIPTION", "MOUNT", "TITLE", "create_notary_app"]

TITLE = "gatewaycerts Notary API"
DESCRIPTION = (
    "Canonical Notary compatible API: certificate requests (CSR review lifecycle: Outstanding -> Active | "
    "Rejected -> Revoked) and the certificate authorities that sign them (the same CAs as the CCM API). "
    'Success: {"result": ...}; errors: {"error": "..."} with the HTTP status. The project comes from the token '
    "(X-Project-Id picks one when the token covers several). viewer: read; editor: submit and delete its own "
    "requests; admin: everything. GET .../certificate_authorities/{id}/crl is public."
)


def create_notary_app(*, client_max_size: int) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(NotaryDialect()), auth_middleware], client_max_size=client_max_size
    )
    add_routes(app)
    return app
