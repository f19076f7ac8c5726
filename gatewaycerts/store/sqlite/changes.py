"""Whether anything was committed to a SQLite file since a moment, without a query: its WAL-index header.

In WAL mode every process using the file maps its `-shm` file (the WAL index) and SQLite keeps there a header
that each commit rewrites (sqlite/src/wal.c, `WalIndexHdr`: `iChange` is counted up on every write transaction,
`mxFrame` is the last committed frame, the salts change when the WAL restarts). A reader finds what is committed
from that header, so while its 96 bytes (the header and its copy) are unchanged, nothing was committed since,
by this process or another. `WalChanges.stamp()` returns those bytes from a read-only shared mapping: no system
call, no SQL, a tenth of a microsecond. A caller that read something *after* taking a stamp may reuse what it read
for as long as the stamp is the same: the store holds exactly what it held then.

The mapping is opened only while a connection of this process holds the file (its shared lock keeps SQLite from
removing or truncating the `-shm` file), is checked once a second against the file's current inode, and is
closed with the database. Where no header can be read (an in-memory database, the file not in WAL mode yet) the
stamp is None: the caller reads every time.
"""

from __future__ import annotations

import mmap
import os
import threading
import time

HEADER_BYTES = 96  # WalIndexHdr (48 bytes) twice: SQLite writes both copies on every commit
RECHECK_SECONDS = 1.0


class WalChanges:
    def __init__(self, path: str) -> None:
        self._shm = path + "-shm"
        self._map: mmap.mmap | None = None
        self._inode: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._closed = False

    def stamp(self) -> bytes | None:
        """The WAL-index header now (equal stamps: nothing committed between them), or None (read every time)."""
        mapped = self._map
        if mapped is None or time.monotonic() - self._checked_at >= RECHECK_SECONDS:
            mapped = self._open()
            if mapped is None:
                return None
        try:
            return mapped[:HEADER_BYTES]
        except ValueError:  # closed meanwhile
            return None

    def _open(self) -> mmap.mmap | None:
        """The mapping, (re)opened when missing or when the `-shm` file is another file than the one mapped."""
        with self._lock:
            if self._closed:
                return None
            try:
                st = os.stat(self._shm)
            except OSError:
                self._unmap()
                return None
            inode = (st.st_dev, st.st_ino)
            if self._map is not None and inode == self._inode:
                self._checked_at = time.monotonic()
                return self._map
            self._unmap()
            if st.st_size < HEADER_BYTES:  # not initialised by SQLite yet
                return None
            try:
                fd = os.open(self._shm, os.O_RDONLY)
            except OSError:
                return None
            try:
                opened = os.fstat(fd)
                if (opened.st_dev, opened.st_ino) != inode:
                    return None  # replaced between stat and open: ask again next time
                self._map = mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
            except (OSError, ValueError):
                return None
            finally:
                os.close(fd)  # the mapping keeps the file
            self._inode = inode
            self._checked_at = time.monotonic()
            return self._map

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
            self._inode = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._unmap()
