"""The routes of the API dialects, read from the app's router, for the matrices that must cover every one."""

from __future__ import annotations

DIALECT_ROOTS = ("/v2/", "/v1/", "/api/v1/", "/v3/", "/gateway/v1/")


def dialect_routes(app) -> set[tuple[str, str]]:
    """Every authenticated route of the dialects as (method, template); HEAD and public routes (CRLs,
    CA certificates served without a token) left out."""
    out = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD" or getattr(route.handler, "public_route", False):
            continue
        if resource.canonical.startswith(DIALECT_ROOTS):
            out.add((route.method, resource.canonical))
    return out
