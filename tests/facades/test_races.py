"""Races over HTTP, both stores (issue 8, part 4): of 50 concurrent creates with one name exactly one
succeeds; of concurrent submissions of one CSR exactly one is outstanding; attach racing delete never leaves
a binding on a deleted certificate, over many rounds."""

from __future__ import annotations

import asyncio

from gatewaycerts.app import create_app
from tests.factories import ec_chain
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
