"""Where a request's CPU-bound pure work runs: inline on the event loop, or handed to the pki executor.

With a process per usable CPU (`serve --workers N`, N >= CPUs) the processes already keep every core busy: a
hand-off to a thread buys no throughput there and costs a hop (a future, a thread wake-up, a wake-up of the
loop) and GIL hand-offs. Short work then runs inline. Work that could block the loop for long (RSA key
generation, RSA signatures) always goes to the executor."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from gatewaycerts.core.common import in_executor
from gatewaycerts.domain.pca import KeyAlgorithm

T = TypeVar("T")

# Keys whose signature (and generation) takes well under a millisecond: P-256 ~45 µs, P-384 ~0.3 ms to sign.
_SHORT = frozenset({KeyAlgorithm.EC256, KeyAlgorithm.EC384})


def inline_suits(workers: int, cpus: int) -> bool:
    """Whether short CPU work should run on the event loop: when there is a server process per CPU."""
    return workers >= cpus


def is_short(*algorithms: KeyAlgorithm | None) -> bool:
    """Whether signing with (and generating) keys of these algorithms is short enough to run inline."""
    return all(alg in _SHORT for alg in algorithms)


async def run_cpu(executor: Executor | None, inline: bool, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """`fn(*args, **kwargs)`: on the event loop when `inline`, else in the executor."""
    if inline:
        return fn(*args, **kwargs)
    return await in_executor(executor, fn, *args, **kwargs)
