"""Offset/limit paging: APIG's lenient coercion, and the strict bounds of the other dialects."""

from __future__ import annotations

from gatewaycerts.domain.errors import InvalidInputError

DEFAULT_LIMIT = 20
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1


def coerce_page(offset: int | None, limit: int | None) -> tuple[int, int]:
    """offset < 0 -> 0; limit <= 0 or absent -> 20; limit > 500 -> 500 (APIG behaviour)."""
    off = min(max(0, offset or 0), MAX_OFFSET)
    lim = DEFAULT_LIMIT if not limit or limit <= 0 else min(limit, MAX_LIMIT)
    return off, lim


def page_bounds(offset: int | None, limit: int | None, *, default_limit: int, max_limit: int) -> tuple[int, int]:
    """offset 0 to MAX_OFFSET (default 0) and limit 1 to max_limit (default default_limit), or a 400 that
    names the parameter; nothing larger reaches a store (SQLite integers are 64-bit)."""
    off = 0 if offset is None else offset
    lim = default_limit if limit is None else limit
    if not 0 <= off <= MAX_OFFSET:
        raise InvalidInputError(f"Invalid parameter value, parameterName:offset. Use 0 to {MAX_OFFSET}", field="offset")
    if not 1 <= lim <= max_limit:
        raise InvalidInputError(f"Invalid parameter value, parameterName:limit. Use 1 to {max_limit}", field="limit")
    return off, lim
