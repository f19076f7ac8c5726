"""The direct lane of the hot routes (web/lane.py) answers every request, errors included, as aiohttp's own
dispatch (Application._handle and its routers) answers it: the same status, headers and body, the same access
line and the same metrics."""

from __future__ import annotations

import base64
import functools
import logging
import re
import urllib.parse

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from yarl import URL

from gatewaycerts.web import hot, lane
from gatewaycerts.web.lane import LANE
from tests.factories import CertSpec, ec_chain, ec_key, issue

ECDSA = "403,503,603,807,808,804,805,806,401,501,601"
SKIPPED = {"date", "x-request-id"}
_COUNT = re.compile(rb"^gatewaycerts_http_requests_total\{(.*)\} (\S+)$", re.M)


async def _setup(client, token) -> tuple[str, str, str]:
    admin = {"X-Auth-Token": token("p1")}
    chain = ec_chain()
    leaf = issue(CertSpec(cn="www.lane.example", dns=("www.lane.example",)), ec_key("secp256r1", 9), chain.intermediate)
    resp = await client.post(
        "/v2/p1/apic/certificates",
        json={"name": "lane", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()},
        headers=admin,
    )
    assert resp.status == 200, await resp.text()
    cert_id = (await resp.json())["id"]
    resp = await client.post(
        f"/v2/p1/apic/certificates/{cert_id}/domains/attach",
        json={"domains": [{"domain": "www.lane.example", "instance_ids": ["edge"]}]},
        headers=admin,
    )
    assert resp.status == 204, await resp.text()
    resp = await client.post("/v2/p1/apic/instances/edge/gateway-keys", headers=admin)
    gk = (await resp.json())["key"]
    resp = await client.get("/gateway/v1/p1/instances/edge/bundle", headers={"Authorization": f"Bearer {gk}"})
    assert resp.status == 200
    return cert_id, gk, resp.headers["ETag"]


def _requests(cert_id: str, gk: str, etag: str, token) -> list[tuple[str, str, dict[str, str]]]:
    gw = "/gateway/v1/p1/instances/edge"
    bearer = {"Authorization": f"Bearer {gk}"}
    admin = {"X-Auth-Token": token("p1")}
    caddy = f"?server_name=www.lane.example&signature_schemes={ECDSA}"
    return [
        ("GET", f"{gw}/caddy{caddy}&key={gk}", {}),
        ("GET", f"{gw}/caddy{caddy}", {}),  # no credential
        ("GET", f"{gw}/caddy{caddy}&key=gk_wrong", {}),  # bad credential
        ("GET", f"/gateway/v1/nope/instances/edge/caddy{caddy}&key={gk}", {}),  # unknown project
        ("GET", f"{gw}/caddy?server_name=other.example&key={gk}", {}),  # nothing bound
        ("GET", f"{gw}/caddy?key={gk}&wait=x", {}),  # a query the schema refuses
        ("GET", f"{gw}/bundle", bearer),
        ("GET", f"{gw}/bundle", {**bearer, "If-None-Match": etag}),  # 304
        ("GET", f"{gw}/bundle", {}),
        ("GET", f"{gw}/bundle", {"Authorization": "Bearer gk_wrong"}),
        ("GET", "/gateway/v1/nope/instances/edge/bundle", bearer),
        ("GET", f"{gw}/bundle?wait=abc", bearer),
        ("GET", f"{gw}/traefik?key={gk}", {}),
        ("GET", f"{gw}/traefik", {}),
        ("GET", f"/v2/p1/apic/certificates/{cert_id}", admin),
        ("GET", f"/v2/p1/apic/certificates/{cert_id}", {}),  # no credential
        ("GET", f"/v2/p1/apic/certificates/{cert_id}", {"X-Auth-Token": "not-a-token"}),  # bad credential
        ("GET", f"/v2/p2/apic/certificates/{cert_id}", admin),  # a project the token does not name
        ("GET", f"/v2/nope/apic/certificates/{cert_id}", {"X-Auth-Token": token("nope")}),  # unknown project
        ("GET", "/v2/p1/apic/certificates/0123456789abcdef0123456789abcdef", admin),  # unknown certificate
        ("GET", f"/v2/p1/apic/certificates/{cert_id}", {**admin, "Expect": "100-continue"}),  # aiohttp's way
        ("GET", f"{gw}/caddy/", {}),  # not hot: aiohttp's way both times
        ("GET", "/gateway/v1/p1/instances/ed%67e/bundle", bearer),  # an escape: aiohttp's way
        ("POST", f"{gw}/bundle", bearer),  # 405
    ]


async def _answers(client, requests) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    answers = []
    for method, path, headers in requests:
        # Connection: close, so that each request is read by a new connection, made with the server's request
        # handler of the moment
        async with client.request(method, path, headers={**headers, "Connection": "close"}) as resp:
            answers.append(
                (resp.status, [(k, v) for k, v in resp.headers.items() if k.lower() not in SKIPPED], await resp.read())
            )
    return answers


async def _counts(client) -> dict[bytes, float]:
    resp = await client.get("/metrics", headers={"Connection": "close"})
    return {labels: float(value) for labels, value in _COUNT.findall(await resp.read())}


async def test_each_hot_route_answers_the_same_through_the_lane_and_through_aiohttp(client, token, caplog):
    app = client.server.app
    the_lane = app[LANE]
    server = client.server.runner.server
    assert server.request_handler == the_lane.handle  # `serve` and the tests run the lane
    cert_id, gk, etag = await _setup(client, token)
    requests = _requests(cert_id, gk, etag, token)
    passes = []
    for handler in (the_lane.handle, the_lane.app_handle):
        server.request_handler = handler
        the_lane._memo.clear()
        caplog.clear()
        before = await _counts(client)
        with caplog.at_level(logging.INFO, logger="gatewaycerts.access"):
            answers = await _answers(client, requests)
        after = await _counts(client)
        lines = [(r.method, r.path, r.route, r.status) for r in caplog.records if r.name == "gatewaycerts.access"]
        counted = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
        passes.append((answers, lines, counted, set(the_lane._memo)))
    (lane_answers, lane_lines, lane_counted, lane_memo), (aio_answers, aio_lines, aio_counted, aio_memo) = passes
    for request, by_lane, by_aiohttp in zip(requests, lane_answers, aio_answers, strict=True):
        assert by_lane == by_aiohttp, request
    assert lane_lines == aio_lines and len(lane_lines) >= len(requests)
    assert lane_counted == aio_counted
    assert any(b"caddy" in labels and b'status="401"' in labels for labels in lane_counted), lane_counted
    statuses = [status for status, _, _ in lane_answers]
    assert {200, 304, 400, 401, 403, 404, 405} <= set(statuses), statuses
    # the lane took the hot requests (all but the Expect one, the trailing slash, the escape and the POST),
    # aiohttp all of them
    taken = {path.split("?")[0] for _, path, headers in requests[:20]}
    assert lane_memo == taken and len(taken) == 9 and not aio_memo


async def test_the_lane_gives_the_match_info_aiohttp_gives():
    async def handler(request: web.Request) -> web.Response:
        match = request.match_info
        seen.append((match.route, dict(match), match.apps, match.current_app, request.config_dict.get("who")))
        return web.Response(text="ok")

    seen: list[tuple] = []

    @web.middleware
    async def sub_middleware(request, handler):
        seen.append(("sub", request.match_info.current_app["who"]))
        return await handler(request)

    @web.middleware
    async def root_middleware(request, handler):
        seen.append(("root", request.match_info.current_app["who"]))
        response = await handler(request)
        seen.append(("root after", request.match_info.current_app["who"]))
        return response

    both, the_lane, (root, outer, inner) = await _through_both(handler, seen, [root_middleware], [], [sub_middleware])
    assert both[0] == both[1]
    assert both[0][0][1] == ("sub", "inner") and both[0][0][0] == ("root", "root")
    assert both[0][0][2][1:] == ({"tenant": "t1", "item": "i1"}, (root, outer, inner), inner, "inner")
    assert list(the_lane._memo) == ["/out/in/t1/items/i1"]


async def _through_both(handler, seen: list, root_mw: list, outer_mw: list, inner_mw: list) -> tuple:
    """Apps root -> outer (/out) -> inner (/in) with these middlewares and a hot route to `handler` on inner;
    one request through the lane and one through aiohttp's `_handle`: for each, what `seen` got, the match's
    applications and its current app (after the answer); the lane; the three apps."""
    root = web.Application(middlewares=root_mw)
    outer = web.Application(middlewares=outer_mw)
    inner = web.Application(middlewares=inner_mw)
    root["who"], outer["who"], inner["who"] = "root", "outer", "inner"
    inner.router.add_get("/{tenant}/items/{item}", hot.hot(handler), allow_head=False)
    outer.add_subapp("/in", inner)
    root.add_subapp("/out", outer)
    the_lane = lane.install(root, hot.install(root))
    root.freeze()
    both = []
    for handle in (the_lane.handle, the_lane.app_handle):
        seen.clear()
        request = make_mocked_request("GET", "/out/in/t1/items/i1", app=root)
        response = await handle(request)
        assert response.text == "ok"
        both.append((list(seen), request.match_info.apps, request.match_info.current_app))
    return both, the_lane, (root, outer, inner)


def _layers(chain) -> list:
    """The functions of a composed chain, outermost first (aiohttp composes it of functools.partial)."""
    layers = []
    while isinstance(chain, functools.partial):
        layers.append(chain.func)
        chain = chain.keywords["handler"]
    return [*layers, chain]


async def test_app_agnostic_outer_middlewares_run_without_aiohttps_current_app_layers():
    """When every middleware outside the innermost app is marked app_agnostic, the lane's chain is the middlewares
    and the handler alone; the sub-app's middleware and the handler see the current app, config_dict and
    request.app that aiohttp's chain gives them, and the match info ends as aiohttp leaves it. One unmarked outer
    middleware and the chain is aiohttp's, with its layers."""

    async def handler(request: web.Request) -> web.Response:
        seen.append(("handler", request.match_info.current_app["who"], request.config_dict.get("who"), request.app))
        return web.Response(text="ok")

    seen: list[tuple] = []

    @web.middleware
    async def sub_middleware(request, handler):
        seen.append(("sub", request.match_info.current_app["who"], request.config_dict.get("who")))
        return await handler(request)

    @lane.app_agnostic
    @web.middleware
    async def root_middleware(request, handler):
        seen.append(("root", request.match_info.apps[0]["who"]))
        return await handler(request)

    @web.middleware
    async def outer_middleware(request, handler):
        seen.append(("outer", request.match_info.current_app["who"]))
        return await handler(request)

    for outer_middlewares in ([], [outer_middleware]):
        both, the_lane, (_, _, inner) = await _through_both(
            handler, seen, [root_middleware], outer_middlewares, [sub_middleware]
        )
        assert both[0] == both[1]
        assert ("sub", "inner", "inner") in both[0][0] and ("handler", "inner", "inner", inner) in both[0][0]
        assert both[0][2] is inner
        (route,) = the_lane._chains
        layers = _layers(the_lane._chains[route])
        if outer_middlewares:  # outer_middleware may read the current app: aiohttp's layers stay
            assert ("outer", "outer") in both[0][0]
            assert len(layers) == 7 and all(
                f.__qualname__ == "_fix_request_current_app.<locals>.impl" for f in layers[0:6:2]
            )
        else:
            assert layers == [root_middleware, sub_middleware, handler]


async def test_ocsp_answers_the_same_through_the_lane_and_through_aiohttp(client, token):
    """OCSP's GET and POST (matched by facades/ocsp/flat.py) go by the lane too; an answer is signed anew, so
    what is compared is the status, the headers and the answer's parsed content."""
    admin = {"X-Auth-Token": token("p1")}

    async def call(path: str, body: dict) -> dict:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    ca = await call(
        "/v1/private-certificate-authorities",
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Lane OCSP Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    ca_id = ca["ca_id"]
    issuer = x509.load_der_x509_certificate(await (await client.get(f"/pki/ca/{ca_id}.cer")).read())
    made = await call(
        "/v1/private-certificates",
        {
            "issuer_id": ca_id,
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "c.lane.example"},
            "validity": {"type": "DAY", "value": 30},
        },
    )
    exported = await call(f"/v1/private-certificates/{made['certificate_id']}/export", {"type": "OTHER"})
    cert = x509.load_pem_x509_certificate(exported["certificate"].encode())
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(Encoding.DER)
    quoted = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    ocsp_type = {"Content-Type": "application/ocsp-request"}
    requests = [
        ("GET", f"/pki/ocsp/{ca_id}/{quoted}", {}, b""),
        ("GET", f"/pki/ocsp/{ca_id}/{base64.b64encode(der).decode()}", {}, b""),  # "/" and "+" unescaped
        ("POST", f"/pki/ocsp/{ca_id}", ocsp_type, der),
        ("POST", f"/pki/ocsp/{ca_id}", ocsp_type, b"not DER"),  # malformedRequest
        ("POST", "/pki/ocsp/nope", ocsp_type, der),  # unknown CA
        ("GET", f"/pki/ocsp/{ca_id}", {}, b""),  # no request
        ("GET", f"/pki/ocsp/{ca_id}/%%%", {}, b""),  # not base64
        ("PUT", f"/pki/ocsp/{ca_id}", ocsp_type, der),  # 405
    ]
    the_lane = client.server.app[LANE]
    server = client.server.runner.server
    passes, chained = [], []
    the_lane._memo.clear()
    # the lane, then the lane again (its GETs now answered from the memo by raw path), then aiohttp's own way
    for handler in (the_lane.handle, the_lane.handle, the_lane.app_handle):
        server.request_handler = handler
        the_lane._chains.clear()
        answers = []
        for method, path, headers, body in requests:
            async with client.request(method, path, headers={**headers, "Connection": "close"}, data=body) as resp:
                got = await resp.read()
                if resp.content_type == "application/ocsp-response":
                    parsed = ocsp.load_der_ocsp_response(got)
                    successful = parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                    got = (parsed.response_status, parsed.certificate_status if successful else None)
                kept = [(k, v) for k, v in resp.headers.items() if k.lower() not in SKIPPED | {"content-length"}]
                answers.append((resp.status, kept, got))
        passes.append(answers)
        chained.append(sorted(route.handler.__name__ for route in the_lane._chains))
    # the second pass matched only the POSTs (each GET was remembered), aiohttp's pass none
    assert chained == [["ocsp_get", "ocsp_get_empty", "ocsp_post"], ["ocsp_post"], []]
    gets = [URL(path).raw_path for method, path, _, _ in requests if method == "GET"]  # as the client sent them
    assert sorted(the_lane._memo) == sorted(gets)
    assert passes[0] == passes[1] == passes[2]
    assert passes[0][0][2] == (ocsp.OCSPResponseStatus.SUCCESSFUL, ocsp.OCSPCertStatus.GOOD)
    assert passes[0][2][2] == (ocsp.OCSPResponseStatus.SUCCESSFUL, ocsp.OCSPCertStatus.GOOD)
    assert passes[0][3][2] == (ocsp.OCSPResponseStatus.MALFORMED_REQUEST, None)


async def test_a_path_longer_than_the_memo_takes_is_matched_each_time_and_answered_the_same(client):
    """The memo keeps paths of at most MEMO_PATH_MAX characters (a client cannot fill it with long keys): a longer
    OCSP GET is matched anew each time, and answered as a short one of the same kind is."""
    the_lane = client.server.app[LANE]
    the_lane._memo.clear()
    short = "/pki/ocsp/nope/" + "A" * 40
    long = "/pki/ocsp/nope/" + "A" * lane.MEMO_PATH_MAX
    answers = []
    for path in (short, long, long):
        async with client.get(path) as resp:
            answers.append((resp.status, resp.content_type, await resp.read()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 200 and answers[0][1] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(answers[0][2]).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert list(the_lane._memo) == [short]


async def test_without_the_internals_it_needs_the_service_runs_without_the_lane(aiohttp_client, settings, store, token):
    """An aiohttp that moved the internals the lane relies on: the app starts, the hot routes are matched flat in
    the router as before the lane, and they answer."""
    import gatewaycerts.web.lane as lane_module
    from gatewaycerts.app import create_app
    from gatewaycerts.facades.ocsp.flat import FLAT_OCSP_ROUTES

    saved = lane_module._build_middlewares
    lane_module._build_middlewares = None
    try:
        assert not lane_module.supported()
        app = create_app(settings, store=store)
    finally:
        lane_module._build_middlewares = saved
    assert LANE not in app
    # the hot match in the router instead (behind OCSP's flat match, which is in front of it)
    assert app[FLAT_OCSP_ROUTES].original == app[hot.HOT_ROUTES].resolve
    client = await aiohttp_client(app)
    resp = await client.get(
        "/v2/p1/apic/certificates/0123456789abcdef0123456789abcdef", headers={"X-Auth-Token": token("p1")}
    )
    assert resp.status == 404
    assert (await resp.json())["error_code"] == "APIG.3021"  # the certificate does not exist
