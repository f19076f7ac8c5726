"""PEM-in, PEM-out operations of a CA (issue, sign a CRL, make a CSR), for the core's executor."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.domain.pca import (
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    KeyAlgorithm,
    KeyUsage,
    RevokedSerial,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.pki.crl import build_crl, crl_to_der
from gatewaycerts.pki.csr import ParsedCsr, build_csr, parse_csr
from gatewaycerts.pki.issue import IssueSpec, build_certificate, issuer_facts_of_pem, key_kind
from gatewaycerts.pki.keygen import generate_private_key, private_key_from_pem, private_key_to_pem
from gatewaycerts.pki.profiles import default_key_usages, validate_key_usages

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True, slots=True)
class Profile:
    """What to put into a certificate, apart from its key, issuer and serial."""

    subject: DistinguishedName
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
    ocsp_url: str | None = None
    ca_issuers_url: str | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    certificate_pem: str
    private_key_pem: bytes | None  # None when the key came from a CSR


def new_key_pem(alg: KeyAlgorithm) -> bytes:
    return private_key_to_pem(generate_private_key(alg))


def public_key_pem(key_pem: bytes) -> bytes:
    return (
        private_key_from_pem(key_pem).public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _spec(profile: Profile, public_key: object, serial: int) -> IssueSpec:
    return IssueSpec(
        subject=profile.subject,
        public_key=public_key,
        serial=serial,
        not_before=profile.not_before,
        not_after=profile.not_after,
        hash=profile.hash,
        is_ca=profile.is_ca,
        path_length=profile.path_length,
        key_usages=profile.key_usages,
        extended_key_usage=profile.extended_key_usage,
        sans=profile.sans,
        crl_distribution_url=profile.crl_distribution_url,
        custom_extension=profile.custom_extension,
        ocsp_url=profile.ocsp_url,
        ca_issuers_url=profile.ca_issuers_url,
    )


def issue(
    profile: Profile,
    serial: int,
    *,
    subject_key_pem: bytes | None,
    subject_public_key_pem: bytes | None = None,
    issuer_certificate_pem: str | None,
    issuer_key_pem: bytes | None,
) -> str:
    """Sign a certificate; self-signed when issuer_certificate_pem is None (then subject_key_pem signs)."""
    if subject_public_key_pem is not None:
        public_key = serialization.load_pem_public_key(subject_public_key_pem)
    else:
        assert subject_key_pem is not None
        public_key = private_key_from_pem(subject_key_pem).public_key()
    if issuer_certificate_pem is None:
        assert subject_key_pem is not None
        issuer_cert, signer = None, private_key_from_pem(subject_key_pem)
    else:
        assert issuer_key_pem is not None
        issuer_cert, signer = issuer_facts_of_pem(issuer_certificate_pem), private_key_from_pem(issuer_key_pem)
    cert = build_certificate(_spec(profile, public_key, serial), issuer_cert, signer)
    return cert.public_bytes(_PEM).decode()


def issue_with_new_key(
    alg: KeyAlgorithm,
    profile: Profile,
    serial: int,
    *,
    issuer_certificate_pem: str,
    issuer_key_pem: Callable[[], bytes],
) -> tuple[str, bytes]:
    """Generate a key of `alg` and sign `profile` for it under the issuer: (PEM certificate, PEM PKCS#8 key).
    The new key is serialised once and never parsed back; the issuer's key is opened only for this signature."""
    key = generate_private_key(alg)
    issuer = issuer_facts_of_pem(issuer_certificate_pem)
    cert = build_certificate(_spec(profile, key.public_key(), serial), issuer, private_key_from_pem(issuer_key_pem()))
    return cert.public_bytes(_PEM).decode(), private_key_to_pem(key)


def make_csr(subject: DistinguishedName, key_pem: bytes, hash: SignatureHash) -> str:
    csr = build_csr(subject, private_key_from_pem(key_pem), hash, is_ca=True)
    return csr.public_bytes(_PEM).decode()


def sign_crl(
    issuer_certificate_pem: str | None,
    issuer_key_pem: bytes,
    hash: SignatureHash,
    revoked: Sequence[RevokedSerial],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    issuer = x509.load_pem_x509_certificate((issuer_certificate_pem or "").encode())
    crl = build_crl(issuer, private_key_from_pem(issuer_key_pem), hash, revoked, number, this_update, next_update)
    return crl_to_der(crl)


def der_crl_to_pem(der: bytes) -> str:
    return x509.load_der_x509_crl(der).public_bytes(_PEM).decode()


@dataclass(frozen=True)
class CsrFacts:
    """What a checked CSR says, in plain values (no cryptography objects leave pki)."""

    subject: DistinguishedName | None  # None when the subject has no CN
    name: DistinguishedName  # the subject's attributes, with or without a CN (then common_name == "")
    sans: tuple[SubjectAltName, ...]
    key_algorithm: KeyAlgorithm | None
    key_type: str  # RSA, EC, EdDSA
    key_length: int
    signature_algorithm: str
    public_key_pem: bytes
    der: bytes  # the DER that was checked (the CSR's own bytes: cryptography re-encodes nothing)
    extended_key_usage: ExtendedKeyUsage | None = None  # what the CSR asks for, of the usages issued here
    unissued_extended_key_usages: tuple[str, ...] = ()  # dotted OIDs the CSR asks for that are not issued here

    # Derived on first use: issuing from a CSR reads neither (~9 us per CSR saved there).
    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the DER, hex."""
        return hashlib.sha256(self.der).hexdigest()

    @cached_property
    def pem(self) -> str:
        """Normalised: the DER that was checked, PEM-encoded as cryptography writes it."""
        b64 = base64.b64encode(self.der).decode()
        lines = "".join(b64[i : i + 64] + "\n" for i in range(0, len(b64), 64))
        return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}-----END CERTIFICATE REQUEST-----\n"


def inspect_csr(pem: str) -> CsrFacts:
    return _facts(parse_csr(pem))


def check_and_issue(
    pem: str,
    plan: Callable[[CsrFacts], Profile],
    serial: int,
    *,
    issuer_certificate_pem: str,
    issuer_key_pem: Callable[[], bytes],
) -> tuple[CsrFacts, Profile, str]:
    """Check a CSR and sign the certificate `plan` makes of what it says, in one call (one trip to the
    executor): (the CSR's facts, the profile, the PEM certificate). `plan` refuses by raising; the issuer's key
    is opened only after it has accepted, and only for this signature."""
    parsed = parse_csr(pem)
    facts = _facts(parsed)
    profile = plan(facts)
    issuer = issuer_facts_of_pem(issuer_certificate_pem)
    cert = build_certificate(_spec(profile, parsed.public_key, serial), issuer, private_key_from_pem(issuer_key_pem()))
    return facts, profile, cert.public_bytes(_PEM).decode()


def _facts(parsed: ParsedCsr) -> CsrFacts:
    hash_alg = parsed.csr.signature_hash_algorithm
    return CsrFacts(
        der=parsed.csr.public_bytes(serialization.Encoding.DER),
        subject=parsed.subject,
        name=parsed.name,
        sans=parsed.sans,
        key_algorithm=parsed.key_algorithm,
        key_type=parsed.key_type,
        key_length=parsed.key_length,
        signature_algorithm=(hash_alg.name.upper().replace("SHA", "SHA") if hash_alg else parsed.key_type),
        public_key_pem=parsed.public_key.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        extended_key_usage=parsed.extended_key_usage,
        unissued_extended_key_usages=parsed.unissued_extended_key_usages,
    )


def _kind_of(algorithm: KeyAlgorithm | None, public_key_pem: bytes | None, kind: str | None) -> str:
    if kind is not None:
        return kind
    if public_key_pem is not None:
        return key_kind(serialization.load_pem_public_key(public_key_pem))
    if algorithm in (KeyAlgorithm.RSA2048, KeyAlgorithm.RSA4096):
        return "RSA"
    return "EC"


def key_usages_for(
    requested: tuple[KeyUsage, ...],
    *,
    is_ca: bool,
    algorithm: KeyAlgorithm | None,
    public_key_pem: bytes | None = None,
    key_kind: str | None = None,
) -> tuple[KeyUsage, ...]:
    """The requested key usages if they suit the key and the certificate's role, else the defaults. The key's
    kind (RSA, EC, EdDSA) is `key_kind` when known (a checked CSR's key_type), else read from the public key."""
    kind = _kind_of(algorithm, public_key_pem, key_kind)
    if not requested:
        return default_key_usages(is_ca, kind)
    validate_key_usages(requested, is_ca, kind)
    return requested
