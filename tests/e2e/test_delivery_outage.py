"""The store goes away: delivery keeps answering handshakes from the state it loaded, says how stale it is
(header and metric), answers 503 for a project it never loaded, and is current again once the store is back.
Needs control of the server, so it runs on its own FerretDB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.settings import Settings
from tests.factories import CertSpec, issue, rsa_chain, rsa_key
from tests.mongo_server import own_ferretdb

BOUND = 30.0
STALE = "X-Gateway-Stale-Seconds"


@pytest.fixture
def ferretdb(tmp_path: Path):
    yield from own_ferretdb(tmp_path / "ferretdb", "the outage test")


def _gauge(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("gatewaycerts_delivery_stale_seconds "):
            return float(line.split()[1])
    raise AssertionError("no gatewaycerts_delivery_stale_seconds sample")


async def test_delivery_answers_from_memory_while_the_store_is_down(aiohttp_client, tmp_path, ferretdb, token):
    state = tmp_path / "state"
    settings = Settings.from_env(
        {
            "GATEWAYCERTS_DATABASE_URL": ferretdb.uri + "gc_delivery_outage",
            "GATEWAYCERTS_STATE_DIR": str(state),
            "GATEWAYCERTS_DELIVERY_POLL_MS": "100",
        }
    )
    client = await aiohttp_client(create_app(settings, order_worker=False))
    admin = {"X-Auth-Token": token("p1", "admin")}
    key = load_or_create_dev_key(settings.state_dir)

    def gateway(project: str) -> dict[str, str]:
        jwt = mint_token(key, subject="gw", projects=[project], roles=["gateway"], ttl=600, instances=["gw1"])
        return {"Authorization": f"Bearer {jwt}"}

    chain = rsa_chain()
    leaf = issue(CertSpec(cn="www.example.com", dns=("www.example.com",)), rsa_key(2048, 50), chain.intermediate)
    body = {"name": "cert_one", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()}
    cert_id = (await (await client.post("/v2/p1/apic/certificates", json=body, headers=admin)).json())["id"]
    attach = {"domains": [{"domain": "www.example.com", "instance_ids": ["gw1"]}]}
    resp = await client.post(f"/v2/p1/apic/certificates/{cert_id}/domains/attach", json=attach, headers=admin)
    assert resp.status == 204
    caddy = "/gateway/v1/p1/instances/gw1/caddy"
    params = {"server_name": "www.example.com"}
    resp = await client.get(caddy, params=params, headers=gateway("p1"))
    assert resp.status == 200 and STALE not in resp.headers
    assert _gauge(await (await client.get("/metrics")).text()) == 0

    ferretdb.stop()
    deadline = time.monotonic() + BOUND
    while True:
        resp = await client.get(caddy, params=params, headers=gateway("p1"))
        assert resp.status == 200, await resp.text()  # handshakes keep working from memory
        assert "BEGIN PRIVATE KEY" in await resp.text()
        if STALE in resp.headers:
            break
        assert time.monotonic() < deadline, "no staleness header while the store is down"
        await asyncio.sleep(0.1)
    assert int(resp.headers[STALE]) >= 2
    assert _gauge(await (await client.get("/metrics")).text()) >= 2  # the answer that said so set the gauge
    never_loaded = await client.get("/gateway/v1/p2/instances/gw1/bundle", headers=gateway("p2"))
    assert never_loaded.status == 503
    assert (await never_loaded.json())["error_code"] == "APIG.9999"

    ferretdb.start()
    deadline = time.monotonic() + BOUND
    while STALE in (resp := await client.get(caddy, params=params, headers=gateway("p1"))).headers:
        assert time.monotonic() < deadline, "still stale after the store came back"
        await asyncio.sleep(0.1)
    assert resp.status == 200
    assert (await client.get("/gateway/v1/p2/instances/gw1/bundle", headers=gateway("p2"))).status == 200
