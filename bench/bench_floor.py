"""The per-request floor (issue #22): authenticated reads of the real service against a bare aiohttp + uvloop
handler answering the same bytes, side by side in one run.

One `gatewaycerts serve` process (SQLite, access log on at INFO, metrics on) holds a few uploaded P-256
certificates; the bare application (`_BARE` below: one process, uvloop, no access log, no middleware)
answers a constant body equal to the service's own answer to the same request, captured first. The load
generator drives the pair in `--rounds` interleaved rounds; each ratio is that round's service rate over
that round's bare rate. CPU per request is each server process's own time from /proc. Nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, Service, build_loadgen, cpu_seconds, pinned, request
from tests.factories import ec_chain
from tests.mongo_server import free_port

APIC = "/v2/bench/apic/certificates"

_BARE = r"""
import sys, asyncio, uvloop
from aiohttp import web
body, ctype, port = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3])
async def handler(request):
    return web.Response(body=body, content_type=ctype)
app = web.Application()
app.router.add_route("GET", "/{tail:.*}", handler)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, handle_signals=True)
"""


class Bare:
    def __init__(self, body: bytes, content_type: str) -> None:
        self.file = Path(tempfile.mkstemp(prefix="gc-bench-bare-")[1])
        self.file.write_bytes(body)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            pinned([sys.executable, "-c", _BARE, str(self.file), content_type, str(self.port)], "server"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: the bare handler did not start")

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.file.unlink()


def drive(base: str, reqs: list[dict[str, Any]], cpu: Any, *, total: int, concurrency: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for r in reqs:
            fh.write(json.dumps(r) + "\n")
    cpu0 = cpu()
    out = subprocess.run(
        pinned(
            [str(build_loadgen()), "-url", base, "-requests", fh.name, "-c", str(concurrency), "-n", str(total)],
            "loadgen",
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    spent = cpu() - cpu0
    os.unlink(fh.name)
    result = json.loads(out.stdout)
    result["cpu_ms"] = spent * 1000 / total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="also a checkout of the code before a change, interleaved (repeatable)",
    )
    args = parser.parse_args()
    build_loadgen()
    env = {"GATEWAYCERTS_LOG_LEVEL": "INFO", "GATEWAYCERTS_LOG_FORMAT": "json"}
    sides = [("", ROOT)] + [(f" ({d.name})", d.resolve()) for d in args.before]
    services = []
    try:
        for _, directory in sides:
            os.chdir(directory)  # `python -m gatewaycerts` serves the code of the directory it starts in
            services.append(Service(env=env).start())
        os.chdir(ROOT)
        paths: dict[str, list[str]] = {}
        for svc in services:
            token = svc.token()
            ids = []
            for i in range(5):
                chain = ec_chain()
                status, cert = svc.call(
                    "POST",
                    APIC,
                    token,
                    {"name": f"floor_{i}", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
                )
                assert status == 200, cert
                ids.append(cert["id"])
            paths.setdefault("APIC show one certificate", []).append(f"{APIC}/{ids[0]}")
            paths.setdefault("APIC list, first page (5 certificates)", []).append(f"{APIC}?limit=20&offset=0")
            svc.bench_token = token
        print(
            "| path | round | service/s | CPU ms/req | bare/s | CPU ms/req | body bytes | ratio |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            flush=True,
        )
        summary: dict[str, list[float]] = {}
        for label, per_service in paths.items():
            first = services[0]
            req = urllib.request.Request(first.base + per_service[0], headers={"X-Auth-Token": first.bench_token})
            with urllib.request.urlopen(req) as resp:
                body, ctype = resp.read(), resp.headers.get_content_type()
            bare = Bare(body, ctype)
            try:
                reqs = [[request("GET", p, svc.bench_token)] for p, svc in zip(per_service, services, strict=True)]
                drive(bare.base, reqs[0], bare.cpu, total=500, concurrency=4)
                for svc, r in zip(services, reqs, strict=True):
                    drive(svc.base, r, svc.cpu, total=500, concurrency=4)
                for rnd in range(args.rounds):
                    b = drive(bare.base, reqs[0], bare.cpu, total=args.requests, concurrency=args.concurrency)
                    for (side, _), svc, r in zip(sides, services, reqs, strict=True):
                        s = drive(svc.base, r, svc.cpu, total=args.requests, concurrency=args.concurrency)
                        assert s["ok"] == s["requests"], s
                        ratio = s["rps"] / b["rps"]
                        summary.setdefault(label + side, []).append(ratio)
                        print(
                            f"| {label}{side} | {rnd + 1} | {s['rps']:,.0f} | {s['cpu_ms']:.3f} | {b['rps']:,.0f} "
                            f"| {b['cpu_ms']:.3f} | {len(body):,} | **{ratio:.2f}** |",
                            flush=True,
                        )
            finally:
                bare.stop()
    finally:
        os.chdir(ROOT)
        for svc in services:
            svc.stop()
    print()
    for label, ratios in summary.items():
        print(f"{label} / bare handler, same bytes: median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
