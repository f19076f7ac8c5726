"""Serves the console's static files at /console/ under a strict CSP, and, only while the service trusts its
development JWT key, a demo sign-in that mints a short-lived token for loopback clients.

Every data call the console makes goes to the public APIs (APIC, CCM, Notary, Barbican, audit) with the
signed-in user's token; nothing here reads a store or a core service.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from aiohttp import web

from gatewaycerts.appkeys import SETTINGS
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.domain.models import Role
from gatewaycerts.web.errors import json_response

MOUNT = "/console"
STATIC_DIR = Path(__file__).parent / "static"
DEV_TOKEN_TTL = 3600  # seconds: a demo session, not a credential to keep
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file the console has, read once at start: a request can only name one of these (no path is
    ever joined from the URL)."""
    found: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in _TYPES:
            found[path.relative_to(STATIC_DIR).as_posix()] = (path.read_bytes(), _TYPES[path.suffix])
    return found


def _response(body: bytes, content_type: str, status: int = 200) -> web.Response:
    charset = None if content_type == "image/png" else "utf-8"
    return web.Response(body=body, status=status, content_type=content_type, charset=charset, headers=SECURITY_HEADERS)


def _not_found() -> web.Response:
    body = json_response({"error": {"code": 404, "message": "the requested URL does not match any API"}}, 404)
    body.headers.update(SECURITY_HEADERS)
    return body


def _dev_sign_in_allowed(request: web.Request) -> bool:
    """Only while tokens are verified with the development key (no JWKS, no public key file, dev keys allowed),
    and only for a client on this machine: the demo button mints an admin token for whoever asks."""
    settings = request.app[SETTINGS]
    if not (settings.uses_dev_jwt_key and settings.allow_dev_keys):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def add_console_routes(app: web.Application) -> None:
    assets = _assets()

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(MOUNT + "/", headers=SECURITY_HEADERS)

    async def show_asset(request: web.Request) -> web.Response:
        name = request.match_info.get("path") or "index.html"
        found = assets.get(name)
        if found is None:
            return _not_found()
        return _response(*found)

    async def show_config(request: web.Request) -> web.Response:
        response = json_response({"dev_sign_in": _dev_sign_in_allowed(request)})
        response.headers.update(SECURITY_HEADERS)
        return response

    async def create_dev_token(request: web.Request) -> web.Response:
        if not _dev_sign_in_allowed(request):
            return _not_found()
        try:
            body = await request.json()
        except ValueError:
            body = None
        project = body.get("project") if isinstance(body, dict) else None
        role = body.get("role", Role.ADMIN.value) if isinstance(body, dict) else None
        valid_role = isinstance(role, str) and role in {r.value for r in Role}
        if not isinstance(project, str) or not _PROJECT.match(project) or not valid_role:
            message = "give {project: 1-64 letters, digits, '_', '.', '-'; role: admin, editor or viewer}"
            response = json_response({"error": {"code": 400, "message": message}}, 400)
            response.headers.update(SECURITY_HEADERS)
            return response
        settings = request.app[SETTINGS]
        token = mint_token(
            load_or_create_dev_key(settings.state_dir),
            subject=f"console-demo-{role}",
            projects=[project],
            roles=[role],
            ttl=DEV_TOKEN_TTL,
            issuer=settings.jwt_issuer or None,
            audience=settings.jwt_audience,
        )
        response = json_response({"token": token, "expires_in": DEV_TOKEN_TTL})
        response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-store"})
        return response

    # Static files and the sign-in helper are public (like the CRL routes): the token lives in the browser
    # tab, and every data call the console makes is authorized by the API it calls.
    for handler in (redirect, show_asset, show_config, create_dev_token):
        handler.public_route = True  # type: ignore[attr-defined]
    app.router.add_get(MOUNT, redirect, allow_head=False)
    app.router.add_get(MOUNT + "/", show_asset, allow_head=False)
    app.router.add_get(MOUNT + "/api/config", show_config, allow_head=False)
    app.router.add_post(MOUNT + "/api/dev-token", create_dev_token)
    app.router.add_get(MOUNT + "/{path:[A-Za-z0-9_./-]+}", show_asset, allow_head=False)
