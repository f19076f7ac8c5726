"""CPU per OCSP answer, in process, without sockets (as bench/inproc.py does for the hot read routes): the real
app (SQLite, JSON access log at INFO to a file, metrics on) with one EC P-256 root and CERTS certificates (every
fifth revoked), GET (base64 in the path, percent-encoded as bench_ocsp.py sends it) and POST, against a bare
aiohttp handler returning the same bytes, interleaved in rounds on one uvloop event loop. It also times the
store's status read alone (`serial_status` through the app's timed store, and the adapter under it), so the
read's share of an answer is measured, not guessed.

    .venv/bin/python bench/inproc_ocsp.py --requests 4000 --rounds 3
    .venv/bin/python bench/inproc_ocsp.py --profile --only get
    .venv/bin/python bench/inproc_ocsp.py --only get --only post --without flat-routes --without lazy-json

Nothing asserts; for a before/after run it on both checkouts (PYTHONPATH) one after the other, or more rounds.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.inproc import _PROTOCOLS, Driver, _lane, raw_get
from bench.inproc import TOGGLES as INPROC_TOGGLES
from gatewaycerts.app import create_app
from gatewaycerts.appkeys import OCSP_RESPONDER
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.settings import Settings
from gatewaycerts.web.logs import configure_logging

BENCH = str(Path(__file__).resolve().parent)


def _flat_routes(app: web.Application, on: bool) -> None:
    from gatewaycerts.facades.ocsp.flat import FLAT_OCSP_ROUTES

    _lane(app, on)  # since stop 28 the lane (web/lane.py) takes OCSP's flat match: off, aiohttp's dispatch
    flat = app[FLAT_OCSP_ROUTES]
    app.router.resolve = flat.resolve if on else flat.original  # type: ignore[method-assign]


_SQL: dict[str, str] = {}


def _lazy_json(app: web.Application, on: bool) -> None:
    """Off: the status statement as before this branch (both json_extract calls on every row)."""
    from gatewaycerts.store.sqlite import pca

    if not _SQL:
        _SQL["on"] = pca._CERTIFICATE_STATUS_SQL
        _SQL["off"] = (
            "SELECT status, json_extract(summary, '$.revoked_at.\"$date\"'), "
            "json_extract(summary, '$.revocation_reason') FROM pca_certificates "
            "WHERE issuer_id = ? AND serial_number = ?"
        )
    pca._CERTIFICATE_STATUS_SQL = _SQL["on" if on else "off"]


# Changes of this branch that can be switched off in the running app: `--without NAME` measures with and
# without each in the same rounds.
TOGGLES = {"flat-routes": _flat_routes, "lazy-json": _lazy_json}
# Stop 28: chain: the request chain's toggles of bench/inproc.py (the same functions, on this app).
TOGGLES.update({name: INPROC_TOGGLES[name] for name in ("request-tallies", "request-mw", "line-pass", "chain")})
TOGGLES["lane"] = _lane  # stop 28: OCSP's GET and POST by the direct lane (web/lane.py); off: as in stop 27
CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"


def raw_post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def bare_factory(body: bytes) -> tuple[object, web.AppRunner]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/ocsp-response")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner.server, runner


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="gc-inproc-ocsp-"))
    log_file = (state / "access.log").open("w")
    configure_logging("INFO", "json")
    logging.getLogger().handlers[0].stream = log_file
    settings = Settings(state_dir=state, public_url="http://pki.bench.example")
    app = create_app(settings, order_worker=False, renewal_worker=False, notification_worker=False)
    server = TestServer(app)
    await server.start_server(access_log=None)
    client = TestClient(server)
    await client.start_server()
    key = load_or_create_dev_key(state)
    admin = {"X-Auth-Token": mint_token(key, subject="a", projects=["bench"], roles=["admin"], ttl=7200)}

    async def call(path: str, body: dict) -> dict:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status in (200, 204), await resp.text()
        return await resp.json() if resp.status == 200 else {}

    root = await call(
        CAS,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Bench OCSP Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    ca_id = root["ca_id"]
    issuer = x509.load_der_x509_certificate(await (await client.get(f"/pki/ca/{ca_id}.cer")).read())
    plain: list[bytes] = []
    serials: list[int] = []
    for i in range(args.certs):
        made = await call(
            CERTS,
            {
                "issuer_id": ca_id,
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": f"c{i}.bench.example"},
                "validity": {"type": "DAY", "value": 30},
            },
        )
        exported = await call(f"{CERTS}/{made['certificate_id']}/export", {"type": "OTHER"})
        if i % 5 == 0:
            await call(f"{CERTS}/{made['certificate_id']}/revoke", {"reason": "SUPERSEDED"})
        cert = x509.load_pem_x509_certificate(exported["certificate"].encode())
        serials.append(cert.serial_number)
        req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        plain.append(req.public_bytes(serialization.Encoding.DER))
    path = f"/pki/ocsp/{ca_id}"
    workloads = {
        "get": [raw_get(f"{path}/" + urllib.parse.quote(base64.b64encode(d).decode(), safe=""), {}) for d in plain],
        "post": [raw_post(path, d) for d in plain],
        "healthz": [raw_get("/healthz", {})],  # the service's own floor: every route pays it (not OCSP's)
    }
    service = Driver(client.server.runner.server)
    _PROTOCOLS.append(service.proto)
    answer = await service.one(workloads["post"][1])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    print(f"answer: {len(body)} body bytes, {len(head)} header bytes (POST)", flush=True)
    factory, runner = await bare_factory(body)
    bare = Driver(factory)
    results: dict[str, list[tuple[float, float]]] = {}
    for name, raws in workloads.items():
        if args.only and name not in args.only:
            continue
        await service.run(raws, 400)  # warm: every answer signed once
        await bare.run(raws, 400)
        if args.profile:
            sys.path.remove(BENCH)  # bench/profile.py would shadow the stdlib's
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            await service.run(raws, args.requests)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(50)
            continue
        for _ in range(args.rounds):
            b_us, _ = await bare.run(raws, args.requests)
            s_us, _ = await service.run(raws, args.requests)
            results.setdefault(name, []).append((s_us, b_us))
            print(f"  {name}: service {s_us:.1f} µs bare {b_us:.1f} µs ratio {b_us / s_us:.2f}", flush=True)
            for toggle in args.without:
                TOGGLES[toggle](app, False)
                o_us, _ = await service.run(raws, args.requests)
                TOGGLES[toggle](app, True)
                results.setdefault(f"{name} without {toggle}", []).append((o_us, b_us))
                print(f"  {name} without {toggle}: service {o_us:.1f} µs", flush=True)
    if not args.profile and not args.only:
        # The same requests, routed and logged alike, answered by a handler that returns the answer's bytes at
        # once: the service's per-request floor on these very routes (the access line of a long path, metrics,
        # routing), i.e. what the OCSP handler itself adds is the difference.
        async def constant(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=body, headers={"Content-Type": "application/ocsp-response"})

        routes = [
            r for sub in app._subapps for r in sub.router.routes() if r.handler.__name__ in ("ocsp_get", "ocsp_post")
        ]
        saved = [(r, r._handler) for r in routes]
        for name, raws in workloads.items():
            if name == "healthz":
                continue
            for _ in range(args.rounds):
                b_us, _ = await bare.run(raws, args.requests)
                for r, _h in saved:
                    r._handler = constant
                f_us, _ = await service.run(raws, args.requests)
                for r, h in saved:
                    r._handler = h
                s_us, _ = await service.run(raws, args.requests)
                results.setdefault(f"{name} (again)", []).append((s_us, b_us))
                results.setdefault(f"{name}, its route answered by a constant handler", []).append((f_us, b_us))
                print(
                    f"  {name}: service {s_us:.1f} µs, constant handler {f_us:.1f} µs, bare {b_us:.1f} µs", flush=True
                )
    await runner.cleanup()
    if not args.profile:
        responder = app[OCSP_RESPONDER]
        rows = []
        for _ in range(args.rounds):
            c0 = time.process_time()
            for i in range(args.requests):
                await responder.respond(ca_id, plain[i % len(plain)])
            rows.append((time.process_time() - c0) * 1e6 / args.requests)
        results["OcspResponder.respond (core, no HTTP)"] = [(r, 0.0) for r in rows]
        store = responder._store  # the timed store the responder reads through
        known = {s: await store.serial_status(ca_id, s) for s in serials}

        class Answered:  # the read's answer without the read: what the core costs around it (bench only)
            def __getattr__(self, name: str) -> object:
                return getattr(store, name)

            async def serial_status(self, issuer_id: str, serial_number: int) -> object:
                return known[serial_number]

        responder._store = Answered()
        rows = []
        for _ in range(args.rounds):
            c0 = time.process_time()
            for i in range(args.requests):
                await responder.respond(ca_id, plain[i % len(plain)])
            rows.append((time.process_time() - c0) * 1e6 / args.requests)
        responder._store = store
        results["OcspResponder.respond, status read replaced by a dict look-up"] = [(r, 0.0) for r in rows]
        inner = getattr(store, "_inner", store)
        for label, target in (("serial_status (timed store)", store), ("serial_status (adapter)", inner)):
            rows = []
            for _ in range(args.rounds):
                c0 = time.process_time()
                for i in range(args.requests):
                    await target.serial_status(ca_id, serials[i % len(serials)])
                rows.append((time.process_time() - c0) * 1e6 / args.requests)
            results[label] = [(r, 0.0) for r in rows]
    await client.close()
    print()
    for name, rows in results.items():
        service_us = statistics.median(r[0] for r in rows)
        if rows[0][1]:
            bare_us = statistics.median(r[1] for r in rows)
            ratio = statistics.median(b / s for s, b in rows)
            print(f"{name}: CPU/answer service {service_us:.1f} µs, bare {bare_us:.1f} µs; bare/service {ratio:.2f}")
        else:
            print(f"{name}: {service_us:.1f} µs CPU per call (median of {len(rows)} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--certs", type=int, default=50)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--without", action="append", default=[], choices=sorted(TOGGLES))
    parser.add_argument("--profile", action="store_true", help="cProfile the service's requests instead")
    uvloop.run(main(parser.parse_args()))
