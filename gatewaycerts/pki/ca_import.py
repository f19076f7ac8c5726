"""Checks for a subordinate CA certificate signed outside this service and imported here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from gatewaycerts.domain.errors import CertificateKeyMismatchError, CertificateParseError, ChainOrderError
from gatewaycerts.domain.pca import DistinguishedName
from gatewaycerts.pki.inspect import is_ca
from gatewaycerts.pki.pem import split_blocks


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    serial_number: int
    not_before: datetime
    not_after: datetime
    path_length: int | None
    subject: DistinguishedName
    issuer_common_name: str | None = None


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def distinguished_name_of(name: x509.Name) -> DistinguishedName:
    return DistinguishedName(
        common_name=_attr(name, NameOID.COMMON_NAME) or "",
        country=_attr(name, NameOID.COUNTRY_NAME),
        state=_attr(name, NameOID.STATE_OR_PROVINCE_NAME),
        locality=_attr(name, NameOID.LOCALITY_NAME),
        organization=_attr(name, NameOID.ORGANIZATION_NAME),
        organizational_unit=_attr(name, NameOID.ORGANIZATIONAL_UNIT_NAME),
    )


def facts_of(cert: x509.Certificate) -> CertificateFacts:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        path_length = bc.path_length if bc.ca else None
    except x509.ExtensionNotFound:
        path_length = None
    return CertificateFacts(
        serial_number=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        path_length=path_length,
        subject=distinguished_name_of(cert.subject),
        issuer_common_name=_attr(cert.issuer, NameOID.COMMON_NAME),
    )


def load_certificates(pem: str, field: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text that may hold CERTIFICATE blocks only."""
    blocks = split_blocks(pem, field=field)
    if any(b.label != "CERTIFICATE" for b in blocks):
        raise CertificateParseError(f"parameterName:{field} may hold CERTIFICATE blocks only", field=field)
    try:
        return [x509.load_der_x509_certificate(b.der) for b in blocks]
    except ValueError:
        raise CertificateParseError(
            f"parameterName:{field} holds a certificate that cannot be parsed", field=field
        ) from None


def check_imported_ca(
    cert_pem: str, chain_pem: str, public_key_pem: bytes, now: datetime
) -> tuple[CertificateFacts, str, str]:
    """Check the signed CA certificate and its issuer chain; return its facts and normalised PEMs.

    The certificate must hold our CA's public key, be a CA certificate, be valid now, and each next
    chain certificate must be a CA that signed the previous one (leaf-first, ending anywhere up to a root).
    """
    certs = load_certificates(cert_pem, "certificate")
    if len(certs) != 1:
        raise CertificateParseError("parameterName:certificate must hold exactly one certificate", field="certificate")
    cert = certs[0]
    chain = load_certificates(chain_pem, "certificate_chain") if chain_pem.strip() else []
    ours = serialization.load_pem_public_key(public_key_pem)
    if cert.public_key() != ours:
        raise CertificateKeyMismatchError(
            "the certificate does not hold this CA's public key; sign the CSR exported from this CA",
            field="certificate",
        )
    if not is_ca(cert):
        raise ChainOrderError("the certificate is not a CA certificate (basicConstraints CA:TRUE)", field="certificate")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ChainOrderError("the certificate is not valid now", field="certificate")
    previous = cert
    for index, issuer in enumerate(chain):
        if not is_ca(issuer):
            raise ChainOrderError(
                f"certificate {index + 1} of the chain is not a CA certificate", field="certificate_chain"
            )
        try:
            previous.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise ChainOrderError(
                f"certificate {index + 1} of the chain did not sign the certificate before it; order the chain "
                "from the issuer of the CA certificate up to the root",
                field="certificate_chain",
            ) from None
        previous = issuer
    to_pem = serialization.Encoding.PEM
    return (
        facts_of(cert),
        cert.public_bytes(to_pem).decode(),
        "".join(c.public_bytes(to_pem).decode() for c in chain),
    )
