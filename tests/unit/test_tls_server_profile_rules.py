"""The TLS server profile's pure rules (pki/profiles.py) and what a CSR asks for (pki/csr.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewaycerts.domain.pca import ExtendedKeyUsage, SanType, SubjectAltName
from gatewaycerts.pki.csr import parse_csr
from gatewaycerts.pki.profiles import end_entity_extended_key_usage, tls_server_validity_problem

DNS = (SubjectAltName(SanType.DNS, "a.example.com"),)
IP = (SubjectAltName(SanType.IP, "192.0.2.1"),)
EMAIL = (SubjectAltName(SanType.EMAIL, "ops@example.com"), SubjectAltName(SanType.URI, "https://example.com/x"))
SERVER = ExtendedKeyUsage(server_auth=True)
CLIENT = ExtendedKeyUsage(client_auth=True)
BOTH = ExtendedKeyUsage(server_auth=True, client_auth=True)


@pytest.mark.parametrize(
    ("requested", "sans", "default", "expected"),
    [
        pytest.param(None, DNS, None, SERVER, id="DNS name, nothing asked: serverAuth"),
        pytest.param(None, IP, None, SERVER, id="IP address, nothing asked: serverAuth"),
        pytest.param(ExtendedKeyUsage(), DNS, None, SERVER, id="all usages false is asking for none"),
        pytest.param(CLIENT, DNS, None, CLIENT, id="asked: exactly that, no serverAuth added"),
        pytest.param(None, EMAIL, None, None, id="no host name, nothing asked, no default: no EKU"),
        pytest.param(None, (), None, None, id="no names at all: no EKU"),
        pytest.param(None, EMAIL, BOTH, BOTH, id="no host name: the dialect's default"),
        pytest.param(None, DNS, BOTH, BOTH, id="host name with a default that has serverAuth"),
        pytest.param(None, DNS, CLIENT, BOTH, id="host name: serverAuth added to a default without it"),
    ],
)
def test_end_entity_extended_key_usage(requested, sans, default, expected):
    assert end_entity_extended_key_usage(requested, sans, default=default) == expected


@pytest.mark.parametrize(
    ("eku", "lifetime", "refused"),
    [
        (SERVER, dt.timedelta(days=825), False),
        (SERVER, dt.timedelta(days=825, seconds=1), True),
        (BOTH, dt.timedelta(days=826), True),
        (CLIENT, dt.timedelta(days=7300), False),
        (None, dt.timedelta(days=7300), False),
    ],
)
def test_tls_server_validity_limit(eku, lifetime, refused):
    problem = tls_server_validity_problem(eku, lifetime)
    assert (problem is not None) is refused
    if refused:
        assert "at most 825 days" in problem and f"{-(-lifetime // dt.timedelta(days=1))} days" in problem


def _csr(*usages: x509.ObjectIdentifier) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")])
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    key = ec.generate_private_key(ec.SECP256R1())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_a_csr_says_which_usages_it_asks_for():
    none = parse_csr(_csr())
    assert none.extended_key_usage is None and none.unissued_extended_key_usages == ()
    asked = parse_csr(_csr(ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING))
    assert asked.extended_key_usage == ExtendedKeyUsage(client_auth=True, code_signing=True)
    assert asked.unissued_extended_key_usages == ()
    odd = parse_csr(_csr(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.OCSP_SIGNING))
    assert odd.extended_key_usage == SERVER and odd.unissued_extended_key_usages == ("1.3.6.1.5.5.7.3.9",)
