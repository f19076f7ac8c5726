"""What the SQLite writer's statements for one CCM certificate cost (the serial's reservation, the certificate
row, its audit event: store/sqlite/pca.py insert_certificate_reserving_serial), and what each table's
indexes add: variants of the schema side by side in interleaved rounds, thread CPU per certificate.

The rows are copies of real ones (new ids and serials) from a database the service wrote, e.g. the state
directory `bench/inproc.py --only csr` leaves in /tmp/gc-inproc-*:

    .venv/bin/python bench/writer_rows.py /tmp/gc-inproc-XXXX/gatewaycerts.db --group 1 --group 8

Each variant is a fresh database file (WAL, synchronous=NORMAL, as the writer's), `--group` certificates per
commit (1: a lone write; more: a group commit). Statements only: no Python of the writer thread, no JSON.
Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gatewaycerts.core.authorities import new_uuid
from gatewaycerts.core.ids import new_id

TABLES = ("pca_serials", "pca_certificates", "audit_events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="a gatewaycerts.db with CCM certificates issued and their audit events")
    parser.add_argument("--certificates", type=int, default=1000, help="per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--group", type=int, action="append", default=[], help="certificates per commit")
    args = parser.parse_args()
    src = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    names = ",".join(f"'{t}'" for t in TABLES)
    schema = dict(src.execute(f"SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN ({names})"))
    cert_cols = [c[1] for c in src.execute("PRAGMA table_info(pca_certificates)")]
    cert = dict(zip(cert_cols, src.execute("SELECT * FROM pca_certificates LIMIT 1").fetchone(), strict=True))
    event_cols = [c[1] for c in src.execute("PRAGMA table_info(audit_events)")]
    row = src.execute("SELECT * FROM audit_events WHERE action LIKE 'ccm.certificate.issue%' LIMIT 1").fetchone()
    event = dict(zip(event_cols, row, strict=True))
    sizes = [sum(len(str(v)) for v in r.values()) for r in (cert, event)]
    print(f"certificate row ~{sizes[0]} bytes, event row ~{sizes[1]} bytes")
    audit_by = tuple(n for n in schema if n.startswith("audit_by_"))
    variants: dict[str, dict] = {
        "as is": {},
        "pca_serials WITHOUT ROWID": {"serial_without_rowid": True},
        "audit_events WITHOUT ROWID": {"audit_without_rowid": True},  # stop 29: measured, not adopted
        "without pca_certificates_expiry": {"drop": ("pca_certificates_expiry",)},
        f"without the {len(audit_by)} audit_by_* indexes": {"drop": audit_by},
        "no serial row": {"skip": "serial"},
        "no audit row": {"skip": "audit"},
    }
    workdir = tempfile.mkdtemp(prefix="gc-writer-rows-")
    insert_cert = (
        f"INSERT INTO pca_certificates ({','.join(cert_cols)}) VALUES ({','.join(':' + c for c in cert_cols)})"
    )
    insert_event = (
        f"INSERT INTO audit_events ({','.join(event_cols)}) VALUES ({','.join(':' + c for c in event_cols)}) "
        "ON CONFLICT (id) DO NOTHING"
    )
    for group in args.group or [1]:
        conns = {}
        for i, (label, v) in enumerate(variants.items()):
            path = os.path.join(workdir, f"g{group}-v{i}.db")
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for name, sql in schema.items():
                if name in v.get("drop", ()):
                    continue
                if name == "pca_serials" and v.get("serial_without_rowid"):
                    sql = sql.rstrip().rstrip(";") + " WITHOUT ROWID"
                if name == "audit_events" and v.get("audit_without_rowid"):
                    sql = sql.rstrip().rstrip(";") + " WITHOUT ROWID"
                conn.execute(sql)
            conns[label] = (conn, v.get("skip"))
        results: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, (conn, skip) in conns.items():
                c0 = time.thread_time()
                for n in range(args.certificates):
                    if n % group == 0:
                        conn.execute("BEGIN IMMEDIATE")
                    # ids as the service makes them (time-ordered), serials random (159 bits) as new_serial
                    cid, serial = new_uuid(), str(secrets.randbits(159))
                    conn.execute("SAVEPOINT issue")
                    if skip != "serial":
                        conn.execute(
                            "INSERT INTO pca_serials (issuer, serial_number) VALUES (?, ?)", (cert["issuer_id"], serial)
                        )
                    conn.execute(insert_cert, {**cert, "id": cid, "serial_number": serial})
                    if skip != "audit":
                        conn.execute(insert_event, {**event, "id": new_id(), "object_id": cid})
                    conn.execute("RELEASE issue")
                    if n % group == group - 1 or n == args.certificates - 1:
                        conn.execute("COMMIT")
                results[label].append((time.thread_time() - c0) * 1e6 / args.certificates)
        print(f"\n{group} certificate(s) per commit:")
        for label, values in results.items():
            print(
                f"  {label:<36} {statistics.median(values):7.1f} µs  (rounds {', '.join(f'{v:.0f}' for v in values)})"
            )


if __name__ == "__main__":
    main()
