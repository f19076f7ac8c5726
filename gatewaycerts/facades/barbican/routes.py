"""The Barbican route tables: one sub-app per collection (they share only /v1 with CCM)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gatewaycerts.facades.barbican import views as v

ORDERS = "/v1/orders"
SECRETS = "/v1/secrets"
CONTAINERS = "/v1/containers"
CAS = "/v1/cas"


def _slash(handler: Any) -> Any:
    """The same handler at `<collection>/`, which OpenStack clients request; left out of the OpenAPI document
    (no functools.wraps: apigami would copy the documentation too)."""

    async def alias(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return alias


def add_order_routes(app: web.Application) -> None:
    app.router.add_get("", v.list_orders, allow_head=False)
    app.router.add_post("", v.create_order)
    app.router.add_get("/", _slash(v.list_orders), allow_head=False)
    app.router.add_post("/", _slash(v.create_order))
    app.router.add_get("/{uuid}", v.show_order, allow_head=False)
    app.router.add_delete("/{uuid}", v.delete_order)


def add_secret_routes(app: web.Application) -> None:
    app.router.add_get("/{uuid}", v.show_secret, allow_head=False)
    app.router.add_get("/{uuid}/payload", v.show_secret_payload, allow_head=False)
    app.router.add_delete("/{uuid}", v.delete_secret)


def add_container_routes(app: web.Application) -> None:
    app.router.add_get("/{uuid}", v.show_container, allow_head=False)
    app.router.add_delete("/{uuid}", v.delete_container)


def add_ca_routes(app: web.Application) -> None:
    app.router.add_get("", v.list_cas, allow_head=False)
    app.router.add_get("/", _slash(v.list_cas), allow_head=False)
    app.router.add_get("/preferred", v.show_preferred_ca, allow_head=False)
    app.router.add_get("/{ca_id}", v.show_ca, allow_head=False)
    app.router.add_get("/{ca_id}/cacert", v.show_ca_certificate, allow_head=False)
    app.router.add_get("/{ca_id}/intermediates", v.show_ca_intermediates, allow_head=False)
    app.router.add_post("/{ca_id}/set-preferred", v.set_preferred_ca)


ROUTES = {ORDERS: add_order_routes, SECRETS: add_secret_routes, CONTAINERS: add_container_routes, CAS: add_ca_routes}
