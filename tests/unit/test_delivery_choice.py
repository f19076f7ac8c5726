"""Which certificate of a dual binding a Caddy handshake gets: what the client's signature schemes and cipher
suites (as Caddy passes them, seen from real OpenSSL clients) allow."""

from __future__ import annotations

from gatewaycerts.core.delivery.rules import choose, parse_signature_schemes, prefers_ecc
from gatewaycerts.domain.models import AlgorithmType

SCHEMES = parse_signature_schemes("403,503,603,807,808,809,80a,80b,804,805,806,401,501,601,303,301,302,402,502,602")
TLS13 = parse_signature_schemes("1302,1303,1301,c02c,c030,c02b,c02f,cca9,cca8,c024,c028,c023,c027,9f,9e,6b,67,ff")
RSA_ONLY_TLS12 = parse_signature_schemes("c02f,c030,cca8,ff")
ECDSA_ONLY_TLS12 = parse_signature_schemes("c02b,c02c,cca9,ff")
BOTH = {AlgorithmType.RSA: "rsa", AlgorithmType.ECC: "ecc"}


def test_a_tls12_client_with_only_rsa_suites_gets_rsa_although_it_lists_ecdsa_schemes():
    assert not prefers_ecc(SCHEMES, RSA_ONLY_TLS12)
    assert choose(BOTH, SCHEMES, RSA_ONLY_TLS12) == "rsa"


def test_ecdsa_suites_or_tls13_follow_the_signature_schemes():
    assert choose(BOTH, SCHEMES, ECDSA_ONLY_TLS12) == "ecc"
    assert choose(BOTH, SCHEMES, TLS13) == "ecc"
    assert choose(BOTH, SCHEMES, None) == "ecc"
    assert choose(BOTH, parse_signature_schemes("804,805,806,401"), TLS13) == "rsa"
    assert choose({AlgorithmType.ECC: "ecc"}, SCHEMES, RSA_ONLY_TLS12) == "ecc"  # nothing better: TLS says no
