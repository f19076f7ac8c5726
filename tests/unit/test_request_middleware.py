"""The root's request middleware is also the error layer: for its own routes and unknown paths, and for a sub-app
that declared its dialect (`use_dialect`) instead of carrying an error middleware of its own."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gatewaycerts.domain.errors import DomainError, NotFoundError
from gatewaycerts.web.errors import error_middleware, use_dialect
from gatewaycerts.web.metrics import Metrics
from gatewaycerts.web.middleware import InFlight, PlainDialect, request_middleware


class Tagged:
    """A dialect whose envelope names it, to tell which one answered."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def domain_error(self, exc: DomainError, status: int) -> dict[str, Any]:
        return {"dialect": self.tag, "status": status, "message": exc.message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"dialect": self.tag, "status": status, "message": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"dialect": self.tag, "status": 500, "message": f"system error {request_id}"}


async def missing(request: web.Request) -> web.Response:
    raise NotFoundError("no such thing")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


def build(metrics: Metrics | None = None) -> web.Application:
    root = web.Application(middlewares=[request_middleware(metrics, InFlight(), dialect=PlainDialect())])
    root.router.add_get("/own", missing)
    declared = web.Application()
    use_dialect(declared, Tagged("declared"))
    for path, handler in (("/missing", missing), ("/broken", broken), ("/moved", moved)):
        declared.router.add_get(path, handler)
    root.add_subapp("/declared", declared)
    layered = web.Application(middlewares=[error_middleware(Tagged("layered"))])
    layered.router.add_get("/missing", missing)
    root.add_subapp("/layered", layered)
    return root


async def test_a_declared_sub_app_gets_its_envelope_from_the_root_layer(aiohttp_client, caplog) -> None:
    metrics = Metrics()
    client = await aiohttp_client(build(metrics))
    resp = await client.get("/declared/missing", headers={"X-Request-Id": "req-1"})
    assert resp.status == 404 and resp.headers["X-Request-Id"] == "req-1"
    assert await resp.json() == {"dialect": "declared", "status": 404, "message": "no such thing"}

    resp = await client.get("/declared/nowhere")  # the sub-app's unknown path
    assert resp.status == 404 and (await resp.json())["dialect"] == "declared"

    with caplog.at_level(logging.INFO):
        resp = await client.get("/declared/broken", headers={"X-Request-Id": "req-2"})
    body = await resp.json()
    assert resp.status == 500 and body == {"dialect": "declared", "status": 500, "message": "system error req-2"}
    assert "secret internals" not in await resp.text()
    errors = [r for r in caplog.records if r.name == "gatewaycerts.web"]
    assert errors and errors[0].exc_info and "request_id=req-2" in errors[0].getMessage()
    access = [r for r in caplog.records if r.name == "gatewaycerts.access"]
    assert [r.status for r in access] == [500]  # the access line has the status that was answered

    resp = await client.get("/declared/moved", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/elsewhere" and "X-Request-Id" in resp.headers

    counted = metrics.registry.get_sample_value(
        "gatewaycerts_http_requests_total", {"method": "GET", "route": "/declared/broken", "status": "500"}
    )
    assert counted == 1


async def test_a_sub_app_with_its_own_error_middleware_and_the_root_routes_keep_theirs(aiohttp_client) -> None:
    client = await aiohttp_client(build())
    resp = await client.get("/layered/missing")
    assert resp.status == 404 and (await resp.json())["dialect"] == "layered"
    resp = await client.get("/own")
    assert resp.status == 404 and await resp.json() == {"error": {"code": 404, "message": "no such thing"}}
    resp = await client.get("/unknown")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == 404
