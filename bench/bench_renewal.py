"""The renewal loop's scheduler at scale on the embedded store: N managed certificates (default 100,000), none
due, then the cost of one scheduler tick (`RenewalWorker.tick`: the due query and nothing else) over many
ticks, beside the due query's plan. Target (issue #19): a tick with nothing due costs <= 5 ms, and the due
query reads the due-time index (also pinned by tests/contract/test_managed_store.py). Then 1% of them made
due, to show a tick's cost follows what is due, not what exists. Prints a table; run with `make bench`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from gatewaycerts.core.renewal.worker import RenewalSettings, RenewalWorker
from gatewaycerts.domain.managed import ManagedCertificate, RenewalState, WindowSource
from gatewaycerts.domain.models import CertificateScope
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.managed import SqliteManagedCertificateStore

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
TICKS = 2000
NOW = dt.datetime.now(dt.UTC)
TARGET_MS = 5.0


def managed(i: int, due: dt.datetime) -> ManagedCertificate:
    return ManagedCertificate(
        id=f"m{i:08d}",
        project_id=f"p{i % 500}",
        name=f"managed_{i}",
        scope=CertificateScope.GLOBAL,
        instance_id="common",
        domains=(f"h{i}.example.com",),
        source="private_ca",
        key_algorithm="EC256",
        settings={"ca_id": "ca", "validity_days": 90},
        state=RenewalState.ACTIVE,
        due_at=due,
        window_source=WindowSource.LIFETIME,
        create_time=NOW,
        update_time=NOW,
        installed_attempt="a",
        renewals=1,
    )


class NoClaims(SqliteManagedCertificateStore):
    """Ticks with work measure the due query alone: nothing is claimed (the record stays due)."""

    async def replace_managed(self, managed, *, expected_revision):  # type: ignore[override]
        from gatewaycerts.domain.errors import ConflictError

        raise ConflictError("bench: not claimed")


async def ticks(worker: RenewalWorker, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await worker.tick()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return f"median {statistics.median(samples):.3f} ms, p99 {p99:.3f} ms, max {samples[-1]:.3f} ms"


async def main() -> None:
    vault = KeyVault(parse_keks(new_kek_line("bench")))
    with tempfile.TemporaryDirectory() as tmp:
        certificates = SqliteCertificateStore(Path(tmp) / "bench.db")
        await certificates.ensure_schema()
        store = NoClaims(certificates.database)
        await store.ensure_schema()
        start = time.perf_counter()
        rows = [
            SqliteManagedCertificateStore._row(managed(i, NOW + dt.timedelta(days=1 + (i % 60), seconds=i)))
            for i in range(N)
        ]
        columns = list(rows[0])

        def fill(conn):
            conn.executemany(
                f"INSERT INTO managed_certificates ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})",
                rows,
            )

        await store._run(fill)
        await store._run(lambda conn: conn.execute("ANALYZE"))
        filled = time.perf_counter() - start
        worker = RenewalWorker(store, certificates, vault, {}, settings=RenewalSettings(batch=32))
        plan = await store.explain_due(NOW, 32)
        await ticks(worker, 50)  # warm the readers
        idle = await ticks(worker, TICKS)
        # 1% due now: a tick reads one batch of them through the index (nothing is claimed here).
        due_now = [f"m{i:08d}" for i in range(0, N, 100)]

        def make_due(conn):
            conn.executemany(
                "UPDATE managed_certificates SET due_at = ? WHERE id = ?",
                [((NOW - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), i) for i in due_now],
            )

        await store._run(make_due)
        busy = await ticks(worker, TICKS // 4)
        await certificates.close()
    idle_median = statistics.median(idle)
    print(f"# Renewal scheduler, SQLite, {N:,} managed certificates (filled in {filled:.1f} s)")
    print()
    print("| measure | result | target |")
    print("|---|---|---|")
    verdict = "met" if idle_median <= TARGET_MS else "MISSED"
    print(f"| tick, nothing due ({TICKS} ticks) | {summary(idle)} | <= {TARGET_MS} ms (median): {verdict} |")
    busy_row = f"tick, {len(due_now):,} due (one batch of 32 read, none claimed)"
    print(f"| {busy_row} | {summary(busy)} | (follows the batch) |")
    print(f"| due query plan | {'; '.join(plan)} | reads managed_by_due |")


if __name__ == "__main__":
    asyncio.run(main())
