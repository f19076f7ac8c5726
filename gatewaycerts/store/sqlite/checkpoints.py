"""WAL checkpoints off the write path: a thread of their own, on a connection of their own.

A checkpoint copies the WAL's committed pages into the database file and fsyncs it (synchronous=NORMAL in WAL
mode fsyncs at checkpoints only). SQLite runs a PASSIVE checkpoint beside writers and readers: it takes the
checkpoint lock, never the write lock, and never waits. Run by the writer thread (SQLite's automatic checkpoint
inside a commit, or a queued checkpoint holding the writers' locks), it made every write arriving meanwhile wait
for its copy and its fsyncs (tens to hundreds of ms on a loaded disk: the slow tail of an APIC change, see
docs/performance.md, "Stop 28: tails"). Here the writers only count their writes; every CHECKPOINT_EVERY writes
this thread is woken and checkpoints while they go on. What a commit promises does not change: a commit is in
the WAL before it is answered, and the WAL is fsynced before its pages are copied, as before.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("gatewaycerts.store")

# Writes committed (inline or in a writer's group, each write counted) between two checkpoints. An upload
# changes about a dozen pages: 64 writes are about the 1,000 pages of SQLite's own automatic checkpoint.
CHECKPOINT_EVERY = 64


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own thread when the writers have committed enough."""

    def __init__(self, path: str, every: int = CHECKPOINT_EVERY) -> None:
        self._path = path
        self._every = every
        self._lock = threading.Lock()
        self._writes = 0
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.done = 0  # checkpoints run, and the last one's (busy, WAL frames, frames copied): read by tests
        self.last: tuple[int, int, int] | None = None

    def committed(self, writes: int = 1) -> None:
        """Count committed writes (from any thread); wake the checkpoint thread every `every` of them."""
        with self._lock:
            self._writes += writes
            if self._writes < self._every or self._stopping:
                return
            self._writes = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)
                self._thread.start()
        self._wanted.set()

    def request(self) -> None:
        """Checkpoint now (whatever the count)."""
        self.committed(self._every)

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                break
            try:
                if conn is None:
                    conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                    conn.execute("PRAGMA wal_autocheckpoint=0")
                self.last = self._checkpoint(conn)
            except sqlite3.Error as exc:  # the next one retries; the WAL only grows meanwhile
                log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
            self.done += 1
        if conn is not None:
            conn.close()

    @staticmethod
    def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wanted.set()
        if thread is not None:
            thread.join()
