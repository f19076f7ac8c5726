"""Builds the audit sub-app: its route, the CTS error envelope, token authentication."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.audit.errors import AuditDialect
from gatewaycerts.facades.audit.routes import MOUNT, add_routes
from gatewaycerts.web.errors import error_middleware

__all__ = ["DESCRIPTION", "MOUNT", "TITLE", "create_audit_app"]

TITLE = "gatewaycerts audit trail API"
DESCRIPTION = (
    "Every change made through any dialect (APIC, CCM, Notary, Barbican) and by the order worker, in the style "
    "of Huawei Cloud Trace Service ListTraces: who (the token's sub), what (trace_name, a stable dotted action), "
    "which object, when, the request id. Admins of the project only. Newest first; page with `next` = the "
    "previous page's meta_data.marker. Never key material. "
    'Errors are {"error_code": "CTS.xxxx", "error_msg": "..."} (table in docs/api/audit.md).'
)


def create_audit_app(*, client_max_size: int) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(AuditDialect()), auth_middleware], client_max_size=client_max_size
    )
    add_routes(app)
    return app
