"""The MongoDB server goes away mid-run and comes back (issue 8, part 5): every dialect answers 503 in its own
envelope within a bounded time, /readyz fails, nothing half-written remains, and the same service recovers
by itself. Needs control of the server, so it runs on its own FerretDB (not GATEWAYCERTS_TEST_MONGODB_URI)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.settings import Settings
from tests.factories import ec_chain
from tests.mongo_server import own_ferretdb
from tests.notary_helpers import make_csr

OUTAGE_BOUND_SECONDS = 15.0  # server selection gives up after 5 s; the rest is slack for a loaded machine


@pytest.fixture
def ferretdb(tmp_path: Path):
    yield from own_ferretdb(tmp_path / "ferretdb", "the outage test")


async def test_outage_answers_503_everywhere_and_recovers(aiohttp_client, tmp_path, ferretdb, token):
    settings = Settings.from_env(
        {"GATEWAYCERTS_DATABASE_URL": ferretdb.uri + "gc_outage", "GATEWAYCERTS_STATE_DIR": str(tmp_path / "state")}
    )
    client = await aiohttp_client(create_app(settings, order_worker=False))
    headers = {"X-Auth-Token": token("p1", "admin")}
    chain = ec_chain()
    upload = {"name": "before_outage", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}
    ca = {
        "type": "ROOT",
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "Outage CA"},
        "validity": {"type": "YEAR", "value": 1},
    }
    assert (await client.post("/v2/p1/apic/certificates", json=upload, headers=headers)).status == 200
    assert (await client.post("/v1/private-certificate-authorities", json=ca, headers=headers)).status == 200
    assert (
        await client.post("/api/v1/certificate_requests", json={"csr": make_csr()[0]}, headers=headers)
    ).status == 201
    key = {"type": "key", "meta": {"algorithm": "aes", "bit_length": 256}}
    assert (await client.post("/v1/orders", json=key, headers=headers)).status == 202
    reads = {
        "apic": "/v2/p1/apic/certificates",
        "ccm": "/v1/private-certificate-authorities",
        "notary": "/api/v1/certificate_requests",
        "barbican": "/v1/orders",
    }

    async def totals() -> dict[str, int]:
        out = {}
        for name, path in reads.items():
            resp = await client.get(path, headers=headers)
            assert resp.status == 200, await resp.text()
            data = await resp.json()
            out[name] = data["total"] if "total" in data else len(data["result"])
        return out

    before = await totals()
    assert before == {"apic": 1, "ccm": 1, "notary": 1, "barbican": 1}

    async def trail() -> list[str]:
        resp = await client.get("/v3/p1/traces", headers=headers)
        assert resp.status == 200, await resp.text()
        return [t["trace_name"] for t in (await resp.json())["traces"]]

    changes = ["barbican.order.create", "notary.request.submit", "ccm.authority.create", "apic.certificate.create"]
    assert await trail() == changes

    ferretdb.stop()

    async def timed(method: str, path: str, body: dict | None = None) -> tuple[int, dict, float]:
        start = time.monotonic()
        resp = await client.request(method, path, json=body, headers=headers)
        return resp.status, await resp.json(), time.monotonic() - start

    writes = {
        "apic": ("POST", "/v2/p1/apic/certificates", {**upload, "name": "during_outage"}),
        "ccm": ("POST", "/v1/private-certificate-authorities", {**ca, "distinguished_name": {"common_name": "Lost"}}),
        "notary": ("POST", "/api/v1/certificate_requests", {"csr": make_csr()[0]}),
        "barbican": ("POST", "/v1/orders", key),
    }
    calls = [timed("GET", path) for path in reads.values()] + [timed(*w) for w in writes.values()]
    results = await asyncio.gather(*calls, timed("GET", "/readyz"))
    *answers, (ready_status, ready, _) = results
    assert ready_status == 503 and ready["status"] == "unavailable"
    names = list(reads) * 2
    for name, (status, data, elapsed) in zip(names, answers, strict=True):
        assert status == 503, (name, data)
        assert elapsed < OUTAGE_BOUND_SECONDS, (name, elapsed)
        if name == "apic":
            assert data["error_code"] == "APIG.9999", data
        elif name == "ccm":
            assert data["error_code"] == "PCA.1099", data
        elif name == "notary":
            assert set(data) == {"error"}, data
        else:
            assert data["code"] == 503 and data["title"] == "Service Unavailable", data

    status, data, elapsed = await timed("GET", "/v3/p1/traces")
    assert status == 503 and data["error_code"] == "CTS.0005" and elapsed < OUTAGE_BOUND_SECONDS, data

    ferretdb.start()  # same port, same data

    assert (await client.get("/readyz")).status == 200
    assert await totals() == before  # nothing half-written by the refused writes
    upload_again = {**upload, "name": "after_outage"}
    assert (await client.post("/v2/p1/apic/certificates", json=upload_again, headers=headers)).status == 200
    assert await trail() == ["apic.certificate.create", *changes]  # the refused writes left no event
