"""OCSP (RFC 6960, in the RFC 5019 profile: one certificate per request): parse requests, sign responses, and
issue the delegated OCSP signing certificate a CA may answer with. PEM/DER in, DER out; no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewaycerts.domain.pca import RevocationReason, SignatureHash
from gatewaycerts.pki.crl import reason_flag
from gatewaycerts.pki.keygen import hash_for, private_key_from_pem

MAX_NONCE_BYTES = 32  # RFC 8954 section 2.1: a nonce is 1 to 32 octets
# CertID hash algorithms answered (RFC 6960 requires SHA-1 at least; RFC 5019 clients send SHA-1 or SHA-256).
CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class MalformedOcspRequest(ValueError):
    """The request is not an OCSP request this responder can read (answered with malformedRequest)."""


@dataclass(frozen=True, slots=True)
class OcspQuery:
    hash_name: str | None  # None: a CertID hash algorithm this responder does not compute
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    nonce: bytes | None


def parse_request(der: bytes) -> OcspQuery:
    """Read one DER OCSPRequest; MalformedOcspRequest for anything else (several requests included)."""
    try:
        req = ocsp.load_der_ocsp_request(der)
        extensions = req.extensions
        serial = req.serial_number
        name_hash, key_hash = req.issuer_name_hash, req.issuer_key_hash
    except (ValueError, TypeError, NotImplementedError) as exc:  # NotImplementedError: several requests
        raise MalformedOcspRequest("not a DER OCSP request for one certificate") from exc
    try:
        hash_name: str | None = req.hash_algorithm.name
    except UnsupportedAlgorithm:
        hash_name = None
    if hash_name not in CERT_ID_HASHES:
        hash_name = None
    nonce = None
    for ext in extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            nonce = ext.value.nonce
        elif ext.critical:
            raise MalformedOcspRequest("the request carries a critical extension this responder does not know")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_BYTES:
        raise MalformedOcspRequest("the nonce must be 1 to 32 octets (RFC 8954)")
    return OcspQuery(hash_name, name_hash, key_hash, serial, nonce)


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's content, which CertID's issuerKeyHash hashes (RFC 6960 4.1.1)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise ValueError("unsupported issuer key type")


def issuer_hashes(issuer_certificate_pem: str) -> dict[str, tuple[bytes, bytes]]:
    """(issuerNameHash, issuerKeyHash) of a CA for every CertID hash algorithm answered."""
    cert = x509.load_pem_x509_certificate(issuer_certificate_pem.encode())
    name, key = cert.subject.public_bytes(), _public_key_bits(cert)
    return {n: (hashlib.new(n, name).digest(), hashlib.new(n, key).digest()) for n in CERT_ID_HASHES}


def certificate_der(certificate_pem: str) -> bytes:
    return x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(serialization.Encoding.DER)


def unsuccessful(status: str) -> bytes:
    """An OCSPResponse without a body: malformedRequest, internalError, tryLater or unauthorized."""
    code = {
        "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
        "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
        "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
    }[status]
    return ocsp.OCSPResponseBuilder.build_unsuccessful(code).public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True, slots=True)
class CertStatus:
    state: str  # good, revoked or unknown
    revoked_at: datetime | None = None
    reason: RevocationReason | None = None


def _signature_algorithm(key: object, sig: SignatureHash) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hash_for(sig)


def sign_response(
    query: OcspQuery,
    status: CertStatus,
    *,
    issuer_certificate_pem: str,
    signer_key_pem: bytes,
    signer_certificate_pem: str | None,  # None: the CA signs; else the delegated responder certificate
    signature_hash: SignatureHash,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A successful BasicOCSPResponse for one CertID, echoing the nonce when the request had one."""
    assert query.hash_name is not None
    issuer = x509.load_pem_x509_certificate(issuer_certificate_pem.encode())
    signer_cert = (
        issuer if signer_certificate_pem is None else x509.load_pem_x509_certificate(signer_certificate_pem.encode())
    )
    key = private_key_from_pem(signer_key_pem)
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status.state]
    revoked = status.state == "revoked"
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=query.issuer_name_hash,
        issuer_key_hash=query.issuer_key_hash,
        serial_number=query.serial_number,
        algorithm=CERT_ID_HASHES[query.hash_name](),
        cert_status=cert_status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=status.revoked_at if revoked else None,
        # As on the CRL: "unspecified" is said by leaving the reason out (RFC 5280 5.3.1).
        revocation_reason=reason_flag(status.reason) if revoked and status.reason else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    if signer_certificate_pem is not None:
        builder = builder.certificates([signer_cert])
    if query.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(query.nonce), critical=False)
    response = builder.sign(key, _signature_algorithm(key, signature_hash))  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)


def issue_signer_certificate(
    *,
    issuer_certificate_pem: str,
    issuer_key_pem: bytes,
    signature_hash: SignatureHash,
    signer_key_pem: bytes,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> str:
    """A delegated OCSP responder certificate (RFC 6960 4.2.2.2): id-kp-OCSPSigning, id-pkix-ocsp-nocheck."""
    issuer = x509.load_pem_x509_certificate(issuer_certificate_pem.encode())
    issuer_key = private_key_from_pem(issuer_key_pem)
    public_key = private_key_from_pem(signer_key_pem).public_key()
    attributes = [a for a in issuer.subject if a.oid != NameOID.COMMON_NAME]
    cn = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = f"{cn[0].value} OCSP Responder"[:64] if cn else "OCSP Responder"
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier(issuer_ski.digest, None, None)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
        .add_extension(aki, critical=False)
    )
    cert = builder.sign(issuer_key, _signature_algorithm(issuer_key, signature_hash))  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate_not_after(certificate_pem: str) -> datetime:
    return x509.load_pem_x509_certificate(certificate_pem.encode()).not_valid_after_utc
