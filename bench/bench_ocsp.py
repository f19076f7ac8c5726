"""`make bench`, OCSP part: the responder's answers per second against a bare aiohttp handler returning the
same bytes, measured side by side in one run.

The real `gatewaycerts serve` (one process, SQLite) runs on loopback with one EC P-256 root CA that issued
CERTS certificates, a fifth of them revoked; bench/loadgen (Go) drives it from another process over 32
keep-alive connections with one-certificate OCSP requests cycling over every certificate (GET with the
base64 request in the path, and POST application/ocsp-request; no nonce, as browsers and RFC 5019 clients
send them). In the same run, and in the same layout (one process, the service's event loop), a bare aiohttp
application answers every request with a constant OCSP response of the same size: that is the limit, driven with
the same requests as the side it is compared with (the GET paths for GET; the POSTs, whose body it reads, for POST:
269k instructions per POST against 205k per GET in process, `bench/ocsp_parts.py --callgrind`). They are
interleaved in rounds (the machine is shared) and each ratio is taken per round. For information,
POST with a nonce (signed on every request, never cached) is measured too.

With `--baseline DIR` (another checkout of the project, e.g. `git archive <commit> | tar -x -C DIR`), a second
service runs that code (PYTHONPATH=DIR) on its own state, set up alike, and its GET and POST are measured in
the same rounds against the same limit: a before/after in one run. It prints which gatewaycerts each ran.

Not a test: nothing here asserts. The figures are printed and appended to docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bench.harness import ROOT, Service, build_loadgen, cpu_seconds, pinned, process_tree, wait_until_answers
from tests.mongo_server import free_port

PERF_DOC = ROOT / "docs" / "performance.md"
CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"
CONNECTIONS = 32
ROUNDS = 3
TARGET_RATIO = 0.50

BARE_APP = """
import sys
from aiohttp import web
body = open(sys.argv[2], "rb").read()
async def answer(request):
    await request.read()
    return web.Response(body=body, content_type="application/ocsp-response")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
loop = None
try:
    import uvloop
    loop = uvloop.new_event_loop()
except ImportError:
    pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop)
"""


def load(base: str, requests: list[dict[str, Any]], total: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for r in requests:
            fh.write(json.dumps(r) + "\n")
    out = subprocess.run(
        pinned(
            [str(build_loadgen()), "-url", base, "-requests", fh.name, "-c", str(CONNECTIONS), "-n", str(total)],
            "loadgen",
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(fh.name)
    return json.loads(out.stdout)


@contextmanager
def bare_server(body: bytes) -> Iterator[tuple[str, int]]:
    """The limit: a bare aiohttp handler (one process, the service's event loop) answering `body`."""
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".der", delete=False) as fh:
        fh.write(body)
    proc = subprocess.Popen(pinned([sys.executable, "-c", BARE_APP, str(port), fh.name], "server"))
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(fh.name)


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def setup(svc: Service, admin: str, certs: int) -> tuple[str, list[bytes], list[bytes]]:
    """A root CA, `certs` leaves (every fifth revoked); their OCSP requests without and with a nonce."""
    status, root = svc.call(
        "POST",
        CAS,
        admin,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Bench OCSP Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    assert status == 200, root
    ca_id = root["ca_id"]
    issuer = x509.load_der_x509_certificate(fetch(f"{svc.base}/pki/ca/{ca_id}.cer"))
    plain, nonced = [], []
    for i in range(certs):
        body = {
            "issuer_id": ca_id,
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": f"c{i}.bench.example"},
            "validity": {"type": "DAY", "value": 30},
        }
        status, made = svc.call("POST", CERTS, admin, body)
        assert status == 200, made
        status, exported = svc.call("POST", f"{CERTS}/{made['certificate_id']}/export", admin, {"type": "OTHER"})
        assert status == 200, exported
        if i % 5 == 0:
            status, _ = svc.call("POST", f"{CERTS}/{made['certificate_id']}/revoke", admin, {"reason": "SUPERSEDED"})
            assert status == 204
        cert = x509.load_pem_x509_certificate(exported["certificate"].encode())
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
        plain.append(builder.build().public_bytes(serialization.Encoding.DER))
        nonce = x509.OCSPNonce(os.urandom(16))
        nonced.append(builder.add_extension(nonce, critical=False).build().public_bytes(serialization.Encoding.DER))
    return ca_id, plain, nonced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default request count")
    parser.add_argument("--certs", type=int, default=200)
    parser.add_argument("--no-doc", action="store_true", help="print only; do not append to performance.md")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure side by side (before/after)")
    args = parser.parse_args()
    total = max(2_000, int(60_000 * args.scale))
    started = time.perf_counter()
    env = {"GATEWAYCERTS_PUBLIC_URL": "http://pki.bench.example"}
    with ExitStack() as stack:
        svc = stack.enter_context(Service(env=env))
        services = [("", svc)]
        if args.baseline is not None:
            baseline = Service(env={**env, "PYTHONPATH": str(args.baseline)})
            # -P: no current directory on sys.path, which would import this checkout instead of the baseline's
            baseline.cli = [sys.executable, "-P", "-m", "gatewaycerts"]
            services.append(("base_", stack.enter_context(baseline)))
        workloads: dict[str, tuple[Service, list[dict[str, Any]]]] = {}
        ocsp_type = {"Content-Type": "application/ocsp-request"}
        sample = b""
        for prefix, service in services:
            ca_id, plain, nonced = setup(service, service.token(), args.certs)
            path = f"/pki/ocsp/{ca_id}"
            get = [
                {
                    "method": "GET",
                    "path": f"{path}/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""),
                    "headers": {},
                    "body": "",
                }
                for der in plain
            ]
            post = [
                {"method": "POST", "path": path, "headers": ocsp_type, "body_b64": base64.b64encode(der).decode()}
                for der in plain
            ]
            workloads[prefix + "get"] = (service, get)
            workloads[prefix + "post"] = (service, post)
            if not prefix:
                workloads["post_nonce"] = (
                    service,
                    [
                        {"method": "POST", "path": path, "headers": ocsp_type, "body_b64": base64.b64encode(d).decode()}
                        for d in nonced
                    ],
                )
                sample = fetch(service.base + path, plain[1], ocsp_type)
                assert ocsp.load_der_ocsp_response(sample).certificate_status is ocsp.OCSPCertStatus.GOOD
        for prefix, service in services:
            where = subprocess.run(
                [*service.cli[:-2], "-c", "import gatewaycerts; print(gatewaycerts.__file__)"],
                env=service.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            print(f"service {prefix or 'current'}: {where}", file=sys.stderr)
        workloads["healthz"] = (svc, [{"method": "GET", "path": "/healthz", "headers": {}, "body": ""}])
        runs: dict[str, list[dict[str, Any]]] = {"limit": [], "limit_post": [], **{kind: [] for kind in workloads}}
        cpu: dict[str, float] = {kind: 0.0 for kind in runs}
        with bare_server(sample) as (bare, bare_pid):
            for kind in ("get", "post", "base_get", "base_post"):  # warm-up: each service signs each answer once
                if kind in workloads:
                    load(workloads[kind][0].base, workloads[kind][1], total // 10)
            for _ in range(ROUNDS):
                cpu0 = cpu_seconds(process_tree(bare_pid))
                runs["limit"].append(load(bare, workloads["get"][1], total // ROUNDS))
                cpu["limit"] += cpu_seconds(process_tree(bare_pid)) - cpu0
                cpu0 = cpu_seconds(process_tree(bare_pid))
                runs["limit_post"].append(load(bare, workloads["post"][1], total // ROUNDS))
                cpu["limit_post"] += cpu_seconds(process_tree(bare_pid)) - cpu0
                for kind, (service, reqs) in workloads.items():
                    n = total // 10 if kind == "post_nonce" else total
                    cpu0 = service.cpu()
                    runs[kind].append(load(service.base, reqs, n // ROUNDS))
                    cpu[kind] += service.cpu() - cpu0
        rss_mb = svc.peak_rss_kb() / 1024
    results: dict[str, Any] = {}
    for kind, kind_runs in runs.items():
        seconds = sum(r["seconds"] for r in kind_runs)
        requests = sum(r["requests"] for r in kind_runs)
        status: dict[str, int] = {}
        for r in kind_runs:
            for code, n in r["status"].items():
                status[code] = status.get(code, 0) + n
        results[kind] = {
            "rps": requests / seconds,
            "requests": requests,
            "status": status,
            "p50_ms": statistics.median(r["p50_ms"] for r in kind_runs),
            "p99_ms": max(r["p99_ms"] for r in kind_runs),
            "ratios": [r["rps"] / lim["rps"] for r, lim in zip(kind_runs, runs["limit"], strict=True)],
            # POST against the bare handler answering the same POSTs (the "ratios" above: against its GETs)
            "post_ratios": [r["rps"] / lim["rps"] for r, lim in zip(kind_runs, runs["limit_post"], strict=True)],
            "cpu_ms": cpu[kind] * 1000 / requests,
        }
    report(results, args, len(sample), rss_mb, time.perf_counter() - started)


def report(r: dict[str, Any], args: argparse.Namespace, size: int, rss_mb: float, seconds: float) -> None:
    limit = r["limit"]
    rows = []
    kinds = [("get", "GET (base64 in the path)"), ("post", "POST application/ocsp-request")]
    if "base_get" in r:
        kinds += [
            ("base_get", f"GET, baseline {args.baseline.name}"),
            ("base_post", f"POST, baseline {args.baseline.name}"),
        ]
    for kind, label in kinds:
        post = kind.endswith("post")
        lim = r["limit_post"] if post else limit  # the bare handler driven with the same requests
        ratios = r[kind]["post_ratios"] if post else r[kind]["ratios"]
        ratio = statistics.median(ratios)
        against_get = (
            f"; against the bare handler's GETs {statistics.median(r[kind]['ratios']):.2f} (as before stop 28)"
            if post
            else ""
        )
        rows.append(
            (
                f"OCSP {label} rate / bare limit{' (POSTs)' if post else ''} (median of {ROUNDS} rounds)",
                f"{ratio:.2f}",
                f"≥ {TARGET_RATIO:.2f}",
                "yes" if ratio >= TARGET_RATIO else "**no**",
                f"{r[kind]['rps']:,.0f}/s vs {lim['rps']:,.0f}/s; p99 {r[kind]['p99_ms']:.1f} ms "
                f"(bare {lim['p99_ms']:.1f} ms); {r[kind]['cpu_ms']:.3f} ms CPU/request (bare "
                f"{lim['cpu_ms']:.3f}: CPU ratio {lim['cpu_ms'] / r[kind]['cpu_ms']:.2f}); rounds "
                + ", ".join(f"{x:.2f}" for x in ratios)
                + against_get,
            )
        )
    floor = r["healthz"]
    rows.append(
        (
            "the service's floor: GET /healthz (constant JSON, same middleware) / bare limit",
            f"{statistics.median(floor['ratios']):.2f}",
            "(information)",
            "",
            f"{floor['rps']:,.0f}/s; {floor['cpu_ms']:.3f} ms CPU/request",
        )
    )
    nonce = r["post_nonce"]
    rows.append(
        (
            "POST with a nonce (signed per request, never cached) / bare limit",
            f"{statistics.median(nonce['ratios']):.2f}",
            "(information)",
            "",
            f"{nonce['rps']:,.0f}/s; p99 {nonce['p99_ms']:.1f} ms; {nonce['cpu_ms']:.2f} ms CPU/request",
        )
    )
    failed = {k: v["requests"] - v["status"].get("200", 0) for k, v in r.items()}
    lines = [
        "| measure | result | target | met | detail |",
        "|---|---:|---|---|---|",
        *(f"| {m} | {v} | {t} | {ok} | {d} |" for m, v, t, ok, d in rows),
    ]
    print("\n".join(lines))
    print(f"(not 200: {failed}; response {size} bytes; service peak RSS {rss_mb:.0f} MB; run {seconds:.0f} s)")
    if args.no_doc:
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with PERF_DOC.open("a") as doc:
        doc.write(
            f"\n### OCSP run {stamp} (bench/bench_ocsp.py, SQLite, one process, {CONNECTIONS} connections, "
            f"{args.certs} certificates, scale {args.scale})\n\n" + "\n".join(lines) + "\n\n"
            f"Not 200: {failed}. The limit is a bare aiohttp handler answering the same {size}-byte OCSP "
            "response, same process layout, same run.\n"
        )


if __name__ == "__main__":
    main()
