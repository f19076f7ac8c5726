"""The SQLite change stamp (store/sqlite/changes.py): equal exactly while nothing is committed to the file, by this
process or another; None where it cannot tell."""

from __future__ import annotations

import asyncio
import sqlite3
import sys

from gatewaycerts.store.sqlite.base import SqliteDatabase


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")


def _insert(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("INSERT INTO t (k, v) VALUES (?, 'x')", (k,))


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


async def test_the_stamp_moves_on_every_commit_and_only_then(tmp_path):
    db = SqliteDatabase(tmp_path / "one.db")
    db.attach()
    try:
        assert db.change_stamp() is None  # no connection of ours holds the file yet
        await db.write(_create, ())
        first = db.change_stamp()
        assert isinstance(first, bytes) and len(first) == 96
        assert await db.read(_count, (), point=True) == 0
        assert await db.read(_count, ()) == 0  # on a reader thread
        assert db.change_stamp() == first  # reads commit nothing
        await db.write(_insert, (1,))
        second = db.change_stamp()
        assert second != first
        # another process commits: the header it rewrote is the one we map
        code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO t VALUES (2, 1)')"
        other = await asyncio.create_subprocess_exec(sys.executable, "-c", code + "; c.commit()", db.path)
        assert await other.wait() == 0
        third = db.change_stamp()
        assert third != second
        assert await db.read(_count, (), point=True) == 2
        # a checkpoint that empties the WAL, then a commit that restarts it: still a new stamp
        await db.write(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(), (), alone=True)
        await db.write(_insert, (3,))
        fourth = db.change_stamp()
        assert fourth not in (first, second, third)
        assert db.change_stamp() == fourth
    finally:
        await db.close()
    assert db.change_stamp() is None  # closed: never a stamp that can no longer move


async def test_no_stamp_for_a_database_in_memory():
    db = SqliteDatabase(":memory:")
    db.attach()
    try:
        await db.write(_create, ())
        assert db.change_stamp() is None
    finally:
        await db.close()
