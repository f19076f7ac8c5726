"""What the SQLite writer's share of an upload buys: the certificate insert of store/sqlite/certificates.py (its
row, the indexes, the count triggers, the name pieces), committed one by one as an idle writer does (and in
groups of 8), on copies of the real schema with one part taken away each, interleaved in rounds.

    .venv/bin/python bench/upload_write_parts.py --rows 2000 --rounds 3

CPU µs per row of the thread that writes (time.thread_time). Nothing asserts; a variant without a part is
an experiment that says what the part costs, not a proposal to drop it (the reads of issue #7 use each).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.domain.models import Certificate, CertificateScope
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.store.sqlite import certificates as sqlite_certificates
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from tests.factories import ec_chain

FACETS = sqlite_certificates._FACETS
FACET_INDEXES = [f"certificates_by_{f}" for f in ("common_name", "signature_algorithm", "algorithm_type", "type")]
FACET_INDEXES.append("certificates_by_instance")


def _one_upsert(row: str, delta: str) -> str:
    """The six count upserts of a trigger as one multi-row upsert (the same counts)."""
    values = ", ".join(
        [f"({row}.project_id, '', '', {delta})"]
        + [f"({row}.project_id, '{facet}', {row}.{facet}, {delta})" for facet in FACETS]
    )
    return f"    INSERT INTO certificate_counts VALUES {values} ON CONFLICT DO UPDATE SET n = n + excluded.n;"


def variant(conn: sqlite3.Connection, name: str) -> None:
    if name == "no count triggers":
        conn.execute("DROP TRIGGER certificates_counted_insert")
    elif name == "counts in one upsert":
        conn.execute("DROP TRIGGER certificates_counted_insert")
        conn.execute(
            "CREATE TRIGGER certificates_counted_insert AFTER INSERT ON certificates BEGIN\n"
            + _one_upsert("NEW", "1")
            + "\nEND;"
        )
    elif name == "no facet indexes":
        for index in FACET_INDEXES:
            conn.execute(f"DROP INDEX {index}")
    elif name == "no expiry indexes":
        conn.execute("DROP INDEX certificates_expiry")
        conn.execute("DROP INDEX certificates_by_expiry")
    elif name == "no name indexes (names, newest's name_lower)":
        conn.execute("DROP INDEX certificates_names")
    elif name == "counts by the insert, not a trigger":
        conn.execute("DROP TRIGGER certificates_counted_insert")  # the writer below upserts them itself
    elif name in ("no name pieces", "temp_store=MEMORY"):
        pass  # the writer below skips them / sets it
    elif name != "as shipped":
        raise ValueError(name)


VARIANTS = [
    "as shipped",
    "no count triggers",
    "counts in one upsert",
    "no facet indexes",
    "no expiry indexes",
    "no name indexes (names, newest's name_lower)",
    "no name pieces",
    "temp_store=MEMORY",
    "counts by the insert, not a trigger",
]

# the six count upserts as one statement the insert runs itself (the variant above)
COUNTS_SQL = (
    "INSERT INTO certificate_counts VALUES "
    + ", ".join(["(:project_id, '', '', 1)"] + [f"(:project_id, '{f}', :{f}, 1)" for f in FACETS])
    + " ON CONFLICT DO UPDATE SET n = n + excluded.n"
)


def certificates(n: int, start: int) -> list[Certificate]:
    chain = ec_chain()
    now = dt.datetime.now(dt.UTC)
    bundle = validate_bundle(chain.bundle(), chain.leaf.key_pem(), None, now=now)
    vault = KeyVault(parse_keks(new_kek_line("k1")))
    base = Certificate(
        id="x",
        project_id="bench",
        name="x",
        scope=CertificateScope.GLOBAL,
        instance_id="global",
        info=bundle.info,
        chain_pem=bundle.chain_pem,
        encrypted_private_key=b"",
        trusted_root_ca_pem=None,
        has_trusted_root_ca=False,
        create_time=now,
        update_time=now,
    )
    out = []
    for i in range(start, start + n):
        cid = f"{i:032x}"
        t = now + dt.timedelta(microseconds=i)
        key = vault.encrypt(bundle.private_key_pem, context=apic_key_context("bench", cid))
        out.append(replace(base, id=cid, name=f"up_{i:07d}", encrypted_private_key=key, create_time=t, update_time=t))
    return out


def write(
    path: Path, certs: list[Certificate], group: int, grams: bool, memory: bool = False, counts: bool = False
) -> float:
    """CPU µs per row of inserting `certs`, `group` rows per commit, as the store's insert does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if memory:  # the statement journal (a statement whose triggers write more rows keeps one) in memory
        conn.execute("PRAGMA temp_store=MEMORY")
    rows = [SqliteCertificateStore._row(c) for c in certs]
    sql = f"INSERT INTO certificates ({', '.join(rows[0])}) VALUES ({', '.join(':' + k for k in rows[0])})"
    c0 = time.thread_time()
    for i in range(0, len(rows), group):
        conn.execute("BEGIN IMMEDIATE")
        for row in rows[i : i + group]:
            rowid = conn.execute(sql, row).lastrowid
            if counts:
                conn.execute(COUNTS_SQL, {"project_id": row["project_id"], **{f: row[f] for f in FACETS}})
            if grams:
                sqlite_certificates._add_grams(conn, "bench", row["name_lower"], rowid)
        conn.execute("COMMIT")
    spent = time.thread_time() - c0
    conn.close()
    return spent * 1e6 / len(rows)


async def prepare(path: Path, existing: int) -> None:
    store = SqliteCertificateStore(path)
    await store.ensure_schema()
    for cert in certificates(existing, 10**8):
        await store.insert(cert)
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--existing", type=int, default=2000, help="rows in the table before each measure")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gc-write-parts-"))
    seed = work / "seed.db"
    asyncio.run(prepare(seed, args.existing))
    results: dict[tuple[str, int], list[float]] = {}
    start = 0
    for _ in range(args.rounds):
        for name in VARIANTS:
            for group in (1, 8):
                db = work / "db.sqlite"
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
                shutil.copy(seed, db)
                conn = sqlite3.connect(db, isolation_level=None)
                variant(conn, name)
                conn.close()
                certs = certificates(args.rows, start)
                start += args.rows
                results.setdefault((name, group), []).append(
                    write(
                        db,
                        certs,
                        group,
                        grams=name != "no name pieces",
                        memory=name == "temp_store=MEMORY",
                        counts=name == "counts by the insert, not a trigger",
                    )
                )
    base = {g: statistics.median(results[("as shipped", g)]) for g in (1, 8)}
    print("| variant | µs/row, 1 per commit | saved | µs/row, 8 per commit | saved |")
    print("|---|---:|---:|---:|---:|")
    for name in VARIANTS:
        one, eight = statistics.median(results[(name, 1)]), statistics.median(results[(name, 8)])
        print(f"| {name} | {one:.0f} | {base[1] - one:.0f} | {eight:.0f} | {base[8] - eight:.0f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
