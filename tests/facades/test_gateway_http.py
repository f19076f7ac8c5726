"""Delivery to gateways over HTTP (/gateway/v1), against both real stores."""

from __future__ import annotations

import asyncio
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from tests.factories import CertSpec, ec_key, issue, rsa_chain, rsa_key

CERTS = "/v2/p1/apic/certificates"
GW = "/gateway/v1/p1/instances/gw1"
ECDSA_CLIENT = "403,503,603,804,805,806"
RSA_ONLY_CLIENT = "804,805,806,401,501,601"


@pytest.fixture
def gateway_token(settings):
    key = load_or_create_dev_key(settings.state_dir)

    def make(project: str = "p1", instances: tuple[str, ...] = ("gw1",)) -> str:
        return mint_token(key, subject="gw", projects=[project], roles=["gateway"], ttl=600, instances=list(instances))

    return make


@pytest.fixture
def gw(gateway_token):
    def headers(project: str = "p1", instances: tuple[str, ...] = ("gw1",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {gateway_token(project, instances)}"}

    return headers


def _rsa_leaf(dns: tuple[str, ...], slot: int = 10):
    chain = rsa_chain()
    return issue(CertSpec(cn=dns[0], dns=dns), rsa_key(2048, slot), chain.intermediate), chain


def _ec_leaf(dns: tuple[str, ...], slot: int = 10):
    chain = rsa_chain()
    return issue(CertSpec(cn=dns[0], dns=dns), ec_key("secp256r1", slot), chain.intermediate), chain


async def _upload(client, auth, name, leaf, chain, **extra) -> str:
    body = {"name": name, "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem(), **extra}
    resp = await client.post(CERTS, json=body, headers=auth())
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def _attach(client, auth, cert_id, *domains, instances=("gw1",), status=204, **extra):
    body = {"domains": [{"domain": d, "instance_ids": list(instances), **extra} for d in domains]}
    resp = await client.post(f"{CERTS}/{cert_id}/domains/attach", json=body, headers=auth())
    assert resp.status == status, await resp.text()
    return resp


async def _detach(client, auth, cert_id, *domains):
    body = {"domains": [{"domain": d} for d in domains]}
    resp = await client.post(f"{CERTS}/{cert_id}/domains/detach", json=body, headers=auth())
    assert resp.status == 204, await resp.text()


def _leaf_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.encode())[0]


async def test_bundle_carries_chain_and_pkcs8_key_with_etag(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com", "api.example.com"))
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "WWW.example.com.")
    resp = await client.get(f"{GW}/bundle", headers=gw())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert resp.headers["ETag"] == f'"{body["version"]}"'
    assert resp.headers["Cache-Control"] == "no-store"
    [item] = body["items"]
    assert item["certificate_id"] == cert_id
    assert item["domains"] == ["www.example.com"]
    assert item["algorithm"] == "RSA"
    assert item["verify_client"] is False and item["trusted_root_ca"] is None
    assert item["key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(item["key_pem"].encode(), None)
    assert key.public_key().public_numbers() == leaf.cert.public_key().public_numbers()
    assert _leaf_of(item["chain_pem"]) == leaf.cert
    assert len(x509.load_pem_x509_certificates(item["chain_pem"].encode())) == 2
    assert item["sha256_fingerprint"] and item["not_after"].endswith("Z")

    again = await client.get(f"{GW}/bundle", headers={**gw(), "If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    assert again.headers["ETag"] == resp.headers["ETag"]
    assert await again.read() == b""


async def test_empty_instance_has_a_version_and_no_items(client, gw):
    resp = await client.get(f"{GW}/bundle", headers=gw())
    assert resp.status == 200
    assert (await resp.json())["items"] == []


async def test_which_bindings_an_instance_receives(client, auth, gw):
    leaf, chain = _rsa_leaf(("a.example.com", "b.example.com", "c.example.com"))
    global_id = await _upload(client, auth, "cert_global", leaf, chain)
    await _attach(client, auth, global_id, "a.example.com", instances=("gw1",))
    await _attach(client, auth, global_id, "b.example.com", instances=("gw2",))
    await _attach(client, auth, global_id, "c.example.com", instances=())  # names no instance: nobody's
    leaf2, _ = _rsa_leaf(("d.example.com",), slot=11)
    local_id = await _upload(client, auth, "cert_local", leaf2, chain, type="instance", instance_id="gw2")
    await _attach(client, auth, local_id, "d.example.com", instances=("gw2",))

    async def domains(instance):
        resp = await client.get(f"/gateway/v1/p1/instances/{instance}/bundle", headers=gw(instances=(instance,)))
        assert resp.status == 200
        return {(i["certificate_id"], d) for i in (await resp.json())["items"] for d in i["domains"]}

    assert await domains("gw1") == {(global_id, "a.example.com")}
    assert await domains("gw2") == {(global_id, "b.example.com"), (local_id, "d.example.com")}
    assert await domains("gw3") == set()


async def test_caddy_answers_pem_for_the_name_and_404_for_others(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com",))
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    resp = await client.get(
        f"{GW}/caddy",
        params={"server_name": "WWW.EXAMPLE.COM.", "signature_schemes": ECDSA_CLIENT, "cipher_suites": "1301"},
        headers=gw(),
    )
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert text.index("BEGIN CERTIFICATE") < text.index("BEGIN PRIVATE KEY")
    assert _leaf_of(text) == leaf.cert
    assert text.count("BEGIN CERTIFICATE") == 2
    missing = await client.get(f"{GW}/caddy", params={"server_name": "other.example.com"}, headers=gw())
    assert missing.status == 404
    assert (await missing.json())["error_code"] == "APIG.3466"


async def test_exact_name_beats_wildcard_and_wildcard_covers_one_label(client, auth, gw):
    wild, chain = _rsa_leaf(("*.example.com",), slot=12)
    exact, _ = _rsa_leaf(("www.example.com",), slot=13)
    wild_id = await _upload(client, auth, "cert_wild", wild, chain)
    await _attach(client, auth, wild_id, "*.example.com")

    async def served(name):
        resp = await client.get(f"{GW}/caddy", params={"server_name": name}, headers=gw())
        return _leaf_of(await resp.text()) if resp.status == 200 else resp.status

    assert await served("www.example.com") == wild.cert
    assert await served("a.b.example.com") == 404  # one label only
    assert await served("example.com") == 404
    exact_id = await _upload(client, auth, "cert_exact", exact, chain)
    await _attach(client, auth, exact_id, "www.example.com")
    assert await served("www.example.com") == exact.cert
    assert await served("api.example.com") == wild.cert
    await _detach(client, auth, exact_id, "www.example.com")
    assert await served("www.example.com") == wild.cert


async def test_dual_binding_is_chosen_by_signature_schemes(client, auth, gw):
    rsa_leaf, chain = _rsa_leaf(("www.example.com",), slot=14)
    ec_leaf, _ = _ec_leaf(("www.example.com",), slot=14)
    rsa_id = await _upload(client, auth, "cert_rsa", rsa_leaf, chain)
    ec_id = await _upload(client, auth, "cert_ecc", ec_leaf, chain)
    await _attach(client, auth, rsa_id, "www.example.com")
    await _attach(client, auth, ec_id, "www.example.com")

    async def served(schemes):
        params = {"server_name": "www.example.com"}
        if schemes is not None:
            params["signature_schemes"] = schemes
        resp = await client.get(f"{GW}/caddy", params=params, headers=gw())
        assert resp.status == 200
        return _leaf_of(await resp.text())

    assert await served(ECDSA_CLIENT) == ec_leaf.cert
    assert await served(RSA_ONLY_CLIENT) == rsa_leaf.cert
    bundle = await (await client.get(f"{GW}/bundle", headers=gw())).json()
    assert sorted(i["algorithm"] for i in bundle["items"]) == ["ECC", "RSA"]


async def test_long_poll_is_woken_by_an_attach(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com", "api.example.com"))
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    first = await client.get(f"{GW}/bundle", headers=gw())
    etag = first.headers["ETag"]
    poll = asyncio.ensure_future(
        client.get(f"{GW}/bundle", params={"wait": "55"}, headers={**gw(), "If-None-Match": etag})
    )
    await asyncio.sleep(0)  # let the request start; the assertion below does not depend on it
    await _attach(client, auth, cert_id, "api.example.com")
    resp = await asyncio.wait_for(poll, timeout=10)
    assert resp.status == 200
    assert resp.headers["ETag"] != etag
    [item] = (await resp.json())["items"]
    assert item["domains"] == ["api.example.com", "www.example.com"]


async def test_long_poll_times_out_with_304(client, gw):
    first = await client.get(f"{GW}/bundle", headers=gw())
    resp = await client.get(
        f"{GW}/bundle", params={"wait": "0.2"}, headers={**gw(), "If-None-Match": first.headers["ETag"]}
    )
    assert resp.status == 304


@pytest.mark.parametrize("wait", ["-1", "1e9", "0"])
async def test_wait_is_clamped(client, gw, wait):
    resp = await client.get(f"{GW}/bundle", params={"wait": wait}, headers=gw())
    assert resp.status == 200  # no If-None-Match: answered at once whatever the wait


@pytest.mark.parametrize("wait", ["abc", "nan", "1" * 2000])
async def test_bad_wait_is_400(client, gw, wait):
    resp = await client.get(f"{GW}/bundle", params={"wait": wait}, headers=gw())
    assert resp.status == 400
    assert (await resp.json())["error_code"] == "APIG.2012"


async def test_update_and_detach_are_reflected(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com",), slot=15)
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    params = {"server_name": "www.example.com"}
    assert _leaf_of(await (await client.get(f"{GW}/caddy", params=params, headers=gw())).text()) == leaf.cert
    renewed, _ = _rsa_leaf(("www.example.com",), slot=16)
    body = {"name": "cert_one", "cert_content": renewed.pem + chain.intermediate.pem, "private_key": renewed.key_pem()}
    resp = await client.put(f"{CERTS}/{cert_id}", json=body, headers=auth())
    assert resp.status == 200, await resp.text()
    assert _leaf_of(await (await client.get(f"{GW}/caddy", params=params, headers=gw())).text()) == renewed.cert
    await _detach(client, auth, cert_id, "www.example.com")
    assert (await client.get(f"{GW}/caddy", params=params, headers=gw())).status == 404
    resp = await client.delete(f"{CERTS}/{cert_id}", headers=auth())
    assert resp.status == 204
    assert (await (await client.get(f"{GW}/bundle", headers=gw())).json())["items"] == []


async def test_traefik_document_inlines_certificates_and_mtls_option(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com", "m.example.com"))
    cert_id = await _upload(client, auth, "cert_one", leaf, chain, trusted_root_ca=chain.root.pem)
    await _attach(client, auth, cert_id, "www.example.com", verified_client_certificate_enabled=False)
    await _attach(client, auth, cert_id, "m.example.com", verified_client_certificate_enabled=True)
    resp = await client.get(f"{GW}/traefik", headers=gw())
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    [entry] = doc["tls"]["certificates"]
    assert _leaf_of(entry["certFile"]) == leaf.cert
    assert entry["keyFile"].startswith("-----BEGIN PRIVATE KEY-----")
    option = doc["tls"]["options"][f"gc-mtls-{cert_id}"]
    assert option["clientAuth"]["clientAuthType"] == "RequireAndVerifyClientCert"
    assert x509.load_pem_x509_certificate(option["clientAuth"]["caFiles"][0].encode()) == chain.root.cert
    same = await client.get(f"{GW}/traefik", headers={**gw(), "If-None-Match": resp.headers["ETag"]})
    assert same.status == 304


@pytest.mark.parametrize("route", ["bundle", "traefik", "caddy?server_name=www.example.com"])
@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
async def test_management_tokens_get_403(client, auth, route, role):
    resp = await client.get(f"{GW}/{route}", headers=auth(role=role))
    assert resp.status == 403
    assert (await resp.json())["error_code"] == "APIG.1005"


@pytest.mark.parametrize(
    ("path", "project", "instances"),
    [
        ("/gateway/v1/p1/instances/gw2/bundle", "p1", ("gw1",)),  # another instance
        ("/gateway/v1/p2/instances/gw1/bundle", "p1", ("gw1",)),  # another project
        ("/gateway/v1/p1/instances/gw1/bundle", "p2", ("gw1",)),  # another project's credential
    ],
    ids=["instance", "project", "credential-project"],
)
async def test_gateway_credentials_are_scoped(client, gw, path, project, instances):
    resp = await client.get(path, headers=gw(project, instances))
    assert resp.status == 403
    assert (await resp.json())["error_code"] == "APIG.1005"


async def test_gateway_token_is_refused_by_management_routes(client, gw):
    resp = await client.get(CERTS, headers=gw())
    assert resp.status == 403
    assert (await resp.json())["error_code"] == "APIG.1005"


async def test_no_or_bad_credential_is_401(client):
    assert (await client.get(f"{GW}/bundle")).status == 401
    resp = await client.get(f"{GW}/bundle", headers={"X-Auth-Token": "gk_nonsense"})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == "APIG.1002"


async def test_a_jwt_is_not_accepted_as_query_parameter(client, gateway_token):
    resp = await client.get(f"{GW}/bundle", params={"key": gateway_token()})
    assert resp.status == 401


async def test_gateway_keys_lifecycle(client, auth, caplog):
    resp = await client.post("/v2/p1/apic/instances/gw1/gateway-keys", headers=auth())
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert set(created) == {"id", "key", "instance_id", "create_time"}
    key = created["key"]
    assert key.startswith(f"gk_{created['id']}_")
    listed = await (await client.get("/v2/p1/apic/instances/gw1/gateway-keys", headers=auth())).json()
    assert listed == {
        "gateway_keys": [{"id": created["id"], "instance_id": "gw1", "create_time": created["create_time"]}],
        "total": 1,
    }
    for headers, params in (
        ({"Authorization": f"Bearer {key}"}, {}),
        ({"X-Auth-Token": key}, {}),
        ({}, {"key": key}),
    ):
        resp = await client.get(f"{GW}/bundle", headers=headers, params=params)
        assert resp.status == 200, await resp.text()
    # The key is for gw1 of p1 only.
    assert (await client.get("/gateway/v1/p1/instances/gw2/bundle", params={"key": key})).status == 403
    assert (await client.get(CERTS, headers={"X-Auth-Token": key})).status == 401
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert (await client.get(f"{GW}/bundle", params={"key": tampered})).status == 401
    # Editors and viewers do not manage keys.
    assert (await client.get("/v2/p1/apic/instances/gw1/gateway-keys", headers=auth(role="editor"))).status == 403
    resp = await client.delete(f"/v2/p1/apic/instances/gw1/gateway-keys/{created['id']}", headers=auth())
    assert resp.status == 204
    assert (await client.get(f"{GW}/bundle", params={"key": key})).status == 401
    resp = await client.delete(f"/v2/p1/apic/instances/gw1/gateway-keys/{created['id']}", headers=auth())
    assert resp.status == 404
    assert key.split("_", 2)[2] not in caplog.text


async def test_key_in_query_is_not_in_the_access_log(client, auth, caplog):
    created = await (await client.post("/v2/p1/apic/instances/gw1/gateway-keys", headers=auth())).json()
    caplog.set_level("DEBUG")
    resp = await client.get(f"{GW}/caddy", params={"key": created["key"], "server_name": "x.example.com"})
    assert resp.status == 404
    secret = created["key"].split("_", 2)[2]
    assert "gateway/v1/p1/instances/gw1/caddy" in caplog.text
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in str(record.__dict__)


async def test_second_certificate_of_the_same_algorithm_is_refused_and_binds_nothing(client, auth, gw):
    first, chain = _rsa_leaf(("www.example.com", "api.example.com"), slot=17)
    second, _ = _rsa_leaf(("www.example.com", "new.example.com"), slot=18)
    first_id = await _upload(client, auth, "cert_first", first, chain)
    second_id = await _upload(client, auth, "cert_second", second, chain)
    await _attach(client, auth, first_id, "www.example.com")
    resp = await _attach(client, auth, second_id, "new.example.com", "www.example.com", status=400)
    body = await resp.json()
    assert body["error_code"] == "APIG.3465"
    assert first_id in body["error_msg"] and "www.example.com" in body["error_msg"]
    listed = await (await client.get(f"{CERTS}/{second_id}/attached-domains", headers=auth())).json()
    assert listed["total"] == 0  # nothing bound, not even the free name
    # On another instance the same name is free; after a detach it is free here too.
    await _attach(client, auth, second_id, "www.example.com", instances=("gw2",))
    await _detach(client, auth, first_id, "www.example.com")
    await _attach(client, auth, second_id, "www.example.com", instances=("gw1", "gw2"))
    served = await client.get(f"{GW}/caddy", params={"server_name": "www.example.com"}, headers=gw())
    assert _leaf_of(await served.text()) == second.cert


async def test_concurrent_same_algorithm_attaches_bind_exactly_one(client, auth):
    chain = rsa_chain()
    ids = []
    for n in range(4):
        leaf, _ = _rsa_leaf(("race.example.com",), slot=30 + n)
        ids.append(await _upload(client, auth, f"cert_race{n}", leaf, chain))
    body = {"domains": [{"domain": "race.example.com", "instance_ids": ["gw1"]}]}
    answers = await asyncio.gather(
        *(client.post(f"{CERTS}/{cert_id}/domains/attach", json=body, headers=auth()) for cert_id in ids)
    )
    assert sorted(r.status for r in answers) == [204, 400, 400, 400]
    bound = 0
    for cert_id in ids:
        listed = await (await client.get(f"{CERTS}/{cert_id}/attached-domains", headers=auth())).json()
        bound += listed["total"]
    assert bound == 1


async def test_update_to_another_algorithm_takes_the_other_slot(client, auth, gw):
    rsa_leaf, chain = _rsa_leaf(("www.example.com",), slot=19)
    other_rsa, _ = _rsa_leaf(("www.example.com",), slot=20)
    ec_leaf, _ = _ec_leaf(("www.example.com",), slot=21)
    first_id = await _upload(client, auth, "cert_first", rsa_leaf, chain)
    second_id = await _upload(client, auth, "cert_second", ec_leaf, chain)
    await _attach(client, auth, first_id, "www.example.com")
    await _attach(client, auth, second_id, "www.example.com")  # RSA + ECC: both kept
    # Replacing the ECC certificate with an RSA one would make two RSA certificates for the name: refused.
    body = {
        "name": "cert_second",
        "cert_content": other_rsa.pem + chain.intermediate.pem,
        "private_key": other_rsa.key_pem(),
    }
    resp = await client.put(f"{CERTS}/{second_id}", json=body, headers=auth())
    assert resp.status == 400
    assert (await resp.json())["error_code"] == "APIG.3465"
    shown = await (await client.get(f"{CERTS}/{second_id}", headers=auth())).json()
    assert shown["algorithm_type"] == "ECC"


async def test_unicode_server_name_matches_its_a_label_binding(client, auth, gw):
    leaf, chain = _rsa_leaf(("xn--bcher-kva.example.com",), slot=22)
    cert_id = await _upload(client, auth, "cert_idna", leaf, chain)
    await _attach(client, auth, cert_id, "XN--BCHER-KVA.example.com")
    for name in ("bücher.example.com", "BÜCHER.Example.COM.", "xn--bcher-kva.example.com"):
        resp = await client.get(f"{GW}/caddy", params={"server_name": name}, headers=gw())
        assert resp.status == 200, (name, await resp.text())
        assert _leaf_of(await resp.text()) == leaf.cert


async def test_ip_address_bindings_serve_ip_literals_and_clients_without_sni(client, auth, gw):
    chain = rsa_chain()
    leaf = issue(
        CertSpec(cn="192.0.2.10", dns=(), ips=("192.0.2.10", "2001:db8::1")), rsa_key(2048, 23), chain.intermediate
    )
    cert_id = await _upload(client, auth, "cert_ip", leaf, chain)
    await _attach(client, auth, cert_id, "192.0.2.10", "2001:DB8:0::1")
    for params in (
        {"server_name": "192.0.2.10"},
        {"server_name": "", "local_ip": "192.0.2.10"},
        {"local_ip": "2001:db8:0:0::1"},
    ):
        resp = await client.get(f"{GW}/caddy", params=params, headers=gw())
        assert resp.status == 200, (params, await resp.text())
        assert _leaf_of(await resp.text()) == leaf.cert
    resp = await client.get(f"{GW}/caddy", params={"local_ip": "192.0.2.11"}, headers=gw())
    assert resp.status == 404
    resp = await client.get(f"{GW}/caddy", headers=gw())
    assert resp.status == 400
    assert (await resp.json())["error_code"] == "APIG.2001"


async def test_first_delivery_of_each_revision_is_audited_once(client, auth, gw):
    leaf, chain = _rsa_leaf(("www.example.com",), slot=24)
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    for _ in range(3):
        assert (await client.get(f"{GW}/caddy", params={"server_name": "www.example.com"}, headers=gw())).status == 200
    assert (await client.get(f"{GW}/bundle", headers=gw())).status == 200

    async def deliveries():
        resp = await client.get("/v3/p1/traces", params={"trace_name": "gateway.certificate.deliver"}, headers=auth())
        assert resp.status == 200, await resp.text()
        return (await resp.json())["traces"]

    deadline = asyncio.get_running_loop().time() + 10
    while not (events := await deliveries()):
        assert asyncio.get_running_loop().time() < deadline, "no delivery on the audit trail"
        await asyncio.sleep(0.05)
    assert len(events) == 1
    assert "BEGIN" not in json.dumps(events)


async def test_thousands_of_held_polls_cost_no_task_of_their_own_and_all_wake(client, auth, gw):
    from gatewaycerts.appkeys import DELIVERY_SERVICE
    from gatewaycerts.domain.models import Principal, Role

    leaf, chain = _rsa_leaf(("www.example.com", "api.example.com"), slot=25)
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    service = client.app[DELIVERY_SERVICE]
    principal = Principal("gw", frozenset({"p1"}), frozenset({Role.GATEWAY}), frozenset({"gw1"}))
    version = (await service.bundle(principal, "p1", "gw1")).version
    before = asyncio.all_tasks()
    polls = [
        asyncio.ensure_future(service.bundle(principal, "p1", "gw1", if_none_match=version, wait=60))
        for _ in range(2000)
    ]
    await asyncio.sleep(0)  # each poll runs to its wait
    assert not any(p.done() for p in polls)
    others = asyncio.all_tasks() - before - set(polls)
    assert len(others) < 10, others  # a few of the service's own (audit marks), nothing per poll
    # Other requests are answered meanwhile.
    resp = await client.get(f"{GW}/caddy", params={"server_name": "www.example.com"}, headers=gw())
    assert resp.status == 200
    await _attach(client, auth, cert_id, "api.example.com")
    answers = await asyncio.wait_for(asyncio.gather(*polls), timeout=30)
    assert {a.version for a in answers} != {version}
    assert all(a.items is not None and a.items[0]["domains"] == ["api.example.com", "www.example.com"] for a in answers)


async def test_a_key_stored_as_pkcs1_is_delivered_as_pkcs8_and_an_undecryptable_one_is_503(client, auth, gw, store):
    from dataclasses import replace

    from gatewaycerts.appkeys import CERTIFICATE_SERVICE
    from gatewaycerts.core.certificates import apic_key_context

    leaf, chain = _rsa_leaf(("www.example.com",), slot=26)
    cert_id = await _upload(client, auth, "cert_one", leaf, chain)
    await _attach(client, auth, cert_id, "www.example.com")
    vault = client.app[CERTIFICATE_SERVICE]._vault  # the service's own vault: records as an older writer left them
    stored = await store.get("p1", cert_id)
    pkcs1 = leaf.key_pem("traditional").encode()
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    envelope = vault.encrypt(pkcs1, context=apic_key_context("p1", cert_id))
    stored = await store.replace(replace(stored, encrypted_private_key=envelope), expected_revision=stored.revision)
    client.app[CERTIFICATE_SERVICE].on_change("p1", cert_id, stored)
    text = await (await client.get(f"{GW}/caddy", params={"server_name": "www.example.com"}, headers=gw())).text()
    assert "-----BEGIN PRIVATE KEY-----" in text and "RSA PRIVATE KEY" not in text
    key = serialization.load_pem_private_key(text[text.index("-----BEGIN PRIVATE KEY-----") :].encode(), None)
    assert key.public_key().public_numbers() == leaf.cert.public_key().public_numbers()

    foreign = vault.encrypt(pkcs1, context=apic_key_context("p1", "another-record"))  # does not open here
    stored = await store.replace(replace(stored, encrypted_private_key=foreign), expected_revision=stored.revision)
    client.app[CERTIFICATE_SERVICE].on_change("p1", cert_id, stored)
    resp = await client.get(f"{GW}/caddy", params={"server_name": "www.example.com"}, headers=gw())
    assert resp.status == 503
    body = await resp.json()
    assert body["error_code"] == "APIG.9999" and "BEGIN" not in json.dumps(body)


async def test_a_remembered_404_is_served_once_the_name_is_bound(client, auth, gw):
    # Caddy's answers are remembered per instance view by their raw parameters, a 404 too: a binding must drop them.
    leaf, chain = _rsa_leaf(("late.example.com",), slot=17)
    params = {"server_name": "late.example.com", "signature_schemes": ECDSA_CLIENT}
    for _ in range(2):
        assert (await client.get(f"{GW}/caddy", params=params, headers=gw())).status == 404
    cert_id = await _upload(client, auth, "cert_late", leaf, chain)
    await _attach(client, auth, cert_id, "late.example.com")
    resp = await client.get(f"{GW}/caddy", params=params, headers=gw())
    assert resp.status == 200, await resp.text()
    assert _leaf_of(await resp.text()) == leaf.cert


async def test_a_kept_caddy_query_answers_as_parsed_and_never_stands_in_for_the_credential(client, auth):
    """The Caddy route keeps the parsed query strings of authenticated, answered requests (views.CADDY_QUERIES):
    the next handshake with the same text gets the same answer without a parse; a failed or unauthenticated
    request's text is not kept; the credential is still checked at every request (a key revoked after its query
    was kept is refused)."""
    from gatewaycerts.facades.gateway.views import CADDY_QUERIES

    leaf, chain = _ec_leaf(("kept.example.com",))
    cert_id = await _upload(client, auth, "kept_cert", leaf, chain)
    await _attach(client, auth, cert_id, "kept.example.com")
    created = await (await client.post("/v2/p1/apic/instances/gw1/gateway-keys", headers=auth())).json()
    query = f"server_name=kept.example.com&signature_schemes={ECDSA_CLIENT}&key={created['key']}"
    CADDY_QUERIES._kept.clear()

    unbound = f"server_name=nothing.example.com&key={created['key']}"
    assert (await client.get(f"{GW}/caddy?{unbound}")).status == 404
    wrong = f"server_name=kept.example.com&key={created['key'][:-2]}xx"
    assert (await client.get(f"{GW}/caddy?{wrong}")).status == 401
    assert unbound not in CADDY_QUERIES._kept and wrong not in CADDY_QUERIES._kept

    answers = []
    for _ in range(2):
        resp = await client.get(f"{GW}/caddy?{query}")
        assert resp.status == 200, await resp.text()
        answers.append(await resp.text())
        assert query in CADDY_QUERIES._kept  # kept after the first answer, read from the memo by the second
    assert answers[0] == answers[1] and leaf.pem in answers[0]
    assert dict(CADDY_QUERIES._kept[query].query) == {
        "server_name": "kept.example.com",
        "signature_schemes": ECDSA_CLIENT,
        "key": created["key"],
    }
    # with the four parameters the route read from it (server_name, signature_schemes, local_ip, cipher_suites)
    assert CADDY_QUERIES._kept[query].values == ("kept.example.com", ECDSA_CLIENT, None, None)

    resp = await client.delete(f"/v2/p1/apic/instances/gw1/gateway-keys/{created['id']}", headers=auth())
    assert resp.status == 204
    assert (await client.get(f"{GW}/caddy?{query}")).status == 401  # the kept query is no credential
