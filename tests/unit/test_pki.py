"""Pure PKI: key loading and the cheap key check, chain ordering, metadata, host name matching."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gatewaycerts.domain import errors as e
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.pki.chain import order_path
from gatewaycerts.pki.hostnames import covers, normalise_domain
from gatewaycerts.pki.keys import load_private_key, prove_possession
from gatewaycerts.pki.pem import split_blocks
from tests.factories import NOW, CertSpec, ec_chain, issue, rsa_chain, rsa_key


def _rsa_pem_from_numbers(numbers: rsa.RSAPrivateNumbers) -> str:
    # cryptography refuses inconsistent numbers only when validation runs; build via DER by hand is heavy,
    # so tamper with a consistent key's CRT coefficient through private_numbers -> private_key(unsafe).
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_loads_rsa_and_ec_in_each_format(fmt):
    for chain in (rsa_chain(), ec_chain()):
        key = load_private_key(chain.leaf.key_pem(fmt))
        assert key.public_key() == chain.leaf.cert.public_key()


@pytest.mark.parametrize("param", ["dmp1", "dmq1", "iqmp", "d"])
def test_inconsistent_crt_parameters_are_refused(param):
    n = rsa_key(2048, 3).private_numbers()
    fields = {k: getattr(n, k) for k in ("p", "q", "d", "dmp1", "dmq1", "iqmp")}
    fields[param] += 2
    tampered = rsa.RSAPrivateNumbers(**fields, public_numbers=n.public_numbers)
    with pytest.raises(e.CertificateParseError, match="inconsistent"):
        load_private_key(_rsa_pem_from_numbers(tampered))


def test_openssl_rsa_key_check_mode_agrees_with_ours():
    """GATEWAYCERTS_RSA_KEY_CHECK=openssl adds OpenSSL's full check: the same keys pass and fail."""
    chain = rsa_chain()
    fast = validate_bundle(chain.bundle(), chain.leaf.key_pem(), None, now=NOW)
    full = validate_bundle(chain.bundle(), chain.leaf.key_pem(), None, now=NOW, openssl_rsa_check=True)
    assert full == fast
    n = rsa_key(2048, 3).private_numbers()
    fields = {k: getattr(n, k) for k in ("p", "q", "d", "dmp1", "dmq1", "iqmp")}
    fields["iqmp"] += 2
    tampered = _rsa_pem_from_numbers(rsa.RSAPrivateNumbers(**fields, public_numbers=n.public_numbers))
    for openssl in (False, True):
        with pytest.raises(e.CertificateParseError):
            load_private_key(tampered, openssl_rsa_check=openssl)


def test_possession_proof_rejects_other_key():
    with pytest.raises(e.CertificateKeyMismatchError):
        prove_possession(rsa_key(2048, 2), rsa_chain().leaf.cert.public_key())
    prove_possession(rsa_key(2048, 3), rsa_chain().leaf.cert.public_key())


def test_ed25519_key_is_a_documented_unsupported_error():
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(e.UnsupportedAlgorithmError):
        load_private_key(pem)


def test_two_keys_in_one_field_are_refused():
    pem = rsa_chain().leaf.key_pem() + ec_chain().leaf.key_pem()
    with pytest.raises(e.CertificateParseError, match="exactly one"):
        load_private_key(pem)


def test_pem_block_limit_and_escaped_newlines():
    many = rsa_chain().leaf.pem * 17
    with pytest.raises(e.CertificateParseError, match="more than 16"):
        split_blocks(many, field="cert_content")
    escaped = rsa_chain().leaf.pem.replace("\n", "\\n")
    assert split_blocks(escaped, field="cert_content")[0].label == "CERTIFICATE"


def test_order_path_any_input_order():
    c = rsa_chain()
    for others in ([c.intermediate.cert, c.root.cert], [c.root.cert, c.intermediate.cert]):
        path = order_path(c.leaf.cert, others, now=NOW)
        assert path == [c.leaf.cert, c.intermediate.cert, c.root.cert]


def test_order_path_rejects_expired_intermediate_and_non_ca_issuer():
    c = rsa_chain()
    with pytest.raises(e.ChainOrderError, match="expired"):
        order_path(c.leaf.cert, [c.intermediate.cert], now=NOW + dt.timedelta(days=4000))
    not_ca = issue(CertSpec(cn="Leafish", dns=()), rsa_key(2048, 5), c.root)
    child = issue(CertSpec(), rsa_key(2048, 6), not_ca)
    with pytest.raises(e.ChainOrderError, match="not a CA"):
        order_path(child.cert, [not_ca.cert], now=NOW)


def test_validate_bundle_extracts_metadata():
    c = ec_chain()
    bundle = validate_bundle(c.bundle(), c.leaf.key_pem("traditional"), c.root.pem, now=NOW)
    info = bundle.info
    assert info.common_name == "ec.example.com" and info.dns_names == ("ec.example.com",)
    assert info.signature_algorithm == "ECDSA-SHA256" and info.algorithm_type.value == "ECC"
    assert info.key_size == 256 and len(info.fingerprint_sha256) == 64
    assert bundle.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert bundle.trusted_root_ca_pem == c.root.pem


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("10.0.0.1", "10.0.0.1"),
        ("::1", "::1"),
        ("localhost", None),
        ("-bad.example.com", None),
        ("a..b", None),
        ("*.example.com", None),
        ("x" * 64 + ".com", None),
        ("example.123", None),
    ],
)
def test_normalise_domain(domain, expected):
    assert normalise_domain(domain) == expected


@pytest.mark.parametrize(
    ("domain", "kw", "ok"),
    [
        ("a.example.com", {"dns_names": ("*.example.com",)}, True),
        ("example.com", {"dns_names": ("*.example.com",)}, False),
        ("a.b.example.com", {"dns_names": ("*.example.com",)}, False),
        ("a.com", {"dns_names": ("*.com",)}, False),
        ("foo.example.com", {"dns_names": ("f*.example.com",)}, False),
        ("cn.example.com", {"common_name": "cn.example.com"}, True),
        ("cn.example.com", {"common_name": "cn.example.com", "dns_names": ("other.example.com",)}, False),
        ("10.0.0.1", {"ip_addresses": ("10.0.0.1",)}, True),
        ("10.0.0.1", {"dns_names": ("10.0.0.1",)}, False),
    ],
)
def test_covers(domain, kw, ok):
    args = {"common_name": "", "dns_names": (), "ip_addresses": ()} | kw
    assert covers(domain, **args) is ok


def test_ids_are_time_ordered_and_unique():
    from gatewaycerts.core.ids import new_id

    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == 2000 and all(len(i) == 32 for i in ids)
