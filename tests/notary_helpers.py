"""CSRs and Notary API calls shared by the Notary HTTP and conformance tests."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

REQS = "/api/v1/certificate_requests"
NCAS = "/api/v1/certificate_authorities"


def make_csr(key=None, cn: str = "api.example.com", dns: tuple[str, ...] = ("api.example.com",)) -> tuple[str, object]:
    """(PEM CSR, private key); a fresh P-256 key unless one is given."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        )
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, digest).public_bytes(serialization.Encoding.PEM).decode(), key


def csr_for(subject: list[x509.NameAttribute], sans: list[x509.GeneralName], key=None) -> str:
    """A PEM CSR with exactly this subject (possibly empty) and these SANs (no extension when empty)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, digest).public_bytes(serialization.Encoding.PEM).decode()


def rsa_csr(bits: int) -> str:
    return make_csr(rsa.generate_private_key(public_exponent=65537, key_size=bits))[0]


async def result(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"result"}, body
    return body["result"]


async def create_notary_ca(client, headers, **overrides) -> str:
    body = {
        "self_signed": True,
        "common_name": "Notary Root CA",
        "organization_name": "Example",
        "key_algorithm": "EC256",
    }
    body.update(overrides)
    return (await result(await client.post(NCAS, json=body, headers=headers), 201))["id"]


async def submit(client, headers, csr: str) -> str:
    return (await result(await client.post(REQS, json={"csr": csr}, headers=headers), 201))["id"]


async def sign(client, headers, req_id: str, ca_id: str, **extra):
    return await client.post(
        f"{REQS}/{req_id}/sign", json={"certificate_authority_id": ca_id, **extra}, headers=headers
    )


def not_after(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
