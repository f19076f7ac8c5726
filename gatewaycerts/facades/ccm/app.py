"""Builds the CCM sub-apps: routes, the PCA error envelope, token authentication (CRLs are public)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.ccm.errors import CcmDialect
from gatewaycerts.facades.ccm.routes import CAS, CERTS, add_authority_routes, add_certificate_routes
from gatewaycerts.web.errors import error_middleware

TITLE = "gatewaycerts CCM private CA API"
DESCRIPTION = (
    "Huawei CCM Private CA compatible API: private root and subordinate CAs, certificates issued from them, "
    'CRLs. Errors are {"error_code": "PCA.xxxx", "error_msg": "..."} (code table in docs/api/ccm.md). '
    "The project comes from the token (X-Project-Id picks one when the token covers several). "
    "GET .../{ca_id}/crl is public."
)


def create_ccm_apps(*, client_max_size: int) -> dict[str, web.Application]:
    """{mount point: sub-app}."""
    apps = {}
    for mount, add_routes in ((CAS, add_authority_routes), (CERTS, add_certificate_routes)):
        app = web.Application(
            middlewares=[error_middleware(CcmDialect()), auth_middleware], client_max_size=client_max_size
        )
        add_routes(app)
        apps[mount] = app
    return apps
