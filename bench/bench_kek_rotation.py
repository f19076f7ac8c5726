"""KEK rotation at scale on the embedded store: N secrets under KEK A (default 100,000), then the start-up KEK
check and `KekRotation` to [A, B] (batch 500), against the bare cost of re-wrapping the same number of
envelopes in memory (`KeyVault.rewrap`, the floor). Prints a table; run with `make bench`. Not a test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from gatewaycerts.core.kek_rotation import EnvelopeStores, KekRotation, check_keks
from gatewaycerts.core.orders import secret_context
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.orders import Secret, SecretType
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.store.order_codec import secret_to_doc
from gatewaycerts.store.sqlite.base import encode_json
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.orders import SqliteOrderStore
from gatewaycerts.store.sqlite.pca import SqlitePcaStore

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 500
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def fill(path: Path, vault: KeyVault) -> None:
    """N symmetric-key secrets as the order worker stores them, written in one transaction."""
    with sqlite3.connect(path) as conn:
        for i in range(N):
            secret_id = f"s{i:08d}"
            secret = Secret(
                id=secret_id,
                project_id="bench",
                name="k",
                secret_type=SecretType.SYMMETRIC,
                content_type="application/octet-stream",
                encrypted_payload=vault.encrypt(bytes(32), context=secret_context("bench", secret_id)),
                creator_id="bench",
                create_time=T0,
                algorithm="aes",
                bit_length=256,
                mode="cbc",
            )
            doc = secret_to_doc(secret)
            kek_id = doc.pop("kek_id")
            conn.execute(
                "INSERT INTO secrets (id, project_id, doc, kek_id) VALUES (?, ?, ?, ?)",
                (secret_id, "bench", json.dumps(doc, default=encode_json), kek_id),
            )


async def main() -> None:
    a, b = new_kek_line("A"), new_kek_line("B")
    old, both = KeyVault(parse_keks(a)), KeyVault(parse_keks(f"{a}\n{b}"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        stores = (SqliteCertificateStore(path), SqlitePcaStore(path), SqliteOrderStore(path))
        for store in stores:
            await store.ensure_schema()
        fill(path, old)
        envelopes = EnvelopeStores(*stores)
        sample = (await stores[2].envelopes(EnvelopeKind.SECRET, "A", "", 1))[0]

        start = time.perf_counter()
        for _ in range(N):
            both.rewrap(sample.envelope, context=secret_context("bench", sample.record_id))
        floor = time.perf_counter() - start

        start = time.perf_counter()
        await check_keks(envelopes, both)
        check = time.perf_counter() - start

        start = time.perf_counter()
        report = await KekRotation(envelopes, both, batch_size=BATCH).run()
        rotation = time.perf_counter() - start
        for store in reversed(stores):
            await store.close()
    assert report.done and report.kinds[EnvelopeKind.SECRET].rewrapped == N
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| records | start-up KEK check | rotation | rotation/s | KeyVault.rewrap alone/s | ratio | max RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {N:,} | {check * 1000:.1f} ms | {rotation:.1f} s | {N / rotation:,.0f} | {N / floor:,.0f} "
        f"| {floor / rotation:.2f} | {rss:.0f} MB |"
    )


if __name__ == "__main__":
    asyncio.run(main())
