"""Reading the attributes an APIG client sees (subject parts, SANs, validity, algorithms) from X.509."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from gatewaycerts.domain.models import AlgorithmType, CertificateInfo

# The names Go's crypto/x509 gives signature algorithms: what APIG returns (seed: "SHA256-RSA").
_SIGNATURE_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA1-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "SHA224-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512-RSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ECDSA-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ECDSA-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ECDSA-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ECDSA-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ECDSA-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "DSA-SHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "DSA-SHA256",
    SignatureAlgorithmOID.ED25519: "Ed25519",
}
WEAK_SIGNATURE_OIDS = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_MD5,
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        SignatureAlgorithmOID.DSA_WITH_SHA1,
    }
)


def signature_algorithm_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        digest = cert.signature_hash_algorithm
        return f"{digest.name.upper()}-RSAPSS" if digest else "RSAPSS"
    return _SIGNATURE_NAMES.get(oid, oid.dotted_string)


def is_weak_signature(cert: x509.Certificate) -> bool:
    if cert.signature_algorithm_oid in WEAK_SIGNATURE_OIDS:
        return True
    digest = cert.signature_hash_algorithm
    return isinstance(digest, (hashes.MD5, hashes.SHA1))


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(str(attr.value) for attr in name.get_attributes_for_oid(oid))


def subject_alternative_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses as text) of the SAN extension; empty when absent."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return dns, ips


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def describe(cert: x509.Certificate) -> str:
    """A short human label for error messages: the subject, RFC 4514."""
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number}"


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    subject = cert.subject
    dns, ips = subject_alternative_names(cert)
    public_key = cert.public_key()
    algorithm = AlgorithmType.RSA if isinstance(public_key, rsa.RSAPublicKey) else AlgorithmType.ECC
    key_size = public_key.key_size if isinstance(public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)) else 0
    issuer_names = _values(cert.issuer, NameOID.ORGANIZATION_NAME) or _values(cert.issuer, NameOID.COMMON_NAME)
    common_names = _values(subject, NameOID.COMMON_NAME)
    return CertificateInfo(
        common_name=common_names[0] if common_names else "",
        san=dns + ips,
        dns_names=dns,
        ip_addresses=ips,
        organization=_values(subject, NameOID.ORGANIZATION_NAME),
        organizational_unit=_values(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        locality=_values(subject, NameOID.LOCALITY_NAME),
        state=_values(subject, NameOID.STATE_OR_PROVINCE_NAME),
        country=_values(subject, NameOID.COUNTRY_NAME),
        issuer=issuer_names,
        serial_number=str(cert.serial_number),
        version=cert.version.value + 1,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        signature_algorithm=signature_algorithm_name(cert),
        algorithm_type=algorithm,
        key_size=key_size,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )
