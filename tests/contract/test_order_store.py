"""The OrderStore contract (orders, secrets, containers, preferred CA), run against both adapters."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.domain.errors import ConflictError, OrderNotFoundError
from gatewaycerts.domain.orders import Container, ContainerType, Order, OrderStatus, OrderType, Secret, SecretType

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def order(order_id: str, *, project: str = "p1", seconds: int = 0, **kw) -> Order:
    values = dict(
        id=order_id,
        project_id=project,
        type=OrderType.KEY,
        meta={"name": "k", "algorithm": "aes", "bit_length": 256, "mode": "cbc", "expiration": None},
        status=OrderStatus.PENDING,
        creator_id="alice",
        create_time=T0 + dt.timedelta(seconds=seconds),
        update_time=T0 + dt.timedelta(seconds=seconds),
    )
    values.update(kw)
    return Order(**values)


def secret(secret_id: str, *, project: str = "p1") -> Secret:
    return Secret(
        id=secret_id,
        project_id=project,
        name="k",
        secret_type=SecretType.SYMMETRIC,
        content_type="application/octet-stream",
        encrypted_payload=b'{"v":1}\x00\xff',
        creator_id="alice",
        create_time=T0,
        algorithm="aes",
        bit_length=256,
        mode="cbc",
        expiration=T0 + dt.timedelta(days=1),
    )


async def test_order_round_trip_preserves_every_field(order_store):
    full = order(
        "o1",
        type=OrderType.CERTIFICATE,
        meta={"request_type": "custom", "nested": {"a": [1, "b"]}},
        status=OrderStatus.ERROR,
        sub_status="s",
        sub_status_message="m",
        secret_id="s1",
        container_id="c1",
        error_status_code="400",
        error_reason="bad",
        encrypted_params=b"\x00\x01",
        attempts=2,
        claimed_by="w1",
        claim_until=T0 + dt.timedelta(minutes=1),
    )
    await order_store.insert_order(full)
    assert await order_store.get_order("p1", "o1") == full
    assert await order_store.get_order("p2", "o1") is None
    with pytest.raises(ConflictError):
        await order_store.insert_order(full)


async def test_list_orders_pages_newest_first_per_project(order_store):
    for i in range(5):
        await order_store.insert_order(order(f"o{i}", seconds=i))
    await order_store.insert_order(order("x", project="p2"))
    page = await order_store.list_orders("p1", 1, 2)
    assert [o.id for o in page.items] == ["o3", "o2"] and page.total == 5
    assert await order_store.delete_order("p1", "o4") and not await order_store.delete_order("p2", "o3")
    assert (await order_store.list_orders("p1", 0, 10)).total == 4


async def test_replace_order_is_compare_and_swap(order_store):
    await order_store.insert_order(order("o1"))
    stored = await order_store.replace_order(replace(order("o1"), attempts=1), expected_revision=0)
    assert stored.revision == 1 and (await order_store.get_order("p1", "o1")).attempts == 1
    with pytest.raises(ConflictError):
        await order_store.replace_order(replace(order("o1"), attempts=9), expected_revision=0)
    with pytest.raises(OrderNotFoundError):
        await order_store.replace_order(order("gone"), expected_revision=0)


async def test_claimable_orders_are_pending_and_unclaimed_or_expired(order_store):
    now = T0 + dt.timedelta(hours=1)
    await order_store.insert_order(order("free", seconds=3))
    await order_store.insert_order(order("held", seconds=1, claimed_by="w", claim_until=now + dt.timedelta(seconds=5)))
    await order_store.insert_order(order("stale", seconds=2, claimed_by="w", claim_until=now - dt.timedelta(seconds=5)))
    await order_store.insert_order(order("done", seconds=0, status=OrderStatus.ACTIVE))
    await order_store.insert_order(order("other-project", project="p2", seconds=4))
    assert [o.id for o in await order_store.claimable_orders(now, 10)] == ["stale", "free", "other-project"]
    assert [o.id for o in await order_store.claimable_orders(now, 1)] == ["stale"]


async def test_concurrent_claims_exactly_one_wins(order_store):
    await order_store.insert_order(order("o1"))
    base = await order_store.get_order("p1", "o1")
    attempts = [replace(base, claimed_by=f"w{i}", attempts=1) for i in range(6)]
    results = await asyncio.gather(
        *(order_store.replace_order(a, expected_revision=0) for a in attempts), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, Order)]
    assert len(winners) == 1 and all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert (await order_store.get_order("p1", "o1")).claimed_by == winners[0].claimed_by


async def test_secrets_and_containers_round_trip_overwrite_and_delete(order_store):
    s = secret("s1")
    await order_store.put_secret(s)
    assert await order_store.get_secret("p1", "s1") == s
    assert await order_store.get_secret("p2", "s1") is None
    await order_store.put_secret(replace(s, name="again"))  # a retried attempt overwrites its own ids
    assert (await order_store.get_secret("p1", "s1")).name == "again"
    c = Container("c1", "p1", "keys", ContainerType.RSA, "alice", T0, (("public_key", "s2"), ("private_key", "s1")))
    await order_store.put_container(c)
    assert await order_store.get_container("p1", "c1") == c
    assert not await order_store.delete_container("p2", "c1")
    assert await order_store.delete_container("p1", "c1") and await order_store.get_container("p1", "c1") is None
    assert await order_store.delete_secret("p1", "s1") and not await order_store.delete_secret("p1", "s1")


async def test_preferred_ca_per_project(order_store):
    assert await order_store.preferred_ca("p1") is None
    await order_store.set_preferred_ca("p1", "ca-1")
    await order_store.set_preferred_ca("p1", "ca-2")
    await order_store.set_preferred_ca("p2", "ca-9")
    assert (await order_store.preferred_ca("p1"), await order_store.preferred_ca("p2")) == ("ca-2", "ca-9")
