"""CPU per certificate of the CCM issue routes, by thread: one `gatewaycerts serve` process (one worker, SQLite)
per checkout, driven by bench/loadgen in interleaved rounds; each thread's CPU is read from
/proc/PID/task/TID/stat before and after a round, and named with `py-spy dump` (the event loop, the pki
executor threads, the SQLite writer, the reader threads). Not part of `make bench`; prints a table, writes
nothing. py-spy comes with the `bench` extra and needs ptrace (root, or CAP_SYS_PTRACE).

    .venv/bin/python bench/threads.py --route csr --requests 1000 --rounds 2 --before /tmp/base

The service is started as `python -m gatewaycerts` from each checkout's directory (as bench/compare.py does),
so each side serves its own code. CPU figures are ms per certificate, per thread group, summed over the
group's threads; "all" is the whole process.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, Service, build_loadgen, request
from bench.run import CAS, CERTS, csr_pem

TICKS = os.sysconf("SC_CLK_TCK")
_DUMP_THREAD = re.compile(r"^Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): \"([^\"]*)\"", re.MULTILINE)


def thread_ticks(pid: int) -> dict[int, int]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from py-spy (idle threads included)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False).stdout
    names = {}
    for raw_id, name in _DUMP_THREAD.findall(out):
        names[int(raw_id, 0)] = name
    return names


def group(name: str | None, tid: int, pid: int) -> str:
    if tid == pid or name == "MainThread":
        return "event loop"
    if name is None:
        return "other"
    if name.startswith("pki"):
        return "pki executor"
    if name == "sqlite-writer":
        return "sqlite writer"
    return "other"


def requests_for(route: str, svc: Service, token: str, n: int) -> list[dict]:
    status, ca = svc.call(
        "POST",
        CAS,
        token,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Bench P-256 CA"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 10},
        },
    )
    assert status == 200, ca
    validity = {"type": "DAY", "value": 30}
    if route == "issue":
        body = {
            "issuer_id": ca["ca_id"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "bench.example.com"},
            "validity": validity,
        }
        return [request("POST", CERTS, token, body)]
    return [
        request("POST", CERTS + "/csr", token, {"issuer_id": ca["ca_id"], "csr": csr_pem(), "validity": validity})
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=("csr", "issue"), default="csr")
    parser.add_argument("--requests", type=int, default=1000, help="per side per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--before", action="append", type=Path, default=[], help="another checkout (repeatable)")
    args = parser.parse_args()
    build_loadgen()
    sides = [(f"before {d.name}", d.resolve()) for d in args.before] + [("after", ROOT)]
    services, loads, names = {}, {}, {}
    try:
        for label, directory in sides:
            os.chdir(directory)
            svc = Service().start()
            services[label] = svc
            token = svc.token()
            loads[label] = requests_for(args.route, svc, token, args.requests)
            svc.load(loads[label], concurrency=args.concurrency, total=min(200, args.requests))  # warm
        os.chdir(ROOT)
        rows = []
        for r in range(args.rounds):
            for label, _ in sides:
                svc = services[label]
                assert svc.proc is not None
                pid = svc.proc.pid
                before = thread_ticks(pid)
                result = svc.load(
                    loads[label], concurrency=args.concurrency, total=args.requests, offset=args.requests * (r + 1)
                )
                after = thread_ticks(pid)
                if label not in names:
                    names[label] = thread_names(pid)
                by_group: dict[str, float] = collections.Counter()
                for tid, ticks in after.items():
                    delta = ticks - before.get(tid, 0)
                    by_group[group(names[label].get(tid), tid, pid)] += delta * 1000 / TICKS / args.requests
                by_group["all"] = sum(v for k, v in by_group.items() if k != "all")
                errors = result["requests"] - result["ok"]
                rows.append((r + 1, label, result.get("rps", 0.0), errors, dict(by_group)))
        groups = ["event loop", "pki executor", "sqlite writer", "other", "all"]
        print(f"{'round':>5}  {'side':<24} {'req/s':>8} {'errors':>6}  " + "  ".join(f"{g:>13}" for g in groups))
        for r, label, rps, errors, by in rows:
            cells = "  ".join(f"{by.get(g, 0.0):13.3f}" for g in groups)
            print(f"{r:>5}  {label:<24} {rps:8.1f} {errors!s:>6}  {cells}")
    finally:
        for svc in services.values():
            svc.stop()


if __name__ == "__main__":
    main()
