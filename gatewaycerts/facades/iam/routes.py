"""The IAM route table, relative to MOUNT."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.iam import views

MOUNT = "/v3.0/OS-CREDENTIAL"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/credentials", views.create_credential)
    app.router.add_get("/credentials", views.list_credentials, allow_head=False)
    app.router.add_get("/credentials/{access}", views.show_credential, allow_head=False)
    app.router.add_put("/credentials/{access}", views.update_credential)
    app.router.add_delete("/credentials/{access}", views.delete_credential)
