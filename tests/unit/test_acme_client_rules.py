"""Pure rules of the ACME client: the ARI certID (equal to the acme library's own computation), the settings
of an ACME managed certificate, which CA problems stop the loop, and the library's errors mapped to problems."""

from __future__ import annotations

import base64

import pytest
from acme import client as acme_client
from acme import errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.connectors.acme_client import _problem, ari_cert_id
from gatewaycerts.connectors.dns_update import challenge_name
from gatewaycerts.core.renewal.acme_source import _failed, check_settings
from gatewaycerts.domain.acme_client import AcmeProblem
from gatewaycerts.domain.errors import InvalidInputError
from tests.factories import ec_chain


def _leaf_with_aki(serial: int) -> bytes:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    issuer_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_ari_cert_id_is_the_acme_librarys_path_component():
    pem = _leaf_with_aki(0x1234567890ABCDEF)
    leaf = x509.load_pem_x509_certificate(pem)
    assert ari_cert_id(pem.decode()) == acme_client._renewal_info_path_component(leaf)
    assert "=" not in ari_cert_id(pem.decode())


def test_a_serial_with_the_high_bit_set_gets_a_leading_zero_byte():
    serial = 0xFF << 120
    serial_part = ari_cert_id(_leaf_with_aki(serial)).split(".")[1]

    raw = base64.urlsafe_b64decode(serial_part + "=" * (-len(serial_part) % 4))
    assert int.from_bytes(raw, "big") == serial
    assert raw[0] == 0 and len(raw) == 17  # a positive DER INTEGER


def test_a_chain_without_an_authority_key_identifier_has_no_cert_id():
    with pytest.raises(ValueError, match="authority key identifier"):
        ari_cert_id(ec_chain().leaf.cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    ("domains", "settings", "field"),
    [
        (("a.example",), {}, "account_id"),
        (("a.example",), {"account_id": ""}, "account_id"),
        (("a.example",), {"account_id": "x", "challenge": "tls-alpn-01"}, "challenge"),
        (("*.example",), {"account_id": "x"}, "challenge"),
        (("a.example",), {"account_id": "x", "challenge": "dns-01"}, "dns_config_id"),
        (("a.example",), {"account_id": "x", "profile": ""}, "profile"),
        (("a.example",), {"account_id": "x", "profile": "p" * 65}, "profile"),
    ],
)
def test_bad_settings_name_the_field(domains, settings, field):
    with pytest.raises(InvalidInputError) as bad:
        check_settings(domains, settings)
    assert bad.value.field == field


def test_settings_are_normalised():
    assert check_settings(("*.example",), {"account_id": "a", "challenge": "dns-01", "dns_config_id": "d"}) == {
        "account_id": "a",
        "challenge": "dns-01",
        "dns_config_id": "d",
    }
    assert check_settings(("a.example",), {"account_id": "a", "profile": "short", "extra": 1}) == {
        "account_id": "a",
        "challenge": "http-01",
        "profile": "short",
    }


@pytest.mark.parametrize(
    ("problem", "retryable"),
    [
        ("rejectedIdentifier", False),
        ("unauthorized", False),
        ("caa", False),
        ("rateLimited", True),
        ("connection", True),
        ("dns", True),
        ("unreachable", True),
        ("serverInternal", True),
        ("timeout", True),
    ],
)
def test_which_ca_problems_stop_the_loop(problem, retryable):
    failed = _failed(AcmeProblem(problem, "the CA's words"))
    assert failed.retryable is retryable and failed.error == f"{problem}: the CA's words"


def test_library_errors_become_problems():
    error = messages.Error(typ="urn:ietf:params:acme:error:rateLimited", detail="too many certificates")
    assert (_problem(error).type, _problem(error).detail) == ("rateLimited", "too many certificates")
    assert _problem(errors.TimeoutError()).type == "timeout"
    assert _problem(errors.ConflictError("https://ca/acct/1")).type == "conflict"


def test_the_challenge_name_of_a_wildcard_is_its_base_name():
    assert challenge_name("*.Example.test") == "_acme-challenge.Example.test."
    assert challenge_name("www.example.test.") == "_acme-challenge.www.example.test."
