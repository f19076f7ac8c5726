"""DeliveryStore and GatewayKeyStore contract: every adapter passes the same suite, on the real SQLite file
and a real MongoDB wire server (FerretDB), beside the certificate store whose writes they count."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.app import build_delivery_stores
from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.models import DomainBinding
from tests.contract.test_certificate_store import make

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
async def delivery(store):
    """(certificate store, delivery store, gateway key store) on one database."""
    deliveries, keys = build_delivery_stores(store)
    await deliveries.ensure_schema()
    await keys.ensure_schema()
    yield store, deliveries, keys
    await keys.close()
    await deliveries.close()


def binding(domain: str, *instances: str) -> DomainBinding:
    return DomainBinding(
        id=f"b-{domain}",
        url_domain=domain,
        instance_ids=instances,
        verified_client_certificate_enabled=False,
        create_time=T0,
    )


def gateway_key(key_id: str, project: str = "p1", instance: str = "gw1", seconds: int = 0) -> GatewayKey:
    return GatewayKey(
        id=key_id,
        project_id=project,
        instance_id=instance,
        secret_sha256=bytes(range(32)),
        create_time=T0 + dt.timedelta(seconds=seconds),
    )


async def test_gateway_keys_round_trip_list_and_delete(delivery):
    _, _, keys = delivery
    first, second = gateway_key("k1", seconds=1), gateway_key("k2", seconds=2)
    other_instance, other_project = gateway_key("k3", instance="gw2"), gateway_key("k4", project="p2")
    for key in (second, first, other_instance, other_project):
        await keys.insert_key(key)
    assert await keys.get_key("k1") == first
    assert await keys.get_key("k4") == other_project
    assert await keys.get_key("nope") is None
    assert await keys.list_keys("p1", "gw1") == [first, second]
    assert await keys.list_keys("p1", "gw9") == []
    assert not await keys.delete_key("p2", "gw1", "k1")  # another project's path
    assert not await keys.delete_key("p1", "gw2", "k1")  # another instance's path
    assert await keys.delete_key("p1", "gw1", "k1")
    assert not await keys.delete_key("p1", "gw1", "k1")
    assert await keys.get_key("k1") is None
    assert await keys.list_keys("p1", "gw1") == [second]


async def test_counters_move_with_bound_writes_and_key_changes_only(delivery):
    certificates, deliveries, keys = delivery
    assert await deliveries.change_counters(["p1", "p2"]) == {}
    cert = make("c1")
    await certificates.insert(cert)  # nothing bound: no gateway receives it
    unbound = (await deliveries.change_counters(["p1"])).get("p1", 0)
    bound = await certificates.replace(
        replace(cert, bindings=(binding("www.example.com", "gw1"),)), expected_revision=1
    )
    after_bind = (await deliveries.change_counters(["p1"]))["p1"]
    assert after_bind > unbound
    await certificates.replace(replace(bound, bindings=()), expected_revision=2)
    after_unbind = (await deliveries.change_counters(["p1"]))["p1"]
    assert after_unbind > after_bind
    await keys.insert_key(gateway_key("k1"))
    after_key = (await deliveries.change_counters(["p1"]))["p1"]
    assert after_key > after_unbind
    await keys.delete_key("p1", "gw1", "k1")
    assert (await deliveries.change_counters(["p1"]))["p1"] > after_key
    assert "p2" not in await deliveries.change_counters(["p1", "p2"])
    many = [f"p{n}" for n in range(1200)]  # more ids than one query takes
    assert set(await deliveries.change_counters(many)) == {"p1"}


async def test_bound_certificates_are_complete_and_only_the_bound(delivery):
    certificates, deliveries, _ = delivery
    await certificates.insert(make("c1"))
    await certificates.insert(make("c2", name="cert_two"))
    await certificates.insert(make("c3", project="p2"))
    c1 = await certificates.get("p1", "c1")
    await certificates.replace(replace(c1, bindings=(binding("www.example.com", "gw1"),)), expected_revision=1)
    c3 = await certificates.get("p2", "c3")
    await certificates.replace(replace(c3, bindings=(binding("www.example.com", "gw1"),)), expected_revision=1)
    [found] = await deliveries.bound_certificates("p1")
    assert found == await certificates.get("p1", "c1")
    assert found.encrypted_private_key == b'{"v":1}\x00\xff' and found.chain_pem
    assert await deliveries.bound_certificates("p3") == []


async def test_a_delivery_is_marked_once(delivery):
    _, deliveries, _ = delivery
    assert await deliveries.mark_delivered("p1", "gw1", "c1", 2)
    assert not await deliveries.mark_delivered("p1", "gw1", "c1", 2)
    assert await deliveries.mark_delivered("p1", "gw1", "c1", 3)
    assert await deliveries.mark_delivered("p1", "gw2", "c1", 2)


async def test_binding_keys_are_claimed_all_or_none_and_released_by_their_holder(delivery):
    _, deliveries, _ = delivery
    a, b = "gw1|www.example.com|RSA", "gw1|api.example.com|RSA"
    assert await deliveries.claim_binding_keys("p1", "c1", [a], T0) == {}
    assert await deliveries.claim_binding_keys("p1", "c1", [a, b], T0) == {}  # holding a already is fine
    assert await deliveries.claim_binding_keys("p2", "c9", [a], T0) == {}  # per project
    c = "gw1|new.example.com|RSA"
    assert await deliveries.claim_binding_keys("p1", "c2", [c, a], T0) == {a: "c1"}
    assert await deliveries.claim_binding_keys("p1", "c3", [c], T0) == {}  # c2 claimed nothing
    await deliveries.release_binding_keys("p1", "c2", [a])  # not c2's: kept
    assert await deliveries.claim_binding_keys("p1", "c2", [a], T0) == {a: "c1"}
    await deliveries.release_binding_keys("p1", "c1", [a])
    assert await deliveries.claim_binding_keys("p1", "c2", [a], T0) == {}


async def test_a_binding_key_is_taken_over_only_from_an_old_claim(delivery):
    _, deliveries, _ = delivery
    key = "gw1|www.example.com|ECC"
    assert await deliveries.claim_binding_keys("p1", "c1", [key], T0) == {}
    later = T0 + dt.timedelta(minutes=5)
    assert not await deliveries.take_over_binding_key("p1", key, "c1", "c2", T0, later)  # not older than T0
    assert not await deliveries.take_over_binding_key("p1", key, "c9", "c2", later, later)  # not c9's
    assert await deliveries.take_over_binding_key("p1", key, "c1", "c2", later, later)
    assert await deliveries.claim_binding_keys("p1", "c1", [key], later) == {key: "c2"}


async def test_changed_certificates_name_what_changed_or_say_reload(delivery):
    certificates, deliveries, keys = delivery
    for cert_id in ("c1", "c2", "c3"):
        await certificates.insert(make(cert_id, name=f"cert_{cert_id}"))
    c1 = await certificates.get("p1", "c1")
    await certificates.replace(replace(c1, bindings=(binding("a.example.com", "gw1"),)), expected_revision=1)
    start = (await deliveries.change_counters(["p1"]))["p1"]
    c2 = await certificates.get("p1", "c2")
    await certificates.replace(replace(c2, bindings=(binding("b.example.com", "gw1"),)), expected_revision=1)
    await keys.insert_key(gateway_key("k1"))
    c2 = await certificates.get("p1", "c2")
    await certificates.replace(replace(c2, bindings=()), expected_revision=2)
    latest = (await deliveries.change_counters(["p1"]))["p1"]
    # Both keep a change log: a watcher re-reads what changed, never the whole project for one change
    # (a whole-project read is a scan on FerretDB, and a decode of every bound certificate on SQLite).
    assert await deliveries.changed_certificates("p1", start, latest) == ["c2"]
    assert await deliveries.changed_certificates("p1", latest, latest) == []
    found = await deliveries.certificates("p1", ["c3", "c1", "nope", "c1"])
    assert sorted(c.id for c in found) == ["c1", "c3"]
    assert found[0].encrypted_private_key == b'{"v":1}\x00\xff'
    assert await deliveries.certificates("p2", ["c1"]) == []  # another project's id is absent
