"""core/stamped.StampedReads: a read is reused only under the stamp taken before it; a new stamp drops them all;
no stamp, no reuse."""

from __future__ import annotations

import asyncio

from gatewaycerts.core.stamped import StampedReads


class Source:
    def __init__(self) -> None:
        self.stamp: object | None = 1
        self.value = "v1"
        self.loads = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def load(self) -> str:
        self.loads += 1
        value = self.value
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return value


async def test_reused_while_the_stamp_holds_and_read_again_when_it_moves():
    src = Source()
    reads: StampedReads[str, str] = StampedReads(lambda: src.stamp)
    assert [await reads.read("k", src.load) for _ in range(3)] == ["v1"] * 3
    assert src.loads == 1
    src.stamp, src.value = 2, "v2"
    assert await reads.read("k", src.load) == "v2"
    assert await reads.read("other", src.load) == "v2"
    assert src.loads == 3  # one per key under the new stamp


async def test_no_stamp_reads_every_time():
    src = Source()
    src.stamp = None
    reads: StampedReads[str, str] = StampedReads(lambda: src.stamp)
    for _ in range(3):
        await reads.read("k", src.load)
    assert src.loads == 3


async def test_a_read_begun_under_an_older_stamp_is_never_kept_under_a_newer_one():
    src = Source()
    reads: StampedReads[str, str] = StampedReads(lambda: src.stamp)
    gate = src.gate = asyncio.Event()
    slow = asyncio.ensure_future(reads.read("k", src.load))  # reads v1 under stamp 1, then waits at the gate
    await src.started.wait()
    src.stamp, src.value, src.gate = 2, "v2", None  # a commit while it waits
    assert await reads.read("other", src.load) == "v2"  # a reader under stamp 2
    gate.set()
    assert await slow == "v1"  # the slow reader gets its own read ...
    assert await reads.read("k", src.load) == "v2"  # ... which is not kept for stamp 2
    assert src.loads == 3


async def test_bounded():
    src = Source()
    reads: StampedReads[int, str] = StampedReads(lambda: src.stamp, limit=4)
    for k in range(10):
        await reads.read(k, src.load)
    assert len(reads._values) <= 4
