"""The direct lane of the hot routes: a GET that web/hot.py matches flat is handed straight to the middleware
chain aiohttp would build for its route, without aiohttp's `Application._handle` around it.

For every request `Application._handle` awaits the router's resolve, adds the root app to the match info and
freezes it, checks the `Expect` header, looks the handler's middleware chain up in its cache (`lru_cache` keyed
by the handler and the tuple of applications, hashed per request) and awaits it. For a hot route every one of
those answers is known once the path is matched: `install` replaces the root's `_handle` (the request handler
that aiohttp's `Server` is built with, in `serve` and in tests alike) by `Lane.handle`, which

- matches a GET without an `Expect` header flat (web/hot.py), through a bounded memo by raw path (the paths of
  Caddy's, the snapshot's and the show's requests repeat: one dict look-up instead of a split and two; an OCSP
  GET that the `flat` matchers matched is remembered there too);
- gives the request the match info aiohttp would give it: the same route, values, applications (the root
  first) and current app, frozen;
- calls the chain aiohttp's own `_build_middlewares` composes for the route's handler and applications (the
  root's request middleware, each app's `_fix_request_current_app`, the sub-app's middlewares, the handler),
  composed once per route on its first request, after the app is frozen. When every middleware of the
  applications around the innermost one is marked `app_agnostic` (it never reads the request's current app:
  `request.app`, `match_info.current_app`, `config_dict`), the chain is the same middlewares and handler
  without aiohttp's `_fix_request_current_app` layers: the current app is the innermost application from the
  start (as aiohttp's match info starts it), which is what the innermost app's middlewares and the handler see
  under aiohttp's layers too, and the only layers that would see another one are marked as never looking. Two
  coroutine frames fewer per request of a sub-app's hot route (docs/performance.md, "Stop 32").

Anything else (another method, an `Expect` header, a path not hot, an app with old-style middlewares) goes to
aiohttp's `Application._handle` as before, whose router resolves it as aiohttp does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial, update_wrapper
from typing import Any, TypeVar

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import AbstractRoute, UrlMappingMatchInfo

try:
    from aiohttp.web_app import _build_middlewares
except ImportError:  # an aiohttp whose internals moved: supported() is False and the service runs without the lane
    _build_middlewares = None
try:
    from aiohttp.web_middlewares import _fix_request_current_app

    # the code of the layer aiohttp adds as each application's outermost middleware (a new closure per app)
    _FIX_CODE: Any = _fix_request_current_app(None).__code__  # type: ignore[arg-type]
except (ImportError, AttributeError, TypeError):  # moved: every chain keeps aiohttp's own layers
    _FIX_CODE = None

from gatewaycerts.web.hot import HotRoutes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MEMO_SIZE = 4096  # distinct hot paths remembered; the memo starts again empty when full
# Longer paths are matched each time instead (the memo holds at most MEMO_SIZE * MEMO_PATH_MAX characters of keys,
# whatever a client sends): an OCSP GET for one certificate is ~200 characters, a hot route's path less.
MEMO_PATH_MAX = 512


class _Lane:
    """What a hot path leads to: its route, its values, its applications (the root first), its chain."""

    __slots__ = ("apps", "chain", "inner", "route", "values")

    def __init__(
        self, route: AbstractRoute, values: dict[str, str], apps: tuple[web.Application, ...], chain: Handler
    ) -> None:
        self.route = route
        self.values = values  # copied into each request's match info (UrlMappingMatchInfo copies its dict)
        self.apps = apps
        self.inner = apps[-1]  # the current app aiohttp's match info starts with: the first one added
        self.chain = chain


FlatMatch = Callable[[str, str], UrlMappingMatchInfo | None]
M = TypeVar("M", bound=Callable[..., Any])
_APP_AGNOSTIC = "gatewaycerts_app_agnostic"


def app_agnostic(middleware: M) -> M:
    """Mark a middleware that never reads the request's current application (`request.app`,
    `request.match_info.current_app`, `request.config_dict`): the lane may then run it without aiohttp's
    current-app layers around it (see the module's docstring)."""
    setattr(middleware, _APP_AGNOSTIC, True)
    return middleware


def _is_fix_layer(middleware: Any) -> bool:
    return _FIX_CODE is not None and getattr(middleware, "__code__", None) is _FIX_CODE


def _without_app_layers(handler: Handler, apps: tuple[web.Application, ...]) -> Handler | None:
    """`_build_middlewares(handler, apps)` without the `_fix_request_current_app` layers, when only the innermost
    application's middlewares (and the handler) could tell: every middleware of the others is `app_agnostic`.
    None otherwise (aiohttp's chain then)."""
    if _FIX_CODE is None:
        return None
    for app in apps[:-1]:
        for middleware, _ in app._middlewares_handlers:  # type: ignore[union-attr]
            if not _is_fix_layer(middleware) and not getattr(middleware, _APP_AGNOSTIC, False):
                return None
    chain = handler
    for app in apps[::-1]:  # as _build_middlewares composes them: the innermost app's first, the root's last
        for middleware, _ in app._middlewares_handlers:  # type: ignore[union-attr]
            if not _is_fix_layer(middleware):
                chain = update_wrapper(partial(middleware, handler=chain), chain)
    return chain


class Lane:
    def __init__(self, root: web.Application, hot_routes: HotRoutes, flat: tuple[FlatMatch, ...] = ()) -> None:
        self.root = root
        self.hot_routes = hot_routes
        self.flat = flat
        self.app_handle: Handler = root._handle  # aiohttp's own, for everything else
        self._chains: dict[AbstractRoute, Handler] = {}
        self._memo: dict[str, _Lane] = {}
        self.remembered: Callable[[str], _Lane | None] = self._memo.get

    def _chain(self, route: AbstractRoute, apps: tuple[web.Application, ...]) -> Handler | None:
        chain = self._chains.get(route)
        if chain is None:
            root = self.root
            if not root.frozen or root._has_legacy_middlewares:
                return None  # Application._handle then (it awaits old-style middlewares' factories per request)
            # aiohttp runs no middleware at all (not even _fix_request_current_app) when no app has one
            if not root._run_middlewares:
                chain = route.handler
            else:
                chain = _without_app_layers(route.handler, apps) or _build_middlewares(route.handler, apps)
            self._chains[route] = chain
        return chain

    def _find(self, path: str) -> _Lane | None:
        found = self.hot_routes.match(path)
        if found is None:
            return None
        compiled, values = found
        apps = (self.root, *reversed(compiled.apps))
        chain = self._chain(compiled.route, apps)
        if chain is None:
            return None
        lane = _Lane(compiled.route, values, apps, chain)
        self._remember(path, lane)
        return lane

    def _remember(self, path: str, lane: _Lane) -> None:
        if len(path) > MEMO_PATH_MAX:
            return
        memo = self._memo
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[path] = lane

    def handle(self, request: web.Request) -> Awaitable[web.StreamResponse]:
        """The root's request handler. Not a coroutine: it returns the chain's (or `_handle`'s) coroutine, so
        no frame of its own stays on the stack."""
        method = request.method
        if (method == "GET" or method == "POST") and hdrs.EXPECT not in request.headers:
            if method == "GET":
                path = request.rel_url.raw_path
                lane = self.remembered(path) or self._find(path)
                if lane is not None:
                    match = UrlMappingMatchInfo(lane.values, lane.route)
                    match._apps = list(lane.apps)
                    match._current_app = lane.inner
                    match.freeze()
                    request._match_info = match
                    return lane.chain(request)
            if self.flat:
                return self._flat(request, method)
        return self.app_handle(request)

    def _flat(self, request: web.Request, method: str) -> Awaitable[web.StreamResponse]:
        """A request the other flat matchers (`flat`: facades/ocsp/flat.py's) give the match info of. A GET's
        match is remembered by its raw path as a hot path's is (an OCSP GET carries its request in the path, and
        a certificate's status is asked for again and again with the same one): the next GET of that path is
        answered from the memo, the same route, values and applications, without the hot match or the flat one."""
        url = request.rel_url
        path = url.path_safe
        for flat_match in self.flat:
            match = flat_match(method, path)
            if match is not None:
                match.add_app(self.root)
                chain = self._chain(match.route, match.apps)
                if chain is not None:
                    if method == "GET":
                        self._remember(url.raw_path, _Lane(match.route, dict(match), tuple(match.apps), chain))
                    match.freeze()
                    request._match_info = match
                    return chain(request)
        return self.app_handle(request)


LANE = web.AppKey("lane", Lane)


def supported() -> bool:
    """Are aiohttp's internals that the lane relies on (aiohttp 3.14's) where it expects them? The service
    installs the lane only then (app.py); with an aiohttp that moved them, hot routes go by web/hot.py's match
    in the router, as before the lane, instead of failing at start or, worse, answering differently."""
    app_attrs = getattr(web.Application, "ATTRS", frozenset())
    return (
        _build_middlewares is not None
        and callable(getattr(web.Application, "_handle", None))
        and {"_run_middlewares", "_has_legacy_middlewares"} <= app_attrs
        and {"_apps", "_current_app"} <= set(UrlMappingMatchInfo.__slots__)
        and callable(getattr(UrlMappingMatchInfo, "freeze", None))
    )


def install(root: web.Application, hot_routes: HotRoutes, flat: tuple[FlatMatch, ...] = ()) -> Lane:
    """Serve the hot routes of `root` (compiled by web/hot.install, with `router=False`: the lane matches them)
    and the routes the `flat` matchers match (`flat_match(method, path_safe)` -> the match info aiohttp would
    give, the root not yet added, or None) by the direct lane. Call it once every sub-app is mounted, before the
    app is run."""
    lane = Lane(root, hot_routes, flat)
    root._handle = lane.handle  # type: ignore[method-assign]
    root[LANE] = lane
    return lane
