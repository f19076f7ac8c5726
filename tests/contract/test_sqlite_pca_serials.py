"""SQLite's serial reservations: a new database keeps them WITHOUT ROWID (one b-tree); one made before with a
rowid table keeps it; both refuse a serial used already, per CA, and take it under another CA."""

from __future__ import annotations

import sqlite3

import pytest

from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.sqlite.pca import SqlitePcaStore

OLD_TABLE = """CREATE TABLE pca_serials (
    issuer TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    PRIMARY KEY (issuer, serial_number)
)"""


def _table_sql(path) -> str:
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'pca_serials'").fetchone()
    return sql


@pytest.mark.parametrize("made_before", [False, True], ids=["new database", "rowid table made before"])
async def test_serials_stay_unique_per_ca(tmp_path, made_before):
    path = tmp_path / "pca.db"
    if made_before:
        with sqlite3.connect(path) as conn:
            conn.execute(OLD_TABLE)
    store = SqlitePcaStore(path)
    await store.ensure_schema()
    try:
        assert ("WITHOUT ROWID" in _table_sql(path)) is not made_before
        await store.reserve_serial("ca1", "12345")
        with pytest.raises(ConflictError):
            await store.reserve_serial("ca1", "12345")
        await store.reserve_serial("ca2", "12345")
        with sqlite3.connect(path) as conn:
            rows = sorted(conn.execute("SELECT issuer, serial_number FROM pca_serials").fetchall())
        assert rows == [("ca1", "12345"), ("ca2", "12345")]
    finally:
        await store.close()
