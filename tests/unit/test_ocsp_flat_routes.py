"""The OCSP routes matched flat (facades/ocsp/flat.py): the same match info as aiohttp's routers for every
path and method, or the request left to them; a layout where aiohttp could pick another route is refused."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gatewaycerts.app import create_app
from gatewaycerts.facades.ocsp import app as ocsp_app
from gatewaycerts.facades.ocsp.flat import FLAT_OCSP_ROUTES

CA = "0b7c4c9e-3f0e-4a51-9a61-3c5d7b1e2f00"
REQUEST = "MEMwQTA%2FMD0wOzAJBgUrDgMCGgUABBRt%2B%2Bbq%3D"
PATHS = [
    f"/pki/ocsp/{CA}",
    f"/pki/ocsp/{CA}/",
    f"/pki/ocsp/{CA}/{REQUEST}",
    f"/pki/ocsp/{CA}/MEMw/QTA/x",  # base64 "/" left unescaped by a client
    f"/pki/ocsp/{CA}/MEMw%252Fx",  # an escaped "%"
    f"/pki/ocsp/{CA}/MEMw%0AQTA",  # a newline in the request's part: aiohttp's ".*" does not match it
    f"/pki/ocsp/{CA}/MEMw QTA",
    f"/pki/ocsp/{CA}/a%7Bb",
    f"/pki/ocsp/{CA}?x=1",
    "/pki/ocsp/ca%2Fid/MEMw",  # an escaped "/" in the CA id
    "/pki/ocsp/c%7Ba/MEMw",  # "{" in the CA id: not aiohttp's default variable
    "/pki/ocsp//MEMw",
    "/pki/ocsp/",
    "/pki/ocsp",
    f"/pki/ca/{CA}.cer",
    "/pki/ocspx/abc",
    "/healthz",
    "/gateway/v1/p1/instances/gw1/caddy",
    "/nowhere",
]


def _described(match: web.UrlMappingMatchInfo) -> tuple:
    http_exception = getattr(match, "http_exception", None)
    if http_exception is not None:
        return ("error", http_exception.status)
    return (match.route, dict(match), tuple(match.apps), match.current_app if match.apps else None)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
async def test_the_flat_match_is_aiohttps_match(settings, method):
    app = create_app(settings, order_worker=False, renewal_worker=False, notification_worker=False)
    flat = app[FLAT_OCSP_ROUTES]
    assert app.router.resolve == flat.resolve  # installed in front of the root's router
    answered = 0
    for path in PATHS:
        request = make_mocked_request(method, path, app=app)
        answered += flat.match(method, request.rel_url.path_safe) is not None
        mine = await flat.resolve(request)
        walked = await flat.original(make_mocked_request(method, path, app=app))
        assert _described(mine) == _described(walked), (method, path)
    assert answered == {"GET": 9, "POST": 2}.get(method, 0)  # the flat match did answer these itself


async def test_the_values_are_unquoted_as_aiohttp_unquotes_them(settings):
    app = create_app(settings, order_worker=False, renewal_worker=False, notification_worker=False)
    match = await app.router.resolve(make_mocked_request("GET", f"/pki/ocsp/{CA}/{REQUEST}", app=app))
    assert dict(match) == {"ca_id": CA, "request": "MEMwQTA/MD0wOzAJBgUrDgMCGgUABBRt++bq="}
    assert match.route.handler is ocsp_app.ocsp_get
    assert match.route.resource.canonical == "/pki/ocsp/{ca_id}/{request}"  # the metrics' and access line's
    post = await app.router.resolve(make_mocked_request("POST", f"/pki/ocsp/{CA}", app=app))
    assert post.route.handler is ocsp_app.ocsp_post and dict(post) == {"ca_id": CA}
    assert len(post.apps) == 1  # the /pki sub-app; the root adds itself in Application._handle


async def _ok(request: web.Request) -> web.Response:
    return web.Response()


def test_a_root_route_under_the_mount_is_refused():
    root = web.Application()
    root.router.add_get("/pki/ocsp/{x}", _ok)  # the root's index would try it before the sub-app
    pki = ocsp_app.create_ocsp_app(client_max_size=1024)
    root.add_subapp(ocsp_app.MOUNT, pki)
    with pytest.raises(ValueError, match="could also match /pki/ocsp/"):
        ocsp_app.install_flat_routes(root, pki)


def test_an_unmounted_sub_app_is_refused():
    with pytest.raises(ValueError, match="mount the OCSP sub-app"):
        ocsp_app.install_flat_routes(web.Application(), ocsp_app.create_ocsp_app(client_max_size=1024))
