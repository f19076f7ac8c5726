"""What the SQLite delivery change log costs a write, in process: a bound certificate's row changed (the trigger
moves the project's counter; with the log it also inserts the new number's entry and drops the one 1,000 back),
on two databases made the same way but for their delivery triggers: this tree's, and those of the versions
before the log (3f439fa), alternating in rounds. Each write is its own `BEGIN IMMEDIATE ... COMMIT` on one
connection (WAL, synchronous=NORMAL, as the store's), the calling thread's CPU time per write.

    .venv/bin/python bench/bench_delivery_log.py [--writes 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatewaycerts.domain.models import DomainBinding
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.delivery import SqliteDeliveryStore
from tests.contract.test_certificate_store import make
from tests.contract.test_sqlite_delivery_log import _OLD_TRIGGERS, T0

CERTS = 200


async def build(path: Path, unlogged: bool) -> None:
    db = SqliteDatabase(path)
    certificates, deliveries = SqliteCertificateStore(db), SqliteDeliveryStore(db)
    await certificates.ensure_schema()
    await deliveries.ensure_schema()
    for i in range(CERTS):
        cert = make(f"c{i:04d}", name=f"log_{i}")
        binding = DomainBinding(f"b{i}", f"n{i}.example.com", ("gw1",), False, T0)
        await certificates.insert(replace(cert, bindings=(binding,)))
    await certificates.close()
    if unlogged:
        with sqlite3.connect(path) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
            names = [n for n in names if "delivery" in n]
            conn.executescript("".join(f"DROP TRIGGER {n};" for n in names) + _OLD_TRIGGERS)


def writes(path: Path, n: int, start: int) -> list[float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    cpu = []
    for i in range(start, start + n):
        c0 = time.thread_time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE certificates SET revision = revision + 1 WHERE id = ?", (f"c{i % CERTS:04d}",))
        conn.execute("COMMIT")
        cpu.append((time.thread_time() - c0) * 1e6)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="gc-delivery-log-"))
    paths = {"log": state / "log.db", "no log": state / "nolog.db"}
    for label, path in paths.items():
        asyncio.run(build(path, unlogged=label == "no log"))
    writes(paths["log"], 1100, 0)  # past the first 1,000: every write also drops an entry, as in steady use
    writes(paths["no log"], 1100, 0)
    medians: dict[str, list[float]] = {label: [] for label in paths}
    for r in range(args.rounds):
        for label, path in paths.items():
            cpu = writes(path, args.writes, 1100 + r * args.writes)
            medians[label].append(statistics.median(cpu))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} µs" for k, v in medians.items()), flush=True)
    for label, values in medians.items():
        print(
            f"{label}: CPU per write, median of rounds {statistics.median(values):.1f} µs "
            f"(rounds {', '.join(f'{v:.1f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
