"""When a managed certificate is renewed next, and how long a failed one waits (pure rules).

- The CA's window (ACME ARI) when the source gives one: a uniformly random moment inside it (now, if the
  window has begun already and its random moment is past; at once when the window has ended).
- Otherwise when a third of the lifetime remains, moved earlier by a random jitter of up to
  LIFETIME_JITTER of the lifetime (at most MAX_LIFETIME_JITTER), so certificates issued together do not
  all renew in the same second.
- After a failure: base * 2^(failures - 1), capped, times a random factor in [0.5, 1] (jitter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from gatewaycerts.domain.managed import WindowSource

LIFETIME_JITTER = 0.05
MAX_LIFETIME_JITTER = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Due:
    at: datetime
    source: WindowSource
    window_start: datetime
    window_end: datetime


def lifetime_due(not_before: datetime, not_after: datetime, rng: random.Random) -> Due:
    life = not_after - not_before
    at = not_after - life / 3
    jitter = min(life * LIFETIME_JITTER, MAX_LIFETIME_JITTER)
    start = at - jitter
    return Due(
        at=start + timedelta(seconds=rng.uniform(0, jitter.total_seconds())),
        source=WindowSource.LIFETIME,
        window_start=start,
        window_end=at,
    )


def window_due(start: datetime, end: datetime, now: datetime, rng: random.Random) -> Due:
    span = max((end - start).total_seconds(), 0.0)
    at = start + timedelta(seconds=rng.uniform(0, span))
    return Due(at=max(at, now) if end > now else now, source=WindowSource.ARI, window_start=start, window_end=end)


def backoff(failures: int, base: timedelta, cap: timedelta, rng: random.Random) -> timedelta:
    """The wait after the `failures`-th consecutive failure (1, 2, ...)."""
    exponent = min(max(failures - 1, 0), 32)
    full = min(base * (2**exponent), cap)
    return full * rng.uniform(0.5, 1.0)
