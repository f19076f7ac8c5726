"""UsedNonces: the ACME nonces used already, in a small SQLite file of their own beside the database.

Every signed ACME request inserts one row. In the main database that insert queued for the writer thread
(a thread hand-off each way, ~0.1-0.2 ms of CPU, more than the write) whenever the writer was busy or the
inline point writes' rate bound was spent, and its WAL checkpoints copied the main database's pages. In a
file of its own it commits on the calling thread, alone: one autocommit INSERT (WAL, synchronous=NORMAL as
the main database: no fsync at commit), some 20-30 µs. It never waits on the event loop (busy_timeout 0):
when another process (`serve --workers N`) holds this file's write lock, the insert goes to this file's
thread, which waits for it as the writer would (busy_timeout 5 s). Checkpoints (they fsync) run on that
thread too, every CHECKPOINT_EVERY inline commits.

A row is the nonce's body, whose first 8 bytes are its expiry (big-endian): inserts land at the right edge
of the B-tree (expiry grows with time), and purging is a range delete on the key. Every process of the
service opens the same file, so a nonce is single use across all of them."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from gatewaycerts.domain.errors import StoreUnavailableError

CHECKPOINT_EVERY = 256
_BUSY_MS = 5000
_SCHEMA = "CREATE TABLE IF NOT EXISTS used_nonces (nonce BLOB PRIMARY KEY) WITHOUT ROWID"
_INSERT = "INSERT OR IGNORE INTO used_nonces (nonce) VALUES (?)"


def _unavailable(exc: Exception) -> StoreUnavailableError:
    error = StoreUnavailableError(f"the used-nonce store is unavailable: {exc}")
    error.__cause__ = exc
    return error


def _busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class UsedNonces:
    """The used-nonce file at `path` (":memory:": one connection, on the thread, for tests of one process)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-nonces")
        self._thread_conn: sqlite3.Connection | None = None  # used on the thread only
        self._inline: sqlite3.Connection | None = None  # the event loop's: never waits
        self._cursor: sqlite3.Cursor | None = None  # on _inline
        self._ready = False
        self._commits = 0
        self._checkpointing = False
        self._closed = False

    def _connect(self, busy_ms: int) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on the thread (_checkpoint_soon)
        return conn

    def _on_thread(self) -> sqlite3.Connection:
        if self._thread_conn is None:
            conn = self._connect(_BUSY_MS)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            self._thread_conn = conn
            self._ready = self.path != ":memory:"  # a second :memory: connection would be another database
        return self._thread_conn

    async def _call(self, fn, *args):
        if self._closed:
            raise StoreUnavailableError("the used-nonce store is closed")

        def call():
            try:
                return fn(self._on_thread(), *args)
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def ensure_schema(self) -> None:
        await self._call(lambda conn: None)

    async def use(self, nonce: bytes) -> bool:
        """Insert `nonce`; False when it is there already (used, by this or any other process)."""
        if self._ready and not self._closed:
            try:
                if self._cursor is None:
                    self._inline = self._connect(0)
                    self._cursor = self._inline.cursor()  # one cursor for every insert: no Cursor per call
                used = self._cursor.execute(_INSERT, (nonce,)).rowcount == 1
            except sqlite3.Error as exc:
                if not (isinstance(exc, sqlite3.OperationalError) and _busy(exc)):
                    raise _unavailable(exc) from exc  # as any store error: a 503, never a 500
            else:  # committed (autocommit: the INSERT is its own transaction)
                self._commits += 1
                if self._commits >= CHECKPOINT_EVERY:
                    self._checkpoint_soon()
                return used
        return await self._call(lambda conn: conn.execute(_INSERT, (nonce,)).rowcount == 1)

    def _checkpoint_soon(self) -> None:
        if self._checkpointing:
            return
        self._commits = 0
        self._checkpointing = True

        def run() -> None:
            try:
                _checkpoint(self._on_thread())
            except sqlite3.Error:
                pass  # PASSIVE: a busy moment leaves the pages for the next one
            finally:
                self._checkpointing = False

        self._thread.submit(run)  # nobody waits for it

    async def purge(self, before: datetime) -> int:
        """Delete the nonces that expired before `before` (a range of keys: they start with their expiry)."""
        bound = int(before.timestamp()).to_bytes(8, "big")
        return await self._call(lambda conn: conn.execute("DELETE FROM used_nonces WHERE nonce < ?", (bound,)).rowcount)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._inline is not None:
            self._cursor = None
            self._inline.close()
            self._inline = None

        def close_thread_conn() -> None:
            if self._thread_conn is not None:
                self._thread_conn.close()
                self._thread_conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close_thread_conn)
        self._thread.shutdown(wait=False)
