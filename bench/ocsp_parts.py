"""Where an OCSP answer's CPU goes: the real app with one part at a time replaced, measured in the same rounds as the
unchanged app and a bare aiohttp handler, three ways:

- in process (default): aiohttp's protocol on a fake transport (bench/inproc.py's Driver), CPU per request;
- `--net`: one `serve`-like process per variant on loopback, bench/loadgen's 32 keep-alive connections, CPU per
  request from /proc (as bench/bench_ocsp.py measures);
- `--callgrind`: in process under valgrind's callgrind, *instructions* per request of each variant (deterministic:
  the load of a shared machine does not move them; what they leave out is the cache misses and the kernel).

Variants (each replaces one part of the answer; the difference to `real` is that part's cost):

- `real`: the app as it is;
- `constant-handler`: the OCSP GET and POST routes answered by a handler returning the answer's bytes (the routes'
  floor: routing, the request middleware with its access line, metrics, the response's write);
- `free-responder`: `OcspResponder.respond` returns the answer it returned before for the same request bytes (the
  facade and the floor, without the responder);
- `no-status-read`: the store's `serial_status` replaced by a dict look-up of what it returned before (the
  responder without its per-answer store read);
- `no-access-line`: the access line at DEBUG (not written), as /healthz's.

    .venv/bin/python bench/ocsp_parts.py --requests 2000 --rounds 5
    .venv/bin/python bench/ocsp_parts.py --net --requests 6000 --rounds 3
    .venv/bin/python bench/ocsp_parts.py --callgrind --requests 300     # ~10 min: valgrind runs ~50x slower
    .venv/bin/python bench/ocsp_parts.py --cold --requests 2000         # the responder and the read alone, hot/cold

Nothing asserts; a bench only ever replaces parts in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import uvloop
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.harness import build_loadgen, cpu_seconds
from bench.inproc import Driver, raw_get
from bench.inproc_ocsp import CAS, CERTS, bare_factory, raw_post
from gatewaycerts.app import create_app
from gatewaycerts.appkeys import OCSP_RESPONDER
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.settings import Settings
from gatewaycerts.web import middleware
from gatewaycerts.web.logs import configure_logging
from tests.mongo_server import free_port

VARIANTS = ("real", "constant-handler", "free-responder", "no-status-read", "no-access-line")
OCSP_TYPE = {"Content-Type": "application/ocsp-request"}
CALLGRIND_HELPER = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


class _AllQuiet(frozenset):  # type: ignore[type-arg]
    """Every path is "quiet": every access line at DEBUG, none written."""

    def __contains__(self, item: object) -> bool:
        return True


class Variants:
    """Switches each variant on and off in the running app (bench only)."""

    def __init__(self, app: web.Application, body: bytes) -> None:
        self.app = app
        self.responder = app[OCSP_RESPONDER]
        self.routes = [
            r for sub in app._subapps for r in sub.router.routes() if r.handler.__name__ in ("ocsp_get", "ocsp_post")
        ]
        self.handlers = [r._handler for r in self.routes]
        self.store = self.responder._store
        self.quiet = middleware._QUIET_PATHS
        headers = {"Content-Type": "application/ocsp-response"}

        async def constant(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=body, headers=headers)

        self.constant = constant
        real_respond, given = self.responder.respond, {}

        async def free_respond(ca_id: str, der: bytes) -> Any:
            answer = given.get(der)
            if answer is None:
                answer = given[der] = await real_respond(ca_id, der)
            return answer

        self.free_respond = free_respond
        store, known = self.store, {}

        class Answered:
            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            async def serial_status(self, issuer_id: str, serial_number: int) -> Any:
                found = known.get(serial_number)
                if found is None:
                    found = known[serial_number] = await store.serial_status(issuer_id, serial_number)
                return found

        self.answered = Answered()

    def set(self, name: str, on: bool) -> None:
        if name == "constant-handler":
            for route, handler in zip(self.routes, self.handlers, strict=True):
                route._handler = self.constant if on else handler
        elif name == "free-responder":
            if on:
                self.responder.respond = self.free_respond
            else:
                del self.responder.respond
        elif name == "no-status-read":
            self.responder._store = self.answered if on else self.store
        elif name == "no-access-line":
            middleware._QUIET_PATHS = _AllQuiet() if on else self.quiet
        elif name != "real":
            raise ValueError(name)


async def start(certs: int, port: int) -> tuple[web.Application, web.AppRunner, dict[str, Any]]:
    """The real app (SQLite, JSON access log at INFO to a file, metrics on) on `port`, set up over its own API:
    one EC P-256 root, `certs` certificates (every fifth revoked); their OCSP requests."""
    state = Path(tempfile.mkdtemp(prefix="gc-ocsp-parts-"))
    configure_logging("INFO", "json")
    logging.getLogger().handlers[0].stream = (state / "access.log").open("w")
    app = create_app(
        Settings(state_dir=state, public_url="http://pki.bench.example"),
        order_worker=False,
        renewal_worker=False,
        notification_worker=False,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)  # as `serve` runs it (web/server.py)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    admin = {
        "X-Auth-Token": mint_token(
            load_or_create_dev_key(state), subject="a", projects=["b"], roles=["admin"], ttl=7200
        )
    }
    async with aiohttp.ClientSession(base) as session:

        async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with session.post(path, json=body, headers=admin) as resp:
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
        async with session.get(f"/pki/ca/{ca_id}.cer") as resp:
            issuer = x509.load_der_x509_certificate(await resp.read())
        plain = []
        for i in range(certs):
            spec = {"common_name": f"c{i}.bench.example"}
            made = await call(
                CERTS,
                {
                    "issuer_id": ca_id,
                    "key_algorithm": "EC256",
                    "distinguished_name": spec,
                    "validity": {"type": "DAY", "value": 30},
                },
            )
            exported = await call(f"{CERTS}/{made['certificate_id']}/export", {"type": "OTHER"})
            if i % 5 == 0:
                await call(f"{CERTS}/{made['certificate_id']}/revoke", {"reason": "SUPERSEDED"})
            cert = x509.load_pem_x509_certificate(exported["certificate"].encode())
            req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
            plain.append(req.public_bytes(serialization.Encoding.DER))
        path = f"/pki/ocsp/{ca_id}"
        async with session.post(path, data=plain[1], headers=OCSP_TYPE) as resp:
            body = await resp.read()
    assert ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    work = {
        "get": [f"{path}/" + urllib.parse.quote(base64.b64encode(d).decode(), safe="") for d in plain],
        "post_path": path,
        "post": [base64.b64encode(d).decode() for d in plain],
        "body": base64.b64encode(body).decode(),
    }
    return app, runner, work


async def in_process(args: argparse.Namespace) -> None:
    cg: Any = None
    if args.callgrind:
        cg = ctypes.CDLL(os.environ["OCSP_PARTS_CG_LIB"])
    app, runner, work = await start(args.certs, free_port())
    body = base64.b64decode(work["body"])
    variants = Variants(app, body)
    raws = {
        "get": [raw_get(p, {}) for p in work["get"]],
        "post": [raw_post(work["post_path"], base64.b64decode(b)) for b in work["post"]],
        "healthz": [raw_get("/healthz", {})],
    }
    service = Driver(runner.server)
    bare_factory_, bare_runner = await bare_factory(body)
    bare = Driver(bare_factory_)

    async def measured(label: str, driver: Driver, reqs: list[bytes]) -> float:
        if cg is not None:
            cg.cg_zero()
        us, _ = await driver.run(reqs, args.requests)
        if cg is not None:
            cg.cg_dump(label.encode())
        return us

    results: dict[str, list[float]] = {}
    for kind, reqs in raws.items():
        names = ["real", "no-access-line"] if kind == "healthz" else list(args.variant or VARIANTS)
        await bare.run(reqs, 400)
        for name in names:  # warm: every answer signed once, every variant's caches filled
            variants.set(name, True)
            await service.run(reqs, 400)
            variants.set(name, False)
        if cg is not None:
            cg.cg_start()
        for _ in range(args.rounds):
            results.setdefault(f"{kind} bare", []).append(await measured(f"{kind} bare", bare, reqs))
            random.shuffle(names)
            for name in names:
                variants.set(name, True)
                results.setdefault(f"{kind} {name}", []).append(await measured(f"{kind} {name}", service, reqs))
                variants.set(name, False)
        print(kind, {k: round(statistics.median(v)) for k, v in results.items() if k.startswith(kind)}, flush=True)
    if cg is None:
        print("\nCPU µs per request, median of rounds (in process):")
        for label, rows in results.items():
            print(f"  {label}: {statistics.median(rows):.1f}  (rounds {', '.join(f'{r:.0f}' for r in rows)})")
    await bare_runner.cleanup()
    await runner.cleanup()


async def cold(args: argparse.Namespace) -> None:
    """The responder's own time per call (perf_counter_ns around `await respond(...)` alone, medians), called back
    to back (hot caches), after an 8 MB copy (caches evicted), and after one /healthz request through aiohttp and
    the middleware (what runs between two answers of a loaded server, roughly)."""
    app, runner, work = await start(args.certs, free_port())
    responder = app[OCSP_RESPONDER]
    ca_id = work["post_path"].rsplit("/", 1)[1]
    ders = [base64.b64decode(b) for b in work["post"]]
    service = Driver(runner.server)
    healthz = [raw_get("/healthz", {})]
    big = bytearray(8 << 20)
    for der in ders:
        await responder.respond(ca_id, der)
    results: dict[str, list[float]] = {}

    async def between(kind: str) -> None:
        if kind == "after an 8 MB copy":
            bytes(big)
        elif kind == "after a /healthz request":
            await service.one(healthz[0])

    store = responder._store  # the timed store the responder reads the status through
    serials = [ocsp.load_der_ocsp_request(der).serial_number for der in ders]
    kinds = ["back to back", "after an 8 MB copy", "after a /healthz request"]
    for _ in range(args.rounds):
        random.shuffle(kinds)
        for kind in kinds:
            times, reads = [], []
            for i in range(args.requests):
                await between(kind)
                t0 = time.perf_counter_ns()
                await responder.respond(ca_id, ders[i % len(ders)])
                times.append(time.perf_counter_ns() - t0)
                await between(kind)
                t0 = time.perf_counter_ns()
                await store.serial_status(ca_id, serials[i % len(serials)])
                reads.append(time.perf_counter_ns() - t0)
            results.setdefault(f"OcspResponder.respond {kind}", []).append(statistics.median(times) / 1000)
            results.setdefault(f"serial_status (timed store) {kind}", []).append(statistics.median(reads) / 1000)
    print("µs per call (median per round; rounds):")
    for kind, rows in sorted(results.items()):
        print(f"  {kind}: {statistics.median(rows):.1f}  ({', '.join(f'{r:.1f}' for r in rows)})")
    await runner.cleanup()


def under_callgrind(args: argparse.Namespace) -> None:
    """Re-run this script in process under callgrind; print instructions per request per phase."""
    out = Path(tempfile.mkdtemp(prefix="ocsp-parts-cg-"))
    (out / "cg.c").write_text(CALLGRIND_HELPER)
    lib = out / "libcg.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(out / "cg.c")], check=True)
    argv = [a for a in sys.argv[1:] if a != "--callgrind"] + ["--rounds", "1"]
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/cg.%p",
        sys.executable,
        __file__,
        "--in-callgrind",
        *argv,
    ]
    subprocess.run(cmd, env={**os.environ, "OCSP_PARTS_CG_LIB": str(lib)}, check=True)
    print(f"\ninstructions per request (callgrind, {args.requests} requests per phase; dumps in {out}):")
    for dump in sorted(out.glob("cg.*.*"), key=lambda p: int(p.suffix[1:])):
        label = total = None
        for line in dump.read_text().splitlines():
            if line.startswith("desc: Trigger: Client Request: "):
                label = line.split(": ", 3)[-1]
            elif line.startswith("summary: ") or line.startswith("totals: "):
                total = int(line.split()[1])
        if label and total:
            print(f"  {label}: {total / args.requests:,.0f}")


def _publish(out: Path, work: dict[str, Any]) -> None:
    """Written whole, then renamed: the parent reads it once it exists."""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(work))
    tmp.rename(out)


def serve_variant(args: argparse.Namespace) -> None:
    async def main() -> None:
        app, _runner, work = await start(args.certs, args.port)
        Variants(app, base64.b64decode(work["body"])).set(args.serve, True)
        _publish(Path(args.out), work)
        await asyncio.Event().wait()

    uvloop.run(main())


def load(base: str, requests: list[dict[str, Any]], total: int) -> dict[str, Any]:
    from bench.bench_ocsp import load as bench_load

    return bench_load(base, requests, total)


def over_network(args: argparse.Namespace) -> None:
    from bench.bench_ocsp import bare_server

    build_loadgen()
    names = list(args.variant or VARIANTS)
    tmp = Path(tempfile.mkdtemp(prefix="ocsp-parts-net-"))
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name in names:
            port, out = free_port(), tmp / f"{name}.json"
            cmd = [sys.executable, __file__, "--serve", name, "--port", str(port), "--out", str(out)]
            procs[name] = (subprocess.Popen([*cmd, "--certs", str(args.certs)]), f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 600
        work: dict[str, dict[str, Any]] = {}
        for name, (proc, _) in procs.items():
            out = tmp / f"{name}.json"
            while not out.exists():  # a start-up wait (each process sets up its own CA over its API)
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"variant {name} did not start")
                time.sleep(0.2)
            work[name] = json.loads(out.read_text())
        loads: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}
        for name, w in work.items():
            base = procs[name][1]
            loads[f"get {name}"] = (
                name,
                base,
                [{"method": "GET", "path": p, "headers": {}, "body": ""} for p in w["get"]],
            )
            posts = [{"method": "POST", "path": w["post_path"], "headers": OCSP_TYPE, "body_b64": b} for b in w["post"]]
            loads[f"post {name}"] = (name, base, posts)
        first = names[0]
        loads["healthz"] = (first, procs[first][1], [{"method": "GET", "path": "/healthz", "headers": {}, "body": ""}])
        cpu: dict[str, list[float]] = {}
        ratio: dict[str, list[float]] = {}
        with bare_server(base64.b64decode(work[first]["body"])) as (bare, bare_pid):
            limit_reqs = loads[f"get {first}"][2]
            load(bare, limit_reqs, 2000)
            for _, base, reqs in loads.values():
                load(base, reqs, 2000)
            for _ in range(args.rounds):
                c0 = cpu_seconds([bare_pid])
                limit = load(bare, limit_reqs, args.requests)
                cpu.setdefault("bare (GET)", []).append((cpu_seconds([bare_pid]) - c0) * 1e6 / args.requests)
                order = list(loads.items())
                random.shuffle(order)
                for label, (name, base, reqs) in order:
                    pid = procs[name][0].pid
                    c0 = cpu_seconds([pid])
                    got = load(base, reqs, args.requests)
                    if got["status"].get("200") != args.requests:
                        raise SystemExit(f"{label}: {got}")
                    cpu.setdefault(label, []).append((cpu_seconds([pid]) - c0) * 1e6 / args.requests)
                    ratio.setdefault(label, []).append(got["rps"] / limit["rps"])
                print({k: round(v[-1]) for k, v in cpu.items()}, flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nCPU µs per request over loopback, median of {args.rounds} rounds (rate / bare per round):")
    for label, rows in cpu.items():
        rates = ", ".join(f"{r:.2f}" for r in ratio.get(label, []))
        print(f"  {label}: {statistics.median(rows):.0f}  (rounds {', '.join(f'{r:.0f}' for r in rows)}; {rates})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--certs", type=int, default=40)
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="only these (default: all)")
    parser.add_argument("--net", action="store_true", help="one process per variant, over loopback")
    parser.add_argument("--callgrind", action="store_true", help="instructions per request, under valgrind")
    parser.add_argument("--cold", action="store_true", help="the responder alone, with hot and with evicted caches")
    parser.add_argument("--in-callgrind", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run: Callable[[], None]
    if args.serve:
        run = lambda: serve_variant(args)  # noqa: E731
    elif args.net:
        run = lambda: over_network(args)  # noqa: E731
    elif args.callgrind:
        run = lambda: under_callgrind(args)  # noqa: E731
    elif args.cold:
        run = lambda: uvloop.run(cold(args))  # noqa: E731
    else:
        args.callgrind = args.in_callgrind
        run = lambda: uvloop.run(in_process(args))  # noqa: E731
    run()


if __name__ == "__main__":
    main()
