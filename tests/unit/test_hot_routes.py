"""Hot routes (web/hot.py): the flat match gives exactly what aiohttp's routers give, or leaves the request to
them; templates it could get wrong are refused when the app is built."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gatewaycerts.app import create_app
from gatewaycerts.web import hot
from gatewaycerts.web.hot import HOT_ROUTES

CERT = "0123456789abcdef0123456789abcdef"
PATHS = [
    "/gateway/v1/p1/instances/gw1/caddy",
    "/gateway/v1/p1/instances/gw1/caddy?server_name=www.example.com&key=gk_x",
    "/gateway/v1/p1/instances/gw1/bundle",
    "/gateway/v1/p1/instances/gw1/traefik",
    "/gateway/v1/p1/instances/gw1/acme-challenge/tok",
    "/gateway/v1/p1/instances/gw1/caddy/",
    "/gateway/v1/p1/instances//caddy",
    "/gateway/v1/p%31/instances/gw1/caddy",
    "/gateway/v1/p1/instances/gw%2F1/caddy",
    "/gateway/v1/p1/instances/gw1/other",
    f"/v2/p1/apic/certificates/{CERT}",
    f"/v2/p1/apic/certificates/{CERT}/attached-domains",
    "/v2/p1/apic/certificates",
    "/v2/p1/apic/managed-certificates/abc",
    "/healthz",
    "/nowhere",
]


def _described(match: web.UrlMappingMatchInfo) -> tuple:
    http_exception = getattr(match, "http_exception", None)
    if http_exception is not None:
        return ("error", http_exception.status)
    return (match.route, dict(match), tuple(match.apps), match.current_app if match.apps else None)


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE", "HEAD"])
async def test_the_flat_match_is_aiohttps_match(settings, method):
    app = create_app(settings, order_worker=False, renewal_worker=False, notification_worker=False)
    hot_routes = app[HOT_ROUTES]
    assert hot_routes.by_size  # the delivery routes and the APIC show are hot
    for path in PATHS:
        flat = await hot_routes.resolve(make_mocked_request(method, path, app=app))
        walked = await hot_routes.original(make_mocked_request(method, path, app=app))
        assert _described(flat) == _described(walked), (method, path)
    request = make_mocked_request("GET", "/gateway/v1/p1/instances/gw1/caddy", app=app)
    match = await hot_routes.resolve(request)
    assert dict(match) == {"project_id": "p1", "instance_id": "gw1"}
    assert match.route.resource.canonical == "/gateway/v1/{project_id}/instances/{instance_id}/caddy"
    assert len(match.apps) == 1  # the gateway sub-app; the root adds itself in Application._handle


def _handler():
    async def ok(request: web.Request) -> web.Response:
        return web.Response()

    return ok


def test_a_template_another_route_could_match_is_refused():
    _ok = _handler()
    root = web.Application()
    sub = web.Application()
    sub.router.add_get("/{tenant}/items/{item}", hot.hot(_ok), allow_head=False)
    sub.router.add_get("/{tenant}/items/latest", _ok, allow_head=False)  # would win in aiohttp's order
    root.add_subapp("/api", sub)
    with pytest.raises(ValueError, match=re.escape("could also be /api/{tenant}/items/latest")):
        hot.install(root)


def test_a_template_with_its_own_regex_is_refused():
    root = web.Application()
    root.router.add_get("/files/{name:.+}", hot.hot(_handler()), allow_head=False)
    with pytest.raises(ValueError, match="plain"):
        hot.install(root)


def test_a_route_whose_regex_may_span_segments_is_a_clash():
    root = web.Application()
    root.router.add_get("/files/{rest:.+}", _handler(), allow_head=False)
    root.router.add_get("/files/a/{name}/b", hot.hot(_handler()), allow_head=False)
    with pytest.raises(ValueError, match="could also be"):
        hot.install(root)


async def test_routes_that_cannot_overlap_are_accepted_and_matched():
    _ok = _handler()
    root = web.Application()
    sub = web.Application()
    sub.router.add_get("/{tenant}/items/{item}", hot.hot(_handler()), allow_head=False)
    sub.router.add_get("/{tenant}/orders/{order}", _ok, allow_head=False)
    sub.router.add_get("/{tenant}/items/{item}/parts", _ok, allow_head=False)
    root.router.add_get("/static/{name:.+}", _ok, allow_head=False)
    root.add_subapp("/api", sub)
    hot_routes = hot.install(root)
    match = await root.router.resolve(make_mocked_request("GET", "/api/t1/items/i1", app=root))
    assert dict(match) == {"tenant": "t1", "item": "i1"} and match.apps == (sub,)
    assert hot_routes.by_size[5][0].route is match.route
