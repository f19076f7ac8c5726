"""pki.issue reuses what depends only on the issuer or the profile (the issuer's name and key identifier,
extension values): each certificate must still carry its own issuer's and profile's values."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gatewaycerts.domain.errors import ValidityError
from gatewaycerts.domain.pca import (
    DistinguishedName,
    ExtendedKeyUsage,
    KeyAlgorithm,
    KeyUsage,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.pki.authority import Profile, check_and_issue, issue, issue_with_new_key
from gatewaycerts.pki.keygen import private_key_from_pem, private_key_to_pem

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _ca(cn: str) -> tuple[str, bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private_key_to_pem(key), key


def _profile(base: str, eku: ExtendedKeyUsage, usages: tuple[KeyUsage, ...]) -> Profile:
    return Profile(
        subject=DistinguishedName(common_name="leaf.example"),
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=90),
        hash=SignatureHash.SHA256,
        is_ca=False,
        path_length=None,
        key_usages=usages,
        extended_key_usage=eku,
        sans=(SubjectAltName(SanType.DNS, "leaf.example"),),
        crl_distribution_url=f"{base}/crl",
        ocsp_url=f"{base}/ocsp",
        ca_issuers_url=f"{base}/ca",
    )


def _ext(cert: x509.Certificate, cls: type) -> object:
    return cert.extensions.get_extension_for_class(cls).value


def test_each_certificate_carries_its_own_issuer_and_profile_values():
    cas = [_ca("CA one"), _ca("CA two")]
    profiles = [
        _profile("http://one", ExtendedKeyUsage(server_auth=True), (KeyUsage.DIGITAL_SIGNATURE,)),
        _profile(
            "http://two",
            ExtendedKeyUsage(client_auth=True),
            (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT),
        ),
    ]
    for _ in range(2):  # the second pass is served from what the first built
        for (ca_pem, ca_key_pem, ca_key), profile, cn, base, eku_oid in zip(
            cas,
            profiles,
            ("CA one", "CA two"),
            ("http://one", "http://two"),
            (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            strict=True,
        ):
            subject_key = ec.generate_private_key(ec.SECP256R1())
            pem = issue(
                profile,
                7,
                subject_key_pem=private_key_to_pem(subject_key),
                issuer_certificate_pem=ca_pem,
                issuer_key_pem=ca_key_pem,
            )
            cert = x509.load_pem_x509_certificate(pem.encode())
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
            assert cert.issuer.rfc4514_string() == f"CN={cn}"
            aki = _ext(cert, x509.AuthorityKeyIdentifier)
            assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()).digest
            (point,) = _ext(cert, x509.CRLDistributionPoints)
            assert point.full_name[0].value == f"{base}/crl"
            access = {d.access_method: d.access_location.value for d in _ext(cert, x509.AuthorityInformationAccess)}
            assert access == {
                AuthorityInformationAccessOID.OCSP: f"{base}/ocsp",
                AuthorityInformationAccessOID.CA_ISSUERS: f"{base}/ca",
            }
            assert list(_ext(cert, x509.ExtendedKeyUsage)) == [eku_oid]
            assert _ext(cert, x509.KeyUsage).key_agreement is (base == "http://two")


def test_issue_with_new_key_returns_the_certified_key_and_opens_the_issuer_key_once():
    ca_pem, ca_key_pem, _ = _ca("CA gen")
    opened = []

    def issuer_key() -> bytes:
        opened.append(1)
        return ca_key_pem

    profile = _profile("http://gen", ExtendedKeyUsage(server_auth=True), (KeyUsage.DIGITAL_SIGNATURE,))
    cert_pem, key_pem = issue_with_new_key(
        KeyAlgorithm.EC256, profile, 9, issuer_certificate_pem=ca_pem, issuer_key_pem=issuer_key
    )
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = private_key_from_pem(key_pem)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cert.public_key() == key.public_key()
    assert cert.serial_number == 9
    assert opened == [1]


def test_a_csr_under_a_ca_that_ends_first_is_still_refused():
    ca_pem, ca_key_pem, _ = _ca("CA short")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    long = _profile("http://x", ExtendedKeyUsage(server_auth=True), (KeyUsage.DIGITAL_SIGNATURE,))
    long = Profile(**{**{f: getattr(long, f) for f in long.__slots__}, "not_after": NOW + dt.timedelta(days=4000)})
    for _ in range(2):
        with pytest.raises(ValidityError):
            check_and_issue(
                csr, lambda facts: long, 3, issuer_certificate_pem=ca_pem, issuer_key_pem=lambda: ca_key_pem
            )
