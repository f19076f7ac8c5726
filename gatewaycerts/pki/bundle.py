"""Validating an uploaded certificate + private key (+ trusted root CA) into a normalised bundle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.domain.errors import (
    CertificateExpiredError,
    CertificateKeyMismatchError,
    CertificateParseError,
    TrustedRootCAError,
)
from gatewaycerts.domain.models import CertificateInfo
from gatewaycerts.pki.chain import order_path
from gatewaycerts.pki.inspect import certificate_info, describe, is_ca
from gatewaycerts.pki.keys import load_private_key, private_key_to_pkcs8_pem, prove_possession
from gatewaycerts.pki.pem import split_blocks

MAX_CHAIN_CERTIFICATES = 10
MAX_TRUSTED_ROOTS = 10


@dataclass(frozen=True, slots=True)
class ValidatedBundle:
    info: CertificateInfo
    chain_pem: str
    private_key_pem: bytes
    trusted_root_ca_pem: str | None


def load_certificates(text: str, *, field: str, max_certificates: int) -> list[x509.Certificate]:
    blocks = split_blocks(text, field=field, max_blocks=max_certificates)
    certs: list[x509.Certificate] = []
    for index, block in enumerate(blocks, start=1):
        if block.label not in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            raise CertificateParseError(f"{field}: block {index} is a {block.label}, expected CERTIFICATE", field=field)
        try:
            certs.append(x509.load_der_x509_certificate(block.der))
        except ValueError:
            raise CertificateParseError(
                f"{field}: certificate {index} is not a valid X.509 certificate", field=field
            ) from None
    return certs


def certificates_to_pem(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def validate_trusted_roots(text: str, *, now: datetime) -> str:
    certs = load_certificates(text, field="trusted_root_ca", max_certificates=MAX_TRUSTED_ROOTS)
    for cert in certs:
        if not is_ca(cert):
            raise TrustedRootCAError(
                f"trusted_root_ca: '{describe(cert)}' is not a CA certificate (basicConstraints CA:TRUE missing)",
                field="trusted_root_ca",
            )
        if cert.not_valid_after_utc < now:
            raise TrustedRootCAError(
                f"trusted_root_ca: '{describe(cert)}' expired at {cert.not_valid_after_utc.isoformat()}",
                field="trusted_root_ca",
            )
    return certificates_to_pem(certs)


def validate_bundle(
    cert_content: str, private_key: str, trusted_root_ca: str | None, *, now: datetime, openssl_rsa_check: bool = False
) -> ValidatedBundle:
    """Everything an upload must prove, in the order that gives the most useful error first."""
    certs = load_certificates(cert_content, field="cert_content", max_certificates=MAX_CHAIN_CERTIFICATES)
    key = load_private_key(private_key, openssl_rsa_check=openssl_rsa_check)
    public = key.public_key()
    leaf = next((c for c in certs if c.public_key() == public), None)
    if leaf is None:
        raise CertificateKeyMismatchError(
            "the certificate and private key do not match: no certificate in cert_content has the "
            "private key's public key",
            field="private_key",
        )
    prove_possession(key, leaf.public_key())
    if leaf.not_valid_after_utc < now:
        raise CertificateExpiredError(
            f"cert_content: the certificate '{describe(leaf)}' expired at "
            f"{leaf.not_valid_after_utc.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            field="cert_content",
        )
    path = order_path(leaf, [c for c in certs if c is not leaf], now=now)
    roots = validate_trusted_roots(trusted_root_ca, now=now) if trusted_root_ca else None
    return ValidatedBundle(
        info=certificate_info(leaf),
        chain_pem=certificates_to_pem(path),
        private_key_pem=private_key_to_pkcs8_pem(key),
        trusted_root_ca_pem=roots,
    )
