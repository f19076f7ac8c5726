"""An injectable clock, so that tests control time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC, truncated to the second (the precision every API shows)."""
    return datetime.now(UTC).replace(microsecond=0)
