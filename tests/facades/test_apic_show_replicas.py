"""The APIC show read by one service instance while another changes the record on the same store (one SQLite
file; one FerretDB database): every change is shown at once, and the show's bytes are the detail the writes
answer with (the show's memos may never make an answer stale or different)."""

from __future__ import annotations

import uuid

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import CERTIFICATE_SERVICE, METRICS
from gatewaycerts.settings import Settings
from tests.conftest import STORES
from tests.factories import ec_chain, rsa_chain

CERTS = "/v2/p1/apic/certificates"
SHOW = CERTS + "/{}"


@pytest.fixture(params=STORES)
async def replicas(request, aiohttp_client, tmp_path):
    env = {"GATEWAYCERTS_STATE_DIR": str(tmp_path / "state")}
    if request.param == "mongo":
        env["GATEWAYCERTS_DATABASE_URL"] = request.getfixturevalue("mongodb_uri") + f"gc_test_{uuid.uuid4().hex[:12]}"
    settings = Settings.from_env(env)
    a = await aiohttp_client(create_app(settings, order_worker=False))
    b = await aiohttp_client(create_app(settings, order_worker=False))
    return a, b


def _body(name, chain):
    return {"name": name, "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}


async def _show(client, auth, cert_id):
    resp = await client.get(SHOW.format(cert_id), headers=auth(role="viewer"))
    return resp.status, await resp.read(), resp.headers.get("ETag")


def _summary_reads(client) -> float:
    """How many times the app has read a certificate's summary from its store (its own metric of that operation)."""
    labels = {"store": "certificates", "operation": "get_summary"}
    name = "gatewaycerts_store_operation_duration_seconds_count"
    return client.app[METRICS].registry.get_sample_value(name, labels) or 0


def _on_sqlite(client) -> bool:
    return client.app[CERTIFICATE_SERVICE]._store.change_stamp() is not None


async def test_a_change_through_one_replica_is_shown_at_once_by_the_other(replicas, auth):
    a, b = replicas
    resp = await b.post(CERTS, json=_body("first_name", rsa_chain()), headers=auth())
    assert resp.status == 200, await resp.text()
    created, created_tag = await resp.read(), resp.headers["ETag"]
    cert_id = (await resp.json())["id"]
    before = _summary_reads(a)
    for _ in range(3):  # the first read fills the memos, the next ones answer from them
        assert await _show(a, auth, cert_id) == (200, created, created_tag)
    # SQLite: the record is read once while nothing is committed (core/stamped.py); MongoDB: every time
    assert _summary_reads(a) - before == (1 if _on_sqlite(a) else 3)

    resp = await b.put(f"{CERTS}/{cert_id}", json=_body("second_name", ec_chain()), headers=auth())
    assert resp.status == 200, await resp.text()
    updated, updated_tag = await resp.read(), resp.headers["ETag"]
    assert updated_tag != created_tag
    assert await _show(a, auth, cert_id) == (200, updated, updated_tag)

    attach = {"domains": [{"domain": "ec.example.com"}]}
    resp = await b.post(f"{CERTS}/{cert_id}/domains/attach", json=attach, headers=auth())
    assert resp.status == 204, await resp.text()
    status, shown, tag = await _show(a, auth, cert_id)
    assert (status, shown) == (200, (await _show(b, auth, cert_id))[1])
    assert tag == (await _show(b, auth, cert_id))[2]
    resp = await b.post(f"{CERTS}/{cert_id}/domains/detach", json=attach, headers=auth())
    assert resp.status == 204

    resp = await b.delete(f"{CERTS}/{cert_id}", headers=auth())
    assert resp.status == 204
    status, shown, _ = await _show(a, auth, cert_id)
    assert status == 404 and b'"APIG.3021"' in shown


async def test_the_show_is_the_token_projects_only(replicas, auth):
    a, b = replicas
    resp = await b.post(CERTS, json=_body("mine", rsa_chain()), headers=auth())
    cert_id = (await resp.json())["id"]
    assert (await _show(a, auth, cert_id))[0] == 200
    resp = await a.get(f"/v2/p2/apic/certificates/{cert_id}", headers=auth(project="p2"))
    assert resp.status == 404 and (await resp.json())["error_code"] == "APIG.3021"
