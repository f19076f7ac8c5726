"""The renewal loop's rules: due times (ARI window, a third of the lifetime, jitter), backoff (doubling,
capped, jittered) and the rule that every outcome is told to the EventSink (pinned with a recording sink;
the webhook delivery itself is tested with the real sink)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from gatewaycerts.appkeys import RENEWAL_SERVICE, RENEWAL_WORKER
from gatewaycerts.core.events import EventType
from gatewaycerts.core.renewal.schedule import MAX_LIFETIME_JITTER, backoff, lifetime_due, window_due
from gatewaycerts.domain.managed import WindowSource
from tests.conftest import app_on
from tests.factories import MovableClock
from tests.renewal.helpers import CAS, CERTS, create_managed, make_ca, ok

T0 = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(20))
def test_lifetime_due_is_a_third_of_the_lifetime_before_the_end_minus_jitter(seed):
    rng = random.Random(seed)
    for life in (timedelta(minutes=6), timedelta(days=47), timedelta(days=398)):
        due = lifetime_due(T0, T0 + life, rng)
        jitter = min(life * 0.05, MAX_LIFETIME_JITTER)
        assert T0 + life * 2 / 3 - jitter <= due.at <= T0 + life * 2 / 3
        assert due.source is WindowSource.LIFETIME


@pytest.mark.parametrize("seed", range(20))
def test_window_due_is_inside_the_window_and_never_in_the_past(seed):
    rng = random.Random(seed)
    start, end = T0 + timedelta(days=60), T0 + timedelta(days=62)
    due = window_due(start, end, T0, rng)
    assert start <= due.at <= end and due.source is WindowSource.ARI
    # A window that has begun: not before now; one that has ended: now.
    now = T0 + timedelta(days=61)
    assert now <= window_due(start, end, now, rng).at <= end
    assert window_due(start, end, end + timedelta(hours=1), rng).at == end + timedelta(hours=1)


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(7)
    base, cap = timedelta(seconds=60), timedelta(hours=6)
    for failures in range(1, 40):
        full = min(base * 2 ** (failures - 1), cap)
        wait = backoff(failures, base, cap, rng)
        assert full / 2 <= wait <= full
    assert backoff(10_000, base, cap, rng) <= cap


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, EventType, dict]] = []

    async def emit(self, project_id, event_type, data) -> None:
        self.events.append((project_id, event_type, dict(data)))


async def test_every_renewal_and_failure_is_emitted(aiohttp_client, settings, every_store, auth):
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock, renewal_worker=False)
    client = await aiohttp_client(app)
    sink = RecordingSink()
    worker = app[RENEWAL_WORKER]
    worker.events = sink
    h = auth()
    ca_id = await make_ca(client, h)
    cert_id = (await create_managed(client, h, ca_id))["id"]
    assert app[RENEWAL_SERVICE] is not None and await worker.run_once() == 1
    [(project, kind, data)] = sink.events
    assert project == "p1" and kind is EventType.CERTIFICATE_RENEWED
    assert data["certificate_id"] == cert_id and data["name"] == "shop_managed" and data["source"] == "private_ca"
    assert data["revision"] == 1 and data["not_after"].endswith("Z")
    await ok(await client.post(f"{CAS}/{ca_id}/disable", headers=h), 204)
    await ok(await client.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert await worker.run_once() == 1
    project, kind, data = sink.events[-1]
    assert kind is EventType.CERTIFICATE_RENEWAL_FAILED and data["attempt"] == 1
    assert "disabled" in data["error"] and data["certificate_id"] == cert_id
    assert not any("PRIVATE KEY" in repr(e) for e in sink.events)


class WindowSource_:
    """The real private-CA source with a renewal window (as an ACME CA with ARI gives one)."""

    def __init__(self, real, window) -> None:
        self.kind, self._real, self.window = real.kind, real, window

    async def check_settings(self, project_id, settings):
        return await self._real.check_settings(project_id, settings)

    async def issue(self, request):
        return await self._real.issue(request)

    async def renewal_window(self, project_id, settings, chain_pem):
        return self.window


@pytest.mark.parametrize(
    ("start", "end", "earliest", "latest"),
    [
        # a window ahead: the window is asked again in 6 h (it may move earlier), nothing renews before it opens
        (timedelta(days=20), timedelta(days=21), timedelta(hours=6), timedelta(hours=6)),
        (timedelta(hours=1), timedelta(hours=2), timedelta(hours=1), timedelta(hours=2)),  # inside the window
        (-timedelta(days=2), -timedelta(days=1), timedelta(seconds=30), timedelta(seconds=30)),  # past: not at once
    ],
)
async def test_the_cas_window_decides_and_never_makes_it_due_at_once(
    aiohttp_client, settings, every_store, auth, start, end, earliest, latest
):
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock)
    client = await aiohttp_client(app)
    service = app[RENEWAL_SERVICE]
    now = clock.now
    service.sources["private_ca"] = WindowSource_(service.sources["private_ca"], (now + start, now + end))
    h = auth()
    cert_id = (await create_managed(client, h, await make_ca(client, h)))["id"]
    assert await app[RENEWAL_WORKER].run_once() == 1
    state = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    due = datetime.strptime(state["next_renewal_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert state["window_source"] == "ari"
    assert now + earliest - timedelta(seconds=1) <= due <= now + latest + timedelta(seconds=1)
    assert await app[RENEWAL_WORKER].run_once() == 0


async def test_a_window_ahead_is_asked_again_and_followed_when_the_ca_moves_it_earlier(
    aiohttp_client, settings, every_store, auth
):
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock)
    client = await aiohttp_client(app)
    service, worker = app[RENEWAL_SERVICE], app[RENEWAL_WORKER]
    ahead = (clock.now + timedelta(days=20), clock.now + timedelta(days=21))
    source = WindowSource_(service.sources["private_ca"], ahead)
    service.sources["private_ca"] = source
    h = auth()
    cert_id = (await create_managed(client, h, await make_ca(client, h)))["id"]
    assert await worker.run_once() == 1
    first = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    # 6 h on, the window is still 20 days off: looked at, nothing issued, the next look 6 h later
    clock.now += timedelta(hours=6, seconds=1)
    assert await worker.run_once() == 1
    looked = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    assert looked["renewals"] == first["renewals"] and looked["state"] == "active"
    assert looked["next_renewal_at"] > first["next_renewal_at"]
    # the CA moves the window earlier (an incident): the next look renews inside it
    source.window = (clock.now + timedelta(minutes=30), clock.now + timedelta(minutes=31))
    clock.now += timedelta(hours=6, seconds=1)
    assert await worker.run_once() == 1
    renewed = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    assert renewed["renewals"] == first["renewals"] + 1 and renewed["state"] == "active"


async def test_renew_now_does_not_wait_for_the_cas_window(aiohttp_client, settings, every_store, auth):
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock)
    client = await aiohttp_client(app)
    service, worker = app[RENEWAL_SERVICE], app[RENEWAL_WORKER]
    ahead = (clock.now + timedelta(days=20), clock.now + timedelta(days=21))
    service.sources["private_ca"] = WindowSource_(service.sources["private_ca"], ahead)
    h = auth()
    cert_id = (await create_managed(client, h, await make_ca(client, h)))["id"]
    assert await worker.run_once() == 1
    first = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    await ok(await client.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert await worker.run_once() == 1
    renewed = await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=h))
    assert renewed["renewals"] == first["renewals"] + 1
