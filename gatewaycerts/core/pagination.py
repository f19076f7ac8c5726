"""APIG's lenient offset/limit coercion."""

from __future__ import annotations

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1


def coerce_page(offset: int | None, limit: int | None) -> tuple[int, int]:
    """offset < 0 -> 0; limit <= 0 or absent -> 20; limit > 500 -> 500 (APIG behaviour)."""
    off = min(max(0, offset or 0), MAX_OFFSET)
    lim = DEFAULT_LIMIT if not limit or limit <= 0 else min(limit, MAX_LIMIT)
    return off, lim
