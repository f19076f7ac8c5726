"""The renewal loop's events through the real notifications (w19's Notifier, the EVENT_SINK app.py wires),
delivered as signed Standard Webhooks to a real local receiver: `certificate.renewed` for the first issuance
and every renewal, `certificate.renewal_failed` with the CA's error. Both stores."""

from __future__ import annotations

import pytest

from gatewaycerts.appkeys import EVENT_SINK, RENEWAL_WORKER, WEBHOOK_WORKER
from gatewaycerts.settings import Settings
from tests.conftest import app_on
from tests.facades.test_webhooks_http import ALLOW_LOOPBACK, create_hook, receiver  # noqa: F401 - fixture
from tests.factories import MovableClock
from tests.renewal.helpers import CAS, CERTS, create_managed, make_ca, ok


@pytest.fixture
async def svc(aiohttp_client, tmp_path, every_store):
    settings = Settings(state_dir=tmp_path / "state", webhook_allowed_targets=ALLOW_LOOPBACK)
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock, notification_worker=False)
    client = await aiohttp_client(app)
    client.app_, client.clock = app, clock
    return client


async def test_renewals_and_failures_reach_a_webhook(svc, auth, receiver):  # noqa: F811
    h = auth()
    app = svc.app_
    assert app[RENEWAL_WORKER].events is app[EVENT_SINK]  # the real sink, wired by app.py
    hook = await create_hook(svc, auth, receiver.url, ["certificate.renewed", "certificate.renewal_failed"])
    receiver.secret = hook["secret"]
    ca_id = await make_ca(svc, h)
    cert_id = (await create_managed(svc, h, ca_id))["id"]
    assert await app[RENEWAL_WORKER].run_once() == 1
    await ok(await svc.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert await app[RENEWAL_WORKER].run_once() == 1
    await ok(await svc.post(f"{CAS}/{ca_id}/disable", headers=h), 204)
    await ok(await svc.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert await app[RENEWAL_WORKER].run_once() == 1
    assert await app[WEBHOOK_WORKER].run_once() == 3
    assert receiver.bad_signatures == 0
    kinds = [p["type"] for p in receiver.received]
    assert sorted(kinds) == ["certificate.renewal_failed", "certificate.renewed", "certificate.renewed"]
    renewed = sorted((p["data"] for p in receiver.received if p["type"] == "certificate.renewed"), key=str)
    assert {d["certificate_id"] for d in renewed} == {cert_id} and all(d["source"] == "private_ca" for d in renewed)
    [failed] = [p["data"] for p in receiver.received if p["type"] == "certificate.renewal_failed"]
    assert failed["certificate_id"] == cert_id and failed["attempt"] == 1 and "disabled" in failed["error"]
    assert "PRIVATE KEY" not in repr(receiver.received)
