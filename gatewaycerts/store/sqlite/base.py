"""Plumbing shared by the SQLite adapters: one connection, used from one thread, WAL mode.

Every statement commits on its own (no explicit transactions), so a writer never holds a read snapshot it
must upgrade: several processes on one file (`serve --workers N`) wait for the write lock (busy_timeout)
instead of failing with "database is locked"."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.domain.errors import StoreUnavailableError
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.sqlite.changes import WalChanges
from gatewaycerts.store.sqlite.checkpoints import Checkpointer

T = TypeVar("T")
_MIGRATION_BATCH = 500


def encode_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    raise TypeError(type(value).__name__)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dump_json(value: Any) -> str:
    """A stored document as JSON text, dates and bytes tagged by `encode_json`. orjson (3-9x json.dumps on
    these documents); json.dumps for what orjson refuses (an integer beyond 64 bits): both read back alike."""
    try:
        return orjson.dumps(value, default=encode_json, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, default=encode_json)


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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error): a read-modify-write that other processes cannot
    interleave, and a write landing together with what it maintains. Inside a transaction already (the
    writer's group commit) it is a savepoint: all of it or none of it, committed with the group."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        conn.execute("RELEASE nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def in_transaction(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
    """Run `fn` in one write transaction (see `transaction`)."""
    with transaction(conn):
        return fn()


def prepare_envelope_tables(conn: sqlite3.Connection, specs: Sequence[EnvelopeTable]) -> None:
    """Give each table its `kek_id` label column (filled for rows from before it) and the label's index."""
    for spec in specs:
        add_kek_column(conn, spec.table, spec.kek_column)
        label_envelopes(conn, spec)
        conn.execute(spec.index_sql)


@dataclass(frozen=True, slots=True)
class EnvelopeTable:
    """Where a table keeps its records' envelopes: the column itself, or `json_key` of the JSON in `column`.

    Every such table has an indexed `kek_id` column: the KEK id the envelope names, "" without one,
    NULL for rows written before the column existed (labelled by `label_envelopes` at start). A table whose
    rows hold two envelopes labels the second in a column of its own (`kek_column`). A table shared by several
    kinds of record names this kind's rows (`where`, also the condition of a partial label index), and where
    it has no project_id column, the SQL that reads the project (`project`); `scope` is the SQL of the parent
    id an envelope's context names beside the record's own (StoredEnvelope.scope).
    """

    kind: EnvelopeKind
    table: str
    column: str
    json_key: str | None = None
    has_revision: bool = True
    kek_column: str = "kek_id"
    where: str | None = None
    project: str = "project_id"
    scope: str | None = None

    @property
    def index_sql(self) -> str:
        name = f"{self.table}_kek" if self.kek_column == "kek_id" else f"{self.table}_{self.kek_column}"
        if self.where is not None:
            name = f"{self.table}_{self.kind.value.replace('-', '_')}_kek"
        partial = "" if self.where is None else f" WHERE {self.where}"
        return f"CREATE INDEX IF NOT EXISTS {name} ON {self.table} ({self.kek_column}, id){partial}"

    @property
    def rows(self) -> str:
        """SQL: ' AND <this kind's rows>' ('' for a table of one kind)."""
        return "" if self.where is None else f" AND {self.where}"

    @property
    def present(self) -> str:
        """SQL: the row holds an envelope (for rows that are not labelled yet)."""
        if self.json_key is None:
            return f"length({self.column}) > 0"
        return f"json_extract({self.column}, '$.{self.json_key}') IS NOT NULL"

    def blob(self, value: Any) -> bytes | None:
        if self.json_key is None:
            return None if value is None else bytes(value)
        blob = json.loads(value, object_hook=decode_json).get(self.json_key)
        return None if blob is None else bytes(blob)

    def label_clause(self, kek_id: str | None) -> tuple[str, list[Any]]:
        if kek_id is None:
            return f"{self.kek_column} IS NULL AND {self.present}{self.rows}", []
        return f"{self.kek_column} = ?{self.rows}", [kek_id]

    def envelope(self, row: tuple[Any, ...], kek_id: str | None) -> StoredEnvelope | None:
        """(id, project_id, column[, revision][, scope]) -> StoredEnvelope, None when the row holds none."""
        blob = self.blob(row[2])
        if not blob:
            return None
        revision = int(row[3]) if self.has_revision else None
        scope = row[-1] if self.scope is not None else None
        return StoredEnvelope(self.kind, row[1], row[0], blob, kek_id, revision, scope)

    @property
    def selected(self) -> str:
        return (
            f"id, {self.project}, {self.column}"
            + (", revision" if self.has_revision else "")
            + ("" if self.scope is None else f", {self.scope}")
        )


def add_kek_column(conn: sqlite3.Connection, table: str, column: str = "kek_id") -> None:
    """Databases from before KEK rotation: add the label column (filled by label_envelopes)."""
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


def label_envelopes(conn: sqlite3.Connection, spec: EnvelopeTable) -> None:
    """Fill `kek_id` for rows written before it existed (or by an older version still running), in batches."""
    sql = (
        f"SELECT id, {spec.column} FROM {spec.table} "  # noqa: S608 - our constants
        f"WHERE {spec.kek_column} IS NULL{spec.rows} AND id > ? ORDER BY id LIMIT ?"
    )
    update = (
        f"UPDATE {spec.table} SET {spec.kek_column} = ? "  # noqa: S608 - our constants
        f"WHERE id = ? AND {spec.kek_column} IS NULL{spec.rows}"
    )

    def batch(after: str) -> list[tuple[Any, ...]]:
        rows = conn.execute(sql, (after, _MIGRATION_BATCH)).fetchall()
        for record_id, value in rows:
            conn.execute(update, (envelope_kek_id(spec.blob(value)), record_id))
        return rows

    after = ""
    while len(rows := in_transaction(conn, partial(batch, after))) == _MIGRATION_BATCH:
        after = rows[-1][0]


# A write waits for at most this many others queued behind the same commit.
MAX_GROUP = 64
WRITER_LOCK_SECONDS = 5.0  # as long as SQLite's busy timeout
# Point writes committed on the calling thread while the writer is idle (SqliteDatabase.write): at most this
# many a second, in bursts of at most INLINE_BURST; beyond it they queue for the writer's group commit.
INLINE_WRITES_PER_SECOND = 50.0
INLINE_BURST = 10.0
# No write connection checkpoints the WAL itself (a checkpoint writes and fsyncs the database file: neither on
# the event loop nor inside a commit that writes wait for): they count their writes, and the Checkpointer's
# own thread checkpoints beside them (store/sqlite/checkpoints.py).
# A statement whose triggers write more rows (a certificate insert and its six counts) keeps a statement journal
# of every page it changes, to undo itself alone; past 64 KiB (16 pages; a certificate row and its 11 index
# entries commit ~29) SQLite spills it to a temporary file, which Debian's build puts on disk: an open, ~15 page writes
# and an unlink per insert, ~100-250 µs of the writer's CPU (bench/upload_write_parts.py). The write
# connections keep it in memory: it lives only while its statement runs (a migration's sorts, once at start, too).
WRITER_TEMP_STORE = "PRAGMA temp_store=MEMORY"


@dataclass(eq=False)
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: concurrent.futures.Future
    alone: bool = False


def _unavailable(exc: Exception) -> StoreUnavailableError:
    error = StoreUnavailableError(f"the embedded store is unavailable: {exc}")
    error.__cause__ = exc
    return error


def _store_error(exc: BaseException) -> BaseException:
    """What a write's caller gets for its error: SQLite's operational errors (locked, I/O, disk full) as the
    store being unavailable, anything else (a domain error of the write) as it is."""
    return _unavailable(exc) if isinstance(exc, sqlite3.OperationalError) else exc


class SqliteDatabase:
    """One SQLite file as the stores of a process share it: one writer thread and a pool of readers.

    The writer commits what has queued up together (group commit): each write runs in a savepoint of one
    transaction, so one that fails is undone alone and the others commit; every write's result is handed
    back only after the commit. A commit writes each changed page once, however many writes changed it,
    and an upload changes a dozen index pages: under concurrent writes this is most of their cost. A write
    with `alone` (schema changes: executescript commits by itself) runs outside any group.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sqlite-read")
        self._reader = threading.local()
        self._inline = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._users = 0
        self._closed = False
        self._lock_fd: int | None = None
        # Held by whoever uses a write connection: the writer thread for a group, the event loop for an
        # inline point write (see `write`).
        self._write_conn_lock = threading.Lock()
        self._inline_writer: sqlite3.Connection | None = None
        self._inline_tokens = INLINE_BURST
        self._inline_at = time.monotonic()
        self._checkpoints = Checkpointer(self.path)
        self._changes = WalChanges(self.path)

    def attach(self) -> None:
        """A store starts using the database (each store closes it once; the last close closes it)."""
        self._users += 1

    # -- connections ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # not inside a group's commit: the Checkpointer's thread
            conn.execute(WRITER_TEMP_STORE)
            self._conn = conn
        return self._conn

    def _read_connection(self) -> sqlite3.Connection:
        conn = getattr(self._reader, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA query_only=1")
            self._reader.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _inline_connection(self) -> sqlite3.Connection:
        """The calling thread's (the event loop's) own reader, which never waits: busy_timeout 0."""
        conn = getattr(self._inline, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=1")
            self._inline.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _inline_write_connection(self) -> sqlite3.Connection:
        """The event loop's own write connection for inline point writes: it never waits (busy_timeout 0)."""
        if self._inline_writer is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")  # as the writer's (_connect)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # not on the event loop: the Checkpointer's thread
            conn.execute(WRITER_TEMP_STORE)
            self._inline_writer = conn
        return self._inline_writer

    # -- the writer -------------------------------------------------------------------------------

    async def write(
        self, fn: Callable[..., Any], args: tuple[Any, ...], *, alone: bool = False, point: bool = False
    ) -> Any:
        """Run `fn(connection, *args)` in a write transaction; its result once committed.

        `point`: a write of one record (bounded work) may commit right here on the calling thread when the
        writer is idle and nothing is queued: the same transaction and the same commit, without the two
        thread hand-offs (the writer woken, the event loop woken back), which on a busy machine cost far
        more than the write (each waits for the scheduler). Bounded to INLINE_WRITES_PER_SECOND so that
        under a stream of writes they still share the writer's group commits; and never waiting: a writer
        of another process holding the lock sends the write to the queue as before."""
        with self._writer_lock:
            if self._closed:
                raise StoreUnavailableError("the embedded store is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
                self._writer.start()
        if point and not alone:
            done, result = self._write_inline(fn, args)
            if done:
                return result
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._writes.put(_Write(fn, args, future, alone))
        return await asyncio.wrap_future(future)

    def _inline_allowed(self) -> bool:
        now = time.monotonic()
        refill = (now - self._inline_at) * INLINE_WRITES_PER_SECOND
        self._inline_tokens = min(INLINE_BURST, self._inline_tokens + refill)
        self._inline_at = now
        if self._inline_tokens < 1.0:
            return False
        self._inline_tokens -= 1.0
        return True

    def _write_inline(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, result) when the write committed here; (False, None) when it must go to the writer (busy,
        queued writes, another process writing, the rate bound). Its own error is raised as the writer
        would hand it back."""
        if self.path == ":memory:" or self._conn is None or not self._writes.empty() or not self._inline_allowed():
            return False, None  # no WAL set up yet (the writer does it first), or others queued: join them
        if not self._write_conn_lock.acquire(blocking=False):
            return False, None  # the writer is committing a group
        try:
            if self._lock_fd is None:
                return False, None  # the writer opens the lock file
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False, None  # a writer of another process: wait for it on the writer thread
            try:
                try:
                    conn = self._inline_write_connection()
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                        return False, None  # someone writing without the file lock: SQLite's wait is the writer's
                    raise _unavailable(exc) from exc
                try:
                    result = fn(conn, *args)
                except BaseException as exc:
                    if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                        conn.execute("ROLLBACK")
                    error = _store_error(exc)
                    if error is exc:
                        raise
                    raise error from exc
                try:
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise _unavailable(exc) from exc
                self._checkpoints.committed()
                return True, result
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._write_conn_lock.release()

    def _write_loop(self) -> None:
        held: _Write | None = None
        while True:
            first = held or self._writes.get()
            held = None
            if first is None:
                return
            group = [first]
            while not first.alone and len(group) < MAX_GROUP:
                try:
                    queued = self._writes.get_nowait()
                except queue.Empty:
                    break
                if queued is None:  # stop: after this group
                    self._writes.put(None)
                    break
                if queued.alone:  # runs after this group, by itself
                    held = queued
                    break
                group.append(queued)
            try:
                with self._write_conn_lock:
                    locked = self._lock_writers()
                    try:
                        outcomes = self._commit(group)
                    finally:
                        if locked:
                            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one group: its callers get the error
                error = _unavailable(exc) if isinstance(exc, sqlite3.Error | OSError) else exc
                outcomes = [(False, error)] * len(group)
            if self.path != ":memory:":
                self._checkpoints.committed(len(group))
            # The callers resume only once both locks are free again, so that a point write one of them makes
            # next can commit inline (_write_inline) instead of finding the writer still "committing".
            for w, (ok, value) in zip(group, outcomes, strict=True):
                try:
                    if ok:
                        w.future.set_result(value)
                    else:
                        w.future.set_exception(value)
                except concurrent.futures.InvalidStateError:
                    pass  # its caller was cancelled meanwhile (asyncio.wrap_future cancels the future): nobody waits

    def _lock_writers(self) -> bool:
        """Take turns with the writers of other processes (`serve --workers N`) on a file lock beside the
        database. SQLite's own lock would do, but a writer that finds it taken sleeps 1, 2, 5, 10... ms
        before it looks again (so does any polling); a blocked flock() is woken the moment the lock is
        free. Bounded like SQLite's busy timeout: after it the write goes ahead without the file lock and
        SQLite's lock decides (a frozen peer then costs a 503, not a hung writer)."""
        if self.path == ":memory:":
            return False
        if self._lock_fd is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path + "-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._lock_fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        state = {"taken": False, "abandoned": False}
        guard, taken = threading.Lock(), threading.Event()

        own = os.dup(fd)  # the same lock (one open file description), on a descriptor this waiter owns

        def wait() -> None:
            try:
                fcntl.flock(own, fcntl.LOCK_EX)
                with guard:
                    if state["abandoned"]:  # the writer went ahead without it
                        fcntl.flock(own, fcntl.LOCK_UN)
                        return
                    state["taken"] = True
                taken.set()
            finally:
                os.close(own)

        threading.Thread(target=wait, name="sqlite-writers-lock", daemon=True).start()
        taken.wait(WRITER_LOCK_SECONDS)
        with guard:
            state["abandoned"] = not state["taken"]
            return bool(state["taken"])

    def _commit(self, group: list[_Write]) -> list[tuple[bool, Any]]:
        """Run the group's writes in one transaction; each write's outcome, (True, result) or (False, error),
        for the writer loop to hand back once it has let go of the locks."""
        conn = self._connect()  # failing, it fails the group (_write_loop)
        if len(group) == 1:  # nothing to share a commit with: the write runs as it would alone
            only = group[0]
            try:
                return [(True, only.fn(conn, *only.args))]
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                return [(False, _store_error(exc))]
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for w in group:
                conn.execute("SAVEPOINT write")
                try:
                    outcomes.append((True, w.fn(conn, *w.args)))
                    conn.execute("RELEASE write")
                except BaseException as exc:  # noqa: BLE001 - this write's error, handed to its caller
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    outcomes.append((False, _store_error(exc)))
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, _unavailable(exc))] * len(group)
        return outcomes

    # -- readers ----------------------------------------------------------------------------------

    async def read(self, fn: Callable[..., Any], args: tuple[Any, ...], *, point: bool = False) -> Any:
        """`point`: a read of one row by its key (bounded work, microseconds) runs on the calling thread, on
        a connection that never waits: handing it to a reader thread costs more than the read (the hand-off,
        two thread wake-ups, the GIL changing hands twice). If SQLite answers busy (in WAL mode a reader
        waits only in rare moments, e.g. a WAL reset) the read goes to the reader threads as any other."""
        if self.path == ":memory:":  # a second connection would open another, empty database
            return await self.write(fn, args)
        if self._conn is None:  # the writer creates the file and sets WAL mode first
            await self.write(lambda conn: None, ())
        if point and not self._closed:
            try:
                return fn(self._inline_connection(), *args)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise _unavailable(exc) from exc

        def call() -> Any:
            try:
                return fn(self._read_connection(), *args)
            except sqlite3.OperationalError as exc:
                raise _unavailable(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    def change_stamp(self) -> bytes | None:
        """Equal stamps: nothing was committed to the file between them, by any process (store/sqlite/changes.py);
        None: cannot tell, read again."""
        if self._conn is None or self._closed or self.path == ":memory:":  # our connection keeps the -shm file
            return None
        return self._changes.stamp()

    async def close(self) -> None:
        self._users -= 1
        if self._users > 0 or self._closed:
            return
        with self._writer_lock:
            self._closed = True
            writer = self._writer
        self._changes.close()
        if writer is not None:
            self._writes.put(None)
            await asyncio.get_running_loop().run_in_executor(None, writer.join)
        await asyncio.get_running_loop().run_in_executor(None, self._checkpoints.close)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with self._write_conn_lock:
            if self._inline_writer is not None:
                self._inline_writer.close()
                self._inline_writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._readers.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()


class SqliteBase:
    """A store on a SQLite file: its own database, or one shared with the other stores of the process."""

    def __init__(self, path_or_database: str | Path | SqliteDatabase) -> None:
        self._db = (
            path_or_database if isinstance(path_or_database, SqliteDatabase) else SqliteDatabase(path_or_database)
        )
        self._db.attach()
        self._closed = False

    @property
    def database(self) -> SqliteDatabase:
        """The database this store writes through (other stores of the process share it)."""
        return self._db

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Run `fn(connection, *args)` on the writer (every write, and reads that must see them); it may share
        its commit with other writes (see SqliteDatabase)."""
        return await self._db.write(fn, args)

    async def _run_point(self, fn: Any, *args: Any) -> Any:
        """As _run, for a write of one record (bounded work): it may commit on the calling thread when the
        writer is idle (SqliteDatabase.write)."""
        return await self._db.write(fn, args, point=True)

    async def _run_alone(self, fn: Any, *args: Any) -> Any:
        """As _run, outside any group commit (schema changes, which commit by themselves)."""
        return await self._db.write(fn, args, alone=True)

    async def _read(self, fn: Any, *args: Any) -> Any:
        """Run a read-only `fn(connection, *args)` on a reader thread; each statement sees every committed write."""
        return await self._db.read(fn, args)

    async def _read_point(self, fn: Any, *args: Any) -> Any:
        """As _read, for a read of one row by its primary key: run where it is called (SqliteDatabase.read)."""
        return await self._db.read(fn, args, point=True)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    def change_stamp(self) -> bytes | None:
        """Equal stamps: nothing in the store changed between them; None: cannot tell (SqliteDatabase.change_stamp)."""
        return self._db.change_stamp()

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

    # -- key envelopes (EnvelopeStore) ----------------------------------------------------------

    _ENVELOPES: tuple[EnvelopeTable, ...] = ()

    def _envelope_table(self, kind: EnvelopeKind) -> EnvelopeTable:
        for spec in self._ENVELOPES:
            if spec.kind is kind:
                return spec
        raise ValueError(f"{type(self).__name__} holds no {kind.value} envelopes")

    async def envelopes(self, kind: EnvelopeKind, kek_id: str | None, after: str, limit: int) -> list[StoredEnvelope]:
        spec = self._envelope_table(kind)
        where, params = spec.label_clause(kek_id)
        sql = (
            f"SELECT {spec.selected} FROM {spec.table} WHERE {where} AND id > ? "  # noqa: S608 - our constants
            "ORDER BY id LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> list[StoredEnvelope]:
            rows = conn.execute(sql, [*params, after, limit]).fetchall()
            return [env for env in (spec.envelope(row, kek_id) for row in rows) if env is not None]

        return await self._run(op)

    async def envelope_samples(self, kind: EnvelopeKind) -> list[StoredEnvelope]:
        spec = self._envelope_table(kind)
        # One index seek per KEK id in use: the next label above the last one seen ("" = no envelope).
        next_label = (
            f"SELECT {spec.kek_column}, {spec.selected} FROM {spec.table} "  # noqa: S608
            f"WHERE {spec.kek_column} > ?{spec.rows} ORDER BY {spec.kek_column}, id LIMIT 1"
        )
        where, _ = spec.label_clause(None)
        unlabelled = f"SELECT NULL, {spec.selected} FROM {spec.table} WHERE {where} LIMIT 1"  # noqa: S608

        def op(conn: sqlite3.Connection) -> list[StoredEnvelope]:
            samples: list[StoredEnvelope] = []
            label = ""
            while (row := conn.execute(next_label, (label,)).fetchone()) is not None:
                label = row[0]
                env = spec.envelope(row[1:], label)
                if env is not None:
                    samples.append(env)
            row = conn.execute(unlabelled).fetchone()
            if row is not None and (env := spec.envelope(row[1:], None)) is not None:
                samples.append(env)
            return samples

        return await self._run(op)

    async def count_envelopes(self, kind: EnvelopeKind, kek_id: str | None) -> int:
        spec = self._envelope_table(kind)
        where, params = spec.label_clause(kek_id)
        sql = f"SELECT count(*) FROM {spec.table} WHERE {where}"  # noqa: S608 - our constants
        return await self._run(lambda conn: int(conn.execute(sql, params).fetchone()[0]))

    async def rewrap_envelope(self, current: StoredEnvelope, envelope: bytes, kek_id: str) -> RewrapOutcome:
        (outcome,) = await self.rewrap_envelopes([(current, envelope)], kek_id)
        return outcome

    async def rewrap_envelopes(self, items: Sequence[tuple[StoredEnvelope, bytes]], kek_id: str) -> list[RewrapOutcome]:
        if not items:
            return []
        kinds = {current.kind for current, _ in items}
        if len(kinds) != 1:
            raise ValueError("rewrap_envelopes takes envelopes of one kind")
        spec = self._envelope_table(kinds.pop())
        record = f"id = ? AND {spec.project} = ?{spec.rows}"
        read = f"SELECT {spec.column} FROM {spec.table} WHERE {record}"  # noqa: S608
        write = f"UPDATE {spec.table} SET {spec.column} = ?, {spec.kek_column} = ? WHERE {record}"  # noqa: S608

        def one(conn: sqlite3.Connection, current: StoredEnvelope, envelope: bytes) -> RewrapOutcome:
            key = (current.record_id, current.project_id)
            row = conn.execute(read, key).fetchone()
            if row is None:
                return RewrapOutcome.GONE
            if spec.blob(row[0]) != current.envelope:
                return RewrapOutcome.CHANGED
            if spec.json_key is None:
                value: Any = envelope
            else:
                doc = json.loads(row[0], object_hook=decode_json)
                doc[spec.json_key] = envelope
                value = dump_json(doc)
            conn.execute(write, (value, kek_id, *key))
            return RewrapOutcome.REWRAPPED

        def op(conn: sqlite3.Connection) -> list[RewrapOutcome]:
            # One transaction: each compare and its write see the same row, whatever other processes do.
            return in_transaction(conn, lambda: [one(conn, current, envelope) for current, envelope in items])

        return await self._run(op)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.close()
