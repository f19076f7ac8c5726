"""Helpers every core service uses: CPU work off the event loop, retries of optimistic conflicts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

from gatewaycerts.domain.errors import ConflictError, MissingParameterError

T = TypeVar("T")

RETRIES = 16
MAX_BACKOFF = 0.05  # seconds


async def in_executor(executor: Executor | None, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run CPU-heavy pure work (key generation, signing, parsing) in the pki executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], what: str = "the record") -> T:
    for n in range(RETRIES):
        try:
            return await attempt()
        except ConflictError:
            # Exponential backoff with full jitter: spreads writers that collided so one of them wins the
            # next round, and keeps many writers of one record (a MongoDB round trip each) from exhausting
            # the retries.
            await asyncio.sleep(random.uniform(0, min(0.001 * 2**n, MAX_BACKOFF)))  # noqa: S311
    raise ConflictError(f"{what} is being changed by other requests; retry")


def require(value: T | None, field: str) -> T:
    if value is None or value == "":
        raise MissingParameterError(f"the parameter must be specified, parameterName:{field}", field=field)
    return value
