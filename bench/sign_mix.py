"""What CSR signing does to other requests' latency: the CCM show's p50/p99, sent open-loop at a fixed rate
while `serve --workers N` signs CSRs flat out (closed loop), for this checkout and `--before` checkouts in
interleaved rounds (branch `sign`, lead 1: short CPU work inline on the event loop, commit fd6af51, vs the pki
executor).

    .venv/bin/python bench/sign_mix.py --before /tmp/sign-exec --rounds 3

Also prints the CSR load's own rate and CPU per certificate. The show load starts after the CSR load has
begun and must end before it does (checked: the CSR load's duration is printed beside the show's). Nothing
asserts.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_peer import CAS, CSR_ROUTE, csr_pem
from bench.harness import ROOT, Service, build_loadgen, request

DAY = {"type": "DAY", "value": 1}


def _file(reqs: list[dict[str, Any]]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for r in reqs:
            fh.write(json.dumps(r) + "\n")
    return fh.name


def _loadgen(base: str, path: str, *, concurrency: int, total: int, rate: float = 0.0) -> subprocess.Popen[str]:
    args = [str(build_loadgen()), "-url", base, "-requests", path, "-c", str(concurrency), "-n", str(total)]
    if rate:
        args += ["-rate", str(rate)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csrs", type=int, default=4000, help="CSRs per side per round (closed loop)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--shows", type=int, default=400, help="shows per side per round (open loop)")
    parser.add_argument("--show-rate", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before", type=Path, action="append", default=[])
    args = parser.parse_args()
    build_loadgen()
    env = {
        "GATEWAYCERTS_LOG_LEVEL": "INFO",
        "GATEWAYCERTS_LOG_FORMAT": "json",
        "GATEWAYCERTS_WORKERS": str(args.workers),
    }
    sides = [("this", ROOT)] + [(d.name, d.resolve()) for d in args.before]
    services: list[Service] = []
    setups = []
    rows: dict[str, list[tuple[dict[str, Any], dict[str, Any], float]]] = {label: [] for label, _ in sides}
    try:
        for _, directory in sides:
            os.chdir(directory)
            services.append(Service(env=env).start())
        os.chdir(ROOT)
        for svc in services:
            token = svc.token()
            body = {
                "type": "ROOT",
                "distinguished_name": {"common_name": "Bench P-256 CA"},
                "key_algorithm": "EC256",
                "validity": {"type": "YEAR", "value": 10},
            }
            status, ca = svc.call("POST", CAS, token, body)
            assert status == 200, ca
            status, cert = svc.call(
                "POST", CSR_ROUTE, token, {"issuer_id": ca["ca_id"], "csr": csr_pem("show.example"), "validity": DAY}
            )
            assert status == 200, cert
            show = _file([request("GET", f"/v1/private-certificates/{cert['certificate_id']}", token)])
            setups.append((token, ca["ca_id"], show))
        print("| round | side | CSR/s | CPU ms/cert | CSR load s | show p50/p99/max ms | show load s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for rnd in range(args.rounds):
            for (label, _), svc, (token, ca_id, show) in zip(sides, services, setups, strict=True):
                csrs = _file(
                    [
                        request(
                            "POST",
                            CSR_ROUTE,
                            token,
                            {"issuer_id": ca_id, "csr": csr_pem(f"m{rnd}-{i}.example"), "validity": DAY},
                        )
                        for i in range(args.csrs)
                    ]
                )
                cpu0 = svc.cpu()
                t0 = time.monotonic()
                load = _loadgen(svc.base, csrs, concurrency=args.concurrency, total=args.csrs)
                time.sleep(0.5)  # let the CSR load reach its pace before the shows start (not a synchronisation)
                shows = _loadgen(svc.base, show, concurrency=8, total=args.shows, rate=args.show_rate)
                t1 = time.monotonic()
                shown = json.loads(shows.communicate()[0])
                show_s = time.monotonic() - t1
                signed = json.loads(load.communicate()[0])
                load_s = time.monotonic() - t0
                spent = svc.cpu() - cpu0
                os.unlink(csrs)
                rows[label].append((signed, shown, spent))
                print(
                    f"| {rnd + 1} | {label} | {signed['rps']:,.0f} | {spent * 1000 / max(signed['ok'], 1):.2f} "
                    f"| {load_s:.1f} | {shown['p50_ms']:.1f}/{shown['p99_ms']:.1f}/{shown.get('max_ms', 0):.1f} "
                    f"| {show_s:.1f} |",
                    flush=True,
                )
                if signed["ok"] != signed["requests"] or shown["ok"] != shown["requests"]:
                    print(f"  ({label}: not 2xx: {signed['status']} {shown['status']})")
    finally:
        os.chdir(ROOT)
        for svc in services:
            svc.stop()
    print()
    for label, side_rows in rows.items():
        p99s = [h["p99_ms"] for _, h, _ in side_rows]
        cpu = [spent * 1000 / max(s["ok"], 1) for s, _, spent in side_rows]
        print(
            f"{label}: CSR/s median {statistics.median(s['rps'] for s, _, _ in side_rows):,.0f}; CPU ms/cert median "
            f"{statistics.median(cpu):.2f}; show p99 median {statistics.median(p99s):.1f} ms (rounds "
            f"{', '.join(f'{v:.1f}' for v in p99s)})"
        )


if __name__ == "__main__":
    main()
