"""Shared steps of the managed-certificate tests: a private CA, a managed certificate, reading state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cryptography import x509

CAS = "/v1/private-certificate-authorities"
PCA_CERTS = "/v1/private-certificates"
CERTS = "/v2/p1/apic/certificates"
MANAGED = "/v2/p1/apic/managed-certificates"
ROOT_CA = {
    "type": "ROOT",
    "key_algorithm": "EC256",
    "distinguished_name": {"common_name": "Managed Root"},
    "validity": {"type": "YEAR", "value": 3},
}


async def ok(resp, status: int = 200) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json() if resp.content_type == "application/json" else None


async def apig_error(resp, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    data = await resp.json()
    assert set(data) == {"error_code", "error_msg"} and data["error_code"] == code, data
    return data["error_msg"]


async def make_ca(client, headers) -> str:
    return (await ok(await client.post(CAS, json=ROOT_CA, headers=headers)))["ca_id"]


def managed_body(ca_id: str, name: str = "shop_managed", domains=("www.example.com", "api.example.com"), **kw):
    return {
        "name": name,
        "domains": list(domains),
        "source": "private_ca",
        "private_ca": {"ca_id": ca_id, "validity_days": kw.pop("validity_days", 90)},
        **kw,
    }


async def create_managed(client, headers, ca_id: str, **kw) -> dict:
    return await ok(await client.post(MANAGED, json=managed_body(ca_id, **kw), headers=headers))


async def renewal(client, headers, cert_id: str) -> dict:
    return await ok(await client.get(f"{CERTS}/{cert_id}/renewal", headers=headers))


async def issued_count(client, headers) -> int:
    return (await ok(await client.get(PCA_CERTS, params={"limit": "100"}, headers=headers)))["total"]


def leaf_of(chain_pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem.encode())[0]


async def until(condition: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll an async condition until it is truthy, for at most `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
