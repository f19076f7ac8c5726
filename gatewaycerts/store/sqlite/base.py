"""Plumbing shared by the SQLite adapters: one connection, used from one thread, WAL mode.

Every statement commits on its own (no explicit transactions), so a writer never holds a read snapshot it
must upgrade: several processes on one file (`serve --workers N`) wait for the write lock (busy_timeout)
instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
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


class SqliteBase:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
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

    async def _run(self, fn: Any, *args: Any) -> Any:
        def call() -> Any:
            try:
                return fn(self._connect(), *args)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"the embedded store is unavailable: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

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

        return await self._run(op)

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
