"""Hostile input, dialect by dialect, against both stores (issue 8, part 2): malformed PEM/DER from
tests/vectors/hostile/, a certificate bomb, huge and deeply nested JSON, wrong content types, non-UTF-8,
control characters in names, MongoDB operator syntax in queries and bodies, path traversal in ids. Each gets
its dialect's 4xx envelope, promptly, with no private key in it, and nothing is stored."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from gatewaycerts.app import create_app
from tests.factories import ec_chain
from tests.notary_helpers import make_csr

VECTORS = Path(__file__).parents[1] / "vectors" / "hostile"
APIC = "/v2/p1/apic/certificates"
CCM_CAS, CCM_CERTS = "/v1/private-certificate-authorities", "/v1/private-certificates"
REQS, NCAS, ORDERS = "/api/v1/certificate_requests", "/api/v1/certificate_authorities", "/v1/orders"
LISTS = (APIC, CCM_CAS, CCM_CERTS, REQS, ORDERS)
KEY_MATERIAL = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/]{64,}")  # a PEM marker or body line
BOUND_SECONDS = 5.0  # generous: a guard against blow-ups, not a speed measurement


def envelope_ok(dialect: str, status: int, data: object) -> bool:
    if dialect in ("apic", "ccm"):
        prefix = "APIG." if dialect == "apic" else "PCA."
        return (
            isinstance(data, dict)
            and set(data) == {"error_code", "error_msg"}
            and data["error_code"].startswith(prefix)
        )
    if dialect == "notary":
        return isinstance(data, dict) and set(data) == {"error"}
    return isinstance(data, dict) and set(data) == {"code", "title", "description"} and data["code"] == status


def dialect_of(path: str) -> str:
    if path.startswith(("/v2/", "/gateway/")):  # the delivery routes speak the APIG envelope too
        return "apic"
    if path.startswith("/api/v1/"):
        return "notary"
    return "ccm" if path.startswith("/v1/private-") else "barbican"


@pytest.fixture
async def svc(aiohttp_client, settings, stores, auth):
    certificates, pca = stores
    client = await aiohttp_client(create_app(settings, store=certificates, pca_store=pca, order_worker=False))
    ca = {
        "type": "ROOT",
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "Hostile Root"},
        "validity": {"type": "YEAR", "value": 1},
    }
    resp = await client.post(CCM_CAS, json=ca, headers=auth())
    client.ca_id = (await resp.json())["ca_id"]
    resp = await client.post(REQS, json={"csr": make_csr()[0]}, headers=auth())
    client.request_id = (await resp.json())["result"]["id"]
    return client


def pem_vectors() -> dict[str, str]:
    texts = {p.name: p.read_text() for p in VECTORS.glob("*.pem")}
    ders = {p.name: base64.b64encode(p.read_bytes()).decode() for p in VECTORS.glob("*.der")}
    bomb = ec_chain().leaf.pem * 2000
    return {**texts, **ders, "bomb (2,000 certificates)": bomb}


def material_cases(svc) -> list[tuple[str, str, str, dict]]:
    """(label, method, path, body): each malformed text in each field that takes certificate material."""
    key = ec_chain().leaf.key_pem()
    out = []
    for name, text in pem_vectors().items():
        out += [
            (
                f"apic cert_content {name}",
                "POST",
                APIC,
                {"name": "hostile_cert", "cert_content": text, "private_key": key},
            ),
            (
                f"apic trusted_root_ca {name}",
                "POST",
                APIC,
                {
                    "name": "hostile_cert",
                    "cert_content": ec_chain().bundle(),
                    "private_key": key,
                    "trusted_root_ca": text,
                },
            ),
            (
                f"ccm csr {name}",
                "POST",
                f"{CCM_CERTS}/csr",
                {"issuer_id": svc.ca_id, "csr": text, "validity": {"type": "DAY", "value": 1}},
            ),
            (
                f"ccm import {name}",
                "POST",
                f"{CCM_CAS}/{svc.ca_id}/import",
                {"certificate": text, "certificate_chain": text},
            ),
            (f"notary csr {name}", "POST", REQS, {"csr": text}),
            (f"notary chain {name}", "POST", f"{REQS}/{svc.request_id}/certificate", {"certificate": text}),
            (f"notary ca chain {name}", "POST", f"{NCAS}/{svc.ca_id}/certificate", {"certificate_chain": text}),
            (
                f"barbican request_data {name}",
                "POST",
                ORDERS,
                {
                    "type": "certificate",
                    "meta": {
                        "request_type": "simple-cmc",
                        "ca_id": svc.ca_id,
                        "request_data": base64.b64encode(text.encode()).decode(),
                    },
                },
            ),
        ]
    return out


def injection_cases(svc) -> list[tuple[str, str, str, dict]]:
    gt = {"$gt": ""}
    return [
        ("apic name operator", "POST", APIC, {"name": gt, "cert_content": "x", "private_key": "y"}),
        (
            "apic name control chars",
            "POST",
            APIC,
            {"name": "ab\x00cd_cert", "cert_content": ec_chain().bundle(), "private_key": ec_chain().leaf.key_pem()},
        ),
        (
            "apic name bidi override",
            "POST",
            APIC,
            {"name": "abc\u202edcba", "cert_content": ec_chain().bundle(), "private_key": ec_chain().leaf.key_pem()},
        ),
        (
            "ccm issuer operator",
            "POST",
            CCM_CERTS,
            {
                "issuer_id": {"$ne": None},
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "x"},
                "validity": {"type": "DAY", "value": 1},
            },
        ),
        (
            "ccm cn control chars",
            "POST",
            CCM_CERTS,
            {
                "issuer_id": svc.ca_id,
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "bad\x07name"},
                "validity": {"type": "DAY", "value": 1},
            },
        ),
        ("notary csr operator", "POST", REQS, {"csr": {"$ne": None}}),
        (
            "notary ca cn control chars",
            "POST",
            NCAS,
            {"self_signed": True, "common_name": "evil\x1bname", "key_algorithm": "EC256"},
        ),
        ("barbican meta operator", "POST", ORDERS, {"type": "key", "meta": {"algorithm": gt, "bit_length": 256}}),
        (
            "barbican name control chars",
            "POST",
            ORDERS,
            {"type": "key", "meta": {"name": "k\x00ey", "algorithm": "aes", "bit_length": 256}},
        ),
        ("barbican type operator", "POST", ORDERS, {"type": {"$in": ["key"]}, "meta": {}}),
    ]


async def counts(client, headers) -> list[int]:
    out = []
    for path in LISTS:
        data = await (await client.get(path, headers=headers)).json()
        out.append(
            data.get("total") if "total" in data else len(data["result"]) if "result" in data else data.get("count")
        )
    return out


async def expect_refused(client, method: str, path: str, headers: dict, *, label: str, **kw) -> int:
    start = time.monotonic()
    resp = await client.request(method, path, headers=headers, **kw)
    elapsed = time.monotonic() - start
    text = await resp.text()
    assert 400 <= resp.status < 500, f"{label}: {resp.status} {text[:300]}"
    assert elapsed < BOUND_SECONDS, f"{label}: {elapsed:.1f}s"
    assert not KEY_MATERIAL.search(text), f"{label} echoed PEM material: {text[:300]}"
    if resp.status != 404 or dialect_of(path) != "apic":
        assert envelope_ok(dialect_of(path), resp.status, json.loads(text)), f"{label}: {text[:300]}"
    return resp.status


async def test_malformed_material_and_injections_are_refused_and_store_nothing(svc, auth):
    before = await counts(svc, auth())
    for label, method, path, body in material_cases(svc) + injection_cases(svc):
        await expect_refused(svc, method, path, auth(), label=label, json=body)
    assert await counts(svc, auth()) == before


async def test_hostile_bodies_and_queries_in_every_dialect(svc, auth):
    before = await counts(svc, auth())
    huge = json.dumps({"csr": "A" * (600 * 1024)})
    nested = "[" * 100_000 + "]" * 100_000
    non_utf8 = (VECTORS / "non-utf8.bin").read_bytes()
    creates = (APIC, CCM_CAS, CCM_CERTS, REQS, NCAS, ORDERS)
    for path in creates:
        json_type = {"Content-Type": "application/json"}
        assert await expect_refused(svc, "POST", path, {**auth(), **json_type}, label=f"{path} huge", data=huge) == 413
        await expect_refused(svc, "POST", path, {**auth(), **json_type}, label=f"{path} nested", data=nested)
        await expect_refused(svc, "POST", path, {**auth(), **json_type}, label=f"{path} non-UTF-8", data=non_utf8)
        assert (
            await expect_refused(
                svc, "POST", path, {**auth(), "Content-Type": "text/xml"}, label=f"{path} xml", data="<x/>"
            )
            == 415
        )
    for path in LISTS:
        for query in ("name[$ne]=x", "status[$gt]=", "name.$where=1"):
            assert await expect_refused(svc, "GET", f"{path}?{query}", auth(), label=f"{path}?{query}") == 400
    for path in (
        f"{ORDERS}/..%2F..%2Fetc%2Fpasswd",
        f"{REQS}/%2e%2e%2f%2e%2e",
        f"{CCM_CAS}/..%252f..",
        f"{CCM_CERTS}/%00",
        f"/v1/secrets/{'A' * 5000}",
        f"{NCAS}/1%20OR%201=1",
    ):
        await expect_refused(svc, "GET", path, auth(), label=path)
    assert await counts(svc, auth()) == before


async def test_hostile_delivery_requests(svc, auth, token, settings):
    """Server names, waits and credentials a gateway (or someone pretending to be one) may send."""
    from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token

    dev_key = load_or_create_dev_key(settings.state_dir)
    jwt = mint_token(dev_key, subject="gw", projects=["p1"], roles=["gateway"], ttl=600, instances=["gw1"])
    gw = {"Authorization": f"Bearer {jwt}"}
    base = "/gateway/v1/p1/instances/gw1"
    cases = {
        "overlong server_name": ("a." * 130 + "com", 400),
        "label over 63": ("x" * 64 + ".example.com", 400),
        "space in name": ("ex ample.com", 400),
        "NUL in name": ("example.com\x00", 400),
        "bare star": ("*", 400),
        "wildcard as server_name": ("*.example.com", 400),
        "bad IDNA": ("\udcff.example.com", 400),
        "empty": ("", 400),
        "IP literal, nothing bound": ("192.0.2.7", 404),
        "bracketed IPv6": ("[::1]", 400),
        "unicode dots only": ("\u3002\u3002", 400),
    }
    for label, (name, status) in cases.items():
        got = await expect_refused(svc, "GET", f"{base}/caddy", gw, label=label, params={"server_name": name})
        assert got == status, (label, got)
    for label, wait in (("wait abc", "abc"), ("wait nan", "nan"), ("wait inf-ish", "1" * 2000)):
        assert await expect_refused(svc, "GET", f"{base}/bundle", gw, label=label, params={"wait": wait}) == 400
    for wait in ("-1", "1e9", "-1e309"):  # clamped: no If-None-Match, so answered at once
        assert (await svc.get(f"{base}/bundle", params={"wait": wait}, headers=gw)).status == 200, wait
    other_project = mint_token(dev_key, subject="gw", projects=["p2"], roles=["gateway"], ttl=600, instances=["gw1"])
    credentials = {
        "another project's gateway token": ({"Authorization": f"Bearer {other_project}"}, {}, 403),
        "another instance": (gw, {}, 403),
        "a management token": (auth(), {}, 403),
        "garbage gateway key": ({"X-Auth-Token": "gk_" + "A" * 8000}, {}, 401),
        "gateway key of no one": ({}, {"key": "gk_" + "0" * 32 + "_" + "A" * 43}, 401),
        "a JWT in the key parameter": ({}, {"key": jwt}, 401),
        "operator-shaped key": ({}, {"key[$ne]": "x"}, 401),
    }
    for label, (headers, params, status) in credentials.items():
        path = f"/gateway/v1/p1/instances/{'gw2' if label == 'another instance' else 'gw1'}/bundle"
        got = await expect_refused(svc, "GET", path, headers, label=label, params=params)
        assert got == status, (label, got)
    for path in ("/gateway/v1/p1/instances/..%2Fgw1/bundle", "/gateway/v1/p1/instances/gw1/..%2F..%2Fbundle"):
        await expect_refused(svc, "GET", path, gw, label=path)
