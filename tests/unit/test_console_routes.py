"""The console's one route module: its files under a strict CSP, nothing else served, and the demo sign-in
only while the service trusts its development key, only for loopback clients."""

from __future__ import annotations

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gatewaycerts.app import create_app
from gatewaycerts.console.routes import CSP, STATIC_DIR
from gatewaycerts.settings import Settings

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def test_the_policy_allows_only_the_services_own_origin():
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
    }


def test_no_asset_writes_markup_from_strings_or_evaluates_code():
    # The console builds the DOM with createElement/textContent; these would turn data into markup or code.
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in text, (path.name, banned)
        for store in ("localStorage.", "sessionStorage.", "document.cookie"):  # the token stays in memory
            assert store not in text, (path.name, store)
    index = (STATIC_DIR / "index.html").read_text()
    assert "<script>" not in index and " style=" not in index  # no inline script or style: the CSP forbids them


@pytest.fixture
async def console(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(Settings(state_dir=tmp_path / "state")))


@pytest.mark.parametrize("path", ["/console/", "/console/js/app.js", "/console/console.css", "/console/api/config"])
async def test_every_console_response_carries_the_security_headers(console, path):
    resp = await console.get(path)
    assert resp.status == 200
    for name, value in HEADERS.items():
        assert resp.headers[name] == value, name
    types = {"/console/": "text/html", "/console/js/app.js": "text/javascript", "/console/console.css": "text/css"}
    assert resp.content_type == types.get(path, "application/json")


@pytest.mark.parametrize(
    "path", ["/console/../app.py", "/console/js/nope.js", "/console/routes.py", "/console/%2e%2e/x"]
)
async def test_only_the_consoles_own_files_are_served(console, path):
    resp = await console.get(path)
    assert resp.status == 404


async def test_console_redirects_to_its_slash(console):
    resp = await console.get("/console", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/console/"


async def test_the_demo_sign_in_mints_a_short_token_of_the_asked_project_and_role(console):
    assert (await (await console.get("/console/api/config")).json()) == {"dev_sign_in": True}
    resp = await console.post("/console/api/dev-token", json={"project": "demo", "role": "viewer"})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["project_id"] == "demo" and claims["roles"] == ["viewer"]
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 3600
    # the token works against the API, with exactly its role
    listed = await console.get("/v2/demo/apic/certificates", headers={"X-Auth-Token": body["token"]})
    assert listed.status == 200
    write = await console.delete("/v2/demo/apic/certificates/c1", headers={"X-Auth-Token": body["token"]})
    assert write.status == 403


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"project": ""},
        {"project": "a/b"},
        {"project": "x" * 65},
        {"project": "demo", "role": "root"},
        {"project": "demo", "role": ["admin"]},
        ["demo"],
    ],
)
async def test_a_bad_demo_sign_in_is_refused(console, payload):
    resp = await console.post("/console/api/dev-token", json=payload)
    assert resp.status == 400
    assert "token" not in await resp.json()


async def test_no_demo_sign_in_when_tokens_are_verified_with_a_configured_key(aiohttp_client, tmp_path):
    key_file = tmp_path / "jwt.pem"
    key_file.write_bytes(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    settings = Settings(state_dir=tmp_path / "state", jwt_public_key_file=key_file)
    client = await aiohttp_client(create_app(settings))
    assert (await (await client.get("/console/api/config")).json()) == {"dev_sign_in": False}
    resp = await client.post("/console/api/dev-token", json={"project": "demo"})
    assert resp.status == 404
    assert not (tmp_path / "state" / "dev-jwt-ed25519.pem").exists()  # no dev key was even created


@pytest.mark.parametrize(("peer", "allowed"), [("127.0.0.1", True), ("::1", True), ("10.0.0.7", False), ("", False)])
def test_the_demo_sign_in_is_for_clients_on_this_machine_only(tmp_path, peer, allowed):
    from unittest.mock import Mock

    from aiohttp.test_utils import make_mocked_request

    from gatewaycerts.appkeys import SETTINGS
    from gatewaycerts.console.routes import _dev_sign_in_allowed

    app = web.Application()
    app[SETTINGS] = Settings(state_dir=tmp_path)
    transport = Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 1234) if name == "peername" and peer else default
    )
    request = make_mocked_request("POST", "/console/api/dev-token", app=app, transport=transport)
    assert _dev_sign_in_allowed(request) is allowed


def test_setup_cfg_ships_every_console_file():
    """A non-editable install (the Dockerfile's) has only what package_data names."""
    import configparser
    from fnmatch import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(STATIC_DIR.parents[2] / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["gatewaycerts.console"].split(",")]
    base = STATIC_DIR.parent
    files = [p.relative_to(base).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files and all(any(fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in patterns) for f in files)
