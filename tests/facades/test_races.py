"""Races over HTTP, both stores (issue 8, part 4): of 50 concurrent creates with one name exactly one
succeeds; of concurrent submissions of one CSR exactly one is outstanding; attach racing delete never leaves
a binding on a deleted certificate, over many rounds; concurrent attaches lose none; an update pinned with
If-Match to the revision it read never overwrites a change it has not seen."""

from __future__ import annotations

import asyncio

from gatewaycerts.app import create_app
from tests.factories import ec_chain, rsa_chain
from tests.notary_helpers import REQS, make_csr

BASE = "/v2/p1/apic/certificates"


async def test_fifty_concurrent_creates_of_one_name_admit_one(aiohttp_client, settings, store, auth):
    client = await aiohttp_client(create_app(settings, store=store))
    chain = ec_chain()
    body = {"name": "raced_name", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    responses = await asyncio.gather(*(client.post(BASE, json=body, headers=auth()) for _ in range(50)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [400] * 49, statuses
    codes = {(await r.json())["error_code"] for r in responses if r.status == 400}
    assert codes == {"APIG.3460"}  # the name is taken: a clear error, never a 500 or a second record
    assert (await (await client.get(BASE, headers=auth())).json())["total"] == 1


async def test_concurrent_submissions_of_one_csr_leave_one_outstanding(aiohttp_client, settings, pca_store, auth):
    client = await aiohttp_client(create_app(settings, pca_store=pca_store))
    csr = make_csr()[0]
    responses = await asyncio.gather(*(client.post(REQS, json={"csr": csr}, headers=auth()) for _ in range(20)))
    assert sorted(r.status for r in responses) == [201] + [400] * 19
    listed = await (await client.get(REQS, headers=auth())).json()
    assert [r["status"] for r in listed["result"]] == ["Outstanding"]


async def test_attach_racing_delete_never_leaves_a_binding_on_a_deleted_certificate(
    aiohttp_client, settings, store, auth
):
    client = await aiohttp_client(create_app(settings, store=store))
    chain = ec_chain()
    for i in range(10):
        body = {"name": f"race_{i}", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
        cert_id = (await (await client.post(BASE, json=body, headers=auth())).json())["id"]
        attach, delete = await asyncio.gather(
            client.post(
                f"{BASE}/{cert_id}/domains/attach", json={"domains": [{"domain": "ec.example.com"}]}, headers=auth()
            ),
            client.delete(f"{BASE}/{cert_id}", headers=auth()),
        )
        stored = await store.get("p1", cert_id)
        if delete.status == 204:
            assert stored is None and attach.status in (404, 409), (attach.status, await attach.text())
        else:
            assert delete.status == 400 and attach.status == 204 and len(stored.bindings) == 1


async def test_concurrent_attaches_lose_no_domain(aiohttp_client, settings, store, auth):
    """Read-modify-write under contention, within one process and between two (two apps on one store, as two
    replicas): every attach that answered 204 is in the stored record, and one that did not answered 409."""
    replicas = [await aiohttp_client(create_app(settings, store=store)) for _ in range(2)]
    chain = rsa_chain()  # its leaf covers *.api.example.com
    body = {"name": "many_domains", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    cert_id = (await (await replicas[0].post(BASE, json=body, headers=auth())).json())["id"]
    domains = [f"d{i}.api.example.com" for i in range(20)]
    responses = await asyncio.gather(
        *(
            replicas[i % 2].post(f"{BASE}/{cert_id}/domains/attach", json={"domains": [{"domain": d}]}, headers=auth())
            for i, d in enumerate(domains)
        )
    )
    landed = {d for d, r in zip(domains, responses, strict=True) if r.status == 204}
    refused = [r for r in responses if r.status != 204]
    assert all(r.status == 409 for r in refused), [r.status for r in refused]
    assert {(await r.json())["error_code"] for r in refused} <= {"APIG.3463"}
    stored = await store.get("p1", cert_id)
    assert {b.url_domain for b in stored.bindings} == landed  # nothing lost, nothing half-applied
    assert stored.revision == 1 + len(landed)  # one revision per attach that landed
    assert len(landed) >= 10, len(landed)  # conflicts between two writers are retried, not passed on


async def test_if_match_refuses_an_update_based_on_a_stale_read(aiohttp_client, settings, store, auth):
    """Two clients read revision N and both replace the certificate: with If-Match only the first wins; the
    second gets 412 APIG.3464 and the first one's change is kept, not silently overwritten."""
    client = await aiohttp_client(create_app(settings, store=store))
    chain = ec_chain()
    body = {"name": "pinned_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    created = await client.post(BASE, json=body, headers=auth())
    cert_id, etag = (await created.json())["id"], created.headers["ETag"]
    read = await client.get(f"{BASE}/{cert_id}", headers=auth())
    assert read.headers["ETag"] == etag == '"r1"'

    responses = await asyncio.gather(
        *(
            client.put(f"{BASE}/{cert_id}", json={**body, "name": name}, headers={**auth(), "If-Match": etag})
            for name in ("first_writer", "second_writer")
        )
    )
    assert sorted(r.status for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status == 200)
    loser = next(r for r in responses if r.status == 412)
    assert (await loser.json())["error_code"] == "APIG.3464"
    assert winner.headers["ETag"] == '"r2"'
    stored = await store.get("p1", cert_id)
    assert (stored.name, stored.revision) == ((await winner.json())["name"], 2)

    # the loser re-reads, and its retry with the fresh ETag goes through
    again = await client.put(
        f"{BASE}/{cert_id}", json={**body, "name": "third_writer"}, headers={**auth(), "If-Match": '"r2"'}
    )
    assert (again.status, again.headers["ETag"]) == (200, '"r3"')
    # an ETag that is not ours, or a weak one, matches nothing; `*` matches any revision
    for tag, status in (('"r1"', 412), ('W/"r3"', 412), ("garbage", 412), ("*", 200)):
        r = await client.put(f"{BASE}/{cert_id}", json=body, headers={**auth(), "If-Match": tag})
        assert r.status == status, (tag, await r.text())
    # a stale If-Match on attach changes nothing either
    r = await client.post(
        f"{BASE}/{cert_id}/domains/attach",
        json={"domains": [{"domain": "ec.example.com"}]},
        headers={**auth(), "If-Match": '"r1"'},
    )
    assert (r.status, (await r.json())["error_code"]) == (412, "APIG.3464")
    assert (await store.get("p1", cert_id)).bindings == ()
