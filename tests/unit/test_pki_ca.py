"""The CA engine's pure parts: validity arithmetic, name/SAN/extension/key-usage rules, CSR checks, CRLs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from gatewaycerts.core.validity import ValidityRequest, add_months, resolve_validity
from gatewaycerts.domain.errors import InvalidInputError, ValidityError, WeakKeyError
from gatewaycerts.domain.pca import (
    CustomExtension,
    DistinguishedName,
    KeyUsage,
    RevocationReason,
    RevokedSerial,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.domain.pca_errors import CsrInvalidError, InvalidExtensionError, InvalidSanError
from gatewaycerts.pki.crl import build_crl
from gatewaycerts.pki.csr import parse_csr
from gatewaycerts.pki.issue import IssueSpec, build_certificate
from gatewaycerts.pki.keygen import new_serial
from gatewaycerts.pki.profiles import (
    validate_custom_extension,
    validate_distinguished_name,
    validate_key_usages,
    validate_sans,
)
from tests.factories import rsa_key

NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kind", "value", "end"),
    [
        ("YEAR", 1, dt.datetime(2027, 1, 31, 12, 0, tzinfo=dt.UTC)),
        ("MONTH", 1, NOW + dt.timedelta(days=31)),
        ("DAY", 3, NOW + dt.timedelta(days=3)),
        ("HOUR", 5, NOW + dt.timedelta(hours=5)),
    ],
)
def test_validity_units(kind, value, end):
    assert resolve_validity(ValidityRequest(kind, value), NOW, cap_years=20) == (NOW, end)


def test_add_months_clamps_the_day():
    assert add_months(NOW, 1) == dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2024, 2, 29, tzinfo=dt.UTC), 12) == dt.datetime(2025, 2, 28, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("req", "kw"),
    [
        (ValidityRequest("YEAR", 21), {}),
        (ValidityRequest("MONTH", 20 * 12), {}),  # 240 x 31 days is more than 20 years
        (ValidityRequest("DAY", 0), {}),
        (ValidityRequest("DAY", 1, start_from=int((NOW - dt.timedelta(minutes=6)).timestamp() * 1000)), {}),
        (ValidityRequest("DAY", 10), {"issuer_not_after": NOW + dt.timedelta(days=9)}),
        (ValidityRequest("DAY", 1), {"issuer_not_before": NOW + dt.timedelta(seconds=1)}),
    ],
    ids=["over cap", "months over cap", "zero", "start too early", "beyond issuer", "before issuer"],
)
def test_validity_refusals(req, kw):
    with pytest.raises(ValidityError):
        resolve_validity(req, NOW, cap_years=20, **kw)


def test_start_from_within_tolerance_is_accepted():
    start = NOW - dt.timedelta(minutes=4)
    req = ValidityRequest("DAY", 1, start_from=int(start.timestamp() * 1000))
    assert resolve_validity(req, NOW, cap_years=20)[0] == start


SAN_CASES = [
    (SanType.DNS, "www.example.com", True),
    (SanType.DNS, "*.example.com", True),
    (SanType.DNS, "*.com", False),
    (SanType.DNS, "a..b", False),
    (SanType.DNS, "-bad.example.com", False),
    (SanType.DNS, ("a" * 64) + ".com", False),
    (SanType.IP, "10.0.0.1", True),
    (SanType.IP, "2001:db8::1", True),
    (SanType.IP, "10.0.0.256", False),
    (SanType.EMAIL, "pki@example.com", True),
    (SanType.EMAIL, "no-at-sign", False),
    (SanType.URI, "https://example.com/x", True),
    (SanType.URI, "not a uri", False),
]


@pytest.mark.parametrize(("kind", "value", "valid"), SAN_CASES, ids=[f"{k.value} {v[:20]}" for k, v, _ in SAN_CASES])
def test_san_rules(kind, value, valid):
    sans = (SubjectAltName(kind, value),)
    if valid:
        validate_sans(sans)
    else:
        with pytest.raises(InvalidSanError):
            validate_sans(sans)


def test_at_most_twenty_sans():
    validate_sans(tuple(SubjectAltName(SanType.DNS, f"h{i}.example.com") for i in range(20)))
    with pytest.raises(InvalidSanError):
        validate_sans(tuple(SubjectAltName(SanType.DNS, f"h{i}.example.com") for i in range(21)))


@pytest.mark.parametrize(
    ("oid", "value", "valid"),
    [
        ("1.3.6.1.4.1.2011.4.99", "ok", True),
        ("2.5.29.17", "san", False),  # one we set ourselves
        ("1.50.1", "x", False),  # second arc > 39 under 0/1
        ("3.1", "x", False),
        ("1.3.6.1.4.1.2011.4.99", "", False),
        ("1.3.6.1.4.1.2011.4.99", "x" * 65, False),
    ],
)
def test_custom_extension_rules(oid, value, valid):
    ext = CustomExtension(oid, value)
    if valid:
        validate_custom_extension(ext)
    else:
        with pytest.raises(InvalidExtensionError):
            validate_custom_extension(ext)


@pytest.mark.parametrize(
    "dn",
    [
        DistinguishedName(""),
        DistinguishedName("x" * 65),
        DistinguishedName("ok", country="CHN"),
        DistinguishedName("ok", state="a\x00b"),
        DistinguishedName(" padded"),
    ],
)
def test_distinguished_name_refusals(dn):
    with pytest.raises(InvalidInputError):
        validate_distinguished_name(dn)


def test_distinguished_name_inherits_only_what_it_omits():
    parent = DistinguishedName("Parent", country="CN", organization="Org", locality="SZ")
    child = DistinguishedName("Child", organization="Other").inherit(parent)
    assert child == DistinguishedName("Child", country="CN", organization="Other", locality="SZ")


@pytest.mark.parametrize(
    ("usages", "is_ca", "kind"),
    [
        ((KeyUsage.DIGITAL_SIGNATURE,), True, "EC"),  # a CA without keyCertSign
        ((KeyUsage.KEY_CERT_SIGN,), False, "EC"),  # a leaf with keyCertSign
        ((KeyUsage.KEY_ENCIPHERMENT,), False, "EC"),  # key transport with an EC key
        ((KeyUsage.ENCIPHER_ONLY,), False, "EC"),  # without keyAgreement
        ((KeyUsage.KEY_AGREEMENT,), False, "RSA"),
    ],
)
def test_key_usage_rules(usages, is_ca, kind):
    with pytest.raises(InvalidInputError):
        validate_key_usages(usages, is_ca, kind)


def _csr(key, digest: hashes.HashAlgorithm | None = hashes.SHA256) -> str:  # class, called below
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.com")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("csr.example.com")]), critical=False)
        .sign(key, digest() if isinstance(digest, type) else digest)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_csr_parsing_reads_subject_sans_and_key():
    parsed = parse_csr(_csr(ec.generate_private_key(ec.SECP384R1())))
    assert parsed.subject == DistinguishedName("csr.example.com")
    assert parsed.sans == (SubjectAltName(SanType.DNS, "csr.example.com"),)
    assert (parsed.key_type, parsed.key_length, parsed.key_description) == ("EC", 384, "EC-P384")
    ed = parse_csr(_csr(ed25519.Ed25519PrivateKey.generate(), None))
    assert ed.key_description == "Ed25519" and ed.key_algorithm is None


def test_csr_refusals():
    with pytest.raises(WeakKeyError):
        parse_csr(_csr(rsa_key(1024)))
    with pytest.raises(WeakKeyError):
        parse_csr(_csr(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(CsrInvalidError):
        parse_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    pem = _csr(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CsrInvalidError):
        parse_csr(pem + pem)  # two requests


def test_serials_are_positive_159_bit_and_distinct():
    serials = {new_serial() for _ in range(1000)}
    assert len(serials) == 1000 and all(0 < s < 2**159 for s in serials)
    assert max(s.bit_length() for s in serials) > 150


def test_crl_entries_reasons_and_number():
    key = ec.generate_private_key(ec.SECP256R1())
    spec = IssueSpec(
        subject=DistinguishedName("CRL Root"),
        public_key=key.public_key(),
        serial=1,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=30),
        hash=SignatureHash.SHA256,
        is_ca=True,
        path_length=None,
        key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
    )
    root = build_certificate(spec, None, key)
    revoked = [
        RevokedSerial(7, NOW, RevocationReason.UNSPECIFIED),
        RevokedSerial(5, NOW, RevocationReason.CERTIFICATE_HOLD),
    ]
    crl = build_crl(root, key, SignatureHash.SHA256, revoked, 42, NOW, NOW + dt.timedelta(days=7))
    assert crl.is_signature_valid(key.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    assert [e.serial_number for e in crl] == [5, 7]
    hold = crl.get_revoked_certificate_by_serial_number(5)
    assert hold.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold
    assert len(crl.get_revoked_certificate_by_serial_number(7).extensions) == 0  # unspecified: no reasonCode
