"""The Notary dialect over HTTP, against both real stores: every transition of a certificate request and
every refusal (each leaves the request as it was), the CA routes, roles, tenancy and the error envelope."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from gatewaycerts.app import create_app
from gatewaycerts.core import issuance
from tests.facades.test_operations_http import samples, value
from tests.factories import NOW, CertSpec, MovableClock, ca_spec, ec_key, issue, rsa_key, sign_ca_csr
from tests.notary_helpers import (
    NCAS,
    REQS,
    create_notary_ca,
    csr_for,
    make_csr,
    not_after,
    result,
    rsa_csr,
    sign,
    submit,
)

CCM_CAS = "/v1/private-certificate-authorities"


@pytest.fixture
async def notary(aiohttp_client, settings, pca_store):
    clock = MovableClock()
    client = await aiohttp_client(create_app(settings, pca_store=pca_store, clock=clock))
    client.clock = clock
    return client


@pytest.fixture
def as_(token):
    """Headers for a token of `role` in `project`, for `subject`."""

    def headers(role: str = "admin", project: str = "p1", subject: str = "alice") -> dict[str, str]:
        return {"X-Auth-Token": token(project, role, subject=subject)}

    return headers


async def get_request(client, headers, req_id: str) -> dict:
    return await result(await client.get(f"{REQS}/{req_id}", headers=headers))


async def error(resp, status: int) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"} and body["error"], body
    return body["error"]


def chain_of(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


async def public_crl(client, ca_id: str) -> x509.CertificateRevocationList:
    crl = await result(await client.get(f"{NCAS}/{ca_id}/crl"))  # no token: CRLs are public
    return x509.load_pem_x509_crl(crl["crl"].encode())


# -- the whole walk ------------------------------------------------------------------------------------


async def test_submit_sign_verify_revoke_into_the_public_crl(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    csr, key = make_csr(dns=("api.example.com", "www.example.com"))
    req_id = await submit(notary, as_("editor", subject="bob"), csr)
    req = await get_request(notary, as_("viewer"), req_id)
    assert req["status"] == "Outstanding" and req["certificate_chain"] == "" and req["requested_by"] == "bob"
    assert req["common_name"] == "api.example.com"
    assert x509.load_pem_x509_csr(req["csr"].encode()) == x509.load_pem_x509_csr(csr.encode())

    assert await result(await sign(notary, as_(), req_id, ca_id)) == {"message": "success"}
    req = await get_request(notary, as_("viewer"), req_id)
    assert req["status"] == "Active" and req["certificate_authority_id"] == ca_id
    leaf, root = chain_of(req["certificate_chain"])
    assert spki(leaf.public_key()) == spki(key.public_key())
    assert str(leaf.serial_number) == req["serial_number"]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    # RFC 5280 path validation to the CA, with cryptography's verifier
    verifier = (
        PolicyBuilder().store(Store([root])).time(notary.clock()).build_server_verifier(x509.DNSName("api.example.com"))
    )
    assert verifier.verify(leaf, [])[-1] == root
    # the default validity: 365 days
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=365)
    assert leaf.serial_number not in {r.serial_number for r in await public_crl(notary, ca_id)}

    assert await result(await notary.post(f"{REQS}/{req_id}/certificate/revoke", headers=as_())) == {
        "message": "success"
    }
    assert (await get_request(notary, as_(), req_id))["status"] == "Revoked"
    crl = await public_crl(notary, ca_id)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert crl.is_signature_valid(root.public_key())
    # the same CRL through the CCM dialect (one CA registry)
    der = await notary.get(f"{CCM_CAS}/{ca_id}/crl")
    assert x509.load_der_x509_crl(await der.read()).get_revoked_certificate_by_serial_number(leaf.serial_number)


async def test_reject_then_a_resubmission_is_accepted(notary, as_):
    csr, _ = make_csr()
    req_id = await submit(notary, as_("editor"), csr)
    await error(await notary.post(REQS, json={"csr": csr}, headers=as_("editor")), 400)  # outstanding already
    assert await result(await notary.post(f"{REQS}/{req_id}/reject", headers=as_())) == {"message": "success"}
    assert (await get_request(notary, as_(), req_id))["status"] == "Rejected"
    again = await submit(notary, as_("editor"), csr)
    listed = await result(await notary.get(REQS, headers=as_("viewer")))
    assert [(r["id"], r["status"]) for r in listed] == [(again, "Outstanding"), (req_id, "Rejected")]
    only = await notary.get(REQS, params={"status": "Rejected"}, headers=as_("viewer"))
    assert [r["id"] for r in await result(only)] == [req_id] and only.headers["X-Total-Count"] == "1"


# -- refusals: each is answered in the envelope and leaves the request as it was -------------------------


async def _outstanding(client, as_, ca_id):
    return await submit(client, as_("editor"), make_csr()[0])


async def _rejected(client, as_, ca_id):
    req_id = await _outstanding(client, as_, ca_id)
    await result(await client.post(f"{REQS}/{req_id}/reject", headers=as_()))
    return req_id


async def _signed(client, as_, ca_id):
    req_id = await _outstanding(client, as_, ca_id)
    await result(await sign(client, as_(), req_id, ca_id))
    return req_id


async def _revoked(client, as_, ca_id):
    req_id = await _signed(client, as_, ca_id)
    await result(await client.post(f"{REQS}/{req_id}/certificate/revoke", headers=as_()))
    return req_id


async def _uploaded(client, as_, ca_id):
    csr, key = make_csr()
    req_id = await submit(client, as_("editor"), csr)
    root = issue(ca_spec("Outside Root"), ec_key("secp256r1", 50))
    leaf = issue(CertSpec(cn="api.example.com", dns=("api.example.com",)), key, root)
    await result(
        await client.post(f"{REQS}/{req_id}/certificate", json={"certificate": leaf.pem + root.pem}, headers=as_()), 201
    )
    return req_id


REFUSALS = [
    pytest.param(
        _rejected, "post", "/sign", "CA", 400, "only an Outstanding request", id="400 sign a rejected request"
    ),
    pytest.param(_signed, "post", "/sign", "CA", 400, "this one is Active", id="400 sign an active request"),
    pytest.param(_outstanding, "post", "/sign", "nope", 404, "does not exist", id="404 sign with an unknown CA"),
    pytest.param(
        _outstanding,
        "post",
        "/certificate/revoke",
        None,
        400,
        "this request is Outstanding",
        id="400 revoke an outstanding request",
    ),
    pytest.param(_rejected, "post", "/certificate/revoke", None, 400, "Rejected", id="400 revoke a rejected request"),
    pytest.param(_revoked, "post", "/certificate/revoke", None, 400, "revoked already", id="400 revoke twice"),
    pytest.param(
        _uploaded,
        "post",
        "/certificate/revoke",
        None,
        400,
        "signed outside this service",
        id="400 revoke an uploaded chain",
    ),
    pytest.param(_signed, "post", "/reject", None, 400, "this one is Active", id="400 reject an active request"),
    pytest.param(
        _signed, "delete", "/certificate", None, 400, "stays on record", id="400 detach a certificate signed here"
    ),
    pytest.param(
        _outstanding,
        "delete",
        "/certificate",
        None,
        400,
        "has no certificate",
        id="400 detach from an outstanding request",
    ),
    pytest.param(
        _signed,
        "delete",
        "",
        None,
        400,
        "revoke it before deleting",
        id="400 delete a request whose certificate is valid",
    ),
    pytest.param(
        _signed,
        "post",
        "/certificate",
        "chain",
        400,
        "only an Outstanding request",
        id="400 upload to an active request",
    ),
]


@pytest.mark.parametrize(("prepare", "method", "suffix", "arg", "status", "message"), REFUSALS)
async def test_refused_transitions_change_nothing(notary, as_, prepare, method, suffix, arg, status, message):
    ca_id = await create_notary_ca(notary, as_())
    req_id = await prepare(notary, as_, ca_id)
    before = await get_request(notary, as_(), req_id)
    body = None
    if arg == "CA":
        body = {"certificate_authority_id": ca_id}
    elif arg == "nope":
        body = {"certificate_authority_id": "00000000-0000-7000-8000-000000000000"}
    elif arg == "chain":
        body = {"certificate": before["certificate_chain"] or "x"}
    resp = await notary.request(method, f"{REQS}/{req_id}{suffix}", json=body, headers=as_())
    assert message in await error(resp, status)
    assert await get_request(notary, as_(), req_id) == before


async def test_sign_with_a_disabled_ca_is_refused_until_it_is_enabled(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    req_id = await _outstanding(notary, as_, ca_id)
    await result(await notary.put(f"{NCAS}/{ca_id}", json={"enabled": False}, headers=as_()))
    assert "disabled" in await error(await sign(notary, as_(), req_id, ca_id), 400)
    assert (await get_request(notary, as_(), req_id))["status"] == "Outstanding"
    await result(await notary.put(f"{NCAS}/{ca_id}", json={"enabled": True}, headers=as_()))
    await result(await sign(notary, as_(), req_id, ca_id))


async def test_validity_days_and_the_ca_bound(notary, as_):
    ca_id = await create_notary_ca(notary, as_(), not_valid_after=not_after(100))
    req_id = await _outstanding(notary, as_, ca_id)
    assert "issuing CA's not_after" in await error(await sign(notary, as_(), req_id, ca_id, validity_days=200), 400)
    await error(await sign(notary, as_(), req_id, ca_id, validity_days=0), 400)
    await result(await sign(notary, as_(), req_id, ca_id))  # the default is cut at the CA's notAfter
    leaf, root = chain_of((await get_request(notary, as_(), req_id))["certificate_chain"])
    assert leaf.not_valid_after_utc == root.not_valid_after_utc


# -- a chain signed elsewhere --------------------------------------------------------------------------


@pytest.fixture
def outside():
    root = issue(ca_spec("Outside Root"), ec_key("secp384r1", 60))
    inter = issue(ca_spec("Outside Issuing CA"), ec_key("secp256r1", 61), root)
    return root, inter


async def test_upload_a_chain_signed_elsewhere_then_detach_it(notary, as_, outside):
    root, inter = outside
    csr, key = make_csr()
    req_id = await submit(notary, as_("editor"), csr)
    leaf = issue(CertSpec(cn="api.example.com", dns=("api.example.com",)), key, inter)
    chain = leaf.pem + inter.pem + root.pem
    created = await result(
        await notary.post(f"{REQS}/{req_id}/certificate", json={"certificate": chain}, headers=as_()), 201
    )
    assert created == {"message": "success", "id": req_id}
    req = await get_request(notary, as_(), req_id)
    assert req["status"] == "Active" and req["certificate_authority_id"] is None
    assert chain_of(req["certificate_chain"]) == [leaf.cert, inter.cert, root.cert]
    assert req["serial_number"] == str(leaf.cert.serial_number)
    await result(await notary.delete(f"{REQS}/{req_id}/certificate", headers=as_()))
    req = await get_request(notary, as_(), req_id)
    assert req["status"] == "Outstanding" and req["certificate_chain"] == "" and req["serial_number"] is None


def _leaf(outside, key, **kw):
    return issue(CertSpec(cn="api.example.com", dns=("api.example.com",), **kw), key, outside[1])


BAD_CHAINS = [
    pytest.param(
        lambda o, k: _leaf(o, ec_key("secp256r1", 62)).pem + o[1].pem,
        "does not carry the public key",
        id="400 leaf key differs from the CSR",
    ),
    pytest.param(lambda o, k: _leaf(o, k).pem, "at least the CA certificate", id="400 leaf alone"),
    pytest.param(lambda o, k: o[1].pem + _leaf(o, k).pem, "does not carry the public key", id="400 issuer first"),
    pytest.param(lambda o, k: _leaf(o, k).pem + o[0].pem, "did not sign", id="400 skips the issuer"),
    pytest.param(
        lambda o, k: _leaf(o, k).pem + issue(CertSpec(cn="not a ca"), ec_key("secp256r1", 63)).pem,
        "not a CA",
        id="400 issuer is no CA",
    ),
    pytest.param(
        lambda o, k: (
            _leaf(o, k, not_after=NOW - dt.timedelta(days=1), not_before=NOW - dt.timedelta(days=9)).pem + o[1].pem
        ),
        "not valid now",
        id="400 expired leaf",
    ),
    pytest.param(
        lambda o, k: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" * 2,
        "cannot be parsed",
        id="400 garbage",
    ),
    pytest.param(
        lambda o, k: _leaf(o, k).key_pem() + o[1].pem, "CERTIFICATE blocks only", id="400 a private key in the chain"
    ),
]


@pytest.mark.parametrize(("make", "message"), BAD_CHAINS)
async def test_bad_chains_are_refused_and_change_nothing(notary, as_, outside, make, message):
    csr, key = make_csr()
    req_id = await submit(notary, as_("editor"), csr)
    before = await get_request(notary, as_(), req_id)
    resp = await notary.post(f"{REQS}/{req_id}/certificate", json={"certificate": make(outside, key)}, headers=as_())
    text = await error(resp, 400)
    assert message in text and "PRIVATE KEY-----\n" not in text
    assert await get_request(notary, as_(), req_id) == before


def _ed25519():
    return ed25519.Ed25519PrivateKey.generate()


# The leaf must carry the CSR's own key, compared as SubjectPublicKeyInfo: for every key type, and across types.
KEY_PAIRS = [
    pytest.param(lambda: rsa_key(2048, 80), lambda: rsa_key(2048, 81), id="RSA CSR, another RSA key"),
    pytest.param(_ed25519, _ed25519, id="Ed25519 CSR, another Ed25519 key"),
    pytest.param(lambda: ec_key("secp384r1", 82), lambda: ec_key("secp384r1", 83), id="P-384 CSR, another P-384 key"),
    pytest.param(lambda: rsa_key(2048, 80), lambda: ec_key("secp256r1", 84), id="RSA CSR, P-256 key"),
    pytest.param(lambda: ec_key("secp256r1", 85), lambda: rsa_key(2048, 81), id="P-256 CSR, RSA key"),
    pytest.param(_ed25519, lambda: ec_key("secp256r1", 84), id="Ed25519 CSR, P-256 key"),
    pytest.param(lambda: ec_key("secp256r1", 85), _ed25519, id="P-256 CSR, Ed25519 key"),
    pytest.param(lambda: rsa_key(2048, 80), _ed25519, id="RSA CSR, Ed25519 key"),
]


@pytest.mark.parametrize(("csr_key", "leaf_key"), KEY_PAIRS)
async def test_a_leaf_of_another_key_is_refused_for_every_key_type(notary, as_, outside, csr_key, leaf_key):
    csr, _ = make_csr(csr_key())
    req_id = await submit(notary, as_("editor"), csr)
    before = await get_request(notary, as_(), req_id)
    chain = _leaf(outside, leaf_key()).pem + outside[1].pem
    resp = await notary.post(f"{REQS}/{req_id}/certificate", json={"certificate": chain}, headers=as_())
    assert "does not carry the public key" in await error(resp, 400)
    assert await get_request(notary, as_(), req_id) == before


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: rsa_key(2048, 86), id="RSA"),
        pytest.param(_ed25519, id="Ed25519"),
        pytest.param(lambda: ec_key("secp384r1", 87), id="P-384"),
    ],
)
async def test_a_leaf_of_the_csrs_own_key_is_accepted_for_every_key_type(notary, as_, outside, make_key):
    key = make_key()
    req_id = await submit(notary, as_("editor"), make_csr(key)[0])
    leaf = _leaf(outside, key)
    chain = leaf.pem + outside[1].pem
    await result(await notary.post(f"{REQS}/{req_id}/certificate", json={"certificate": chain}, headers=as_()), 201)
    req = await get_request(notary, as_(), req_id)
    assert req["status"] == "Active" and chain_of(req["certificate_chain"])[0] == leaf.cert


# -- submission checks ---------------------------------------------------------------------------------


def _tampered() -> str:
    pem = make_csr()[0]
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


BAD_CSRS = [
    pytest.param(lambda: "not a csr", "not PEM", id="400 not PEM"),
    pytest.param(_tampered, "signature does not verify", id="400 bad signature"),
    pytest.param(lambda: rsa_csr(1024), "at least 2048", id="400 RSA-1024"),
    pytest.param(lambda: make_csr(ec.generate_private_key(ec.SECP256K1()))[0], "not accepted", id="400 secp256k1"),
    pytest.param(
        lambda: "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * 20000 + "\n-----END CERTIFICATE REQUEST-----",
        "maximum is 16384",
        id="400 too large",
    ),
    pytest.param(
        lambda: issue(CertSpec(), rsa_key(2048, 1)).pem, "CERTIFICATE REQUEST", id="400 a certificate, not a CSR"
    ),
    # what no sign call could accept is refused at submission, by the rules of every CSR issuance
    pytest.param(lambda: csr_for([], []), "names nothing to certify", id="400 empty subject, no SAN"),
    pytest.param(lambda: csr_for([_o("Example")], []), "names nothing to certify", id="400 no CN, no SAN"),
    pytest.param(
        lambda: csr_for([_cn("api.example.com"), _o("o" * 100)], [x509.DNSName("api.example.com")]),
        "subject O must be 1 to 64",
        id="400 O of 100 characters",
    ),
    pytest.param(
        lambda: csr_for([_cn("api.example.com"), _st("s" * 200)], [x509.DNSName("api.example.com")]),
        "subject ST must be 1 to 128",
        id="400 ST of 200 characters",
    ),
    pytest.param(
        lambda: csr_for([_cn("api\nexample.com")], [x509.DNSName("api.example.com")]),
        "control or bidirectional-override character",
        id="400 newline in the CN",
    ),
    pytest.param(
        lambda: csr_for([_cn("api.example.com")], [x509.DNSName("a..b.example.com")]),
        "not a valid DNS name",
        id="400 empty DNS label",
    ),
    pytest.param(
        lambda: csr_for([], [x509.DNSName(f"h{i}.example.com") for i in range(21)]),
        "at most 20",
        id="400 21 SANs",
    ),
]


def _cn(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.COMMON_NAME, value)


def _o(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)


def _st(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, value)


@pytest.mark.parametrize(("make", "message"), BAD_CSRS)
async def test_bad_csrs_are_refused_and_store_nothing(notary, as_, make, message):
    assert message in await error(await notary.post(REQS, json={"csr": make()}, headers=as_("editor")), 400)
    assert await result(await notary.get(REQS, headers=as_())) == []


async def test_every_key_type_of_the_shared_csr_policy_is_signed(notary, as_):
    """The CSR key rules are those of every dialect (CCM, Barbican simple-cmc): P-521 included."""
    ca_id = await create_notary_ca(notary, as_())
    for key in (
        ed25519.Ed25519PrivateKey.generate(),
        rsa_key(2048, 7),
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP521R1()),
    ):
        req_id = await submit(notary, as_("editor"), make_csr(key)[0])
        await result(await sign(notary, as_(), req_id, ca_id))
        leaf = chain_of((await get_request(notary, as_(), req_id))["certificate_chain"])[0]
        assert spki(leaf.public_key()) == spki(key.public_key())


async def test_a_csr_naming_its_subject_by_sans_only_is_signed(notary, as_):
    """No CN: the SANs are the identity. An empty subject makes the SAN extension critical (RFC 5280
    4.2.1.6); a subject with other attributes keeps them, and the extension stays non-critical."""
    ca_id = await create_notary_ca(notary, as_())
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName("names-only.example.com"), x509.IPAddress(ipaddress.ip_address("192.0.2.7"))]
    req_id = await submit(notary, as_("editor"), csr_for([], sans, key))
    req = await get_request(notary, as_(), req_id)
    assert req["status"] == "Outstanding" and req["common_name"] == ""
    await result(await sign(notary, as_(), req_id, ca_id))
    leaf, root = chain_of((await get_request(notary, as_(), req_id))["certificate_chain"])
    assert len(leaf.subject) == 0 and spki(leaf.public_key()) == spki(key.public_key())
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ext.critical and ext.value.get_values_for_type(x509.DNSName) == ["names-only.example.com"]
    assert [str(a) for a in ext.value.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(notary.clock())
        .build_server_verifier(x509.DNSName("names-only.example.com"))
    )
    assert verifier.verify(leaf, [])[-1] == root

    req_id = await submit(notary, as_("editor"), csr_for([_o("Example")], [x509.DNSName("org.example.com")]))
    await result(await sign(notary, as_(), req_id, ca_id))
    leaf, _ = chain_of((await get_request(notary, as_(), req_id))["certificate_chain"])
    assert leaf.subject == x509.Name([_o("Example")])
    assert not leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


# -- roles and tenancy ------------------------------------------------------------------------------------


async def test_roles(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    csr = make_csr()[0]
    await error(await notary.post(REQS, json={"csr": csr}, headers=as_("viewer")), 403)
    mine = await submit(notary, as_("editor", subject="bob"), csr)
    theirs = await submit(notary, as_("editor", subject="carol"), make_csr()[0])
    assert len(await result(await notary.get(REQS, headers=as_("viewer")))) == 2
    for role in ("viewer", "editor"):
        await error(await sign(notary, as_(role), mine, ca_id), 403)
        await error(await notary.post(f"{REQS}/{mine}/reject", headers=as_(role)), 403)
        await error(
            await notary.post(f"{NCAS}", json={"self_signed": True, "common_name": "x"}, headers=as_(role)), 403
        )
    await error(await notary.delete(f"{REQS}/{theirs}", headers=as_("editor", subject="bob")), 403)
    await error(await notary.delete(f"{REQS}/{mine}", headers=as_("viewer", subject="bob")), 403)
    await result(await notary.delete(f"{REQS}/{mine}", headers=as_("editor", subject="bob")))
    await result(await notary.delete(f"{REQS}/{theirs}", headers=as_("admin", subject="dave")))
    assert await result(await notary.get(REQS, headers=as_())) == []
    await error(await notary.get(f"{REQS}/{mine}", headers=as_()), 404)


async def test_another_project_sees_nothing_and_cannot_use_the_cas(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    req_id = await submit(notary, as_("editor"), make_csr()[0])
    other = as_(project="p2")
    assert await result(await notary.get(REQS, headers=other)) == []
    assert await result(await notary.get(NCAS, headers=other)) == []
    await error(await notary.get(f"{REQS}/{req_id}", headers=other), 404)
    await error(await notary.get(f"{NCAS}/{ca_id}", headers=other), 404)
    their = await submit(notary, other, make_csr()[0])
    await error(await sign(notary, other, their, ca_id), 404)  # p1's CA cannot sign for p2
    await error(await sign(notary, as_(), req_id, "not-an-id"), 404)
    assert (await get_request(notary, as_(), req_id))["status"] == "Outstanding"


# -- concurrency --------------------------------------------------------------------------------------


async def test_concurrent_sign_calls_produce_one_certificate(notary, as_, monkeypatch):
    ca_id = await create_notary_ca(notary, as_())
    req_id = await _outstanding(notary, as_, ca_id)
    signatures = []
    real_issue = issuance.issue

    def counting_issue(*args, **kwargs):
        signatures.append(args[1])  # the serial
        return real_issue(*args, **kwargs)

    monkeypatch.setattr(issuance, "issue", counting_issue)
    responses = await asyncio.gather(*(sign(notary, as_(), req_id, ca_id) for _ in range(8)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 400, 409}, statuses
    for r in responses:
        if r.status != 200:
            await error(r, r.status)
    req = await get_request(notary, as_(), req_id)
    assert req["status"] == "Active" and len(chain_of(req["certificate_chain"])) == 2
    # the CA signed exactly once: the one certificate that was stored
    assert signatures == [int(req["serial_number"])]
    found = samples(await (await notary.get("/metrics")).text())
    assert value(found, "gatewaycerts_certificates_issued_total", kind="certificate-request") == 1


async def test_concurrent_reject_and_sign_one_wins(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    req_id = await _outstanding(notary, as_, ca_id)
    sign_resp, reject_resp = await asyncio.gather(
        sign(notary, as_(), req_id, ca_id), notary.post(f"{REQS}/{req_id}/reject", headers=as_())
    )
    assert sorted((sign_resp.status, reject_resp.status))[0] == 200
    assert {sign_resp.status, reject_resp.status} <= {200, 400, 409}
    assert [sign_resp.status, reject_resp.status].count(200) == 1
    status = (await get_request(notary, as_(), req_id))["status"]
    assert status == ("Active" if sign_resp.status == 200 else "Rejected")


# -- certificate authorities ------------------------------------------------------------------------------


async def test_ca_lifecycle_intermediate_signed_here_then_revoked(notary, as_):
    root_id = await create_notary_ca(notary, as_(), not_valid_after=not_after(3650))
    inter_id = await create_notary_ca(notary, as_(), self_signed=False, common_name="Notary Issuing CA")
    inter = await result(await notary.get(f"{NCAS}/{inter_id}", headers=as_("viewer")))
    assert inter["status"] == "pending" and inter["enabled"] is False and inter["certificate"] == ""
    assert x509.load_pem_x509_csr(inter["csr"].encode()).subject.rfc4514_string().startswith("CN=Notary Issuing CA")
    await error(await notary.put(f"{NCAS}/{inter_id}", json={"enabled": True}, headers=as_()), 400)  # pending

    await result(
        await notary.post(f"{NCAS}/{inter_id}/sign", json={"certificate_authority_id": root_id}, headers=as_())
    )
    inter = await result(await notary.get(f"{NCAS}/{inter_id}", headers=as_()))
    assert inter["enabled"] is True and inter["status"] == "active" and inter["issuer_id"] == root_id
    inter_cert, root_cert = chain_of(inter["certificate"])
    inter_cert.verify_directly_issued_by(root_cert)
    assert inter["crl"].startswith("-----BEGIN X509 CRL-----")
    assert "PRIVATE KEY" not in str(inter)

    # a request signed by the intermediate verifies through it to the root
    req_id = await _outstanding(notary, as_, inter_id)
    await result(await sign(notary, as_(), req_id, inter_id))
    leaf, *rest = chain_of((await get_request(notary, as_(), req_id))["certificate_chain"])
    assert rest == [inter_cert, root_cert]
    verifier = (
        PolicyBuilder()
        .store(Store([root_cert]))
        .time(notary.clock())
        .build_server_verifier(x509.DNSName("api.example.com"))
    )
    verifier.verify(leaf, [inter_cert])

    await result(await notary.post(f"{NCAS}/{inter_id}/revoke", headers=as_()))
    assert (await result(await notary.get(f"{NCAS}/{inter_id}", headers=as_())))["status"] == "revoked"
    assert (await public_crl(notary, root_id)).get_revoked_certificate_by_serial_number(inter_cert.serial_number)
    await error(await sign(notary, as_(), await _outstanding(notary, as_, inter_id), inter_id), 400)


async def test_ca_delete_needs_disable_and_hides_it(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    assert "disable it" in await error(await notary.delete(f"{NCAS}/{ca_id}", headers=as_()), 400)
    await result(await notary.put(f"{NCAS}/{ca_id}", json={"enabled": False}, headers=as_()))
    listed = await result(await notary.get(NCAS, headers=as_()))
    assert [(c["id"], c["enabled"], c["status"]) for c in listed] == [(ca_id, False, "disabled")]
    await result(await notary.delete(f"{NCAS}/{ca_id}", headers=as_()))
    await error(await notary.get(f"{NCAS}/{ca_id}", headers=as_()), 404)
    assert await result(await notary.get(NCAS, headers=as_())) == []
    # still restorable through the CCM dialect: one registry
    resp = await notary.post(f"{CCM_CAS}/{ca_id}/restore", headers=as_())
    assert resp.status == 204, await resp.text()
    assert (await result(await notary.get(f"{NCAS}/{ca_id}", headers=as_())))["status"] == "disabled"


async def test_intermediate_signed_elsewhere_is_uploaded(notary, as_):
    inter_id = await create_notary_ca(notary, as_(), self_signed=False, common_name="Uploaded Issuing CA")
    csr_pem = (await result(await notary.get(f"{NCAS}/{inter_id}", headers=as_())))["csr"]
    outside_root = issue(ca_spec("Outside Root"), ec_key("secp384r1", 70))
    pem = sign_ca_csr(csr_pem, outside_root)
    signed = x509.load_pem_x509_certificate(pem.encode())
    await error(
        await notary.post(f"{NCAS}/{inter_id}/certificate", json={"certificate_chain": pem}, headers=as_()), 400
    )
    body = {"certificate_chain": pem + outside_root.pem}
    await result(await notary.post(f"{NCAS}/{inter_id}/certificate", json=body, headers=as_()), 201)
    ca = await result(await notary.get(f"{NCAS}/{inter_id}", headers=as_()))
    assert ca["status"] == "active" and chain_of(ca["certificate"]) == [signed, outside_root.cert]


CA_REFUSALS = [
    pytest.param({"self_signed": True}, 400, "common_name", id="400 no common name"),
    pytest.param(
        {"self_signed": True, "common_name": "x", "sans_dns": "a.example"}, 400, "sans_dns", id="400 sans_dns"
    ),
    pytest.param(
        {"self_signed": True, "common_name": "x", "not_valid_after": "tomorrow"}, 400, "RFC 3339", id="400 bad time"
    ),
    pytest.param(
        {"self_signed": True, "common_name": "x", "not_valid_after": "2020-01-01T00:00:00Z"},
        400,
        "future",
        id="400 time in the past",
    ),
    pytest.param(
        {"self_signed": True, "common_name": "x", "not_valid_after": "2099-01-01T00:00:00Z"},
        400,
        "30 years",
        id="400 beyond 30 years",
    ),
    pytest.param(
        {"self_signed": False, "common_name": "x", "not_valid_after": not_after(30)},
        400,
        "self-signed CAs",
        id="400 not_valid_after on an intermediate",
    ),
    pytest.param(
        {"self_signed": True, "common_name": "x", "key_algorithm": "DSA"},
        400,
        "key_algorithm",
        id="400 unknown key algorithm",
    ),
    pytest.param(
        {"self_signed": True, "common_name": "x", "country_name": "China"},
        400,
        "country",
        id="400 country not two letters",
    ),
    pytest.param({"self_signed": "yes", "common_name": "x"}, 400, "self_signed", id="400 self_signed not a boolean"),
    pytest.param(
        {"self_signed": True, "common_name": "Root \u2067CA"}, 400, "bidirectional", id="400 bidi isolate in the CN"
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), CA_REFUSALS)
async def test_bad_ca_creations_are_refused_and_create_nothing(notary, as_, body, status, message):
    assert message in await error(await notary.post(NCAS, json=body, headers=as_()), status)
    assert await result(await notary.get(NCAS, headers=as_())) == []


async def test_default_ca_is_rsa_4096_for_ten_years(notary, as_):
    ca_id = await create_notary_ca(notary, as_(), key_algorithm=None)
    ca = await result(await notary.get(f"{NCAS}/{ca_id}", headers=as_()))
    (cert,) = chain_of(ca["certificate"])
    assert ca["key_algorithm"] == "RSA4096" and cert.public_key().key_size == 4096
    years = (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365.25
    assert 9.99 < years < 10.01


# -- envelope ---------------------------------------------------------------------------------------


async def test_errors_use_the_notary_envelope(notary, as_):
    await error(await notary.get(REQS), 401)
    await error(await notary.get("/api/v1/nothing_here", headers=as_()), 404)
    await error(await notary.put(REQS, headers=as_()), 405)
    await error(await notary.post(REQS, data="{", headers={**as_(), "Content-Type": "application/json"}), 400)
    await error(await notary.post(REQS, data="csr=x", headers={**as_(), "Content-Type": "text/plain"}), 415)
    await error(await notary.post(REQS, json={"csr": 5}, headers=as_()), 400)
    await error(await notary.post(REQS, json=[], headers=as_()), 400)
    await error(await notary.get(REQS, params={"status": "Pending"}, headers=as_()), 400)
    await error(await notary.get(REQS, params={"limit": "0"}, headers=as_()), 400)
    await error(await notary.get(REQS, params={"offset": str(10**40)}, headers=as_()), 400)
    assert (await notary.get(CCM_CAS, params={"offset": str(2**63)}, headers=as_())).status == 400
    await error(await notary.get(f"{NCAS}/00000000-0000-7000-8000-000000000000/crl"), 404)


# -- metrics -----------------------------------------------------------------------------------------------


async def test_metrics_count_outstanding_requests_and_expiring_certificates(notary, as_):
    ca_id = await create_notary_ca(notary, as_())
    for _ in range(3):
        await _outstanding(notary, as_, ca_id)
    await submit(notary, as_("editor", project="p2"), make_csr()[0])
    short = await _outstanding(notary, as_, ca_id)
    await result(await sign(notary, as_(), short, ca_id, validity_days=5))
    long = await _outstanding(notary, as_, ca_id)
    await result(await sign(notary, as_(), long, ca_id, validity_days=60))
    gone = await _signed(notary, as_, ca_id)
    await result(await notary.post(f"{REQS}/{gone}/certificate/revoke", headers=as_()))  # revoked: not counted

    def expiring(found, days):
        return value(found, "gatewaycerts_certificates_expiring", source="notary", project_id="p1", within_days=days)

    found = samples(await (await notary.get("/metrics")).text())
    assert value(found, "gatewaycerts_certificate_requests_outstanding", project_id="p1") == 3
    assert value(found, "gatewaycerts_certificate_requests_outstanding", project_id="p2") == 1
    assert [expiring(found, d) for d in ("1", "7", "30", "90")] == [0, 1, 1, 2]
    assert value(found, "gatewaycerts_certificates_expired", source="notary", project_id="p1") == 0
    notary.clock.now += dt.timedelta(days=6)
    found = samples(await (await notary.get("/metrics")).text())
    assert value(found, "gatewaycerts_certificates_expired", source="notary", project_id="p1") == 1
    assert [expiring(found, d) for d in ("1", "7", "30", "90")] == [0, 0, 0, 1]


async def test_store_outage_and_unexpected_errors_use_the_notary_envelope(aiohttp_client, settings, tmp_path, as_):
    from pymongo import AsyncMongoClient

    from gatewaycerts.store.mongo.pca import MongoPcaStore
    from gatewaycerts.store.sqlite.pca import SqlitePcaStore
    from tests.mongo_server import free_port

    # a real driver that cannot reach its server
    unreachable = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200, tz_aware=True)
    down = MongoPcaStore(unreachable, "gc_down")

    # the app would refuse to start otherwise (its schema and its KEK check read the store): the outage
    # begins after start
    async def no_schema() -> None:
        return None

    async def no_samples(kind) -> list:
        return []

    down.ensure_schema = no_schema
    down.envelope_samples = no_samples
    client = await aiohttp_client(create_app(settings, pca_store=down))
    assert "unavailable" in await error(await client.post(REQS, json={"csr": make_csr()[0]}, headers=as_()), 503)
    await unreachable.close()

    class FaultyStore(SqlitePcaStore):
        """The real SQLite store with one injected fault (a bug below the core, not a storage mock)."""

        async def list_requests(self, *args, **kwargs):
            raise RuntimeError("boom: internal detail -----BEGIN PRIVATE KEY-----")

    client = await aiohttp_client(create_app(settings, pca_store=FaultyStore(tmp_path / "faulty.db")))
    resp = await client.get(REQS, headers={**as_(), "X-Request-Id": "req-789"})
    assert resp.status == 500 and await resp.json() == {"error": "Internal Error, request_id:req-789"}
