"""build_certificate hands its extensions to cryptography's builder in one list (stop 29): the certificate is
byte for byte the one the builder makes when they are added one by one (add_extension, its checks per call),
for a root, a subordinate CA and end entities with every optional extension; RSA PKCS#1 v1.5 signatures are
deterministic, so whole DERs are compared."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from gatewaycerts.domain.pca import (
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    KeyUsage,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.pki.issue import IssueSpec, build_certificate, issuer_facts
from tests.factories import rsa_key

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _spec(**kw) -> IssueSpec:  # type: ignore[no-untyped-def]
    base = dict(
        subject=DistinguishedName(common_name="www.example.com", organization="Example", country="US"),
        public_key=rsa_key(2048, 3).public_key(),
        serial=0x1234567890ABCDEF,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=90),
        hash=SignatureHash.SHA256,
        is_ca=False,
        path_length=None,
        key_usages=(KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_ENCIPHERMENT),
    )
    return IssueSpec(**{**base, **kw})


def _one_by_one(cert: x509.Certificate, key) -> bytes:  # type: ignore[no-untyped-def]
    """The same certificate through add_extension, in the same order."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


ROOT_KEY, CA_KEY = rsa_key(2048, 1), rsa_key(2048, 2)
ROOT = build_certificate(
    _spec(
        subject=DistinguishedName(common_name="Root"),
        public_key=ROOT_KEY.public_key(),
        is_ca=True,
        not_after=NOW + dt.timedelta(days=3650),
        key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
    ),
    None,
    ROOT_KEY,
)
LEAVES = {
    "root": (_spec(subject=DistinguishedName(common_name="Root"), is_ca=True, public_key=ROOT_KEY.public_key()), None),
    "subordinate CA": (
        _spec(
            subject=DistinguishedName(common_name="Sub"),
            public_key=CA_KEY.public_key(),
            is_ca=True,
            path_length=0,
            key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
            crl_distribution_url="http://ca.example/crl",
            ocsp_url="http://ca.example/ocsp",
        ),
        ROOT,
    ),
    "end entity, every extension": (
        _spec(
            extended_key_usage=ExtendedKeyUsage(server_auth=True, client_auth=True),
            sans=(SubjectAltName(SanType.DNS, "WWW.example.com"), SubjectAltName(SanType.IP, "192.0.2.1")),
            crl_distribution_url="http://ca.example/crl",
            ocsp_url="http://ca.example/ocsp",
            ca_issuers_url="http://ca.example/ca.der",
            custom_extension=CustomExtension("1.2.3.4.5", "hello"),
        ),
        ROOT,
    ),
    "end entity, empty subject": (
        _spec(subject=DistinguishedName(common_name=""), sans=(SubjectAltName(SanType.DNS, "a.example"),)),
        ROOT,
    ),
}


@pytest.mark.parametrize("name", LEAVES)
def test_the_certificate_is_the_one_add_extension_makes(name):
    spec, issuer = LEAVES[name]
    signer = ROOT_KEY
    cert = build_certificate(spec, None if issuer is None else issuer_facts(issuer), signer)
    assert len(cert.extensions) >= 4
    assert cert.public_bytes(serialization.Encoding.DER) == _one_by_one(cert, signer)
    # and the same twice (the cached extension objects are not changed by a signature)
    again = build_certificate(spec, None if issuer is None else issuer_facts(issuer), signer)
    assert again.public_bytes(serialization.Encoding.DER) == cert.public_bytes(serialization.Encoding.DER)


def test_a_custom_extension_that_repeats_one_of_ours_is_refused():
    spec = _spec(custom_extension=CustomExtension("2.5.29.19", "x"))  # basicConstraints' OID
    with pytest.raises(ValueError, match="already been set"):
        build_certificate(spec, issuer_facts(ROOT), ROOT_KEY)


def test_the_extensions_come_in_the_order_and_criticality_of_before():
    spec, issuer = LEAVES["end entity, every extension"]
    cert = build_certificate(spec, issuer_facts(issuer), ROOT_KEY)
    oids = x509.oid.ExtensionOID
    assert [(e.oid, e.critical) for e in cert.extensions] == [
        (oids.BASIC_CONSTRAINTS, True),
        (oids.KEY_USAGE, True),
        (oids.SUBJECT_KEY_IDENTIFIER, False),
        (oids.AUTHORITY_KEY_IDENTIFIER, False),
        (oids.EXTENDED_KEY_USAGE, False),
        (oids.SUBJECT_ALTERNATIVE_NAME, False),
        (oids.CRL_DISTRIBUTION_POINTS, False),
        (oids.AUTHORITY_INFORMATION_ACCESS, False),
        (x509.ObjectIdentifier("1.2.3.4.5"), False),
    ]
    empty, _ = LEAVES["end entity, empty subject"]
    sans = build_certificate(empty, issuer_facts(issuer), ROOT_KEY).extensions.get_extension_for_oid(
        oids.SUBJECT_ALTERNATIVE_NAME
    )
    assert sans.critical  # RFC 5280 4.2.1.6
