"""The SQLite writer's group commit: writes queued behind one another share a transaction, each in its own
savepoint, so one that fails is undone alone; results are handed back only after the commit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gatewaycerts.domain.errors import DuplicateNameError
from gatewaycerts.domain.models import CertificateFilter
from gatewaycerts.store.sqlite.audit import SqliteAuditStore
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from tests.contract.test_certificate_store import make


@pytest.fixture
async def shared(tmp_path):
    db = SqliteDatabase(tmp_path / "group.db")
    certificates, audit = SqliteCertificateStore(db), SqliteAuditStore(db)
    await certificates.ensure_schema()
    await audit.ensure_schema()
    yield db, certificates
    await audit.close()
    await certificates.close()


async def _held_writer(db: SqliteDatabase) -> tuple[threading.Event, asyncio.Task]:
    """Occupy the writer thread until the event is set, so the next writes queue up behind it."""
    started, release = threading.Event(), threading.Event()

    def hold(conn) -> None:
        started.set()
        release.wait(10)

    task = asyncio.ensure_future(db.write(hold, ()))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    return release, task


async def _queued(db: SqliteDatabase, n: int) -> None:
    """One turn of the loop starts every task created so far, and each puts its write on the queue before it
    first waits: afterwards all `n` are queued behind the held writer."""
    await asyncio.sleep(0)
    assert db._writes.qsize() == n


async def test_queued_writes_share_one_commit_and_a_failing_one_is_undone_alone(shared):
    db, store = shared
    await store.insert(make("c0", name="taken"))
    statements: list[str] = []
    db._connect().set_trace_callback(statements.append)
    release, holder = await _held_writer(db)
    writes = [asyncio.ensure_future(store.insert(make(f"c{i}", name=f"new_{i}"))) for i in range(1, 5)]
    writes.insert(2, asyncio.ensure_future(store.insert(make("dup", name="taken"))))
    await _queued(db, 5)
    release.set()
    await holder
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "DuplicateNameError", "NoneType", "NoneType"]
    assert isinstance(results[2], DuplicateNameError)
    control = [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT", "ROLLBACK")]
    assert control.count("BEGIN IMMEDIATE") == 1 and control.count("COMMIT") == 1  # one transaction for five
    assert control.count("SAVEPOINT write") == 5 and control.count("ROLLBACK TO write") == 1
    page = await store.list("p1", CertificateFilter(), 0, 10)
    assert sorted(c.name for c in page.items) == ["new_1", "new_2", "new_3", "new_4", "taken"]
    assert page.total == 5  # the counters saw exactly the writes that committed
    assert (await store.get("p1", "dup")) is None


async def test_a_write_alone_never_joins_a_group(shared):
    db, store = shared
    statements: list[str] = []
    db._connect().set_trace_callback(statements.append)
    release, holder = await _held_writer(db)
    first = asyncio.ensure_future(store.insert(make("a1")))
    schema = asyncio.ensure_future(store.ensure_schema())  # executescript commits by itself: it must run alone
    last = asyncio.ensure_future(store.insert(make("a2")))
    await _queued(db, 3)
    release.set()
    await asyncio.gather(holder, first, schema, last)
    assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 2
    assert not any(s.startswith("SAVEPOINT write") for s in statements)  # each ran on its own


async def test_writers_of_other_processes_take_turns_on_a_file_lock(shared, monkeypatch):
    """The writer waits for the lock file beside the database (held here as another process would), and
    writes once it is released; a peer that never releases costs at most the bound, then SQLite decides."""
    import fcntl
    import os
    import time

    import gatewaycerts.store.sqlite.base as base

    db, store = shared
    fd = os.open(db.path + "-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the "other process" is writing
        pending = asyncio.ensure_future(store.insert(make("w1")))
        done, _ = await asyncio.wait({pending}, timeout=0.5)  # far below the 5 s bound: it must still wait
        assert not done
        fcntl.flock(fd, fcntl.LOCK_UN)  # ... and is done: the waiting writer goes on
        await pending
        assert await store.get("p1", "w1") is not None

        monkeypatch.setattr(base, "WRITER_LOCK_SECONDS", 0.2)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a peer that never lets go
        started = time.monotonic()
        await store.insert(make("w2"))
        assert time.monotonic() - started >= 0.2  # it waited the bound, then wrote under SQLite's own lock
        assert await store.get("p1", "w2") is not None
    finally:
        os.close(fd)


async def test_the_writer_outlives_a_failing_group(shared, monkeypatch):
    """Anything going wrong around a commit fails that group's writes (503 material), never the writer."""
    from gatewaycerts.domain.errors import StoreUnavailableError

    db, store = shared
    real = db._lock_writers
    calls = {"n": 0}

    def broken_once() -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise PermissionError("the lock file cannot be opened")
        return real()

    monkeypatch.setattr(db, "_lock_writers", broken_once)
    monkeypatch.setattr(db, "_write_inline", lambda fn, args: (False, None))  # every write to the writer thread
    with pytest.raises(StoreUnavailableError):
        await store.insert(make("f1"))
    await store.insert(make("f2"))  # the same writer thread goes on
    assert await store.get("p1", "f1") is None and await store.get("p1", "f2") is not None


async def _threads_of_writes(db: SqliteDatabase) -> list[str]:
    """The names of the threads that run the database's writes from now on (the writer's or the loop's)."""
    seen: list[str] = []
    real = db.write

    async def write(fn, args, **kw):
        def traced(conn, *a):
            seen.append(threading.current_thread().name)
            return fn(conn, *a)

        return await real(traced, args, **kw)

    db.write = write  # type: ignore[method-assign]
    return seen


async def test_a_point_write_on_an_idle_database_commits_on_the_calling_thread(shared):
    """No hand-off to the writer when it has nothing to do: the write commits in its own transaction on the
    event loop's thread, and a failing one is undone and raised as the writer would hand it back."""
    db, store = shared
    await store.insert(make("i0", name="taken"))  # the writer has set the file up
    threads = await _threads_of_writes(db)
    statements: list[str] = []
    db._inline_write_connection().set_trace_callback(statements.append)
    await store.insert(make("i1", name="inline_one"))
    assert threads == [threading.current_thread().name]
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert (await store.get("p1", "i1")).name == "inline_one"  # committed: another connection reads it
    statements.clear()
    with pytest.raises(DuplicateNameError):
        await store.insert(make("i2", name="taken"))
    assert statements[-1] == "ROLLBACK" and "COMMIT" not in statements
    assert await store.get("p1", "i2") is None
    page = await store.list("p1", CertificateFilter(), 0, 10)
    assert page.total == 2  # the counters saw exactly the writes that committed


async def test_point_writes_beyond_the_rate_bound_go_to_the_writer(shared, monkeypatch):
    """Under a stream of writes the inline path gives way to the writer's group commit."""
    import gatewaycerts.store.sqlite.base as base

    db, store = shared
    await store.insert(make("r0"))
    monkeypatch.setattr(base, "INLINE_WRITES_PER_SECOND", 0.0)
    db._inline_tokens = 2.0
    threads = await _threads_of_writes(db)
    for i in range(1, 5):
        await store.insert(make(f"r{i}"))
    loop_thread = threading.current_thread().name
    assert threads[:2] == [loop_thread, loop_thread]
    assert threads[2:] == ["sqlite-writer", "sqlite-writer"]
    assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 5


async def _until(condition, seconds: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_no_write_connection_checkpoints_the_wal_itself(shared, monkeypatch):
    """A WAL checkpoint writes and fsyncs the database file: neither the inline connection (the event loop) nor
    the writer's (inside a group's commit, which its writes wait for) runs one; after CHECKPOINT_EVERY writes,
    inline or grouped, the Checkpointer's own thread does, on its own connection."""
    db, store = shared
    await store.insert(make("k0"))
    assert db._connect().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert db._inline_write_connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    checkpointer = db._checkpoints
    monkeypatch.setattr(checkpointer, "_every", 4)
    checkpointer._writes = 0  # k0 counted: count from here
    seen: list[tuple[str, str]] = []
    for conn in (db._connect(), db._inline_write_connection()):
        conn.set_trace_callback(lambda statement: seen.append((threading.current_thread().name, statement)))
    before = checkpointer.done
    await store.insert(make("k1"))  # inline
    release, held = await _held_writer(db)
    grouped = [asyncio.ensure_future(store.insert(make(f"k{i}"))) for i in (2, 3)]
    await _queued(db, 2)
    release.set()
    await held
    await asyncio.gather(*grouped)  # 1 inline + the held write + 2 grouped = 4
    await _until(lambda: checkpointer.done > before)
    assert not [s for _, s in seen if "checkpoint" in s.lower()]
    assert checkpointer._thread is not None and checkpointer._thread.name == "sqlite-checkpoint"
    assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 4


async def test_a_checkpoint_runs_while_a_write_holds_the_writers_locks(shared):
    """The checkpoint takes none of the writers' locks (and SQLite's PASSIVE checkpoint not its write lock): it
    completes while a write is open on the writer thread, and the write commits after it. Queued behind the
    writer, as checkpoints were, it would wait for the write."""
    db, store = shared
    await store.insert(make("c0"))
    for i in range(1, 4):
        await store.insert(make(f"c{i}"))  # frames in the WAL to copy
    started, release = threading.Event(), threading.Event()

    def hold(conn) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE certificates SET revision = revision WHERE id = 'c0'")
        started.set()
        release.wait(10)
        conn.execute("COMMIT")

    task = asyncio.ensure_future(db.write(hold, ()))
    try:
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        assert db._write_conn_lock.locked()
        before = db._checkpoints.done
        db._checkpoints.request()
        await _until(lambda: db._checkpoints.done > before)
        assert not task.done()  # the write was still open when the checkpoint finished
        busy, frames, copied = db._checkpoints.last
        assert busy == 0 and copied == frames > 0  # and it copied every committed frame
    finally:
        release.set()
    await task
    assert (await store.get("p1", "c0")) is not None


async def test_the_writer_outlives_a_caller_cancelled_while_its_write_runs(shared):
    """A caller cancelled while the writer runs its write (a client gone, a timeout) leaves a cancelled future
    behind: handing that one its result must not end the writer thread, and the write itself still commits."""
    db, store = shared
    release, held = await _held_writer(db)
    held.cancel()  # the awaiting task goes; the write is already running on the writer thread
    with pytest.raises(asyncio.CancelledError):
        await held
    release.set()
    await asyncio.wait_for(store.insert(make("after", name="after_cancel")), 10)  # the writer still answers
    assert (await store.get("p1", "after")).name == "after_cancel"
    assert db._writer is not None and db._writer.is_alive()


async def test_writes_keep_their_statement_journal_in_memory(shared):
    """A certificate insert with its count triggers journals ~25 pages; SQLite spills that past 64 KiB to a
    temporary file unless temp_store is MEMORY. Both write connections (the writer thread's, and the event
    loop's for inline point writes) must keep it in memory, whichever one a write lands on."""
    db, store = shared
    await store.insert(make("t0", name="first"))  # the writer has set the file up

    def temp_store(conn) -> int:
        return conn.execute("PRAGMA temp_store").fetchone()[0]

    release, held = await _held_writer(db)
    queued = asyncio.ensure_future(db.write(temp_store, ()))  # behind the held writer: the writer thread's
    release.set()
    await held
    assert await queued == 2
    threads = await _threads_of_writes(db)
    assert await db.write(temp_store, (), point=True) == 2
    assert threads == [threading.current_thread().name]  # that point write committed inline, on the loop
    await store.insert(make("t1", name="second"))
    assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 2
