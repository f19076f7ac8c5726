"""Certificate revocation lists (RFC 5280 section 5): one per CA, signed by the CA."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from gatewaycerts.domain.pca import RevocationReason, RevokedSerial, SignatureHash
from gatewaycerts.pki.keygen import hash_for

_REASONS = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.ATTRIBUTE_AUTHORITY_COMPROMISE: x509.ReasonFlags.aa_compromise,
}


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    hash: SignatureHash,
    revoked: Sequence[RevokedSerial],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
    except x509.ExtensionNotFound:
        pass
    for entry in sorted(revoked, key=lambda r: r.serial_number):
        item = x509.RevokedCertificateBuilder().serial_number(entry.serial_number).revocation_date(entry.revoked_at)
        reason = _REASONS.get(entry.reason)
        if reason is not None:  # RFC 5280 5.3.1: "unspecified" SHOULD be expressed by omitting the reasonCode
            item = item.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hash_for(hash)
    return builder.sign(issuer_key, algorithm)  # type: ignore[arg-type]


def crl_to_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def crl_to_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def reason_flag(reason: RevocationReason) -> x509.ReasonFlags | None:
    """The reasonCode for a revocation reason; None for "unspecified" (left out, RFC 5280 5.3.1)."""
    return _REASONS.get(reason)
