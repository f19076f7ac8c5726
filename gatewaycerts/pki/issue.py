"""Building and signing X.509 certificates for the private CA engine (RFC 5280 profile)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from gatewaycerts.domain.errors import InvalidInputError, ValidityError
from gatewaycerts.domain.pca import (
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    KeyUsage,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.pki.keygen import hash_for

SMART_CARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")


@dataclass(frozen=True, slots=True)
class IssueSpec:
    subject: DistinguishedName
    public_key: PublicKeyTypes
    serial: int
    not_before: datetime
    not_after: datetime
    hash: SignatureHash
    is_ca: bool
    path_length: int | None
    key_usages: tuple[KeyUsage, ...]
    extended_key_usage: ExtendedKeyUsage | None = None
    sans: tuple[SubjectAltName, ...] = ()
    crl_distribution_url: str | None = None
    custom_extension: CustomExtension | None = None
    ocsp_url: str | None = None  # id-ad-ocsp in an Authority Information Access extension
    ca_issuers_url: str | None = None  # id-ad-caIssuers: where the issuer's certificate is served (DER)


def x509_name(dn: DistinguishedName) -> x509.Name:
    """C, ST, L, O, OU, CN: the conventional order, most significant first."""
    attrs = []
    if dn.country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, dn.country.upper()))
    for oid, value in (
        (NameOID.STATE_OR_PROVINCE_NAME, dn.state),
        (NameOID.LOCALITY_NAME, dn.locality),
        (NameOID.ORGANIZATION_NAME, dn.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, dn.organizational_unit),
        (NameOID.COMMON_NAME, dn.common_name),
    ):
        if value:
            attrs.append(x509.NameAttribute(oid, value))
    return x509.Name(attrs)


def _general_name(san: SubjectAltName) -> x509.GeneralName:
    if san.type is SanType.DNS:
        return x509.DNSName(san.value.lower())
    if san.type is SanType.IP:
        return x509.IPAddress(ipaddress.ip_address(san.value))
    if san.type is SanType.EMAIL:
        return x509.RFC822Name(san.value)
    return x509.UniformResourceIdentifier(san.value)


@lru_cache(maxsize=64)
def key_usage_extension(usages: tuple[KeyUsage, ...]) -> x509.KeyUsage:
    u = set(usages)
    agreement = KeyUsage.KEY_AGREEMENT in u
    return x509.KeyUsage(
        digital_signature=KeyUsage.DIGITAL_SIGNATURE in u,
        content_commitment=KeyUsage.NON_REPUDIATION in u,
        key_encipherment=KeyUsage.KEY_ENCIPHERMENT in u,
        data_encipherment=KeyUsage.DATA_ENCIPHERMENT in u,
        key_agreement=agreement,
        key_cert_sign=KeyUsage.KEY_CERT_SIGN in u,
        crl_sign=KeyUsage.CRL_SIGN in u,
        encipher_only=agreement and KeyUsage.ENCIPHER_ONLY in u,
        decipher_only=agreement and KeyUsage.DECIPHER_ONLY in u,
    )


# The extended key usages this service issues: ExtendedKeyUsage's fields and their OIDs, in the order written.
EKU_OIDS = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "smart_card_logon": SMART_CARD_LOGON,
}


@lru_cache(maxsize=64)
def _eku(eku: ExtendedKeyUsage) -> x509.ExtendedKeyUsage:
    return x509.ExtendedKeyUsage([oid for field, oid in EKU_OIDS.items() if getattr(eku, field)])


def extended_key_usage_of(oids: list[ObjectIdentifier]) -> tuple[ExtendedKeyUsage | None, tuple[str, ...]]:
    """The usages of an extendedKeyUsage extension this service can issue (None when it names none of them),
    and the dotted OIDs of those it cannot."""
    fields = {oid: field for field, oid in EKU_OIDS.items()}
    known = {fields[oid]: True for oid in oids if oid in fields}
    unknown = tuple(dict.fromkeys(oid.dotted_string for oid in oids if oid not in fields))
    return (ExtendedKeyUsage(**known) if known else None), unknown


def _utf8_string(value: str) -> bytes:
    """DER UTF8String (tag 12) of `value`."""
    data = value.encode("utf-8")
    n = len(data)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return b"\x0c" + length + data


def _signature_hash(key: CertificateIssuerPrivateKeyTypes, sig: SignatureHash):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hash_for(sig)


@dataclass(frozen=True, slots=True)
class IssuerFacts:
    """What a certificate signed by an issuer takes from the issuer's certificate (all public)."""

    name: x509.Name
    not_before: datetime
    not_after: datetime
    authority_key_identifier: x509.AuthorityKeyIdentifier


def issuer_facts(issuer_cert: x509.Certificate) -> IssuerFacts:
    try:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier(issuer_ski.digest, None, None)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]
    return IssuerFacts(issuer_cert.subject, issuer_cert.not_valid_before_utc, issuer_cert.not_valid_after_utc, aki)


@lru_cache(maxsize=256)
def issuer_facts_of_pem(issuer_certificate_pem: str) -> IssuerFacts:
    """issuer_facts of a PEM certificate, parsed once per issuer (public data, keyed by the exact PEM text)."""
    return issuer_facts(x509.load_pem_x509_certificate(issuer_certificate_pem.encode()))


# Extension values are immutable; the ones that depend only on the CA or the profile are built once and reused
# (each construction runs cryptography's isinstance checks on ABCs again).
@lru_cache(maxsize=16)
def _basic_constraints(is_ca: bool, path_length: int | None) -> x509.Extension[x509.ExtensionType]:
    return _extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), True)


@lru_cache(maxsize=256)
def _crl_distribution_points(url: str) -> x509.Extension[x509.ExtensionType]:
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
    )
    return _extension(x509.CRLDistributionPoints([point]), False)


def build_certificate(
    spec: IssueSpec,
    issuer_cert: x509.Certificate | IssuerFacts | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
) -> x509.Certificate:
    """Sign `spec` with `issuer_key`; self-signed (issuer = subject) when issuer_cert is None."""
    issuer = issuer_facts(issuer_cert) if isinstance(issuer_cert, x509.Certificate) else issuer_cert
    if issuer is not None:
        if spec.not_after > issuer.not_after:
            raise ValidityError("the certificate may not outlive its issuing CA", field="validity")
        if spec.not_before < issuer.not_before:
            raise ValidityError("the certificate may not start before its issuing CA", field="validity")
    subject = x509_name(spec.subject)
    ski = x509.SubjectKeyIdentifier.from_public_key(spec.public_key)
    if issuer is None:
        issuer_name = subject
        aki = x509.AuthorityKeyIdentifier(ski.digest, None, None)
    else:
        issuer_name, aki = issuer.name, issuer.authority_key_identifier
    extensions = [
        _basic_constraints(spec.is_ca, spec.path_length),
        _key_usage(spec.key_usages),
        x509.Extension(ski.oid, False, ski),
        x509.Extension(aki.oid, False, aki),
    ]
    if spec.extended_key_usage is not None and spec.extended_key_usage.any():
        extensions.append(_eku_extension(spec.extended_key_usage))
    if spec.sans:
        # RFC 5280 4.2.1.6: with an empty subject the names are the whole identity, so the extension is critical.
        sans = x509.SubjectAlternativeName([_general_name(s) for s in spec.sans])
        extensions.append(x509.Extension(sans.oid, len(subject) == 0, sans))
    elif len(subject) == 0:
        raise InvalidInputError(
            "a certificate with an empty subject needs a subject alternative name (RFC 5280 4.2.1.6)", field="subject"
        )
    if spec.crl_distribution_url and issuer is not None:
        extensions.append(_crl_distribution_points(spec.crl_distribution_url))
    access = _authority_information_access(spec.ocsp_url, spec.ca_issuers_url)
    if access is not None and issuer is not None:  # RFC 5280 4.2.2.1: about the issuer, so never in a root
        extensions.append(access)
    if spec.custom_extension is not None:
        ext = x509.UnrecognizedExtension(
            ObjectIdentifier(spec.custom_extension.object_identifier), _utf8_string(spec.custom_extension.value)
        )
        extensions.append(x509.Extension(ext.oid, False, ext))
    # The extensions go to the builder in one list rather than by add_extension each, which builds a new builder
    # per call and checks the list for duplicates each time; the one duplicate check left is this one (a custom
    # extension may name any OID). Name, key, serial and dates still go through the builder's own checks.
    if len({e.oid for e in extensions}) != len(extensions):
        raise ValueError("This extension has already been set.")  # cryptography's words
    builder = (
        x509.CertificateBuilder(issuer_name=issuer_name, subject_name=subject, extensions=extensions)
        .public_key(spec.public_key)  # type: ignore[arg-type]
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    return builder.sign(issuer_key, _signature_hash(issuer_key, spec.hash))  # type: ignore[arg-type]


def _extension(value: x509.ExtensionType, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


@lru_cache(maxsize=64)
def _key_usage(usages: tuple[KeyUsage, ...]) -> x509.Extension[x509.ExtensionType]:
    return _extension(key_usage_extension(usages), True)


@lru_cache(maxsize=64)
def _eku_extension(eku: ExtendedKeyUsage) -> x509.Extension[x509.ExtensionType]:
    return _extension(_eku(eku), False)


@lru_cache(maxsize=256)
def _authority_information_access(
    ocsp_url: str | None, ca_issuers_url: str | None
) -> x509.Extension[x509.ExtensionType] | None:
    descriptions = []
    if ocsp_url:
        descriptions.append(
            x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        )
    if ca_issuers_url:
        descriptions.append(
            x509.AccessDescription(
                x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url)
            )
        )
    return _extension(x509.AuthorityInformationAccess(descriptions), False) if descriptions else None


def key_kind(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    return "EdDSA"
