"""Checks for a certificate chain uploaded to fulfil a certificate request (signed outside this service)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gatewaycerts.domain.errors import (
    CertificateExpiredError,
    CertificateKeyMismatchError,
    CertificateParseError,
    ChainOrderError,
    ParameterTooLongError,
    WeakSignatureError,
)
from gatewaycerts.pki.ca_import import load_certificates
from gatewaycerts.pki.inspect import describe, is_ca, is_self_issued, is_weak_signature

MAX_CHAIN_BYTES = 64 * 1024
MAX_CHAIN_CERTIFICATES = 10
FIELD = "certificate"


@dataclass(frozen=True, slots=True)
class UploadedChain:
    chain_pem: str  # normalised PEM, leaf first
    serial_number: int
    not_after: datetime


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_request_chain(chain_pem: str, csr_public_key_pem: bytes, now: datetime) -> UploadedChain:
    """The chain must hold the leaf and at least its issuer, leaf first; each next certificate a CA that
    signed the one before it; the leaf must carry the CSR's public key (compared as SubjectPublicKeyInfo,
    so for every key type) and be valid now. No MD5/SHA-1 signatures below a root."""
    if len(chain_pem) > MAX_CHAIN_BYTES:
        raise ParameterTooLongError(
            f"{FIELD} is {len(chain_pem)} characters; the maximum is {MAX_CHAIN_BYTES}", field=FIELD
        )
    certs = load_certificates(chain_pem, FIELD)
    if len(certs) < 2:
        raise ChainOrderError(
            f"{FIELD} must hold the certificate followed by at least the CA certificate that issued it", field=FIELD
        )
    if len(certs) > MAX_CHAIN_CERTIFICATES:
        raise CertificateParseError(f"{FIELD} holds more than {MAX_CHAIN_CERTIFICATES} certificates", field=FIELD)
    leaf = certs[0]
    try:
        leaf_key = _spki(leaf.public_key())
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateParseError(f"{FIELD}: the certificate's public key cannot be read", field=FIELD) from None
    csr_key = _spki(serialization.load_pem_public_key(csr_public_key_pem))
    if leaf_key != csr_key:
        raise CertificateKeyMismatchError(
            f"{FIELD}: the first certificate does not carry the public key of the request's CSR; upload the "
            "certificate issued for this CSR first, then its issuers",
            field=FIELD,
        )
    for index, (child, issuer) in enumerate(pairwise(certs), start=1):
        if not is_ca(issuer):
            raise ChainOrderError(
                f"{FIELD}: certificate {index + 1} ('{describe(issuer)}') is not a CA certificate "
                "(basicConstraints CA:TRUE missing)",
                field=FIELD,
            )
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise ChainOrderError(
                f"{FIELD}: certificate {index + 1} ('{describe(issuer)}') did not sign certificate {index} "
                f"('{describe(child)}'); order the chain from the certificate up to the root",
                field=FIELD,
            ) from None
    for cert in certs:
        if not is_self_issued(cert) and is_weak_signature(cert):
            raise WeakSignatureError(
                f"{FIELD}: '{describe(cert)}' is signed with MD5 or SHA-1, which are broken", field=FIELD
            )
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CertificateExpiredError(
            f"{FIELD}: the certificate is not valid now (valid {leaf.not_valid_before_utc.isoformat()} to "
            f"{leaf.not_valid_after_utc.isoformat()})",
            field=FIELD,
        )
    to_pem = serialization.Encoding.PEM
    return UploadedChain(
        chain_pem="".join(c.public_bytes(to_pem).decode() for c in certs),
        serial_number=leaf.serial_number,
        not_after=leaf.not_valid_after_utc,
    )
