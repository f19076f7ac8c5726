"""A checked CSR's facts: the PEM and fingerprint derived on first use are what cryptography writes; the key's
kind taken from the facts gives the same key usages as reading the public key again."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from gatewaycerts.pki.authority import inspect_csr, key_usages_for
from tests.factories import rsa_key


def _csr(key, *, sans: int = 0) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device.example.com")])
    )
    if sans:  # long enough that the PEM runs over several 64-character lines, and not a multiple of 48 bytes
        names = [x509.DNSName(f"host{i}.example.com") for i in range(sans)]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


KEYS = [
    ("P-256", lambda: ec.generate_private_key(ec.SECP256R1()), "EC"),
    ("P-384", lambda: ec.generate_private_key(ec.SECP384R1()), "EC"),
    ("RSA-2048", lambda: rsa_key(2048), "RSA"),
    ("Ed25519", ed25519.Ed25519PrivateKey.generate, "EdDSA"),
]


@pytest.mark.parametrize(("case", "make_key", "kind"), KEYS, ids=[k[0] for k in KEYS])
@pytest.mark.parametrize("sans", [0, 1, 7])
def test_pem_fingerprint_and_key_kind(case, make_key, kind, sans):
    csr = _csr(make_key(), sans=sans)
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    facts = inspect_csr(pem.replace("\n", "\r\n"))  # normalised whatever the line ends of the input
    assert facts.pem == pem
    assert facts.fingerprint == hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert facts.key_type == kind
    for is_ca in (False, True):
        assert key_usages_for((), is_ca=is_ca, algorithm=facts.key_algorithm, key_kind=facts.key_type) == (
            key_usages_for((), is_ca=is_ca, algorithm=facts.key_algorithm, public_key_pem=facts.public_key_pem)
        )
