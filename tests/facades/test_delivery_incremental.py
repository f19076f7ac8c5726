"""The delivery views kept incrementally (per project an index instance -> certificates; a change rebuilds only
the views of the instances it touches) answer exactly as views built from scratch, after random sequences of
uploads, attaches, detaches, updates and deletes through the APIC routes, on both real stores.

Three services answer after every step and must agree byte for byte: the app's own (told of each write by
certificate_changed, and following the store with its watch), a second replica on the same store that
learns of the changes only from the store's change log (`refresh`, the watch's turn), and a service created
afresh for the check (its first load reads every bound certificate). Each view's version is also compared
with `_build_view` over every bound certificate of the project (the scan of the whole project that the index
replaces)."""

from __future__ import annotations

import json
import random

import pytest

from gatewaycerts.appkeys import DELIVERY_SERVICE
from gatewaycerts.core.delivery.index import InstanceIndex
from gatewaycerts.core.delivery.service import DeliveryService, _build_view
from gatewaycerts.domain.errors import NoCertificateForNameError
from gatewaycerts.domain.models import Principal, Role
from tests.factories import CertSpec, ec_key, issue, rsa_chain, rsa_key

CERTS = "/v2/p1/apic/certificates"
INSTANCES = ("gw1", "gw2", "gw3")
NAMES = ("a.example.com", "b.example.com", "x.w.example.com", "*.w.example.com")
ASKED = ("a.example.com", "b.example.com", "x.w.example.com", "y.w.example.com", "c.example.com")
ECDSA_CLIENT = "403,503,603,804,805,806"
RSA_ONLY_CLIENT = "804,805,806,401,501,601"
PRINCIPAL = Principal("gw", frozenset({"p1"}), frozenset({Role.GATEWAY}), frozenset(INSTANCES))


def _leaf(rng: random.Random, chain):
    slot = rng.randrange(4)
    key = rsa_key(2048, 30 + slot) if rng.random() < 0.5 else ec_key("secp256r1", 30 + slot)
    return issue(CertSpec(cn=NAMES[0], dns=NAMES), key, chain.intermediate)


async def _slot_taken(resp) -> bool:
    """The write was refused because a name it binds already has a certificate of the algorithm there."""
    return resp.status == 400 and (await resp.json())["error_code"] == "APIG.3465"


async def _answers(service: DeliveryService) -> dict:
    """Every instance's snapshot (version and the bytes of its items) and Caddy's answer to each name asked
    by an ECDSA and an RSA-only client."""
    out: dict = {}
    for instance in INSTANCES:
        bundle = await service.bundle(PRINCIPAL, "p1", instance)
        unchanged = await service.bundle(PRINCIPAL, "p1", instance, if_none_match=bundle.version)
        assert unchanged.items is None and unchanged.version == bundle.version
        out[instance] = (bundle.version, json.dumps(bundle.items, sort_keys=True))
        for name in ASKED:
            for schemes in (ECDSA_CLIENT, RSA_ONLY_CLIENT):
                try:
                    answer = await service.caddy(PRINCIPAL, "p1", instance, server_name=name, signature_schemes=schemes)
                    out[instance, name, schemes] = answer.pem
                except NoCertificateForNameError:
                    out[instance, name, schemes] = None
    return out


def _shape(view) -> tuple:
    return (
        view.version,
        view.lines,
        [(i.cert.id, i.cert.revision, i.domains, i.verify_client) for i in view.items],
        {
            name: {a: (i.cert.id, i.domains, i.verify_client) for a, i in bound.items()}
            for name, bound in view.names.items()
        },
    )


async def _check(app_service: DeliveryService, replica: DeliveryService, store, vault) -> None:
    await replica.refresh()
    expected = await _answers(DeliveryService(store, vault))
    assert await _answers(app_service) == expected
    assert await _answers(replica) == expected
    certs = {c.id: c for c in await store.bound_certificates("p1")}
    for service in (app_service, replica):
        project = service._projects["p1"]
        assert {k: c.revision for k, c in project.certs.items()} == {k: c.revision for k, c in certs.items()}
        assert project.index.as_dict() == InstanceIndex(certs.values()).as_dict()
        for instance in INSTANCES:
            assert expected[instance][0] == _build_view(certs, instance).version
            # the view held (patched certificate by certificate since the first check) is the one built afresh
            held, scratch = project.views[instance], _build_view(project.certs, instance)
            assert _shape(held) == _shape(scratch)


@pytest.mark.parametrize("seed", [1, 2])
async def test_incremental_views_equal_views_built_from_scratch(client, auth, store, seed):
    rng = random.Random(seed)
    chain = rsa_chain()
    app_service: DeliveryService = client.app[DELIVERY_SERVICE]
    delivery_store, vault = app_service._store, app_service._vault
    replica = DeliveryService(delivery_store, vault)
    await _check(app_service, replica, delivery_store, vault)  # both load the (empty) project
    ids: list[str] = []
    own: dict[str, str | None] = {}  # an instance-scoped certificate's instance
    roots: dict[str, str | None] = {}  # the trusted root CA uploaded with a certificate
    made = 0
    steps = {"upload": 0, "attach": 0, "detach": 0, "update": 0, "delete": 0, "full reload": 0}
    for _ in range(36):
        op = rng.choice(["upload", "attach", "attach", "attach", "detach", "update", "delete"] if ids else ["upload"])
        if op == "upload":
            leaf = _leaf(rng, chain)
            made += 1
            extra = {"type": "instance", "instance_id": rng.choice(INSTANCES)} if rng.random() < 0.3 else {}
            if rng.random() < 0.6:
                extra["trusted_root_ca"] = chain.root.pem  # client verification may be enabled on its bindings
            body = {
                "name": f"cert_{made}",
                "cert_content": leaf.pem + chain.intermediate.pem,
                "private_key": leaf.key_pem(),
                **extra,
            }
            resp = await client.post(CERTS, json=body, headers=auth())
            assert resp.status == 200, await resp.text()
            ids.append((await resp.json())["id"])
            own[ids[-1]] = extra.get("instance_id")
            roots[ids[-1]] = extra.get("trusted_root_ca")
        elif op == "attach":
            names = rng.sample(NAMES, rng.randint(1, 2))
            cert_id = rng.choice(ids)
            instance = own[cert_id]
            instances = [instance] if instance else rng.sample(INSTANCES, rng.randint(0, 2))
            verify = roots[cert_id] is not None and rng.random() < 0.5
            body = {
                "domains": [
                    {"domain": n, "instance_ids": instances, "verified_client_certificate_enabled": verify}
                    for n in names
                ]
            }
            resp = await client.post(f"{CERTS}/{cert_id}/domains/attach", json=body, headers=auth())
            assert resp.status == 204 or await _slot_taken(resp), await resp.text()
        elif op == "detach":
            cert_id = rng.choice(ids)
            bound = sorted({b.url_domain for b in (await store.get("p1", cert_id)).bindings})
            names = rng.sample(bound, min(len(bound), rng.randint(1, 2))) if bound else [rng.choice(NAMES)]
            body = {"domains": [{"domain": n} for n in names]}
            resp = await client.post(f"{CERTS}/{cert_id}/domains/detach", json=body, headers=auth())
            assert resp.status == 204 or (not bound and resp.status == 404), await resp.text()
        elif op == "update":
            leaf = _leaf(rng, chain)
            cert_id = rng.choice(ids)
            name = (await (await client.get(f"{CERTS}/{cert_id}", headers=auth())).json())["name"]
            body = {"name": name, "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()}
            if roots[cert_id]:
                body["trusted_root_ca"] = roots[cert_id]
            resp = await client.put(f"{CERTS}/{cert_id}", json=body, headers=auth())
            assert resp.status == 200 or await _slot_taken(resp), await resp.text()
        else:
            cert_id = ids.pop(rng.randrange(len(ids)))
            bound = sorted({b.url_domain for b in (await store.get("p1", cert_id)).bindings})
            if bound:  # a bound certificate cannot be deleted: its names are detached first
                body = {"domains": [{"domain": n} for n in bound]}
                detached = await client.post(f"{CERTS}/{cert_id}/domains/detach", json=body, headers=auth())
                assert detached.status == 204, await detached.text()
            resp = await client.delete(f"{CERTS}/{cert_id}", headers=auth())
            assert resp.status == 204, await resp.text()
        if resp.status < 300:
            steps[op] += 1
        if rng.random() < 0.1:
            replica._projects["p1"].full_reload = True  # the replica's next turn reads every bound certificate
            steps["full reload"] += 1
        await _check(app_service, replica, delivery_store, vault)
    # the sequence did exercise every kind of change
    assert all(steps[op] for op in ("upload", "attach", "detach", "update", "delete")), steps


async def test_a_change_wakes_only_the_polls_of_the_instances_it_touches(client, auth):
    import asyncio

    chain = rsa_chain()
    leaf = issue(CertSpec(cn=NAMES[0], dns=NAMES), ec_key("secp256r1", 40), chain.intermediate)
    body = {"name": "cert_one", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()}
    resp = await client.post(CERTS, json=body, headers=auth())
    assert resp.status == 200, await resp.text()
    cert_id = (await resp.json())["id"]
    service: DeliveryService = client.app[DELIVERY_SERVICE]
    versions = {i: (await service.bundle(PRINCIPAL, "p1", i)).version for i in INSTANCES}
    polls = {
        i: asyncio.ensure_future(service.bundle(PRINCIPAL, "p1", i, if_none_match=versions[i], wait=60))
        for i in INSTANCES
    }
    await asyncio.sleep(0)  # each poll runs to its wait
    project = service._projects["p1"]
    held = dict(project.waiting)
    assert set(held) == set(INSTANCES) and not any(p.done() for p in polls.values())

    async def attach(name: str, instances: list[str]) -> None:
        body = {"domains": [{"domain": name, "instance_ids": instances}]}
        resp = await client.post(f"{CERTS}/{cert_id}/domains/attach", json=body, headers=auth())
        assert resp.status == 204, await resp.text()

    await attach("a.example.com", ["gw1"])
    answer = await asyncio.wait_for(polls["gw1"], timeout=10)
    assert answer.items is not None and answer.items[0]["domains"] == ["a.example.com"]
    # gw2's and gw3's polls were not woken: they wait on the same events, still unset
    assert not held["gw2"].is_set() and not held["gw3"].is_set()
    assert project.waiting["gw2"] is held["gw2"] and project.waiting["gw3"] is held["gw3"]
    await attach("b.example.com", ["gw2"])
    answer = await asyncio.wait_for(polls["gw2"], timeout=10)
    assert answer.items is not None and answer.items[0]["domains"] == ["b.example.com"]
    assert held["gw2"].is_set() and not held["gw3"].is_set() and not polls["gw3"].done()
    polls["gw3"].cancel()


async def test_a_serving_process_moves_a_loaded_project_out_of_the_collectors_generations(client, auth):
    import gc

    app_service: DeliveryService = client.app[DELIVERY_SERVICE]
    assert app_service.freeze_loaded is False  # only `gatewaycerts serve` sets it
    base = gc.get_freeze_count()
    plain = DeliveryService(app_service._store, app_service._vault)
    await plain.bundle(PRINCIPAL, "p1", "gw1")
    assert gc.get_freeze_count() == base  # off by default: a test process keeps its collector as it was
    serving = DeliveryService(app_service._store, app_service._vault)
    serving.freeze_loaded = True
    try:
        await serving.bundle(PRINCIPAL, "p1", "gw1")
        assert gc.get_freeze_count() > base
        project = serving._projects["p1"]
        assert gc.is_tracked(project) and not any(o is project for o in gc.get_objects())  # frozen: in no generation
    finally:
        gc.unfreeze()
