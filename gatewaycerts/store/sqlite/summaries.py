"""Rows already decoded, by their exact stored text (one job: skip decoding a row seen before)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# ~3 KB an entry (the row's text and the objects decoded from it): at most ~3 MB per store.
SUMMARIES_KEPT = 1024


class SummaryMemo(Generic[K, V]):
    """`decode(text)` remembered for the last `kept` distinct texts (a row's text, or a tuple of its texts),
    oldest dropped first. Used for certificate summaries and for CA rows (SqlitePcaStore.get_authority).

    The key is the whole stored text, read from the row on every call, so an answer can never be stale: a
    row changed by any writer (another replica on the same file included) has another text and is decoded
    anew. What is kept is what `decode` made of it — a frozen record (a Certificate summary has no chain, key
    or bindings; a CA's key stays its encrypted envelope) — so sharing one object between readers is safe.
    Lookups take no lock (one dict read); insertions take one, because point reads may also run on the reader
    threads."""

    __slots__ = ("_decode", "_items", "_kept", "_lock")

    def __init__(self, decode: Callable[[K], V], kept: int = SUMMARIES_KEPT) -> None:
        self._decode = decode
        self._kept = kept
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def __call__(self, text: K) -> V:
        value = self._items.get(text)
        if value is None:
            value = self._decode(text)
            with self._lock:
                while len(self._items) >= self._kept:
                    del self._items[next(iter(self._items))]
                self._items[text] = value
        return value

    def __len__(self) -> int:
        return len(self._items)
