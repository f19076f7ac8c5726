"""NotificationStore contract: webhooks, deliveries claimed by revision, expiry notices and the expiry scan,
on the real SQLite file and a real MongoDB wire server (FerretDB), beside the certificate store whose expiry
index the scan reads."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.app import build_notification_store
from gatewaycerts.domain.errors import ConflictError, NotFoundError
from gatewaycerts.domain.notifications import Delivery, DeliveryAttempt, DeliveryState, Webhook
from gatewaycerts.store.sqlite.notifications import SqliteNotificationStore
from tests.contract.test_certificate_store import make

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
async def stores(store):
    """(certificate store, notification store) on one database."""
    notifications = build_notification_store(store)
    await notifications.ensure_schema()
    yield store, notifications
    await notifications.close()


def webhook(hook_id: str, project: str = "p1", seconds: int = 0) -> Webhook:
    return Webhook(
        id=hook_id,
        project_id=project,
        url=f"https://hooks.example.com/{hook_id}",
        events=("certificate.expired", "certificate.renewed"),
        description="d",
        encrypted_secret=b'{"v":1}\x00\xfe',
        creator_id="admin",
        create_time=T0 + dt.timedelta(seconds=seconds),
    )


def delivery(delivery_id: str, hook: str = "h1", project: str = "p1", seconds: int = 0, due: int = 0) -> Delivery:
    return Delivery(
        id=delivery_id,
        project_id=project,
        webhook_id=hook,
        event_id=f"msg_{delivery_id}",
        event_type="certificate.renewed",
        body='{"type":"certificate.renewed","data":{"name":"é"}}',
        state=DeliveryState.PENDING,
        create_time=T0 + dt.timedelta(seconds=seconds),
        next_attempt=T0 + dt.timedelta(seconds=due),
    )


async def test_webhooks_round_trip_per_project(stores):
    _, n = stores
    first, second, other = webhook("h1", seconds=1), webhook("h2", seconds=2), webhook("h3", project="p2")
    for hook in (second, other, first):
        await n.insert_webhook(hook)
    assert await n.get_webhook("p1", "h1") == first
    assert await n.get_webhook("p2", "h1") is None  # another project's id is not there
    assert await n.list_webhooks("p1") == [first, second]
    assert await n.list_webhooks("p9") == []
    assert not await n.delete_webhook("p2", "h1")
    assert await n.delete_webhook("p1", "h1")
    assert not await n.delete_webhook("p1", "h1")
    assert await n.list_webhooks("p1") == [second]


async def test_deliveries_are_inserted_once_and_logged_newest_first(stores):
    _, n = stores
    await n.insert_webhook(webhook("h1"))
    assert await n.insert_deliveries([delivery("d1", seconds=1), delivery("d2", seconds=2)]) == 2
    assert await n.insert_deliveries([delivery("d1", seconds=9), delivery("d3", seconds=3)]) == 1
    assert await n.insert_deliveries([]) == 0
    page = await n.list_deliveries("p1", "h1", 0, 2)
    assert [d.id for d in page.items] == ["d3", "d2"] and page.total == 3
    assert [d.id for d in (await n.list_deliveries("p1", "h1", 2, 2)).items] == ["d1"]
    assert (await n.list_deliveries("p2", "h1", 0, 10)).total == 0
    assert await n.get_delivery("p1", "d1") == delivery("d1", seconds=1)  # the first insert stands
    assert await n.get_delivery("p2", "d1") is None
    assert await n.count_pending() == 3
    await n.delete_webhook("p1", "h1")  # its log goes with it
    assert (await n.list_deliveries("p1", "h1", 0, 10)).total == 0 and await n.count_pending() == 0


async def test_due_deliveries_and_the_claim_compare_and_swap(stores):
    _, n = stores
    await n.insert_deliveries(
        [delivery("late", due=50), delivery("soon", due=10), delivery("other", project="p2", due=20)]
    )
    due = await n.due_deliveries(T0 + dt.timedelta(seconds=30), 10)
    assert [d.id for d in due] == ["soon", "other"]  # every project, soonest first, not the later one
    soon = due[0]
    lease_end = T0 + dt.timedelta(seconds=90)
    claimed = await n.replace_delivery(replace(soon, next_attempt=lease_end, claimed_by="w1"), expected_revision=0)
    assert claimed.revision == 1
    with pytest.raises(ConflictError):  # a second claimant of the same revision loses
        await n.replace_delivery(replace(soon, next_attempt=lease_end, claimed_by="w2"), expected_revision=0)
    # Claimed: not due while the lease runs; due again after it (a worker that died mid-attempt).
    assert [d.id for d in await n.due_deliveries(T0 + dt.timedelta(seconds=89), 10)] == ["other", "late"]
    assert "soon" in [d.id for d in await n.due_deliveries(lease_end, 10)]
    attempt = DeliveryAttempt(time=T0 + dt.timedelta(seconds=31), status_code=204, error=None)
    done = replace(claimed, state=DeliveryState.DELIVERED, next_attempt=None, attempts=(attempt,), claimed_by=None)
    stored = await n.replace_delivery(done, expected_revision=1)
    assert stored.revision == 2 and await n.get_delivery("p1", "soon") == stored
    assert "soon" not in [d.id for d in await n.due_deliveries(T0 + dt.timedelta(days=9), 10)]
    assert await n.count_pending() == 2
    with pytest.raises(NotFoundError):
        await n.replace_delivery(replace(done, id="gone"), expected_revision=0)


async def test_concurrent_claims_have_one_winner(stores):
    _, n = stores
    await n.insert_deliveries([delivery("d1")])
    (d,) = await n.due_deliveries(T0, 10)
    results = await asyncio.gather(
        *(n.replace_delivery(replace(d, claimed_by=f"w{i}"), expected_revision=0) for i in range(6)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Delivery)]
    assert len(winners) == 1 and all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert (await n.get_delivery("p1", "d1")).claimed_by == winners[0].claimed_by


async def test_expiring_certificates_pages_through_the_window_in_order(stores):
    certificates, n = stores
    # Six with the same not_after (ties cross page boundaries), two later, one outside the window.
    for i in range(6):
        await certificates.insert(make(f"c{i}", name=f"same_{i}", project=f"p{i % 2}"))
    later = make("late", name="later")
    await certificates.insert(replace(later, info=replace(later.info, not_after=T0 + dt.timedelta(days=95))))
    far = make("far", name="far")
    await certificates.insert(replace(far, info=replace(far.info, not_after=T0 + dt.timedelta(days=400))))
    after, before = T0, T0 + dt.timedelta(days=100)
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = await n.expiring_certificates(after, before, cursor, 4)
        seen.extend(items)
        pages += 1
        if cursor is None:
            break
    assert pages == 2
    assert sorted(c.id for c in seen) == sorted([*(f"c{i}" for i in range(6)), "late"])
    assert len({c.id for c in seen}) == len(seen)  # no certificate twice across pages
    assert [c.not_after for c in seen] == sorted(c.not_after for c in seen)
    first = next(c for c in seen if c.id == "c1")
    assert (first.project_id, first.name, first.not_after) == ("p1", "same_1", T0 + dt.timedelta(days=90))
    assert await n.expiring_certificates(T0 + dt.timedelta(days=96), before, None, 10) == ([], None)


async def test_expiry_notices_are_recorded_once(stores):
    _, n = stores
    assert await n.seen_notices(["a", "b"]) == set()
    assert await n.record_notice("a", T0)
    assert not await n.record_notice("a", T0 + dt.timedelta(seconds=1))
    assert await n.seen_notices(["a", "b", "a"]) == {"a"}
    assert await n.seen_notices([]) == set()


async def test_the_scans_read_their_indexes_without_sorting(stores):
    _, n = stores
    if not isinstance(n, SqliteNotificationStore):
        # FerretDB v1 pushes no range down (see test_query_plans.py): the queries hint these indexes.
        hooks = await n._deliveries.index_information()
        assert [f for f, _ in hooks["webhook_deliveries_due"]["key"]] == ["state", "next_attempt"]
        certs = await n._certificates.index_information()
        assert [f for f, _ in certs["certificates_expiry"]["key"]] == ["not_after"]
        return

    def plans(conn):
        due = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM webhook_deliveries INDEXED BY webhook_deliveries_due "
            "WHERE state = 'pending' AND next_attempt <= ? ORDER BY next_attempt LIMIT 5",
            ("z",),
        ).fetchall()
        scan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT rowid, project_id, id, name, not_after FROM certificates "
            "INDEXED BY certificates_expiry WHERE not_after >= ? AND not_after < ? AND (not_after, rowid) > (?, ?) "
            "ORDER BY not_after, rowid LIMIT 5",
            ("a", "z", "b", 1),
        ).fetchall()
        return [r[-1] for r in due], [r[-1] for r in scan]

    due, scan = await n._read(plans)
    assert any("webhook_deliveries_due" in line for line in due) and not any("TEMP B-TREE" in x for x in due), due
    assert any("certificates_expiry" in line for line in scan), scan
    assert not any("TEMP B-TREE" in line for line in scan), scan
