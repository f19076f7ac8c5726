"""The SQLite used-nonce file (store/sqlite/nonces.py): inserts commit on the calling thread, a nonce is single
use across processes that share the file (each its own connections, as `serve --workers N`), and a write lock
held by another process sends the insert to the file's thread, which waits for it instead of failing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from gatewaycerts.domain.errors import StoreUnavailableError
from gatewaycerts.store.sqlite import nonces as n
from gatewaycerts.store.sqlite.acme import SqliteAcmeStore
from gatewaycerts.store.sqlite.base import SqliteDatabase


def _nonce(expires: int, tag: bytes) -> bytes:
    return expires.to_bytes(8, "big") + tag.ljust(12, b"\0")


async def _store(path) -> SqliteAcmeStore:
    store = SqliteAcmeStore(SqliteDatabase(path))
    await store.ensure_schema()
    return store


def _rows(path) -> list[bytes]:
    conn = sqlite3.connect(str(path) + "-nonces")
    try:
        return [r[0] for r in conn.execute("SELECT nonce FROM used_nonces ORDER BY nonce")]
    finally:
        conn.close()


async def test_an_insert_commits_on_the_calling_thread_in_the_file_beside_the_database(tmp_path, monkeypatch):
    store = await _store(tmp_path / "acme.db")
    calls: list[str] = []
    real = n.UsedNonces._call

    async def spy(self, fn, *args):
        calls.append(threading.current_thread().name)
        return await real(self, fn, *args)

    monkeypatch.setattr(n.UsedNonces, "_call", spy)
    try:
        nonce = _nonce(int(time.time()) + 60, b"inline")
        assert await store.use_nonce(nonce) is True
        assert await store.use_nonce(nonce) is False
        assert calls == []  # neither went to the thread
        assert _rows(tmp_path / "acme.db") == [nonce]  # committed: another connection sees it
        main = sqlite3.connect(tmp_path / "acme.db")
        try:  # the main database keeps no used nonces (its old table is gone)
            tables = {r[0] for r in main.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            main.close()
        assert "acme_nonces" not in tables
    finally:
        await store.close()


async def test_a_nonce_is_single_use_across_processes_sharing_the_file(tmp_path):
    one, two = await _store(tmp_path / "acme.db"), await _store(tmp_path / "acme.db")
    try:
        nonces = [_nonce(int(time.time()) + 60, bytes([i])) for i in range(20)]
        results = await asyncio.gather(*(s.use_nonce(x) for x in nonces for s in (one, two)))
        assert [results[2 * i] + results[2 * i + 1] for i in range(20)] == [1] * 20  # exactly one of each pair
        assert await two.use_nonce(nonces[0]) is False and await one.use_nonce(nonces[-1]) is False
    finally:
        await one.close()
        await two.close()


async def test_a_write_lock_held_elsewhere_sends_the_insert_to_the_thread_which_waits(tmp_path, monkeypatch):
    store = await _store(tmp_path / "acme.db")
    sent = asyncio.Event()
    real = n.UsedNonces._call

    async def spy(self, fn, *args):
        sent.set()
        return await real(self, fn, *args)

    monkeypatch.setattr(n.UsedNonces, "_call", spy)
    other = sqlite3.connect(str(tmp_path / "acme.db") + "-nonces", isolation_level=None, check_same_thread=False)
    try:
        assert await store.use_nonce(_nonce(int(time.time()) + 60, b"first")) is True  # inline, as usual
        assert not sent.is_set()
        other.execute("BEGIN IMMEDIATE")  # another process writing
        other.execute("INSERT INTO used_nonces (nonce) VALUES (?)", (_nonce(int(time.time()) + 60, b"other"),))
        nonce = _nonce(int(time.time()) + 60, b"waits")
        pending = asyncio.ensure_future(store.use_nonce(nonce))
        await asyncio.wait_for(sent.wait(), 5)  # the inline insert found the lock taken: to the thread
        assert not pending.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(pending, 5) is True  # it waited for the lock rather than failing
        assert await store.use_nonce(nonce) is False
        assert len(_rows(tmp_path / "acme.db")) == 3
    finally:
        other.close()
        await store.close()


async def test_checkpoints_run_on_the_files_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(n, "CHECKPOINT_EVERY", 4)
    ran: list[str] = []
    real = n._checkpoint

    def spy(conn):
        ran.append(threading.current_thread().name)
        real(conn)

    monkeypatch.setattr(n, "_checkpoint", spy)
    store = await _store(tmp_path / "acme.db")
    try:
        for round_ in (1, 2):
            for i in range(4):
                assert await store.use_nonce(_nonce(int(time.time()) + 60, bytes([round_, i]))) is True
            await store._used_nonces._call(lambda conn: None)  # the thread runs its work in order: done after it
            assert len(ran) == round_  # one per CHECKPOINT_EVERY inline commits
        assert all(name.startswith("sqlite-nonces") for name in ran)
    finally:
        await store.close()


async def test_a_broken_file_is_the_store_being_unavailable_not_an_unhandled_error(tmp_path):
    store = await _store(tmp_path / "acme.db")
    try:
        assert await store.use_nonce(_nonce(int(time.time()) + 60, b"ok")) is True
        store._used_nonces._inline.close()  # the inline connection unusable, as a failing file would make it
        with pytest.raises(StoreUnavailableError):
            await store.use_nonce(_nonce(int(time.time()) + 60, b"broken"))
    finally:
        store._used_nonces._inline = None
        await store.close()
