"""core/offload.py: short CPU work inline on the event loop with a process per CPU, else in the executor."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from gatewaycerts.core.offload import inline_suits, is_short, run_cpu
from gatewaycerts.domain.pca import KeyAlgorithm


@pytest.mark.parametrize(
    ("workers", "cpus", "inline"),
    [(1, 2, False), (2, 2, True), (4, 2, True), (1, 1, True), (3, 4, False)],
    ids=["one process on 2 CPUs", "a process per CPU", "more processes than CPUs", "1 on 1", "3 on 4"],
)
def test_inline_only_with_a_process_per_cpu(workers, cpus, inline):
    assert inline_suits(workers, cpus) is inline


@pytest.mark.parametrize(
    ("algorithms", "short"),
    [
        ((KeyAlgorithm.EC256,), True),
        ((KeyAlgorithm.EC384, KeyAlgorithm.EC256), True),
        ((KeyAlgorithm.RSA2048,), False),
        ((KeyAlgorithm.EC256, KeyAlgorithm.RSA4096), False),  # an EC CA, but an RSA key to generate
        ((KeyAlgorithm.SM2,), False),
        ((None,), False),
    ],
    ids=["P-256", "P-384 and P-256", "RSA-2048", "EC CA, new RSA key", "SM2", "unknown"],
)
def test_only_ec_work_is_short(algorithms, short):
    assert is_short(*algorithms) is short


async def test_run_cpu_runs_on_the_loop_thread_inline_and_in_the_pool_otherwise():
    loop_thread = threading.get_ident()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pki-test") as pool:
        assert await run_cpu(pool, True, threading.get_ident) == loop_thread
        assert await run_cpu(pool, False, threading.get_ident) != loop_thread
        assert await run_cpu(pool, True, lambda a, *, b: a + b, 1, b=2) == 3


async def test_run_cpu_raises_the_functions_error_either_way():
    def refuse() -> None:
        raise ValueError("no")

    with ThreadPoolExecutor(max_workers=1) as pool:
        for inline in (True, False):
            with pytest.raises(ValueError, match="no"):
                await run_cpu(pool, inline, refuse)
