"""PKCS#10 certificate signing requests: parse and check (signature, key strength), and build our own."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from gatewaycerts.domain.errors import (
    CertificateParseError,
    ParameterTooLongError,
    UnsupportedAlgorithmError,
    WeakKeyError,
    WeakSignatureError,
)
from gatewaycerts.domain.pca import (
    DistinguishedName,
    ExtendedKeyUsage,
    KeyAlgorithm,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.domain.pca_errors import CsrInvalidError
from gatewaycerts.pki.ca_import import distinguished_name_of
from gatewaycerts.pki.issue import extended_key_usage_of, x509_name
from gatewaycerts.pki.keygen import hash_for, key_algorithm_of
from gatewaycerts.pki.pem import split_blocks

MAX_CSR_BYTES = 16 * 1024
_LABELS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_CURVES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_WEAK_HASHES = {"md5", "sha1"}


@dataclass(frozen=True, slots=True)
class ParsedCsr:
    csr: x509.CertificateSigningRequest
    subject: DistinguishedName | None  # None when the subject has no CN
    name: DistinguishedName  # the subject's attributes whether or not it has a CN (then common_name == "")
    sans: tuple[SubjectAltName, ...]
    public_key: PublicKeyTypes
    key_algorithm: KeyAlgorithm | None
    key_type: str  # RSA, EC, EdDSA
    key_length: int
    key_description: str
    # The extendedKeyUsage the CSR asks for (its extensionRequest): the usages this service issues (None when it
    # asks for none) and the dotted OIDs of those it cannot issue.
    extended_key_usage: ExtendedKeyUsage | None = None
    unissued_extended_key_usages: tuple[str, ...] = ()


def _sans(csr: x509.CertificateSigningRequest) -> tuple[SubjectAltName, ...]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    out: list[SubjectAltName] = []
    for name in ext:
        if isinstance(name, x509.DNSName):
            out.append(SubjectAltName(SanType.DNS, name.value))
        elif isinstance(name, x509.IPAddress) and isinstance(name.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            out.append(SubjectAltName(SanType.IP, str(name.value)))
        elif isinstance(name, x509.RFC822Name):
            out.append(SubjectAltName(SanType.EMAIL, name.value))
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(SubjectAltName(SanType.URI, name.value))
    return tuple(out)


def _requested_eku(csr: x509.CertificateSigningRequest) -> tuple[ExtendedKeyUsage | None, tuple[str, ...]]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None, ()
    return extended_key_usage_of(list(ext))


def _check_key(key: PublicKeyTypes) -> tuple[str, int, str]:
    if isinstance(key, rsa.RSAPublicKey):
        bits, e = key.key_size, key.public_numbers().e
        if bits < 2048:
            raise WeakKeyError(f"the CSR's RSA key has {bits} bits; at least 2048 are required", field="csr")
        if bits > 8192:
            raise WeakKeyError(f"the CSR's RSA key has {bits} bits; at most 8192 are accepted", field="csr")
        if e < 65537 or e % 2 == 0:
            raise WeakKeyError("the CSR's RSA public exponent must be odd and at least 65537", field="csr")
        return "RSA", bits, f"RSA-{bits}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = _CURVES.get(key.curve.name)
        if bits is None:
            raise WeakKeyError(
                f"the CSR's curve {key.curve.name} is not accepted; use P-256, P-384 or P-521", field="csr"
            )
        return "EC", bits, f"EC-P{bits}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA", 256, "Ed25519"
    raise UnsupportedAlgorithmError("the CSR's key type is not supported; use RSA, ECDSA or Ed25519", field="csr")


def parse_csr(pem: str) -> ParsedCsr:
    if len(pem) > MAX_CSR_BYTES:
        raise ParameterTooLongError(
            f"parameterName:csr is {len(pem)} characters; the maximum is {MAX_CSR_BYTES}", field="csr"
        )
    try:
        blocks = split_blocks(pem, field="csr", max_blocks=2)
    except CertificateParseError as exc:
        raise CsrInvalidError(f"the CSR is not PEM: {exc.message}", field="csr") from None
    if len(blocks) != 1 or blocks[0].label not in _LABELS:
        raise CsrInvalidError("parameterName:csr must hold exactly one CERTIFICATE REQUEST PEM block", field="csr")
    try:
        csr = x509.load_der_x509_csr(blocks[0].der)
        public_key = csr.public_key()
        hash_alg = csr.signature_hash_algorithm
        subject = csr.subject
    except (ValueError, TypeError):
        raise CsrInvalidError("the CSR cannot be parsed (malformed DER)", field="csr") from None
    except UnsupportedAlgorithm:
        raise UnsupportedAlgorithmError("the CSR uses an unsupported key or signature algorithm", field="csr") from None
    if hash_alg is not None and hash_alg.name in _WEAK_HASHES:
        raise WeakSignatureError(f"the CSR is signed with {hash_alg.name.upper()}; use SHA-256 or better", field="csr")
    key_type, key_length, description = _check_key(public_key)
    if not csr.is_signature_valid:
        raise CsrInvalidError("the CSR's signature does not verify with its own public key", field="csr")
    dn = distinguished_name_of(subject)
    eku, unissued = _requested_eku(csr)
    return ParsedCsr(
        csr=csr,
        subject=dn if dn.common_name else None,
        name=dn,
        sans=_sans(csr),
        public_key=public_key,
        key_algorithm=key_algorithm_of(public_key),
        key_type=key_type,
        key_length=key_length,
        key_description=description,
        extended_key_usage=eku,
        unissued_extended_key_usages=unissued,
    )


def build_csr(
    subject: DistinguishedName, key: PrivateKeyTypes, hash: SignatureHash, *, is_ca: bool
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509_name(subject))
    if is_ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hash_for(hash)
    return builder.sign(key, algorithm)  # type: ignore[arg-type]


def csr_fingerprint(csr: x509.CertificateSigningRequest) -> str:
    return hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()
