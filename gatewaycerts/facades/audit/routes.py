"""The audit route table, relative to MOUNT."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.audit import views

MOUNT = "/v3"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{project_id}/traces", views.list_traces, allow_head=False)
