"""Builds the IAM sub-app: the access-key routes, IAM's error envelope, token (or signature) authentication."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.auth.middleware import auth_middleware
from gatewaycerts.facades.iam.errors import IamDialect
from gatewaycerts.facades.iam.routes import MOUNT, add_routes
from gatewaycerts.web.errors import error_middleware

__all__ = ["DESCRIPTION", "MOUNT", "TITLE", "create_iam_app"]

TITLE = "gatewaycerts access key API"
DESCRIPTION = (
    "Access keys (AK/SK) in the shape of Huawei IAM's permanent access keys. An admin of a project creates a key "
    "for a role (admin, editor, viewer) in the project of its token (or X-Project-Id when the token covers "
    "several); the secret is answered once. Requests signed with the key (SDK-HMAC-SHA256, as Huawei's SDKs "
    "sign with BasicCredentials(ak, sk, project_id)) are accepted by every dialect beside JWTs. "
    'Errors are {"error": {"code": <status>, "message": "...", "title": "..."}} (docs/api/iam.md).'
)


def create_iam_app(*, client_max_size: int) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(IamDialect()), auth_middleware], client_max_size=client_max_size
    )
    add_routes(app)
    return app
