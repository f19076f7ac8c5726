"""CCM's end-entity issuance reserves a certificate's serial with its insert (one store write, after signing):
a serial the CA has used already is refused there, nothing is stored for it, and the certificate is signed
again with a fresh serial; when every draw collides the request fails with nothing stored. Both real stores.

The collision is forced by drawing serials from a list (159 random bits never collide by chance); the store,
the signing and the HTTP route are the real ones."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewaycerts.app import create_app
from gatewaycerts.core import issuance

CAS, CERTS = "/v1/private-certificate-authorities", "/v1/private-certificates"
TAKEN, FRESH = 4242, 777001


@pytest.fixture
async def app_client(aiohttp_client, settings, every_store):
    certificates, pca, orders, audit = every_store
    app = create_app(settings, store=certificates, pca_store=pca, order_store=orders, audit_store=audit)
    client = await aiohttp_client(app)
    client.pca = pca
    return client


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collide.example.com")])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("collide.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _bodies(ca_id: str) -> dict[str, tuple[str, dict]]:
    validity = {"type": "DAY", "value": 30}
    return {
        "csr": (f"{CERTS}/csr", {"issuer_id": ca_id, "csr": _csr(), "validity": validity}),
        "generated key": (
            CERTS,
            {
                "issuer_id": ca_id,
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "collide.example.com"},
                "validity": validity,
            },
        ),
    }


async def _ca(c, h) -> str:
    body = {
        "type": "ROOT",
        "distinguished_name": {"common_name": "Collision Root"},
        "key_algorithm": "EC256",
        "validity": {"type": "YEAR", "value": 5},
    }
    resp = await c.post(CAS, json=body, headers=h)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["ca_id"]


async def _total(c, h) -> int:
    return (await (await c.get(CERTS, headers=h)).json())["total"]


@pytest.mark.parametrize("route", ["csr", "generated key"])
async def test_a_taken_serial_is_signed_again_with_a_fresh_one(app_client, auth, monkeypatch, route):
    c, h = app_client, auth()
    ca_id = await _ca(c, h)
    await c.pca.reserve_serial(ca_id, str(TAKEN))
    draws = iter([TAKEN, FRESH])
    monkeypatch.setattr(issuance, "new_serial", lambda: next(draws))
    path, body = _bodies(ca_id)[route]
    before = await _total(c, h)
    resp = await c.post(path, json=body, headers=h)
    assert resp.status == 200, await resp.text()
    cert_id = (await resp.json())["certificate_id"]
    shown = await (await c.get(f"{CERTS}/{cert_id}", headers=h)).json()
    exported = await (await c.post(f"{CERTS}/{cert_id}/export", json={"type": "OTHER"}, headers=h)).json()
    assert int(shown["serial_number"]) == FRESH
    assert x509.load_pem_x509_certificate(exported["certificate"].encode()).serial_number == FRESH
    assert await _total(c, h) == before + 1


@pytest.mark.parametrize("route", ["csr", "generated key"])
async def test_when_every_draw_collides_nothing_is_stored(app_client, auth, monkeypatch, route):
    c, h = app_client, auth()
    ca_id = await _ca(c, h)
    await c.pca.reserve_serial(ca_id, str(TAKEN))
    monkeypatch.setattr(issuance, "new_serial", lambda: TAKEN)
    path, body = _bodies(ca_id)[route]
    before = await _total(c, h)
    resp = await c.post(path, json=body, headers=h)
    data = await resp.json()
    assert resp.status == 409, data
    assert set(data) == {"error_code", "error_msg"}
    assert await _total(c, h) == before
