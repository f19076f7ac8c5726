"""Bad ACME requests: each gets its RFC 8555 error as problem+json (with a Replay-Nonce) and changes nothing."""

from __future__ import annotations

import json

import josepy as jose
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme.harness import (
    acme_client,
    answer_all,
    b64,
    csr_for,
    ec_key,
    fresh_nonce,
    in_thread,
    post_jws,
    register,
    rsa_key,
    start_server,
)

pytestmark = pytest.mark.parametrize("every_store", ["sqlite", "mongo"], indirect=True)
ERR = "urn:ietf:params:acme:error:"


@pytest.fixture
async def world(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    eab = await server.eab()
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    reg = await in_thread(register, acme, eab)
    return server, acme, reg


def _problem(resp, status: int, kind: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["Replay-Nonce"]
    body = resp.json()
    assert body["type"] == ERR + kind, body
    assert "Traceback" not in resp.text


async def _orders(server, acme, reg) -> list[str]:
    def fetch():
        url = reg.uri.replace("/acct/", "/orders/")
        return post_jws(url, None, acme.net.key, kid=reg.uri, nonce=fresh_nonce(server.base, server.ca_id)).json()

    return (await in_thread(fetch))["orders"]


ORDER = {"identifiers": [{"type": "dns", "value": "ok.example.test"}]}


async def test_replayed_nonce_is_refused(world):
    server, acme, reg = world
    url = acme.directory["newOrder"]
    nonce = await in_thread(fresh_nonce, server.base, server.ca_id)
    first = await in_thread(lambda: post_jws(url, ORDER, acme.net.key, kid=reg.uri, nonce=nonce))
    assert first.status_code == 201
    replay = await in_thread(lambda: post_jws(url, ORDER, acme.net.key, kid=reg.uri, nonce=nonce))
    _problem(replay, 400, "badNonce")
    forged = await in_thread(lambda: post_jws(url, ORDER, acme.net.key, kid=reg.uri, nonce=b64(b"x" * 40)))
    _problem(forged, 400, "badNonce")
    missing = await in_thread(lambda: post_jws(url, ORDER, acme.net.key, kid=reg.uri))
    _problem(missing, 400, "badNonce")
    assert len(await _orders(server, acme, reg)) == 1


@pytest.mark.parametrize(
    ("case", "status", "kind"),
    [
        ("wrong_url", 401, "unauthorized"),
        ("alg_none", 400, "badSignatureAlgorithm"),
        ("hs256_on_account_key", 400, "badSignatureAlgorithm"),
        ("alg_not_the_key_type", 400, "badSignatureAlgorithm"),
        ("unknown_kid", 400, "accountDoesNotExist"),
        ("foreign_kid", 400, "accountDoesNotExist"),
        ("jwk_and_kid", 400, "malformed"),
        ("jwk_instead_of_kid", 400, "malformed"),
        ("bad_signature", 400, "malformed"),
        ("unprotected_header", 400, "malformed"),
        ("general_serialization", 400, "malformed"),
        ("oversized", 413, "malformed"),
        ("not_json", 400, "malformed"),
    ],
)
async def test_bad_jws_changes_nothing(world, case, status, kind):
    server, acme, reg = world
    url = acme.directory["newOrder"]
    key = acme.net.key

    def send():
        nonce = fresh_nonce(server.base, server.ca_id)
        if case == "wrong_url":
            return post_jws(url, ORDER, key, kid=reg.uri, nonce=nonce, header={"url": url + "x"})
        if case == "alg_none":
            return post_jws(url, ORDER, key, kid=reg.uri, nonce=nonce, alg="none")
        if case == "hs256_on_account_key":
            return post_jws(url, ORDER, key, kid=reg.uri, nonce=nonce, alg="HS256")
        if case == "alg_not_the_key_type":
            return post_jws(url, ORDER, key, kid=reg.uri, nonce=nonce, header={"alg": "ES256"})
        if case == "unknown_kid":
            return post_jws(url, ORDER, key, kid=reg.uri.rsplit("/", 1)[0] + "/nope", nonce=nonce)
        if case == "foreign_kid":
            return post_jws(url, ORDER, key, kid="https://elsewhere.test/acct/1", nonce=nonce)
        if case == "jwk_and_kid":
            return post_jws(
                url, ORDER, key, kid=reg.uri, nonce=nonce, header={"jwk": key.public_key().to_partial_json()}
            )
        if case == "jwk_instead_of_kid":
            return post_jws(url, ORDER, key, nonce=nonce)
        if case == "bad_signature":
            good = post_jws_parts(url, ORDER, key, reg.uri, nonce)
            good["signature"] = b64(b"\x00" * 256)
            return post_jws(url, None, key, raw_body=good)
        if case == "unprotected_header":
            parts = post_jws_parts(url, ORDER, key, reg.uri, nonce)
            return post_jws(url, None, key, raw_body={**parts, "header": {"kid": reg.uri}})
        if case == "general_serialization":
            parts = post_jws_parts(url, ORDER, key, reg.uri, nonce)
            body = {
                "payload": parts["payload"],
                "signatures": [{"protected": parts["protected"], "signature": parts["signature"]}],
            }
            return post_jws(url, None, key, raw_body=body)
        if case == "oversized":
            return post_jws(url, {**ORDER, "pad": "x" * 70_000}, key, kid=reg.uri, nonce=nonce)
        return post_jws(url, None, key, raw_body="{not json")

    resp = await in_thread(send)
    _problem(resp, status, kind)
    assert await _orders(server, acme, reg) == []


def post_jws_parts(url, payload, key, kid, nonce) -> dict:
    from tests.acme.harness import sign

    protected = b64(json.dumps({"alg": "RS256", "url": url, "kid": kid, "nonce": nonce}).encode())
    body = b64(json.dumps(payload).encode())
    return {
        "protected": protected,
        "payload": body,
        "signature": b64(sign(key, "RS256", f"{protected}.{body}".encode())),
    }


@pytest.mark.parametrize(
    ("identifier", "kind"),
    [
        ({"type": "dns", "value": "www.elsewhere.test"}, "rejectedIdentifier"),
        ({"type": "dns", "value": "notexample.test"}, "rejectedIdentifier"),
        ({"type": "dns", "value": "bad_name.example.test"}, "rejectedIdentifier"),
        ({"type": "dns", "value": "*.*.example.test"}, "rejectedIdentifier"),
        ({"type": "email", "value": "a@example.test"}, "unsupportedIdentifier"),
        ({"type": "ip", "value": "not-an-ip"}, "malformed"),
    ],
)
async def test_identifier_outside_the_policy(world, identifier, kind):
    server, acme, reg = world
    url = acme.directory["newOrder"]
    body = {"identifiers": [{"type": "dns", "value": "fine.example.test"}, identifier]}
    resp = await in_thread(
        lambda: post_jws(url, body, acme.net.key, kid=reg.uri, nonce=fresh_nonce(server.base, server.ca_id))
    )
    _problem(resp, 400, kind)
    assert await _orders(server, acme, reg) == []


async def test_wildcard_and_ip_refused_when_the_policy_says_so(aiohttp_client, settings, every_store, auth):
    server = await start_server(
        aiohttp_client,
        settings,
        every_store,
        auth,
        policy={"enabled": True, "eab_required": False, "allowed_domains": ["example.test"]},
    )
    acme = await in_thread(acme_client, server.directory_url, ec_key(), jose.ES256)
    reg = await in_thread(register, acme)
    url = acme.directory["newOrder"]
    for ident in ({"type": "dns", "value": "*.example.test"}, {"type": "ip", "value": "127.0.0.1"}):
        resp = await in_thread(
            lambda ident=ident: post_jws(
                url,
                {"identifiers": [ident]},
                acme.net.key,
                alg="ES256",
                kid=reg.uri,
                nonce=fresh_nonce(server.base, server.ca_id),
            )
        )
        _problem(resp, 400, "rejectedIdentifier")


async def test_bad_csrs_leave_the_order_ready(world):
    server, acme, reg = world
    _, csr = csr_for("one.example.test")
    order = await in_thread(acme.new_order, csr)
    finalize = order.body.finalize

    def fin(csr_pem: bytes):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
        return post_jws(
            finalize, {"csr": b64(der)}, acme.net.key, kid=reg.uri, nonce=fresh_nonce(server.base, server.ca_id)
        )

    early = await in_thread(fin, csr)
    _problem(early, 403, "orderNotReady")
    await in_thread(answer_all, acme, order)

    def ready() -> str:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = acme._post_as_get(order.uri).json()["status"]
            if status != "pending":
                return status
            time.sleep(0.05)
        return "pending"

    assert await in_thread(ready) == "ready"
    _, extra = csr_for("one.example.test", "two.example.test")
    _problem(await in_thread(fin, extra), 400, "badCSR")
    _, other = csr_for("other.example.test")
    _problem(await in_thread(fin, other), 400, "badCSR")
    # The account's own key in the CSR.
    from acme import crypto_util
    from cryptography.hazmat.primitives import serialization

    account_pem = acme.net.key.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _problem(await in_thread(fin, crypto_util.make_csr(account_pem, ["one.example.test"])), 400, "badCSR")
    garbage = await in_thread(
        lambda: post_jws(
            finalize, {"csr": b64(b"garbage")}, acme.net.key, kid=reg.uri, nonce=fresh_nonce(server.base, server.ca_id)
        )
    )
    _problem(garbage, 400, "badCSR")
    assert (await in_thread(lambda: acme._post_as_get(order.uri).json()))["status"] == "ready"
    done = await in_thread(fin, csr)
    assert done.status_code == 200 and done.json()["status"] == "valid"


async def test_an_ec_p521_or_short_rsa_account_key_is_refused(aiohttp_client, settings, every_store, auth):
    server = await start_server(aiohttp_client, settings, every_store, auth)
    url = f"{server.base}/acme/{server.ca_id}/new-account"
    p521 = jose.JWKEC(key=ec.generate_private_key(ec.SECP521R1()))
    resp = await in_thread(
        lambda: post_jws(
            url, {"termsOfServiceAgreed": True}, p521, alg="ES256", nonce=fresh_nonce(server.base, server.ca_id)
        )
    )
    assert resp.status_code == 400 and resp.json()["type"] in (ERR + "badPublicKey", ERR + "badSignatureAlgorithm")


async def test_a_validation_target_on_a_forbidden_address_fails_the_challenge(
    aiohttp_client, settings, every_store, auth
):
    """The real validator (no GATEWAYCERTS_ACME_ALLOWED_TARGETS): a loopback target is refused, the order
    never becomes ready."""
    server = await start_server(
        aiohttp_client,
        settings,
        every_store,
        auth,
        policy={"enabled": True, "eab_required": False, "allow_ip": True, "challenge_types": ["http-01"]},
        validator="real",
    )
    acme = await in_thread(acme_client, server.directory_url, ec_key(), jose.ES256)
    await in_thread(register, acme)
    import ipaddress

    _, csr = csr_for(ips=[ipaddress.ip_address("127.0.0.1")])
    order = await in_thread(acme.new_order, csr)
    from acme import errors as acme_errors

    await in_thread(answer_all, acme, order)
    with pytest.raises(acme_errors.ValidationError) as failed:
        from datetime import datetime, timedelta

        await in_thread(acme.poll_and_finalize, order, datetime.now() + timedelta(seconds=60))
    (authz,) = failed.value.failed_authzrs
    (chall,) = authz.body.challenges
    assert chall.error.typ == ERR + "rejectedIdentifier", chall.error
    assert (await in_thread(lambda: acme._post_as_get(order.uri).json()))["status"] == "invalid"
