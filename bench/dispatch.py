"""CPU of aiohttp's dispatch alone, for one hot GET, each way the service has had it: from the server's request
handler to the handler's return, with a root app and a sub-app of one pass-through middleware each (the shape
of the gateway's and the APIC's routes) and a handler that returns a ready response. Nothing else of the
service runs, so the few µs a dispatch costs are not lost in the noise of a whole request on a loaded machine.

- `aiohttp`: Application._handle with aiohttp's own router (prefix index, the sub-app's resolve, regexes);
- `hot`: Application._handle with web/hot.py's flat match in front of the router (stop 27);
- `lane`: web/lane.py (the flat match, a memo by path, the composed chain called directly; stop 28);
- `lane-nomemo`: the lane with its memo off;
- `lane-nofix`: (a measure only, not a way the service runs) the lane with a chain composed without the
  `_fix_request_current_app` layer aiohttp puts in front of each application's middlewares: what that layer
  costs.

Interleaved in rounds (each way `--calls` calls a round); CPU per call (process time), min and median of the
rounds.

    .venv/bin/python bench/dispatch.py --rounds 15
    .venv/bin/python bench/dispatch.py --parts    # the lane's own steps, timeit (CPU time), min/median of 7
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gatewaycerts.web import hot, lane


def build() -> tuple[web.Application, hot.HotRoutes, lane.Lane]:
    answer = web.Response(body=b"x" * 64)

    @web.middleware
    async def root_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request)

    @web.middleware
    async def sub_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request)

    async def handler(request: web.Request) -> web.StreamResponse:
        return answer

    async def other(request: web.Request) -> web.StreamResponse:
        return answer

    root = web.Application(middlewares=[root_middleware])
    root.router.add_get("/healthz", other)
    for mount in ("/v2", "/v1", "/pki", "/iam", "/audit", "/notary"):  # some neighbours for aiohttp's index
        sub = web.Application()
        sub.router.add_get("/{project_id}/things/{thing_id}", other, allow_head=False)
        sub.router.add_post("/{project_id}/things", other)
        root.add_subapp(mount, sub)
    gateway = web.Application(middlewares=[sub_middleware])
    gateway.router.add_get("/{project_id}/instances/{instance_id}/caddy", hot.hot(handler), allow_head=False)
    gateway.router.add_get("/{project_id}/instances/{instance_id}/bundle", other, allow_head=False)
    gateway.router.add_get("/{project_id}/instances/{instance_id}/acme-challenge/{token}", other)
    root.add_subapp("/gateway/v1", gateway)
    hot_routes = hot.install(root, router=False)
    the_lane = lane.install(root, hot_routes)
    root.freeze()
    return root, hot_routes, the_lane


def parts() -> None:
    """The lane's own steps for the same path, each alone (timeit on CPU time, 7 repeats)."""
    from aiohttp import hdrs
    from aiohttp.web_urldispatcher import UrlMappingMatchInfo

    root, hot_routes, the_lane = build()
    path = "/gateway/v1/p1/instances/gw1/caddy"
    found = the_lane._find(path)
    assert found is not None
    request = make_mocked_request("GET", path + "?server_name=www.example.com", app=root)

    def match_info() -> None:
        match = UrlMappingMatchInfo(found.values, found.route)
        match._apps = list(found.apps)
        match._current_app = found.inner
        match.freeze()

    steps = {
        "request.method, Expect, rel_url.raw_path": lambda: (
            request.method == "GET" and hdrs.EXPECT not in request.headers and request.rel_url.raw_path
        ),
        "memo look-up": lambda: the_lane.remembered(path),
        "match info (made, apps, current app, frozen)": match_info,
        "hot.match (the flat match without the memo)": lambda: hot_routes.match(path),
        "_find (what a memo miss costs)": lambda: the_lane._find(path),
    }
    n = 100_000
    for name, step in steps.items():
        times = sorted(t / n * 1e6 for t in timeit.repeat(step, number=n, repeat=7, timer=time.process_time))
        print(f"{name:46} min {times[0]:.2f} µs, median {times[3]:.2f} µs")


async def main(args: argparse.Namespace) -> None:
    root, hot_routes, the_lane = build()
    path = "/gateway/v1/p1/instances/gw1/caddy?server_name=www.example.com"
    requests = [make_mocked_request("GET", path, app=root) for _ in range(args.calls)]

    def router(on: bool) -> None:
        root.router.resolve = hot_routes.resolve if on else hot_routes.original  # type: ignore[method-assign]

    def memo(on: bool) -> None:
        the_lane.remembered = the_lane._memo.get if on else (lambda p: None)

    found = the_lane._find(path.split("?")[0])
    assert found is not None
    route = found.route
    chains: dict[bool, Any] = {}

    def fix_layers(on: bool) -> None:
        if not chains:
            chains[True] = the_lane._chains[route]
            handler: Any = route.handler
            for app in reversed(found.apps):
                for m in reversed(app._middlewares):
                    handler = partial(m, handler=handler)
            chains[False] = handler
        the_lane._chains[route] = chains[on]
        the_lane._memo.clear()

    ways = {
        "aiohttp": (the_lane.app_handle, lambda: router(False)),
        "hot": (the_lane.app_handle, lambda: router(True)),
        "lane": (the_lane.handle, lambda: (router(False), memo(True), fix_layers(True))),
        "lane-nomemo": (the_lane.handle, lambda: (router(False), memo(False), fix_layers(True))),
        "lane-nofix": (the_lane.handle, lambda: (router(False), memo(True), fix_layers(False))),
    }
    results: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(args.rounds + 1):
        for name, (handle, setup) in ways.items():
            setup()
            for request in requests:  # a request's match info is set once per dispatch: start each anew
                request._match_info = None
            gc.collect()
            gc.disable()  # the mocked requests are large: a collection inside a timed loop would be its noise
            c0 = time.process_time()
            for request in requests:
                await handle(request)
            us = (time.process_time() - c0) * 1e6 / len(requests)
            gc.enable()
            if r:  # the first round warms up
                results[name].append(us)
    base = statistics.median(results["hot"])
    for name, rows in results.items():
        print(
            f"{name:12} CPU/dispatch min {min(rows):5.2f} µs, median {statistics.median(rows):5.2f} µs "
            f"(median - hot's: {statistics.median(rows) - base:+.2f} µs)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--parts", action="store_true", help="time the lane's own steps instead")
    arguments = parser.parse_args()
    if arguments.parts:
        parts()
    else:
        uvloop.run(main(arguments))
