"""Summary rows already decoded, by their exact stored text (one job: skip decoding a row seen before)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gatewaycerts.domain.models import Certificate

# ~3 KB an entry (the row's text and the objects decoded from it): at most ~3 MB per store.
SUMMARIES_KEPT = 1024


class SummaryMemo:
    """`decode(summary)` remembered for the last SUMMARIES_KEPT distinct texts, oldest dropped first.

    The key is the whole stored text, read from the row on every call, so an answer can never be stale: a
    row changed by any writer (another replica on the same file included) has another text and is decoded
    anew. What is kept is what `decode` made of it — a frozen Certificate without chain, key or bindings
    (summaries carry none) — so sharing one object between readers is safe. Lookups take no lock (one dict
    read); insertions take one, because point reads may also run on the reader threads."""

    __slots__ = ("_decode", "_items", "_kept", "_lock")

    def __init__(self, decode: Callable[[str], Certificate], kept: int = SUMMARIES_KEPT) -> None:
        self._decode = decode
        self._kept = kept
        self._items: dict[str, Certificate] = {}
        self._lock = threading.Lock()

    def __call__(self, summary: str) -> Certificate:
        cert = self._items.get(summary)
        if cert is None:
            cert = self._decode(summary)
            with self._lock:
                while len(self._items) >= self._kept:
                    del self._items[next(iter(self._items))]
                self._items[summary] = cert
        return cert

    def __len__(self) -> int:
        return len(self._items)
