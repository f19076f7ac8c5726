"""The tail of paced point writes on the SQLite store, in process: is a write ever made to wait for a checkpoint?

Each round, on a fresh database with 200 certificates: WRITES changes, each a certificate replaced and an audit
record written (the two point writes of an APIC change), one every PACE_MS (within the inline writes' rate
bound: one APIC change at a time), each change's latency measured from its first write handed over to its
second one committed. Run against this tree and, with `--before DIR`, another checkout's (a subprocess each,
alternating, ROUNDS rounds a side), so both see the same machine:

    .venv/bin/python bench/bench_write_tail.py --before /tmp/tails-base

Prints per side the median, p99 and max change latency, how many changes took longer than 5 ms, and how many of
their writes went to the writer thread instead of committing inline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITES = 320
PACE_MS = 40.0
ROUNDS = 3


async def one_round() -> dict[str, object]:
    from gatewaycerts.store.sqlite.audit import SqliteAuditStore
    from gatewaycerts.store.sqlite.base import SqliteDatabase
    from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
    from tests.contract.test_audit_store import event
    from tests.contract.test_certificate_store import make

    state = Path(tempfile.mkdtemp(prefix="gc-write-tail-"))
    db = SqliteDatabase(state / "tail.db")
    certificates, audit = SqliteCertificateStore(db), SqliteAuditStore(db)
    await certificates.ensure_schema()
    await audit.ensure_schema()
    current = {}
    for i in range(200):
        await certificates.insert(make(f"c{i:04d}", name=f"tail_{i}"))
        current[f"c{i:04d}"] = await certificates.get("p1", f"c{i:04d}")
    offloop = [0]
    real = db.write

    async def write(fn, args, **kw):  # type: ignore[no-untyped-def]
        def traced(conn, *a):  # type: ignore[no-untyped-def]
            if threading.current_thread() is not threading.main_thread():
                offloop[0] += 1
            return fn(conn, *a)

        return await real(traced, args, **kw)

    db.write = write  # type: ignore[method-assign]
    latencies = []
    for i in range(WRITES):
        cert = current[f"c{i % 200:04d}"]
        t0 = time.perf_counter()
        stored = await certificates.replace(replace(cert, name=f"tail_{i % 200}"), expected_revision=cert.revision)
        await audit.insert(event(i))
        latencies.append((time.perf_counter() - t0) * 1000)
        current[cert.id] = stored
        await asyncio.sleep(PACE_MS / 1000)
    await audit.close()
    await certificates.close()
    latencies.sort()
    return {
        "median": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1) + 0.5)],
        "max": latencies[-1],
        "over_5ms": sum(x > 5 for x in latencies),
        "to_writer": offloop[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="also run this checkout's store, alternating with this tree's")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a subprocess: one round of that tree
    args = parser.parse_args()
    if args.one is not None:
        sys.path.insert(0, str(args.one))
        print(json.dumps(asyncio.run(one_round())))
        return
    sides = [("this tree", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    results: dict[str, list[dict]] = {label: [] for label, _ in sides}
    for _ in range(args.rounds):
        for label, tree in sides:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(tree)],
                capture_output=True,
                text=True,
                check=True,
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
            ).stdout
            results[label].append(json.loads(out.strip().splitlines()[-1]))
            print(label, results[label][-1], flush=True)

    def joined(runs: list[dict], key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in runs)

    for label, runs in results.items():
        print(
            f"{label}: change latency median {joined(runs, 'median', '.2f')} ms; p99 {joined(runs, 'p99', '.1f')} "
            f"ms; max {joined(runs, 'max', '.1f')} ms; over 5 ms {joined(runs, 'over_5ms', 'd')} of {WRITES}; "
            f"writes sent to the writer thread {joined(runs, 'to_writer', 'd')} of {2 * WRITES}"
        )


if __name__ == "__main__":
    main()
