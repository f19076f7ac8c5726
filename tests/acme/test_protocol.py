"""The ACME protocol as certbot's `acme` library (ClientV2) speaks it, against the server on both stores."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import josepy as jose
import pytest
import requests
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewaycerts.appkeys import ACME_SERVICE
from tests.acme.harness import (
    CAS,
    acme_client,
    answer_all,
    csr_for,
    ec_key,
    fresh_nonce,
    in_thread,
    post_jws,
    post_jws_body,
    register,
    rsa_key,
    start_server,
)

pytestmark = pytest.mark.parametrize("every_store", ["sqlite", "mongo"], indirect=True)


@pytest.fixture
async def acme_server(aiohttp_client, settings, every_store, auth):
    return await start_server(aiohttp_client, settings, every_store, auth)


def _deadline() -> datetime:
    return datetime.now() + timedelta(seconds=60)  # the library compares with a naive now()


def _issue(acme, *names: str, kind: str = "http-01") -> tuple[messages.OrderResource, bytes]:
    key_pem, csr = csr_for(*names)
    order = acme.new_order(csr)
    answer_all(acme, order, kind)
    return acme.poll_and_finalize(order, _deadline()), key_pem


async def test_issuance_with_eab_then_revocation_into_the_crl(acme_server):
    eab = await acme_server.eab()
    acme = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    reg = await in_thread(register, acme, eab)
    assert reg.body.status == "valid"
    assert reg.uri.startswith(f"{acme_server.base}/acme/{acme_server.ca_id}/acct/")

    order, _ = await in_thread(_issue, acme, "www.example.test", "api.example.test")
    assert order.body.status.name == "valid"
    chain = x509.load_pem_x509_certificates(order.fullchain_pem.encode())
    leaf, root = chain[0], chain[1]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["api.example.test", "www.example.test"]
    # Subject from the CA's profile (O and C inherited), never the CSR's; a TLS server leaf, not a CA.
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Gatewaycerts Tests"
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert leaf.issuer == root.subject
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=90)

    # The validator got the key authorization: token "." thumbprint of the account key.
    seen = acme_server.validator.seen
    assert {c.identifier_value for c in seen} == {"www.example.test", "api.example.test"}
    thumb = base64.urlsafe_b64encode(acme.net.key.thumbprint(hash_function=hashes.SHA256)).rstrip(b"=").decode()
    assert all(c.key_authorization == f"{c.token}.{thumb}" for c in seen)

    # The certificate is one of the CA's, visible in the CCM API; the account revokes it into the CRL.
    status, listed = await acme_server.admin_json("GET", "/v1/private-certificates?limit=50")
    assert status == 200
    assert [c["status"] for c in listed["certificates"] if c["serial_number"] == str(leaf.serial_number)] == ["ISSUED"]
    await in_thread(acme.revoke, leaf, 4)
    resp = await acme_server.http.get(f"{CAS}/{acme_server.ca_id}/crl")
    crl = x509.load_der_x509_crl(await resp.read())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    with pytest.raises(messages.Error) as again:
        await in_thread(acme.revoke, leaf, 4)
    assert again.value.typ == "urn:ietf:params:acme:error:alreadyRevoked"

    # The trail has the account, the EAB key's use, the finalization, the issuance and the revocation.
    status, trail = await acme_server.admin_json("GET", "/v3/p1/traces?limit=200")
    assert status == 200, trail
    actions = {t["trace_name"] for t in trail["traces"]}
    assert {
        "acme.policy.update",
        "acme.eab_key.create",
        "acme.eab_key.use",
        "acme.account.create",
        "acme.order.finalize",
        "acme.certificate.issue",
        "acme.certificate.revoke",
        "ccm.certificate.revoke",
    } <= actions
    assert not any("BEGIN" in json.dumps(t) for t in trail["traces"])  # no key or certificate on the trail


async def test_eab_is_required_by_default_and_single_use(acme_server):
    acme = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    assert acme.directory.meta.external_account_required is True
    with pytest.raises(messages.Error) as missing:
        await in_thread(register, acme)
    assert missing.value.typ == "urn:ietf:params:acme:error:externalAccountRequired"

    eab = await acme_server.eab()
    await in_thread(register, acme, eab)
    other = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    with pytest.raises(messages.Error) as reused:
        await in_thread(register, other, eab)
    assert reused.value.typ == "urn:ietf:params:acme:error:unauthorized"

    status, listed = await acme_server.admin_json("GET", f"{CAS}/{acme_server.ca_id}/acme/eab-keys")
    assert status == 200
    (used,) = [k for k in listed["eab_keys"] if k["kid"] == eab[0]]
    assert used["status"] == "used" and used["account_id"] and "hmac_key" not in used

    kid2, hmac2 = await acme_server.eab()
    status, _ = await acme_server.admin_json("DELETE", f"{CAS}/{acme_server.ca_id}/acme/eab-keys/{kid2}")
    assert status == 204
    with pytest.raises(messages.Error) as revoked:
        await in_thread(register, other, (kid2, hmac2))
    assert revoked.value.typ == "urn:ietf:params:acme:error:unauthorized"
    wrong_mac = base64.urlsafe_b64encode(b"x" * 32).rstrip(b"=").decode()
    kid3, _ = await acme_server.eab()
    with pytest.raises(messages.Error) as bad_mac:
        await in_thread(register, other, (kid3, wrong_mac))
    assert bad_mac.value.typ == "urn:ietf:params:acme:error:unauthorized"


async def test_same_key_returns_the_account_and_only_return_existing(acme_server):
    eab = await acme_server.eab()
    key = ec_key()
    acme = await in_thread(acme_client, acme_server.directory_url, key, jose.ES256)
    first = await in_thread(register, acme, eab)
    again = await in_thread(acme_client, acme_server.directory_url, key, jose.ES256)
    # The same key again: 200 + Location of the existing account (the library raises ConflictError with it).
    with pytest.raises(acme_errors.ConflictError) as found:
        await in_thread(again.new_account, messages.NewRegistration.from_data(only_return_existing=True))
    assert found.value.location == first.uri
    stranger = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    with pytest.raises(messages.Error) as none:
        await in_thread(stranger.new_account, messages.NewRegistration.from_data(only_return_existing=True))
    assert none.value.typ == "urn:ietf:params:acme:error:accountDoesNotExist"


async def test_es384_account_eab_off_and_wildcard_by_dns01_only(aiohttp_client, settings, every_store, auth):
    from cryptography.hazmat.primitives.asymmetric import ec

    server = await start_server(
        aiohttp_client,
        settings,
        every_store,
        auth,
        policy={"enabled": True, "eab_required": False, "allowed_domains": ["example.test"], "allow_wildcards": True},
    )
    acme = await in_thread(acme_client, server.directory_url, ec_key(ec.SECP384R1()), jose.ES384)
    await in_thread(register, acme)
    _, csr = csr_for("*.example.test")
    order = await in_thread(acme.new_order, csr)
    (authz,) = order.authorizations
    assert [c.chall.typ for c in authz.body.challenges] == ["dns-01"]
    assert authz.body.wildcard is True and authz.body.identifier.value == "example.test"
    await in_thread(answer_all, acme, order, "dns-01")
    done = await in_thread(acme.poll_and_finalize, order, _deadline())
    assert done.body.status.name == "valid"
    assert server.validator.seen[-1].identifier_value == "example.test"


async def test_order_list_account_deactivation_and_key_change(acme_server):
    eab = await acme_server.eab()
    acme = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    reg = await in_thread(register, acme, eab)
    order = await in_thread(acme.new_order, csr_for("list.example.test")[1])

    orders_url = reg.uri.replace("/acct/", "/orders/")
    listed = await in_thread(lambda: acme._post_as_get(orders_url).json())
    assert listed["orders"] == [order.uri]

    old_key, new_key = acme.net.key, rsa_key()
    url = acme.directory["keyChange"]
    inner = {"account": reg.uri, "oldKey": old_key.public_key().to_partial_json()}
    inner_jws = post_jws_body(url, inner, new_key)
    nonce = await in_thread(fresh_nonce, acme_server.base, acme_server.ca_id)
    changed = await in_thread(lambda: post_jws(url, inner_jws, old_key, kid=reg.uri, nonce=nonce))
    assert changed.status_code == 200, changed.text
    with_new = await in_thread(acme_client, acme_server.directory_url, new_key)
    with pytest.raises(acme_errors.ConflictError) as found:
        await in_thread(with_new.new_account, messages.NewRegistration.from_data(only_return_existing=True))
    assert found.value.location == reg.uri
    old = await in_thread(acme_client, acme_server.directory_url, old_key)
    with pytest.raises(messages.Error) as gone:
        await in_thread(old.new_account, messages.NewRegistration.from_data(only_return_existing=True))
    assert gone.value.typ == "urn:ietf:params:acme:error:accountDoesNotExist"

    acme.net.key = new_key
    deactivated = await in_thread(acme.deactivate_registration, reg)
    assert deactivated.body.status == "deactivated"
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme.new_order, csr_for("late.example.test")[1])
    assert refused.value.typ == "urn:ietf:params:acme:error:unauthorized"
    status, trail = await acme_server.admin_json("GET", "/v3/p1/traces?limit=200")
    assert status == 200
    mine = [t for t in trail["traces"] if t["user"]["name"] == "acme-account:" + reg.uri.rsplit("/", 1)[1]]
    assert {"acme.account.create", "acme.account.key_change", "acme.account.deactivate"} <= {
        t["trace_name"] for t in mine
    }


async def test_nonce_endpoint_headers_and_replay_nonce_on_errors(acme_server):
    base = f"{acme_server.base}/acme/{acme_server.ca_id}"
    head = await in_thread(requests.head, f"{base}/new-nonce")
    get = await in_thread(requests.get, f"{base}/new-nonce")
    assert head.status_code == 200 and get.status_code == 204
    assert head.headers["Cache-Control"] == "no-store" and head.headers["Replay-Nonce"]
    assert get.headers["Replay-Nonce"] != head.headers["Replay-Nonce"]
    assert f'<{base}/directory>;rel="index"' in head.headers["Link"]
    error = await in_thread(
        lambda: requests.post(f"{base}/new-order", data="{}", headers={"Content-Type": "application/jose+json"})
    )
    assert error.status_code == 400 and error.headers["Content-Type"].startswith("application/problem+json")
    assert error.headers["Replay-Nonce"]
    assert error.json()["type"] == "urn:ietf:params:acme:error:malformed"
    unknown = await in_thread(requests.get, f"{acme_server.base}/acme/00000000-0000-0000-0000-000000000000/directory")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("application/problem+json")


async def test_challenge_link_up_retry_after_and_failed_validation(aiohttp_client, settings, every_store, auth):
    from tests.acme.harness import RecordingValidator

    validator = RecordingValidator(
        lambda c: ("incorrectResponse", "wrong body") if c.identifier_value.startswith("bad.") else None
    )
    server = await start_server(aiohttp_client, settings, every_store, auth, validator=validator)
    eab = await server.eab()
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, eab)
    order = await in_thread(acme.new_order, csr_for("bad.example.test")[1])
    (authz,) = order.authorizations
    chall = next(c for c in authz.body.challenges if c.chall.typ == "http-01")
    resp = await in_thread(lambda: acme._post(chall.uri, chall.response(acme.net.key)))
    assert f'<{authz.uri}>;rel="up"' in resp.headers["Link"]
    # The validation worker of this process finished within the answer's wait: the answer has the outcome.
    answered = resp.json()
    assert answered["status"] == "invalid" and "Retry-After" not in resp.headers
    assert answered["error"]["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    with pytest.raises(acme_errors.ValidationError) as failed:
        await in_thread(acme.poll_and_finalize, order, _deadline())
    (failed_authz,) = failed.value.failed_authzrs
    err = next(c for c in failed_authz.body.challenges if c.chall.typ == "http-01").error
    assert err.typ == "urn:ietf:params:acme:error:incorrectResponse"
    polled = await in_thread(lambda: acme._post_as_get(order.uri).json())
    assert polled["status"] == "invalid"


class SlowValidator:
    """Holds each validation until released: longer than the answer waits."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def validate(self, challenge) -> None:
        await self.release.wait()


async def test_a_slow_validation_answers_processing_with_retry_after(aiohttp_client, settings, every_store, auth):
    validator = SlowValidator()
    server = await start_server(aiohttp_client, settings, every_store, auth, validator=validator)
    server.app[ACME_SERVICE].answer_wait_seconds = 0.2
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())
    order = await in_thread(acme.new_order, csr_for("slow.example.test")[1])
    (authz,) = order.authorizations
    chall = next(c for c in authz.body.challenges if c.chall.typ == "http-01")
    resp = await in_thread(lambda: acme._post(chall.uri, chall.response(acme.net.key)))
    assert resp.json()["status"] == "processing" and resp.headers["Retry-After"] == "1"
    validator.release.set()
    finalized = await in_thread(acme.poll_and_finalize, order, _deadline())
    assert "BEGIN CERTIFICATE" in finalized.fullchain_pem


async def test_ari_renewal_info_and_replaces(acme_server):
    eab = await acme_server.eab()
    acme = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    reg = await in_thread(register, acme, eab)
    order, _ = await in_thread(_issue, acme, "ari.example.test")
    leaf = x509.load_pem_x509_certificates(order.fullchain_pem.encode())[0]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    cert_id = f"{b64(aki)}.{b64(serial)}"
    info = await in_thread(requests.get, f"{acme_server.base}/acme/{acme_server.ca_id}/renewal-info/{cert_id}")
    assert info.status_code == 200 and int(info.headers["Retry-After"]) > 0
    window = info.json()["suggestedWindow"]
    start = datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    assert leaf.not_valid_before_utc < start < leaf.not_valid_after_utc

    def new_order_replacing():
        url = acme.directory["newOrder"]
        body = {"identifiers": [{"type": "dns", "value": "ari.example.test"}], "replaces": cert_id}
        nonce = fresh_nonce(acme_server.base, acme_server.ca_id)
        return post_jws(url, body, acme.net.key, kid=reg.uri, nonce=nonce)

    first = await in_thread(new_order_replacing)
    assert first.status_code == 201 and first.json()["replaces"] == cert_id
    reused = await in_thread(new_order_replacing)
    assert reused.status_code == 409
    assert reused.json()["type"] == "urn:ietf:params:acme:error:alreadyReplaced"


async def test_eddsa_account_key_and_an_algorithm_that_does_not_match_it(acme_server):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from gatewaycerts.pki.jws import public_jwk

    key = ed25519.Ed25519PrivateKey.generate()
    eab = await acme_server.eab()
    url = f"{acme_server.base}/acme/{acme_server.ca_id}/new-account"
    jwk = public_jwk(key.public_key())

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def new_account(alg: str) -> requests.Response:
        import hashlib
        import hmac

        eab_protected = b64(json.dumps({"alg": "HS256", "kid": eab[0], "url": url}).encode())
        eab_payload = b64(json.dumps(jwk).encode())
        mac = hmac.new(
            base64.urlsafe_b64decode(eab[1] + "=="), f"{eab_protected}.{eab_payload}".encode(), hashlib.sha256
        ).digest()
        payload = {
            "termsOfServiceAgreed": True,
            "externalAccountBinding": {"protected": eab_protected, "payload": eab_payload, "signature": b64(mac)},
        }
        nonce = fresh_nonce(acme_server.base, acme_server.ca_id)
        p = b64(json.dumps({"alg": alg, "url": url, "nonce": nonce, "jwk": jwk}).encode())
        body = b64(json.dumps(payload).encode())
        jws = {"protected": p, "payload": body, "signature": b64(key.sign(f"{p}.{body}".encode()))}
        return requests.post(url, data=json.dumps(jws), headers={"Content-Type": "application/jose+json"}, timeout=30)

    wrong = await in_thread(new_account, "ES256")
    assert wrong.status_code == 400 and wrong.json()["type"] == "urn:ietf:params:acme:error:badSignatureAlgorithm"
    created = await in_thread(new_account, "EdDSA")
    assert created.status_code == 201, created.text
    assert created.headers["Location"].startswith(f"{acme_server.base}/acme/{acme_server.ca_id}/acct/")


async def test_revocation_by_the_certificate_key_and_not_by_a_stranger(acme_server):
    from cryptography.hazmat.primitives import serialization

    eab = await acme_server.eab()
    acme = await in_thread(acme_client, acme_server.directory_url, rsa_key())
    await in_thread(register, acme, eab)
    order, key_pem = await in_thread(_issue, acme, "bykey.example.test")
    leaf = x509.load_pem_x509_certificates(order.fullchain_pem.encode())[0]
    der = base64.urlsafe_b64encode(leaf.public_bytes(serialization.Encoding.DER)).rstrip(b"=").decode()
    url = acme.directory["revokeCert"]
    cert_key = jose.JWKEC(key=serialization.load_pem_private_key(key_pem, None))

    def revoke_with(key, alg: str):
        nonce = fresh_nonce(acme_server.base, acme_server.ca_id)
        return post_jws(url, {"certificate": der, "reason": 1}, key, alg=alg, nonce=nonce)

    stranger = await in_thread(revoke_with, rsa_key(), "RS256")
    assert stranger.status_code == 403 and stranger.json()["type"] == "urn:ietf:params:acme:error:unauthorized"
    done = await in_thread(revoke_with, cert_key, "ES256")
    assert done.status_code == 200, done.text
    resp = await acme_server.http.get(f"{CAS}/{acme_server.ca_id}/crl")
    crl = x509.load_der_x509_crl(await resp.read())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    # ARI for a revoked certificate: renew now.
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    info = await in_thread(
        requests.get, f"{acme_server.base}/acme/{acme_server.ca_id}/renewal-info/{b64(aki)}.{b64(serial)}"
    )
    end = datetime.fromisoformat(info.json()["suggestedWindow"]["end"].replace("Z", "+00:00"))
    assert end <= datetime.now(UTC) + timedelta(minutes=1)
