"""Managed certificates through the APIC API on both real stores: a private CA issues them, the renewal loop
renews them under the same id (bindings kept, revision moved, the gateway bundle serving the new chain), the
chain history stays readable, failures back off, and bad input answers in the APIG envelope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gatewaycerts.appkeys import RENEWAL_SERVICE, RENEWAL_WORKER
from gatewaycerts.core.renewal.sources import IssueFailed
from tests.conftest import app_on
from tests.factories import MovableClock
from tests.renewal.helpers import (
    CAS,
    CERTS,
    MANAGED,
    apig_error,
    create_managed,
    issued_count,
    leaf_of,
    make_ca,
    managed_body,
    ok,
    renewal,
)

GW = "/gateway/v1/p1/instances/gw1"


def _iso_to_dt(value: str):
    from datetime import UTC, datetime

    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture
async def svc(aiohttp_client, settings, every_store):
    clock = MovableClock()
    app = app_on(settings, every_store, clock=clock, renewal_worker=False)
    client = await aiohttp_client(app)
    client.clock, client.worker, client.service = clock, app[RENEWAL_WORKER], app[RENEWAL_SERVICE]
    return client


async def test_a_private_ca_certificate_is_issued_then_renewed_under_the_same_id(svc, auth):
    h = auth()
    ca_id = await make_ca(svc, h)
    created = await create_managed(svc, h, ca_id)
    cert_id = created["id"]
    assert created["renewal"]["state"] == "pending" and created["renewal"]["issued"] is False
    assert created["private_ca"] == {"ca_id": ca_id, "validity_days": 90} and created["key_algorithm"] == "EC256"
    # Not issued yet: no certificate record, so the certificate API does not list or show it.
    await apig_error(await svc.get(f"{CERTS}/{cert_id}", headers=h), 404, "APIG.3021")
    assert (await ok(await svc.get(CERTS, headers=h)))["total"] == 0
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "pending" and state["certificate_revision"] is None

    assert await svc.worker.run_once() == 1
    shown = await ok(await svc.get(f"{CERTS}/{cert_id}", headers=h))
    assert shown["id"] == cert_id and shown["name"] == "shop_managed" and shown["algorithm_type"] == "ECC"
    assert set(shown["san"]) >= {"www.example.com", "api.example.com"}
    assert (await ok(await svc.get(CERTS, headers=h)))["total"] == 1
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "active" and state["issued"] is True and state["renewals"] == 1
    assert state["window_source"] == "lifetime" and state["consecutive_failures"] == 0
    not_after = _iso_to_dt(state["not_after"])
    due = _iso_to_dt(state["next_renewal_at"])
    lifetime = timedelta(days=90)
    # A third of the lifetime left, moved earlier by at most 6 hours of jitter.
    assert not_after - lifetime / 3 - timedelta(hours=6, seconds=1) <= due <= not_after - lifetime / 3
    assert await issued_count(svc, h) == 1  # the CA's registry lists what it issued

    # Bound and delivered to a gateway.
    attach = {"domains": [{"domain": "www.example.com", "instance_ids": ["gw1"]}]}
    await ok(await svc.post(f"{CERTS}/{cert_id}/domains/attach", json=attach, headers=h), 204)
    key = await ok(await svc.post("/v2/p1/apic/instances/gw1/gateway-keys", headers=h), 201)
    gw = {"X-Auth-Token": key["key"]}
    before = await ok(await svc.get(f"{GW}/bundle", headers=gw))
    [item] = before["items"]
    first_serial = leaf_of(item["chain_pem"]).serial_number
    first_revision = (await svc.get(f"{CERTS}/{cert_id}", headers=h)).headers["ETag"]

    # Nothing is due before the time comes.
    svc.clock.now = due - timedelta(seconds=1)
    assert await svc.worker.run_once() == 0
    # Then the loop renews it: same id, bindings kept, revision moved, the gateway gets the new chain.
    svc.clock.now = due + timedelta(seconds=1)
    assert await svc.worker.run_once() == 1
    after = await svc.get(f"{CERTS}/{cert_id}", headers=h)
    assert after.status == 200 and after.headers["ETag"] != first_revision
    domains = await ok(await svc.get(f"{CERTS}/{cert_id}/attached-domains", headers=h))
    assert [d["url_domain"] for d in domains["bound_domains"]] == ["www.example.com"]

    async def delivered():
        body = await ok(await svc.get(f"{GW}/bundle", headers=gw))
        [it] = body["items"]
        return it if leaf_of(it["chain_pem"]).serial_number != first_serial else None

    from tests.renewal.helpers import until

    renewed_item = await until(delivered)
    assert renewed_item["certificate_id"] == cert_id and renewed_item["revision"] > item["revision"]
    assert renewed_item["key_pem"] != item["key_pem"]  # a new key every renewal
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "active" and state["renewals"] == 2 and state["last_error"] is None
    assert _iso_to_dt(state["next_renewal_at"]) > svc.clock.now + timedelta(days=50)
    assert await issued_count(svc, h) == 2

    # The history: the current chain and the one it replaced, readable.
    history = await ok(await svc.get(f"{CERTS}/{cert_id}/revisions", headers=h))
    assert history["certificate_id"] == cert_id
    serials = [(r["current"], leaf_of(r["chain_pem"]).serial_number) for r in history["revisions"]]
    assert serials[0] == (True, leaf_of(renewed_item["chain_pem"]).serial_number)
    assert (False, first_serial) in serials
    assert all(set(r) >= {"revision", "fingerprint_sha256", "not_after", "chain_pem"} for r in history["revisions"])
    assert not any("PRIVATE KEY" in r["chain_pem"] for r in history["revisions"])

    # The renew action makes it due at once.
    state = await ok(await svc.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert _iso_to_dt(state["next_renewal_at"]) == svc.clock.now
    assert await svc.worker.run_once() == 1
    assert (await renewal(svc, h, cert_id))["renewals"] == 3

    # Metrics: renewals by result, the next renewal time and failures per certificate id.
    text = await (await svc.get("/metrics")).text()
    assert 'gatewaycerts_certificate_renewals_total{result="renewed"} 3.0' in text
    assert f'gatewaycerts_certificate_next_renewal_timestamp_seconds{{certificate_id="{cert_id}"}}' in text
    assert f'gatewaycerts_certificate_renewal_consecutive_failures{{certificate_id="{cert_id}"}} 0.0' in text
    assert "shop_managed" not in text

    # Listed as managed; deleting the certificate (after unbinding) stops the management.
    listed = await ok(await svc.get(MANAGED, headers=h))
    assert listed["total"] == 1 and listed["managed_certificates"][0]["id"] == cert_id
    await ok(await svc.post(f"{CERTS}/{cert_id}/domains/detach", json=attach, headers=h), 204)
    await ok(await svc.delete(f"{CERTS}/{cert_id}", headers=h), 204)
    assert (await ok(await svc.get(MANAGED, headers=h)))["total"] == 0
    await apig_error(await svc.get(f"{CERTS}/{cert_id}/renewal", headers=h), 404, "APIG.3021")
    assert cert_id not in await (await svc.get("/metrics")).text()  # its gauges went with it


class FlakySource:
    """The real private-CA source behind a CA that is unreachable `failures` times (a retryable error)."""

    def __init__(self, real, failures: int) -> None:
        self.kind, self._real, self.failures = real.kind, real, failures

    async def check_settings(self, project_id, settings):
        return await self._real.check_settings(project_id, settings)

    async def issue(self, request):
        if self.failures > 0:
            self.failures -= 1
            raise IssueFailed("urn:ietf:params:acme:error:serverInternal: the CA is unavailable", retryable=True)
        return await self._real.issue(request)

    async def renewal_window(self, project_id, settings, chain_pem):
        return None


async def test_failures_back_off_exponentially_and_a_success_resets_them(svc, auth):
    h = auth()
    ca_id = await make_ca(svc, h)
    flaky = FlakySource(svc.service.sources["private_ca"], failures=3)
    svc.service.sources["private_ca"] = flaky  # the worker and the service share the registry
    cert_id = (await create_managed(svc, h, ca_id))["id"]
    waits = []
    for attempt in (1, 2, 3):
        assert await svc.worker.run_once() == 1
        state = await renewal(svc, h, cert_id)
        assert state["state"] == "failing" and state["consecutive_failures"] == attempt
        assert "the CA is unavailable" in state["last_error"] and state["issued"] is False
        wait = _iso_to_dt(state["next_renewal_at"]) - svc.clock.now
        base = timedelta(seconds=60) * 2 ** (attempt - 1)
        assert base / 2 - timedelta(seconds=1) <= wait <= base, (attempt, wait)
        waits.append(wait)
        assert await svc.worker.run_once() == 0  # not before its time
        svc.clock.now += wait + timedelta(seconds=1)
    assert await svc.worker.run_once() == 1
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "active" and state["consecutive_failures"] == 0 and state["last_error"] is None
    assert (await ok(await svc.get(f"{CERTS}/{cert_id}", headers=h)))["id"] == cert_id


async def test_a_non_retryable_failure_stops_until_the_tenant_acts(svc, auth):
    h = auth()
    ca_id = await make_ca(svc, h)
    cert_id = (await create_managed(svc, h, ca_id))["id"]
    assert await svc.worker.run_once() == 1
    first = await ok(await svc.get(f"{CERTS}/{cert_id}", headers=h))
    await ok(await svc.post(f"{CAS}/{ca_id}/disable", headers=h), 204)
    await ok(await svc.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert await svc.worker.run_once() == 1
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "stopped" and state["next_renewal_at"] is None
    assert "disabled" in state["last_error"] and state["consecutive_failures"] == 1
    # The certificate keeps serving its chain.
    assert (await ok(await svc.get(f"{CERTS}/{cert_id}", headers=h)))["serial_number"] == first["serial_number"]
    svc.clock.now += timedelta(days=365)
    assert await svc.worker.run_once() == 0  # stopped: never due by itself
    svc.clock.now -= timedelta(days=365)
    await ok(await svc.post(f"{CAS}/{ca_id}/enable", headers=h), 204)
    state = await ok(await svc.post(f"{CERTS}/{cert_id}/renewal/actions/renew", headers=h))
    assert state["state"] == "failing" and state["next_renewal_at"] is not None
    assert await svc.worker.run_once() == 1
    state = await renewal(svc, h, cert_id)
    assert state["state"] == "active" and state["consecutive_failures"] == 0 and state["renewals"] == 2


async def test_bad_input_answers_in_the_apig_envelope_and_changes_nothing(svc, auth):
    h = auth()
    ca_id = await make_ca(svc, h)
    cases = [
        ({k: v for k, v in managed_body(ca_id).items() if k != "domains"}, 400, "APIG.2001"),
        (managed_body(ca_id, domains=[]), 400, "APIG.2001"),
        (managed_body(ca_id, domains=["10.0.0.1"]), 400, "APIG.2012"),
        (managed_body(ca_id, domains=["not a name"]), 400, "APIG.2012"),
        (managed_body(ca_id, domains=[f"h{i}.example.com" for i in range(101)]), 400, "APIG.3108"),
        ({**managed_body(ca_id), "source": "upload"}, 400, "APIG.2012"),
        # with the ACME client wired (c19): an account the project does not have
        ({**managed_body(ca_id), "source": "acme", "acme": {"account_id": "a1"}}, 400, "APIG.2012"),
        ({**managed_body(ca_id), "private_ca": None}, 400, "APIG.2001"),
        ({**managed_body(ca_id), "private_ca": {"ca_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}}, 400, "APIG.2012"),
        (managed_body(ca_id, validity_days=0), 400, "APIG.2012"),
        (managed_body(ca_id, validity_days=826), 400, "APIG.2012"),
        ({**managed_body(ca_id), "private_ca": {"ca_id": ca_id, "validity_days": "90"}}, 400, "APIG.2012"),
        ({**managed_body(ca_id), "key_algorithm": "SM2"}, 400, "APIG.2012"),
        ({**managed_body(ca_id), "name": "x"}, 400, "APIG.2012"),
        ({**managed_body(ca_id), "type": "instance"}, 400, "APIG.2001"),
    ]
    for body, status, code in cases:
        await apig_error(await svc.post(MANAGED, json=body, headers=h), status, code)
    await apig_error(await svc.post(MANAGED, json=managed_body(ca_id), headers=auth(role="viewer")), 403, "APIG.1005")
    await apig_error(await svc.post(MANAGED, data=b"{not json", headers=h), 400, "APIG.2012")
    assert (await ok(await svc.get(MANAGED, headers=h)))["total"] == 0
    # The name is taken by an upload, or by another managed certificate.
    await create_managed(svc, h, ca_id, name="taken_name")
    await apig_error(await svc.post(MANAGED, json=managed_body(ca_id, name="taken_name"), headers=h), 400, "APIG.3460")
    assert (await ok(await svc.get(MANAGED, headers=h)))["total"] == 1
    # Renewal state of an upload, of nothing; the renew action on nothing.
    from tests.factories import CertSpec, issue, rsa_chain, rsa_key

    chain = rsa_chain()
    leaf = issue(CertSpec(cn="up.example.com", dns=("up.example.com",)), rsa_key(2048, 3), chain.intermediate)
    body = {"name": "uploaded_one", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()}
    upload_id = (await ok(await svc.post(CERTS, json=body, headers=h)))["id"]
    await apig_error(await svc.get(f"{CERTS}/{upload_id}/renewal", headers=h), 404, "APIG.3471")
    await apig_error(await svc.post(f"{CERTS}/{upload_id}/renewal/actions/renew", headers=h), 404, "APIG.3471")
    await apig_error(await svc.get(f"{CERTS}/nope/renewal", headers=h), 404, "APIG.3021")
    await apig_error(await svc.get(f"{MANAGED}/nope", headers=h), 404, "APIG.3021")
    # The history of an upload: its current chain only.
    history = await ok(await svc.get(f"{CERTS}/{upload_id}/revisions", headers=h))
    assert [r["current"] for r in history["revisions"]] == [True]
    await apig_error(
        await svc.get(f"{CERTS}/{upload_id}/revisions", params={"limit": "x"}, headers=h), 400, "APIG.2012"
    )
    # Another project's token sees nothing of p1.
    await apig_error(await svc.get(MANAGED, headers=auth(project="p2")), 403, "APIG.1005")
