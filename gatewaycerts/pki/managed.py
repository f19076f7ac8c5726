"""The key and CSR of a managed certificate's renewal, and the checks of what a source returns (pure)."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from gatewaycerts.domain.errors import DomainError
from gatewaycerts.domain.pca import KeyAlgorithm, SignatureHash
from gatewaycerts.pki.bundle import ValidatedBundle, validate_bundle
from gatewaycerts.pki.hostnames import covers
from gatewaycerts.pki.keygen import generate_private_key, hash_for, private_key_from_pem, private_key_to_pem


def new_key_and_csr(alg: KeyAlgorithm, domains: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A new private key (PEM) and a DER CSR for it naming `domains` (CN = the first, every one as a DNS SAN)."""
    key_pem = private_key_to_pem(generate_private_key(alg))
    key = private_key_from_pem(key_pem)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0][:64])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
        .sign(key, hash_for(SignatureHash.SHA256))  # type: ignore[arg-type]
    )
    return key_pem, csr.public_bytes(serialization.Encoding.DER)


class ChainProblem(Exception):
    """What a source returned cannot be installed (the reason, for last_error)."""


def check_issued(chain_pem: str, key_pem: bytes, domains: tuple[str, ...], now: datetime) -> ValidatedBundle:
    """The chain's leaf holds our key, its path verifies, it is valid now and it names every domain."""
    try:
        bundle = validate_bundle(chain_pem, key_pem.decode(), None, now=now)
    except DomainError as exc:  # a domain error with a message written for clients (never key material)
        raise ChainProblem(f"the chain the source returned cannot be installed: {exc}") from None
    info = bundle.info
    missing = [
        d for d in domains if not covers(d, common_name=info.common_name, dns_names=info.dns_names, ip_addresses=())
    ]
    if missing:
        raise ChainProblem(f"the certificate the source returned does not name {', '.join(missing[:5])}")
    return bundle
