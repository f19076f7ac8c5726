"""Point reads reused while the store says nothing changed (`change_stamp`, store/interfaces.py).

A store that can tell cheaply whether anything at all was committed since a moment (SQLite: the WAL-index header,
store/sqlite/changes.py) gives a stamp; a read made after taking a stamp is exactly what the store holds for as
long as the stamp is equal. `StampedReads` keeps such reads, by key, for the current stamp only: a new stamp
drops them all. So a reader gets what a read at that instant would give, with no query while nothing changes,
and every replica and process sees every commit at once (any commit to the file moves the stamp). A store that
cannot tell (None: MongoDB) is read every time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEPT = 65536  # reads kept for one stamp; then the memo starts again empty


class StampedReads(Generic[K, V]):
    def __init__(self, stamp: Callable[[], object | None], *, limit: int = MAX_KEPT) -> None:
        self._stamp = stamp
        self._limit = limit
        self._at: object | None = None
        self._values: dict[K, V] = {}

    async def read(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        stamp = self._stamp()  # before the read: a commit after this makes the next stamp differ
        if stamp is None:
            return await load()
        if stamp != self._at:
            self._values = {}
            self._at = stamp
        elif key in self._values:
            return self._values[key]
        value = await load()
        # kept only under the stamp taken before this very read: if another reader moved to a newer stamp
        # meanwhile, this value may be older than that stamp
        if self._at == stamp:
            if len(self._values) >= self._limit:
                self._values = {}
            self._values[key] = value
        return value
