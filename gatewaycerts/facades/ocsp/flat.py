"""The OCSP routes matched flat, before aiohttp's routers (as web/hot.py does for the hot GET routes).

An OCSP GET path carries the percent-encoded base64 of the request (`/pki/ocsp/{ca_id}/{request:.*}`: a variable
of its own pattern, which may hold "/" and "%" escapes, so web/hot.py's fixed segments cannot express it) and a
POST goes to `/pki/ocsp/{ca_id}`. aiohttp reaches either through the root's prefix index, the /pki sub-app's
own resolution and three regular expressions (16 µs of a GET here, against 5.6 for `/healthz`). `install` puts a
resolver in front of the root router's that splits the path once and gives the match info aiohttp would give:
the same route, the same values (unquoted as aiohttp unquotes them), the same application chain, so the sub-app,
the access line's route template and the metrics are unchanged. Anything it is not sure of (another method, a
path aiohttp would not match, a newline in the request's part) goes to the router as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute, UrlMappingMatchInfo


def _unquote(value: str) -> str:
    """aiohttp's own unquoting of a matched value of `path_safe` (web_urldispatcher._unquote_path_safe)."""
    if "%" not in value:
        return value
    return value.replace("%2F", "/").replace("%25", "%")


class FlatOcspRoutes:
    def __init__(
        self,
        original: Callable[[web.Request], Awaitable[Any]],
        app: web.Application,
        prefix: str,
        post: AbstractRoute,
        get: AbstractRoute,
        get_empty: AbstractRoute,
    ) -> None:
        self.original = original
        self._app = app
        self._prefix = prefix  # "/pki/ocsp/"
        self._post, self._get, self._get_empty = post, get, get_empty

    def match(self, method: str, path: str) -> UrlMappingMatchInfo | None:
        """The match aiohttp would give `method` on `path` (the request's `rel_url.path_safe`), or None for
        "ask aiohttp"."""
        if not path.startswith(self._prefix):
            return None
        ca_id, slash, rest = path[len(self._prefix) :].partition("/")
        if not ca_id or "{" in ca_id or "}" in ca_id:  # aiohttp's default variable: [^{}/]+
            return None
        if method == "POST" and not slash:
            match = UrlMappingMatchInfo({"ca_id": _unquote(ca_id)}, self._post)
        elif method == "GET" and not slash:
            match = UrlMappingMatchInfo({"ca_id": _unquote(ca_id)}, self._get_empty)
        elif method == "GET" and "\n" not in rest:  # {request:.*}: "." is anything but a newline
            match = UrlMappingMatchInfo({"ca_id": _unquote(ca_id), "request": _unquote(rest)}, self._get)
        else:
            return None
        match.add_app(self._app)
        return match

    def resolve(self, request: web.Request) -> Awaitable[Any]:
        """Not a coroutine: any other request is handed the router's own coroutine, without a frame of ours
        around it (that frame cost every other route ~1.5 µs)."""
        method = request.method
        if method == "GET" or method == "POST":
            match = self.match(method, request.rel_url.path_safe)
            if match is not None:
                return _Ready(match)
        return self.original(request)


class _Ready:
    """An awaitable that is done already: `await _Ready(x)` is x."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # a generator: never reached


FLAT_OCSP_ROUTES = web.AppKey("flat_ocsp_routes", FlatOcspRoutes)


def install(root: web.Application, ocsp: web.Application, *, post: Any, get: Any, get_empty: Any) -> FlatOcspRoutes:
    """Match the three OCSP routes (their handlers given) of the sub-app `ocsp` flat, in front of the root's
    router; call it once `ocsp` is mounted. Refuses (ValueError) a layout where aiohttp could pick another route
    for such a path: a root resource other than the sub-app's own under the same prefix, or a sub-app matched
    by domain (aiohttp tries those first)."""
    handlers = {"post": post, "get": get, "get_empty": get_empty}
    found: dict[str, AbstractRoute] = {}
    prefixes = set()
    for route in ocsp.router.routes():
        for name, handler in handlers.items():
            if route.handler is handler and route.resource is not None:
                found[name] = route
                prefixes.add(route.resource.canonical.split("{", 1)[0])  # "/pki/ocsp/" once mounted
    if set(found) != set(handlers) or len(prefixes) != 1:
        raise ValueError(f"flat OCSP routes: expected {sorted(handlers)} under one prefix, found {sorted(found)}")
    prefix = prefixes.pop()
    mounts = [r.canonical for r in root.router.resources() if r.get_info().get("app") is ocsp]
    if len(mounts) != 1:
        raise ValueError("flat OCSP routes: mount the OCSP sub-app (once) before installing them")
    for resource in root.router.resources():
        info = resource.get_info()
        if "rule" in info:
            raise ValueError("flat OCSP routes: a sub-app matched by domain is tried before them")
        # aiohttp tries the root's resources by the longest prefix of the path first: any other resource under
        # the sub-app's mount could come before it
        if info.get("app") is not ocsp and (resource.canonical + "/").startswith(mounts[0] + "/"):
            raise ValueError(f"flat OCSP routes: {resource.canonical} could also match {prefix}")
    flat = FlatOcspRoutes(root.router.resolve, ocsp, prefix, found["post"], found["get"], found["get_empty"])
    root.router.resolve = flat.resolve  # type: ignore[method-assign]
    root[FLAT_OCSP_ROUTES] = flat
    return flat
