"""Operations over HTTP, against both real stores: /metrics (expiry gauges, request and store metrics,
issue/revoke counters) and request ids."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gatewaycerts.app import create_app
from tests.factories import NOW, CertSpec, MovableClock, ec_chain, ec_key, leaf_for

APIC = "/v2/{project}/apic/certificates"
CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(client) -> dict:
    resp = await client.get("/metrics")  # no token: it is protected at the network level
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    return samples(await resp.text())


@pytest.fixture
async def ops(aiohttp_client, settings, stores):
    clock = MovableClock()
    certificates, pca = stores
    client = await aiohttp_client(create_app(settings, store=certificates, pca_store=pca, clock=clock))
    return client, clock


async def upload(client, auth, project: str, name: str, lifetime: dt.timedelta, slot: int) -> None:
    chain = ec_chain()
    leaf = leaf_for(chain, CertSpec(not_after=NOW + lifetime), key=ec_key("secp256r1", 100 + slot))
    body = {"name": name, "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()}
    resp = await client.post(APIC.format(project=project), json=body, headers=auth(project=project))
    assert resp.status == 200, await resp.text()


def expiry(found: dict, source: str, project: str) -> dict[str, float | None]:
    counts = {
        d: value(found, "gatewaycerts_certificates_expiring", source=source, project_id=project, within_days=d)
        for d in ("1", "7", "30", "90")
    }
    counts["expired"] = value(found, "gatewaycerts_certificates_expired", source=source, project_id=project)
    return counts


async def test_expiry_gauges_count_certificates_per_project_and_horizon(ops, auth):
    client, clock = ops
    lifetimes = {"in_12h": 0.5, "in_3d": 3, "in_20d": 20, "in_60d": 60, "in_200d": 200}
    for slot, (name, days) in enumerate(lifetimes.items()):
        await upload(client, auth, "p1", name, dt.timedelta(days=days), slot)
    await upload(client, auth, "p2", "in_5d", dt.timedelta(days=5), 9)

    found = await scrape(client)
    assert value(found, "gatewaycerts_expiry_query_success") == 1
    # cumulative horizons: "7" includes what expires within 1 day
    assert expiry(found, "apic", "p1") == {"1": 1, "7": 2, "30": 3, "90": 4, "expired": 0}
    assert expiry(found, "apic", "p2") == {"1": 0, "7": 1, "30": 1, "90": 1, "expired": 0}
    assert expiry(found, "apic", "p3") == {"1": None, "7": None, "30": None, "90": None, "expired": None}

    clock.now += dt.timedelta(days=2, hours=12)  # in_12h expired; in_3d now has half a day left
    found = await scrape(client)
    assert expiry(found, "apic", "p1") == {"1": 1, "7": 1, "30": 2, "90": 3, "expired": 1}
    assert expiry(found, "apic", "p2") == {"1": 0, "7": 1, "30": 1, "90": 1, "expired": 0}


async def test_private_certificates_counted_until_revoked_with_issue_and_revoke_counters(ops, auth):
    client, _ = ops
    ca = {
        "type": "ROOT",
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "Ops Root"},
        "validity": {"type": "YEAR", "value": 1},
    }
    resp = await client.post(CAS, json=ca, headers=auth())
    ca_id = (await resp.json())["ca_id"]
    ids = []
    for days in (3, 10):
        body = {
            "issuer_id": ca_id,
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": f"svc{days}.example.com"},
            "validity": {"type": "DAY", "value": days},
        }
        resp = await client.post(CERTS, json=body, headers=auth())
        assert resp.status == 200, await resp.text()
        ids.append((await resp.json())["certificate_id"])

    found = await scrape(client)
    assert expiry(found, "private", "p1") == {"1": 0, "7": 1, "30": 2, "90": 2, "expired": 0}
    assert value(found, "gatewaycerts_certificates_issued_total", kind="private-certificate") == 2
    assert value(found, "gatewaycerts_certificates_issued_total", kind="authority") == 1
    assert value(found, "gatewaycerts_certificates_revoked_total", kind="private-certificate") is None

    resp = await client.post(f"{CERTS}/{ids[0]}/revoke", json={}, headers=auth())
    assert resp.status == 204
    found = await scrape(client)
    assert expiry(found, "private", "p1") == {"1": 0, "7": 0, "30": 1, "90": 1, "expired": 0}
    assert value(found, "gatewaycerts_certificates_revoked_total", kind="private-certificate") == 1


async def test_request_and_store_metrics_use_route_templates(ops, auth):
    client, _ = ops
    for slot in range(3):
        await upload(client, auth, "p1", f"cert_{slot}", dt.timedelta(days=30), slot)
    missing = await client.get(APIC.format(project="p1") + "/0123456789abcdef0123456789abcdef", headers=auth())
    assert missing.status == 404
    assert (await client.get("/no/such/path")).status == 404

    found = await scrape(client)
    route = "/v2/{project_id}/apic/certificates"
    assert value(found, "gatewaycerts_http_requests_total", method="POST", route=route, status="200") == 3
    assert value(found, "gatewaycerts_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert (
        value(
            found,
            "gatewaycerts_http_requests_total",
            method="GET",
            route=route + "/{certificate_id}",
            status="404",
        )
        == 1
    )
    assert value(found, "gatewaycerts_http_requests_total", method="GET", route="unmatched", status="404") == 1
    # no label carries a raw path or an id
    assert not [labels for (_, labels) in found if ("route", "/no/such/path") in labels]
    assert (
        value(found, "gatewaycerts_store_operation_duration_seconds_count", store="certificates", operation="insert")
        == 3
    )
    assert value(found, "gatewaycerts_http_requests_in_flight") == 1  # the scrape itself


async def test_request_id_is_echoed_when_safe_and_generated_otherwise(ops, auth):
    client, _ = ops
    resp = await client.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"})
    assert resp.headers["X-Request-Id"] == "trace-42.a_b"
    resp = await client.get(APIC.format(project="p1"), headers={**auth(), "X-Request-Id": "<script>" + "x" * 70})
    generated = resp.headers["X-Request-Id"]
    assert "<" not in generated and len(generated) == 32 and int(generated, 16) >= 0
    resp = await client.get("/no/such/path")
    assert resp.status == 404 and len(resp.headers["X-Request-Id"]) == 32


async def test_metrics_can_be_switched_off(aiohttp_client, settings, stores):
    certificates, pca = stores
    app = create_app(dataclasses.replace(settings, metrics_enabled=False), store=certificates, pca_store=pca)
    client = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/healthz")).status == 200
