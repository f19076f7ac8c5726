"""Hot routes: a flat, precompiled match for the few read routes called on every TLS handshake or page view
(Caddy's get_certificate, the snapshot, an APIC show), tried before aiohttp's UrlDispatcher.

A route declares itself hot with `@hot` on its handler. `install(root)` then compiles the template of every hot
route of the root app and of its sub-apps into fixed segment positions (split on "/"), and puts a resolver in
front of the root router's own: a GET whose path has no percent-escape and matches a hot template gets the same
match info aiohttp's two routers would give it (the same route, the same values, the same applications
chain: the sub-app's middlewares, its declared error dialect and its `config_dict` are unchanged); anything
else goes to aiohttp's resolution as before. What it saves is the walk of the root's prefix index, the
sub-app's own resolution and its regular expressions (~9 µs of a request here). The service installs it with
`router=False`: web/lane.py then does the flat match (`HotRoutes.match`) in front of aiohttp's whole dispatch.

`install` refuses (ValueError) a hot template that another route could also match, whatever the order of
registration: then the flat match could pick a different route than aiohttp would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute, DynamicResource, PlainResource, UrlMappingMatchInfo

_HOT = "gatewaycerts_hot_route"
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])


def hot(handler: H) -> H:
    """Mark a handler's GET route as hot (see the module's docstring)."""
    setattr(handler, _HOT, True)
    return handler


class _Template(NamedTuple):
    route: AbstractRoute
    apps: tuple[web.Application, ...]  # the sub-apps from the outermost in, without the root
    size: int
    fixed: tuple[tuple[int, str], ...]
    names: tuple[tuple[int, str], ...]


def _own_regex(resource: Any) -> bool:
    """Has a variable of the route its own regular expression (`{name:.+}`, which may match "/" too)? The
    resource's template no longer says (its `canonical` is `{name}` either way); its compiled pattern does."""
    if not isinstance(resource, DynamicResource):
        return False
    pattern = resource.get_info()["pattern"].pattern
    return pattern.count("(?P<") != pattern.count(f">{DynamicResource.GOOD})")


def _parts(template: str) -> tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], int] | None:
    """Fixed and variable segments of a route template (variables of aiohttp's default pattern); None for a
    segment half fixed, half variable, which a flat match cannot express exactly."""
    fixed, names = [], []
    parts = template.split("/")
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}") and part.count("{") == 1 and part.count("}") == 1:
            names.append((i, part[1:-1]))
        elif "{" in part or "}" in part:
            return None
        else:
            fixed.append((i, part))
    return tuple(fixed), tuple(names), len(parts)


def _all_routes(
    app: web.Application, chain: tuple[web.Application, ...] = ()
) -> Iterator[tuple[Any, AbstractRoute | None, tuple[web.Application, ...]]]:
    """(resource, route, sub-app chain) of every route of `app` and its sub-apps; route None for a resource
    that is neither plain nor dynamic (static files), to be checked by its prefix."""
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:  # a sub-app: by prefix, or by domain ("rule")
            if "rule" in info:
                raise ValueError("hot routes: a sub-app matched by domain is not supported")
            yield from _all_routes(info["app"], (*chain, info["app"]))
        elif isinstance(resource, PlainResource | DynamicResource):
            for route in resource:
                yield resource, route, chain
        else:
            yield resource, None, chain


def _may_overlap(a: _Template, resource: Any) -> bool:
    """Could a path matching `a` also match `resource`? Compared segment by segment: where both are fixed
    they must agree; a segment with a variable in it matches anything. A resource with a variable of its own
    regular expression (or a static directory) may match any number of segments: only its fixed segments
    before the first variable are compared."""
    parts = resource.canonical.split("/")
    mine = dict(a.fixed)
    open_ended = _own_regex(resource) or not isinstance(resource, PlainResource | DynamicResource)
    for i, part in enumerate(parts):
        if open_ended and ("{" in part or (part == "" and i == len(parts) - 1)):
            return i < a.size  # the fixed segments before agree; from here on it may match anything
        if "{" in part:
            continue
        if i >= a.size or mine.get(i, part) != part:
            return False
    return len(parts) == a.size or (open_ended and len(parts) < a.size)


def _getter(positions: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """The segments at `positions` of a split path, as a tuple, taken in one C call (operator.itemgetter)."""
    if len(positions) == 1:
        one = itemgetter(*positions)
        return lambda parts: (one(parts),)
    return itemgetter(*positions) if positions else (lambda parts: ())


class _Compiled(NamedTuple):
    values_of: Callable[[list[str]], tuple[str, ...]]
    names: tuple[str, ...]
    route: AbstractRoute
    apps: tuple[web.Application, ...]  # innermost first, in the order the match info takes them


class _Group(NamedTuple):
    """The hot templates of one size whose fixed segments are at the same positions, by those segments' text:
    a path is matched against all of them with one C call and one dict look-up."""

    positions: tuple[int, ...]
    fixed_of: Callable[[list[str]], tuple[str, ...]]
    by_fixed: dict[tuple[str, ...], _Compiled]


class HotRoutes:
    def __init__(self, original: Callable[[web.Request], Awaitable[Any]]) -> None:
        self.original = original
        self.by_size: dict[int, list[_Template]] = {}
        self._groups: dict[int, list[_Group]] = {}

    def add(self, template: _Template) -> None:
        self.by_size.setdefault(template.size, []).append(template)
        positions = tuple(i for i, _ in template.fixed)
        groups = self._groups.setdefault(template.size, [])
        group = next((g for g in groups if g.positions == positions), None)
        if group is None:
            group = _Group(positions, _getter(positions), {})
            groups.append(group)
        compiled = _Compiled(
            _getter(tuple(i for i, _ in template.names)),
            tuple(name for _, name in template.names),
            template.route,
            tuple(reversed(template.apps)),
        )
        # two templates with the same fixed text at the same positions would match the same paths: install's
        # overlap check refuses that before it gets here
        group.by_fixed[tuple(value for _, value in template.fixed)] = compiled

    def match(self, path: str) -> tuple[_Compiled, dict[str, str]] | None:
        """The hot route a GET of `path` (the request's `rel_url.raw_path`) goes to and its values, or None for
        "ask aiohttp"."""
        if "%" not in path:
            parts = path.split("/")
            for group in self._groups.get(len(parts), ()):
                t = group.by_fixed.get(group.fixed_of(parts))
                if t is not None:
                    values = t.values_of(parts)
                    if "" not in values:  # aiohttp's default variable: [^{}/]+, never empty
                        return t, dict(zip(t.names, values, strict=True))
        return None

    async def resolve(self, request: web.Request) -> Any:
        if request.method == "GET":
            found = self.match(request.rel_url.raw_path)
            if found is not None:
                t, values = found
                match = UrlMappingMatchInfo(values, t.route)
                for app in t.apps:
                    match.add_app(app)
                return match
        return await self.original(request)


HOT_ROUTES = web.AppKey("hot_routes", HotRoutes)


def install(root: web.Application, *, router: bool = True) -> HotRoutes:
    """Compile the hot routes of `root` and its sub-apps (call it once every sub-app is mounted), and match
    them flat in front of the root's router unless `router` is False (web/lane.py matches them then)."""
    hot_routes = HotRoutes(root.router.resolve)
    everything = list(_all_routes(root))
    for resource, route, chain in everything:
        if route is None or not getattr(route.handler, _HOT, False):
            continue
        if route.method != "GET":
            raise ValueError(f"hot routes: {route.method} {resource.canonical}: only GET routes can be hot")
        parsed = None if _own_regex(resource) else _parts(resource.canonical)
        if parsed is None:
            raise ValueError(f"hot routes: {resource.canonical}: use plain {{name}} segments")
        fixed, names, size = parsed
        template = _Template(route, chain, size, fixed, names)
        for other, other_route, _ in everything:
            if other is resource:
                continue
            if (other_route is None or other_route.method in ("GET", "*")) and _may_overlap(template, other):
                raise ValueError(f"hot routes: {resource.canonical} could also be {other.canonical}")
        hot_routes.add(template)
    if router:
        root.router.resolve = hot_routes.resolve  # type: ignore[method-assign]
    root[HOT_ROUTES] = hot_routes
    return hot_routes
