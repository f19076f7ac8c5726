"""Webhooks through the APIC API, on both stores, delivered to a real local receiver that verifies every
signature with the official `standardwebhooks` package; retries driven by the app's injectable clock (no
sleeps); the expiry watch's events once per threshold; the address guard; tenant isolation; bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time

import pytest
from aiohttp import web
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from gatewaycerts.appkeys import EVENT_SINK, EXPIRY_WATCH, WEBHOOK_WORKER
from gatewaycerts.core.events import EventType
from gatewaycerts.core.notifications import TEST_EVENT, DeliveryWorker, ExpiryWatch
from gatewaycerts.settings import Settings
from tests.conftest import app_on
from tests.factories import CertSpec, MovableClock, ec_chain, ec_key, leaf_for

HOOKS = "/v2/p1/apic/webhooks"
ALLOW_LOOPBACK = ("127.0.0.0/8", "::1/128")


class Receiver:
    """A webhook receiver: answers `fail` 500s first, then 204s; keeps what verified (and what did not)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.fail = 0
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.bad_signatures = 0
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.read()
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500, text="not now")
        assert self.secret is not None
        try:
            payload = Verifier(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=400)
        self.received.append(payload)
        self.headers.append(dict(request.headers))
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server):
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    server = await aiohttp_server(app)
    r.url = str(server.make_url("/hook"))  # type: ignore[attr-defined]
    return r


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def service(aiohttp_client, tmp_path, every_store, clock):
    settings = Settings(
        state_dir=tmp_path / "state", webhook_allowed_targets=ALLOW_LOOPBACK, webhook_retry_schedule=(30, 60, 120)
    )
    app = app_on(settings, every_store, clock=clock, notification_worker=False)
    client = await aiohttp_client(app)
    return client, app


async def create_hook(client, auth, url: str, events=None, project: str = "p1") -> dict:
    resp = await client.post(
        f"/v2/{project}/apic/webhooks",
        json={"url": url, "events": events or [e.value for e in EventType], "description": "ops"},
        headers=auth(project),
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def log_of(client, auth, hook_id: str, project: str = "p1") -> list[dict]:
    resp = await client.get(f"/v2/{project}/apic/webhooks/{hook_id}/deliveries", headers=auth(project))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["deliveries"]


async def until(condition, what: str, seconds: float = 10.0):
    """Poll `condition` (an async callable) until it returns something truthy, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_create_shows_the_secret_once_in_standard_webhooks_format(service, auth, receiver):
    client, _ = service
    created = await create_hook(client, auth, receiver.url, ["certificate.expiring"])
    assert created["secret"].startswith("whsec_")
    import base64

    assert len(base64.b64decode(created["secret"][len("whsec_") :])) >= 24
    assert created["events"] == ["certificate.expiring"] and created["url"] == receiver.url
    listed = await (await client.get(HOOKS, headers=auth())).json()
    assert listed["total"] == 1 and "secret" not in listed["webhooks"][0]
    shown = await (await client.get(f"{HOOKS}/{created['id']}", headers=auth())).json()
    assert shown["id"] == created["id"] and "secret" not in shown
    assert created["secret"] not in json.dumps(listed) + json.dumps(shown)


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(service, auth, receiver, clock):
    client, app = service
    created = await create_hook(client, auth, receiver.url)
    receiver.secret, receiver.fail = created["secret"], 2
    worker = app[WEBHOOK_WORKER]
    await app[EVENT_SINK].emit(
        "p1", EventType.CERTIFICATE_RENEWED, {"certificate_id": "c1", "name": "www", "revision": 2, "source": "acme"}
    )
    # The event is stored before emit returns: the log shows it pending, not yet attempted.
    (pending,) = await log_of(client, auth, created["id"])
    assert pending["state"] == "pending" and pending["attempt_count"] == 0

    assert await worker.run_once() == 1  # 500
    (first,) = await log_of(client, auth, created["id"])
    assert first["state"] == "pending" and first["attempts"][0]["status_code"] == 500
    assert first["next_retry"] is not None
    assert await worker.run_once() == 0  # not due yet: nothing is attempted before its time
    clock.now += dt.timedelta(seconds=30)
    assert await worker.run_once() == 1  # 500 again
    clock.now += dt.timedelta(seconds=59)
    assert await worker.run_once() == 0
    clock.now += dt.timedelta(seconds=1)
    assert await worker.run_once() == 1  # 204
    assert receiver.calls == 3 and receiver.bad_signatures == 0
    (payload,) = receiver.received
    assert payload["type"] == "certificate.renewed" and payload["data"]["certificate_id"] == "c1"
    assert receiver.headers[0]["webhook-id"] == first["event_id"]
    (done,) = await log_of(client, auth, created["id"])
    assert done["state"] == "delivered" and done["next_retry"] is None
    assert [a["status_code"] for a in done["attempts"]] == [500, 500, 204]
    assert done["attempts"][0]["error"] == "HTTP 500" and done["attempts"][2]["error"] is None
    assert await worker.run_once() == 0  # delivered once, never again


async def test_the_last_attempt_fails_the_delivery(service, auth, receiver, clock, caplog):
    caplog.set_level(logging.DEBUG)
    client, app = service
    created = await create_hook(client, auth, receiver.url)
    receiver.secret, receiver.fail = created["secret"], 100
    await app[EVENT_SINK].emit("p1", EventType.CERTIFICATE_RENEWAL_FAILED, {"certificate_id": "c1", "error": "x"})
    for _ in range(4):  # the schedule has 3 delays: 4 attempts
        assert await app[WEBHOOK_WORKER].run_once() == 1
        clock.now += dt.timedelta(seconds=120)
    assert await app[WEBHOOK_WORKER].run_once() == 0
    (failed,) = await log_of(client, auth, created["id"])
    assert failed["state"] == "failed" and failed["attempt_count"] == 4 and failed["next_retry"] is None
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gatewaycerts"))
    assert "attempt 4: HTTP 500" in ours  # the failures are logged...
    assert created["secret"] not in ours and receiver.url not in ours  # ...without the secret or the URL
    assert created["secret"][len("whsec_") :] not in ours


async def test_only_subscribed_webhooks_of_the_project_get_an_event(service, auth, receiver):
    client, app = service
    expiring = await create_hook(client, auth, receiver.url, ["certificate.expiring"])
    renewed = await create_hook(client, auth, receiver.url, ["certificate.renewed"])
    other_project = await create_hook(client, auth, receiver.url, ["certificate.renewed"], project="p2")
    await app[EVENT_SINK].emit("p1", EventType.CERTIFICATE_RENEWED, {"certificate_id": "c1"})
    assert await log_of(client, auth, expiring["id"]) == []
    assert len(await log_of(client, auth, renewed["id"])) == 1
    assert await log_of(client, auth, other_project["id"], project="p2") == []


async def test_the_background_loop_delivers_a_test_event(aiohttp_client, tmp_path, every_store, auth, receiver):
    settings = Settings(state_dir=tmp_path / "state", webhook_allowed_targets=ALLOW_LOOPBACK)
    client = await aiohttp_client(app_on(settings, every_store))  # the worker runs in the app
    created = await create_hook(client, auth, receiver.url, ["certificate.expired"])
    receiver.secret = created["secret"]
    resp = await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert resp.status == 202
    queued = await resp.json()
    assert queued["event_type"] == TEST_EVENT

    async def delivered():
        log = await log_of(client, auth, created["id"])
        return log if log and log[0]["state"] == "delivered" else None

    (entry,) = await until(delivered, "the test event to be delivered")
    assert entry["event_id"] == queued["event_id"] and entry["attempts"][0]["status_code"] == 204
    assert receiver.received[0]["type"] == TEST_EVENT and receiver.bad_signatures == 0


async def test_private_address_refused_without_the_operator_setting(
    aiohttp_client, tmp_path, every_store, auth, receiver
):
    settings = Settings(state_dir=tmp_path / "state")  # no GATEWAYCERTS_WEBHOOK_ALLOWED_TARGETS
    app = app_on(settings, every_store, notification_worker=False)
    client = await aiohttp_client(app)
    for url in ("http://127.0.0.1:9/hook", "https://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/h"):
        resp = await client.post(HOOKS, json={"url": url, "events": ["certificate.expired"]}, headers=auth())
        assert resp.status == 400, url
        assert (await resp.json())["error_code"] == "APIG.3491"
    assert (await (await client.get(HOOKS, headers=auth())).json())["total"] == 0
    # A name is checked when delivering: localhost resolves to loopback, so the attempt is refused, never sent.
    url = receiver.url.replace("127.0.0.1", "localhost")
    created = await create_hook(client, auth, url)
    await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert await app[WEBHOOK_WORKER].run_once() == 1
    (entry,) = await log_of(client, auth, created["id"])
    assert receiver.calls == 0
    assert entry["attempts"][0]["status_code"] is None and "not an allowed target" in entry["attempts"][0]["error"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"events": ["certificate.expired"]}, "APIG.2001", id="400/APIG.2001 no url"),
        pytest.param({"url": "ftp://example.com/x", "events": ["certificate.expired"]}, "APIG.3491", id="ftp"),
        pytest.param({"url": "https://u:p@example.com/x", "events": ["certificate.expired"]}, "APIG.3491", id="creds"),
        pytest.param({"url": "https:///x", "events": ["certificate.expired"]}, "APIG.3491", id="no host"),
        pytest.param({"url": "https://example.com:99999/", "events": ["certificate.expired"]}, "APIG.3491", id="port"),
        pytest.param(
            {"url": "https://example.com/" + "a" * 2100, "events": ["certificate.expired"]}, "APIG.3491", id="long"
        ),
        pytest.param({"url": "https://example.com/x", "events": []}, "APIG.3492", id="no events"),
        pytest.param(
            {"url": "https://example.com/x", "events": ["certificate.stolen"]}, "APIG.3492", id="unknown event"
        ),
        pytest.param({"url": "https://example.com/x", "events": "certificate.expired"}, "APIG.2012", id="events str"),
        pytest.param({"url": 5, "events": ["certificate.expired"]}, "APIG.2012", id="url int"),
        pytest.param(
            {"url": "https://example.com/x", "events": ["certificate.expired"], "description": "d" * 300},
            "APIG.2012",
            id="description",
        ),
    ],
)
async def test_bad_input_is_refused_in_the_apig_envelope(service, auth, body, code):
    client, _ = service
    resp = await client.post(HOOKS, json=body, headers=auth())
    assert resp.status == 400, await resp.text()
    answer = await resp.json()
    assert answer["error_code"] == code and set(answer) == {"error_code", "error_msg"}
    assert (await (await client.get(HOOKS, headers=auth())).json())["total"] == 0


async def test_not_json_and_unknown_webhook(service, auth):
    client, _ = service
    resp = await client.post(HOOKS, data=b"{not json", headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error_code"].startswith("APIG.")
    for method, path in (
        ("GET", f"{HOOKS}/{'0' * 32}"),
        ("DELETE", f"{HOOKS}/{'0' * 32}"),
        ("POST", f"{HOOKS}/nope/actions/test"),
        ("GET", f"{HOOKS}/{'f' * 32}/deliveries"),
    ):
        resp = await client.request(method, path, headers=auth())
        assert resp.status == 404 and (await resp.json())["error_code"] == "APIG.3490", path
    created_limit = await client.get(f"{HOOKS}/{'0' * 32}/deliveries?limit=0", headers=auth())
    assert created_limit.status in (400, 404)


async def test_another_project_cannot_see_or_delete_webhooks(service, auth, token, receiver):
    client, _ = service
    created = await create_hook(client, auth, receiver.url)
    hook = f"{HOOKS}/{created['id']}"
    other = auth("p2")
    for method, path in (
        ("GET", HOOKS),
        ("POST", HOOKS),
        ("GET", hook),
        ("DELETE", hook),
        ("POST", hook + "/actions/test"),
        ("GET", hook + "/deliveries"),
    ):
        resp = await client.request(method, path, headers=other, json={"url": receiver.url, "events": ["x"]})
        assert resp.status == 403 and (await resp.json())["error_code"] == "APIG.1005", (method, path)
    # Its own project's URL with our webhook's id: not found, and nothing of ours is listed there.
    resp = await client.get(f"/v2/p2/apic/webhooks/{created['id']}", headers=other)
    assert resp.status == 404
    assert (await (await client.get("/v2/p2/apic/webhooks", headers=other)).json())["total"] == 0
    resp = await client.delete(f"/v2/p2/apic/webhooks/{created['id']}", headers=other)
    assert resp.status == 404
    # Editors and viewers of the project itself may not manage webhooks either.
    for role in ("editor", "viewer"):
        resp = await client.get(HOOKS, headers={"X-Auth-Token": token("p1", role)})
        assert resp.status == 403
    assert (await client.get(hook, headers=auth())).status == 200
    assert (await client.delete(hook, headers=auth())).status == 204
    assert (await client.get(hook, headers=auth())).status == 404


async def test_expiry_events_once_at_each_threshold(service, auth, receiver, clock):
    client, app = service
    created = await create_hook(client, auth, receiver.url, ["certificate.expiring", "certificate.expired"])
    chain = ec_chain()
    cert = await (
        await client.post(
            "/v2/p1/apic/certificates",
            json={"name": "expiring_one", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
            headers=auth(),
        )
    ).json()
    not_after = chain.leaf.cert.not_valid_after_utc
    watch = app[EXPIRY_WATCH]

    async def events() -> list[tuple[str, int | None]]:
        entries = await log_of(client, auth, created["id"])
        return sorted((e["payload"]["type"], e["payload"]["data"].get("days")) for e in entries)

    assert await watch.run_once() == 0  # a year away
    expected: list[tuple[str, int | None]] = []
    for at, event in (
        (not_after - dt.timedelta(days=30), ("certificate.expiring", 30)),
        (not_after - dt.timedelta(days=7), ("certificate.expiring", 7)),
        (not_after - dt.timedelta(hours=20), ("certificate.expiring", 1)),
        (not_after + dt.timedelta(minutes=1), ("certificate.expired", None)),
    ):
        clock.now = at
        assert await watch.run_once() == 1
        assert await watch.run_once() == 0  # once: the marker holds across runs (and replicas)
        expected.append(event)
        assert await events() == sorted(expected)
    entries = await log_of(client, auth, created["id"])
    data = entries[0]["payload"]["data"]
    assert data["certificate_id"] == cert["id"] and data["name"] == "expiring_one"
    # A second watch (another replica, or after a restart) announces nothing again.
    twin = ExpiryWatch(app[EVENT_SINK].store, app[EVENT_SINK], clock=clock)
    assert await twin.run_once() == 0
    assert len(await log_of(client, auth, created["id"])) == 4
    # Renewed (here: replaced by an update) with a new not_after: the thresholds start over.
    renewed_end = not_after + dt.timedelta(days=100)
    leaf = leaf_for(chain, CertSpec(cn="ec.example.com", dns=("ec.example.com",), not_after=renewed_end), ec_key())
    clock.now = dt.datetime.now(dt.UTC)  # the update is checked against the present
    resp = await client.put(
        f"/v2/p1/apic/certificates/{cert['id']}",
        json={"name": "expiring_one", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()},
        headers=auth(),
    )
    assert resp.status == 200, await resp.text()
    clock.now = renewed_end - dt.timedelta(days=29)
    assert await watch.run_once() == 1 and await twin.run_once() == 0
    newest = (await log_of(client, auth, created["id"]))[0]["payload"]
    assert newest["type"] == "certificate.expiring" and newest["data"]["days"] == 30
    assert newest["data"]["not_after"].startswith(renewed_end.strftime("%Y-%m-%dT%H:%M:%S"))


async def test_metrics_count_deliveries_without_urls_or_secrets(service, auth, receiver):
    client, app = service
    created = await create_hook(client, auth, receiver.url)
    receiver.secret = created["secret"]
    await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert await app[WEBHOOK_WORKER].run_once() == 1
    text = await (await client.get("/metrics")).text()
    assert 'gatewaycerts_webhook_deliveries_total{result="delivered"} 1.0' in text
    assert "gatewaycerts_webhook_deliveries_pending 0.0" in text
    assert receiver.url not in text and created["secret"] not in text


async def test_two_replicas_deliver_each_event_once(service, auth, receiver):
    client, app = service
    created = await create_hook(client, auth, receiver.url)
    receiver.secret = created["secret"]
    for i in range(6):
        await app[EVENT_SINK].emit("p1", EventType.CERTIFICATE_RENEWED, {"certificate_id": f"c{i}"})
    mine = app[WEBHOOK_WORKER]
    # A second replica: its own worker (id, lease) on the same store, with the same real sender.
    other = DeliveryWorker(app[EVENT_SINK].store, mine._vault, mine._transport, clock=mine._clock, batch=2)
    made = await asyncio.gather(mine.run_once(), other.run_once(), mine.run_once(), other.run_once())
    assert sum(made) == 6
    assert receiver.calls == 6 and receiver.bad_signatures == 0
    assert sorted(p["data"]["certificate_id"] for p in receiver.received) == [f"c{i}" for i in range(6)]
    assert len({h["webhook-id"] for h in receiver.headers}) == 6
    log = await log_of(client, auth, created["id"])
    assert all(e["state"] == "delivered" and e["attempt_count"] == 1 for e in log)


async def test_a_claim_whose_worker_died_is_taken_up_after_its_lease(service, auth, receiver, clock):
    client, app = service
    created = await create_hook(client, auth, receiver.url)
    receiver.secret = created["secret"]
    (queued,) = await app[EVENT_SINK].publish("p1", "certificate.renewed", {"certificate_id": "c1"})
    worker = app[WEBHOOK_WORKER]
    crashed = DeliveryWorker(app[EVENT_SINK].store, worker._vault, worker._transport, clock=clock)
    assert await crashed._claim(queued) is not None  # claimed, then the process died before sending
    assert await worker.run_once() == 0 and receiver.calls == 0  # the lease holds
    clock.now += dt.timedelta(seconds=60)
    assert await worker.run_once() == 1
    assert receiver.calls == 1 and receiver.received[0]["data"]["certificate_id"] == "c1"
    (entry,) = await log_of(client, auth, created["id"])
    assert entry["state"] == "delivered" and entry["attempt_count"] == 1


async def test_redirects_are_not_followed(aiohttp_server, service, auth):
    client, app = service
    followed = []

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=204)

    target = web.Application()
    target.router.add_post("/hook", redirect)
    target.router.add_post("/elsewhere", elsewhere)
    server = await aiohttp_server(target)
    created = await create_hook(client, auth, str(server.make_url("/hook")))
    await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert await app[WEBHOOK_WORKER].run_once() == 1
    (entry,) = await log_of(client, auth, created["id"])
    assert followed == [] and entry["state"] == "pending"
    assert entry["attempts"][0] == {"time": entry["attempts"][0]["time"], "status_code": 302, "error": "HTTP 302"}


async def test_an_unreachable_receiver_is_an_attempt_with_an_error(service, auth, unused_tcp_port):
    client, app = service
    created = await create_hook(client, auth, f"http://127.0.0.1:{unused_tcp_port}/hook")
    await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert await app[WEBHOOK_WORKER].run_once() == 1
    (entry,) = await log_of(client, auth, created["id"])
    error = entry["attempts"][0]["error"]
    assert entry["attempts"][0]["status_code"] is None and error.startswith("cannot connect")
    assert str(unused_tcp_port) not in error and created["secret"] not in json.dumps(entry)


async def test_a_name_is_resolved_checked_and_connected_to_when_allowed(service, auth, receiver):
    client, app = service  # the operator allows 127.0.0.0/8 and ::1 here
    created = await create_hook(client, auth, receiver.url.replace("127.0.0.1", "localhost"))
    receiver.secret = created["secret"]
    await client.post(f"{HOOKS}/{created['id']}/actions/test", headers=auth())
    assert await app[WEBHOOK_WORKER].run_once() == 1
    (entry,) = await log_of(client, auth, created["id"])
    assert entry["state"] == "delivered" and receiver.received[0]["type"] == TEST_EVENT
