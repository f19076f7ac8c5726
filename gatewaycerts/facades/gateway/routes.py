"""The delivery route table (paths relative to the /gateway/v1 mount point)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.gateway import acme_challenge, views

INSTANCE = "/{project_id}/instances/{instance_id}"


def add_routes(app: web.Application) -> None:
    app.router.add_get(INSTANCE + "/caddy", views.get_caddy_certificate, allow_head=False)
    app.router.add_get(INSTANCE + "/bundle", views.get_bundle, allow_head=False)
    app.router.add_get(INSTANCE + "/traefik", views.get_traefik_configuration, allow_head=False)
    app.router.add_get(INSTANCE + "/acme-challenge/{token}", acme_challenge.get_acme_challenge, allow_head=False)
