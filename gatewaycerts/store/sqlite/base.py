"""Plumbing shared by the SQLite adapters: one connection, used from one thread, WAL mode.

Every statement commits on its own (no explicit transactions), so a writer never holds a read snapshot it
must upgrade: several processes on one file (`serve --workers N`) wait for the write lock (busy_timeout)
instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from gatewaycerts.domain.errors import StoreUnavailableError


def encode_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    raise TypeError(type(value).__name__)


def decode_json(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$date" in obj:
        return datetime.fromisoformat(obj["$date"])
    if len(obj) == 1 and "$bytes" in obj:
        return base64.b64decode(obj["$bytes"])
    return obj


def sort_key(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Readers run beside the one writer (WAL lets them), each on its own connection: sqlite3 releases the GIL
# while a statement runs, so reads use every core and never queue behind a write.
READERS = max(2, os.cpu_count() or 2)


class SqliteBase:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sqlite-read")
        self._reader = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            self._conn = conn
        return self._conn

    def _read_connection(self) -> sqlite3.Connection:
        conn = getattr(self._reader, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA query_only=1")
            self._reader.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Run `fn(connection, *args)` on the writer thread (every write, and reads that must see them)."""
        return await self._call(self._executor, self._connect, fn, args)

    async def _read(self, fn: Any, *args: Any) -> Any:
        """Run a read-only `fn(connection, *args)` on a reader thread; each statement sees every committed write."""
        if self._path == ":memory:":  # a second connection would open another, empty database
            return await self._run(fn, *args)
        if self._conn is None:  # the writer creates the file and sets WAL mode first
            await self._run(lambda conn: None)
        return await self._call(self._readers, self._read_connection, fn, args)

    @staticmethod
    async def _call(executor: ThreadPoolExecutor, connection: Any, fn: Any, args: tuple[Any, ...]) -> Any:
        def call() -> Any:
            try:
                return fn(connection(), *args)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"the embedded store is unavailable: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _count_expiring(
        self, table: str, where: str, boundaries: Sequence[datetime]
    ) -> dict[str, tuple[int, ...]]:
        """Per project, the rows of `table` matching `where` whose not_after lies before each boundary.

        One range scan of the table's not_after index, up to the last (latest) boundary.
        """
        if not boundaries:
            return {}
        keys = [sort_key(b) for b in boundaries]
        sums = ", ".join("sum(not_after < ?)" for _ in keys)
        sql = (
            f"SELECT project_id, {sums} FROM {table} "  # noqa: S608 - table and where are our constants
            f"WHERE {where} AND not_after < ? GROUP BY project_id"
        )

        def op(conn: sqlite3.Connection) -> dict[str, tuple[int, ...]]:
            return {row[0]: tuple(int(n) for n in row[1:]) for row in conn.execute(sql, [*keys, max(keys)])}

        return await self._read(op)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close_conn() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_conn)
        self._executor.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
