"""The Barbican dialect over HTTP, against both real stores: every order type and refusal, the worker's
claims (a crashed attempt, a lost race, two workers), the read side, paging, roles and tenancy."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ORDER_SERVICE, ORDER_WORKER
from gatewaycerts.core.orders import OrderWorker, product_id
from gatewaycerts.domain.orders import Order, OrderStatus, OrderType
from tests.factories import MovableClock
from tests.notary_helpers import csr_for, make_csr

ORDERS, CAS_CCM = "/v1/orders", "/v1/private-certificate-authorities"
AES = {
    "name": "aes key",
    "algorithm": "aes",
    "bit_length": 256,
    "mode": "cbc",
    "payload_content_type": "application/octet-stream",
}


@pytest.fixture
async def bar(aiohttp_client, settings, ca_and_order_stores):
    pca, orders = ca_and_order_stores
    clock = MovableClock()
    app = create_app(settings, pca_store=pca, order_store=orders, clock=clock, order_worker=False)
    client = await aiohttp_client(app)
    client.clock, client.worker, client.orders = clock, app[ORDER_WORKER], orders
    client.service = app[ORDER_SERVICE]
    return client


async def body(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    return await resp.json()


async def barbican_error(resp, status: int) -> str:
    assert resp.status == status, await resp.text()
    data = await resp.json()
    assert set(data) == {"code", "title", "description"} and data["code"] == status, data
    return data["description"]


def uuid_of(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]


async def order(client, headers, type_: str, meta: dict) -> str:
    data = await body(await client.post(ORDERS, json={"type": type_, "meta": meta}, headers=headers), 202)
    assert set(data) == {"order_ref"} and data["order_ref"].startswith("http")
    return uuid_of(data["order_ref"])


async def fulfilled(client, headers, order_id: str) -> dict:
    await client.worker.run_once()
    data = await body(await client.get(f"{ORDERS}/{order_id}", headers=headers))
    assert data["status"] == "ACTIVE", data
    return data


async def payload(client, headers, secret_ref: str, accept: str | None = None) -> tuple[bytes, str]:
    extra = {"Accept": accept} if accept else {}
    resp = await client.get(f"/v1/secrets/{uuid_of(secret_ref)}/payload", headers={**headers, **extra})
    assert resp.status == 200, await resp.text()
    return await resp.read(), resp.headers["Content-Type"]


async def container(client, headers, ref: str) -> tuple[dict, dict[str, str]]:
    data = await body(await client.get(f"/v1/containers/{uuid_of(ref)}", headers=headers))
    return data, {r["name"]: r["secret_ref"] for r in data["secret_refs"]}


async def ccm_ca(client, headers, cn: str = "Orders Root CA", alg: str = "EC256") -> str:
    ca = {
        "type": "ROOT",
        "distinguished_name": {"common_name": cn, "organization": "Example"},
        "key_algorithm": alg,
        "validity": {"type": "YEAR", "value": 5},
        "crl_configuration": {"enabled": True},
    }
    return (await body(await client.post(CAS_CCM, json=ca, headers=headers)))["ca_id"]


def verify_to(root_pem: bytes, leaf: x509.Certificate, at: dt.datetime, dns: str) -> None:
    (root,) = x509.load_pem_x509_certificates(root_pem)
    verifier = PolicyBuilder().store(Store([root])).time(at).build_server_verifier(x509.DNSName(dns))
    verifier.verify(leaf, [])


def spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- key orders ----------------------------------------------------------------------------------------


async def test_key_order_pending_then_active_with_a_secret(bar, auth):
    order_id = await order(bar, auth(), "key", AES)
    pending = await body(await bar.get(f"{ORDERS}/{order_id}", headers=auth("p1", "viewer")))
    assert pending["status"] == "PENDING" and "secret_ref" not in pending and "error_status_code" not in pending
    assert pending["meta"] == {**AES, "expiration": None} and pending["type"] == "key"
    assert pending["sub_status"] == "Unknown" and pending["creator_id"] == "tester"
    dt.datetime.fromisoformat(pending["created"])
    done = await fulfilled(bar, auth(), order_id)
    assert set(done) == {
        "type",
        "status",
        "created",
        "updated",
        "creator_id",
        "meta",
        "order_ref",
        "secret_ref",
        "sub_status",
        "sub_status_message",
    }
    secret = await body(await bar.get(f"/v1/secrets/{uuid_of(done['secret_ref'])}", headers=auth("p1", "viewer")))
    assert (secret["secret_type"], secret["algorithm"], secret["bit_length"], secret["mode"], secret["name"]) == (
        "symmetric",
        "aes",
        256,
        "cbc",
        "aes key",
    )
    assert secret["content_types"] == {"default": "application/octet-stream"} and secret["status"] == "ACTIVE"
    key, content_type = await payload(bar, auth(), done["secret_ref"], "application/octet-stream")
    assert len(key) == 32 and content_type == "application/octet-stream"
    assert (await payload(bar, auth(), done["secret_ref"]))[0] == key
    other, _ = await payload(
        bar, auth(), (await fulfilled(bar, auth(), await order(bar, auth(), "key", AES)))["secret_ref"]
    )
    assert other != key
    ref = f"/v1/secrets/{uuid_of(done['secret_ref'])}"
    assert "text/plain" in await barbican_error(
        await bar.get(ref + "/payload", headers={**auth(), "Accept": "text/plain"}), 406
    )
    await barbican_error(await bar.get(ref + "/payload", headers=auth("p1", "viewer")), 403)  # key material
    assert (await bar.delete(ref, headers=auth())).status == 204
    await barbican_error(await bar.get(ref, headers=auth()), 404)


async def test_hmac_key_order(bar, auth):
    meta = {"algorithm": "hmacsha256", "bit_length": 512}
    done = await fulfilled(bar, auth(), await order(bar, auth(), "key", meta))
    assert len((await payload(bar, auth(), done["secret_ref"]))[0]) == 64


# -- asymmetric orders ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "bits"), [("rsa", 2048), ("ec", 256), ("ec", 384)])
async def test_asymmetric_order_makes_an_rsa_container(bar, auth, algorithm, bits):
    meta = {"name": "pair", "algorithm": algorithm, "bit_length": bits, "pass_phrase": "s3cret phrase"}
    order_id = await order(bar, auth(), "asymmetric", meta)
    pending = await body(await bar.get(f"{ORDERS}/{order_id}", headers=auth()))
    assert "pass_phrase" not in str(pending) and "s3cret" not in str(pending)
    done = await fulfilled(bar, auth(), order_id)
    assert "secret_ref" not in done
    data, refs = await container(bar, auth(), done["container_ref"])
    assert data["type"] == "rsa" and set(refs) == {"private_key", "public_key", "private_key_passphrase"}
    private_pem, content_type = await payload(bar, auth(), refs["private_key"], "text/plain")
    assert content_type == "text/plain" and b"ENCRYPTED PRIVATE KEY" in private_pem
    passphrase, _ = await payload(bar, auth(), refs["private_key_passphrase"])
    assert passphrase == b"s3cret phrase"
    key = serialization.load_pem_private_key(private_pem, password=passphrase)
    public = serialization.load_pem_public_key((await payload(bar, auth(), refs["public_key"]))[0])
    assert spki(key.public_key()) == spki(public)
    assert (isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == bits
    )


# -- certificate orders -----------------------------------------------------------------------------------


async def test_simple_cmc_order_is_signed_by_the_named_ca(bar, auth):
    ca_id = await ccm_ca(bar, auth())
    csr, key = make_csr(dns=("svc.example.com",), cn="svc.example.com")
    meta = {
        "request_type": "simple-cmc",
        "request_data": base64.b64encode(csr.encode()).decode(),
        "ca_id": ca_id,
        "profile": "caServerCert",
        "requestor_name": "ops",
    }
    done = await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))
    assert done["meta"] == meta  # certificate orders echo their meta as given
    data, refs = await container(bar, auth(), done["container_ref"])
    assert data["type"] == "certificate" and set(refs) == {"certificate", "intermediates"}
    (leaf,) = x509.load_pem_x509_certificates((await payload(bar, auth(), refs["certificate"]))[0])
    assert spki(leaf.public_key()) == spki(key.public_key())
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    root_pem, _ = await payload(bar, auth(), refs["intermediates"])
    cacert = await bar.get(f"/v1/cas/{ca_id}/cacert", headers=auth())
    assert (await cacert.read()) == root_pem and cacert.content_type == "text/plain"
    verify_to(root_pem, leaf, bar.clock(), "svc.example.com")
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=365)


async def test_simple_cmc_accepts_base64_der_too(bar, auth):
    await ccm_ca(bar, auth())  # the project's only CA: used without ca_id
    csr, _ = make_csr()
    der = x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER)
    meta = {"request_type": "simple-cmc", "request_data": base64.b64encode(der).decode()}
    await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))


async def test_stored_key_order_certifies_an_asymmetric_container(bar, auth):
    ca_id = await ccm_ca(bar, auth(), alg="RSA2048")
    source = await fulfilled(
        bar, auth(), await order(bar, auth(), "asymmetric", {"algorithm": "rsa", "bit_length": 2048})
    )
    _, source_refs = await container(bar, auth(), source["container_ref"])
    meta = {
        "request_type": "stored-key",
        "container_ref": source["container_ref"],  # as python-barbicanclient sends it
        "subject_dn": "cn=stored.example.com, o=Example, c=US",
        "ca_id": ca_id,
        "profile": "server-client",
    }
    done = await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))
    _, refs = await container(bar, auth(), done["container_ref"])
    assert set(refs) == {"certificate", "intermediates", "private_key"}
    assert refs["private_key"] == source_refs["private_key"]  # the stored key, not a copy
    (leaf,) = x509.load_pem_x509_certificates((await payload(bar, auth(), refs["certificate"]))[0])
    public = serialization.load_pem_public_key((await payload(bar, auth(), source_refs["public_key"]))[0])
    assert spki(leaf.public_key()) == spki(public)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "stored.example.com"
    # a server profile without subject_alt_names certifies the CN as the DNS name (TLS clients need a SAN)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["stored.example.com"]
    verify_to((await payload(bar, auth(), refs["intermediates"]))[0], leaf, bar.clock(), "stored.example.com")
    assert leaf.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "US"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # the documented spelling works too
    meta = {**meta, "source_container_ref": uuid_of(source["container_ref"])}
    del meta["container_ref"]
    await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))


async def test_custom_order_generates_the_key_with_the_documented_parameters(bar, auth):
    ca_id = await ccm_ca(bar, auth())
    meta = {
        "request_type": "custom",
        "ca_id": ca_id,
        "subject_dn": "CN=custom.example.com,O=Example",
        "subject_alt_names": ["custom.example.com", "alt.example.com"],
        "key_algorithm": "RSA2048",
        "validity_days": 30,
        "profile": "client",
    }
    done = await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))
    _, refs = await container(bar, auth(), done["container_ref"])
    assert set(refs) == {"certificate", "intermediates", "private_key"}
    (leaf,) = x509.load_pem_x509_certificates((await payload(bar, auth(), refs["certificate"]))[0])
    key = serialization.load_pem_private_key((await payload(bar, auth(), refs["private_key"]))[0], None)
    assert spki(key.public_key()) == spki(leaf.public_key()) and key.key_size == 2048
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["custom.example.com", "alt.example.com"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=30)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


async def test_custom_order_ip_addresses_are_written_ip_colon(bar, auth):
    """subject_alt_names holds DNS names; an IP address SAN is written IP:<address> (OpenSSL's notation), as a
    list entry or in the comma-separated form."""
    ca_id = await ccm_ca(bar, auth())
    for names in (
        ["ip.example.com", "IP:192.0.2.1", "ip:2001:db8::1", "DNS:alt.example.com"],
        "ip.example.com, IP:192.0.2.1, ip:2001:db8::1, DNS:alt.example.com",
    ):
        meta = {"ca_id": ca_id, "subject_dn": "CN=ip.example.com", "subject_alt_names": names}
        done = await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))
        _, refs = await container(bar, auth(), done["container_ref"])
        (leaf,) = x509.load_pem_x509_certificates((await payload(bar, auth(), refs["certificate"]))[0])
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == ["ip.example.com", "alt.example.com"]
        assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["192.0.2.1", "2001:db8::1"]


async def test_without_ca_id_the_preferred_ca_signs(bar, auth):
    first, second = await ccm_ca(bar, auth(), "First CA"), await ccm_ca(bar, auth(), "Second CA")
    meta = {"request_type": "custom", "subject_dn": "CN=pref.example.com"}
    assert "preferred" in await barbican_error(
        await bar.post(ORDERS, json={"type": "certificate", "meta": meta}, headers=auth()), 400
    )
    await barbican_error(await bar.get("/v1/cas/preferred", headers=auth()), 404)
    await barbican_error(await bar.post(f"/v1/cas/{second}/set-preferred", headers=auth("p1", "editor")), 403)
    assert (await bar.post(f"/v1/cas/{second}/set-preferred", headers=auth())).status == 204
    assert (await body(await bar.get("/v1/cas/preferred", headers=auth())))["ca_id"] == second
    done = await fulfilled(bar, auth(), await order(bar, auth(), "certificate", meta))
    _, refs = await container(bar, auth(), done["container_ref"])
    (leaf,) = x509.load_pem_x509_certificates((await payload(bar, auth(), refs["certificate"]))[0])
    assert leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Second CA"
    assert first != second


async def test_a_ca_disabled_after_the_order_makes_it_error(bar, auth):
    ca_id = await ccm_ca(bar, auth())
    order_id = await order(bar, auth(), "certificate", {"ca_id": ca_id, "subject_dn": "CN=late.example.com"})
    assert (await bar.post(f"{CAS_CCM}/{ca_id}/disable", headers=auth())).status == 204
    await bar.worker.run_once()
    data = await body(await bar.get(f"{ORDERS}/{order_id}", headers=auth()))
    assert data["status"] == "ERROR" and data["error_status_code"] == "400" and "disabled" in data["error_reason"]
    assert "container_ref" not in data
    assert (
        await bar.orders.get_container("p1", product_id(await bar.orders.get_order("p1", order_id), "container"))
        is None
    )


# -- refusals: 400 naming the property, nothing stored ------------------------------------------------


_RULE = "printable characters (no control or bidirectional-override characters) without leading or trailing spaces"


def _cmc(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


REFUSALS = [
    pytest.param({"type": "song", "meta": AES}, "'type'", id="400 unknown type"),
    pytest.param({"type": "key"}, "'meta'", id="400 no meta"),
    pytest.param({"type": "key", "meta": ["aes"]}, "'meta'", id="400 meta not an object"),
    pytest.param({"type": "key", "meta": {**AES, "bit_length": 100}}, "'meta.bit_length'", id="400 AES-100"),
    pytest.param(
        {"type": "key", "meta": {**AES, "bit_length": "256"}}, "'meta.bit_length'", id="400 bit_length as text"
    ),
    pytest.param({"type": "key", "meta": {**AES, "algorithm": "des"}}, "'meta.algorithm'", id="400 DES"),
    pytest.param({"type": "key", "meta": {"bit_length": 256}}, "'meta.algorithm'", id="400 no algorithm"),
    pytest.param({"type": "key", "meta": {**AES, "colour": "red"}}, "'meta.colour'", id="400 unknown meta property"),
    pytest.param(
        {"type": "key", "meta": {**AES, "payload_content_type": "text/plain"}},
        "'meta.payload_content_type'",
        id="400 text payload",
    ),
    pytest.param(
        {"type": "key", "meta": {**AES, "expiration": "2020-01-01T00:00:00Z"}}, "'meta.expiration'", id="400 expired"
    ),
    pytest.param(
        {"type": "asymmetric", "meta": {"algorithm": "dsa", "bit_length": 2048}}, "'meta.algorithm'", id="400 DSA"
    ),
    pytest.param(
        {"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 1024}}, "'meta.bit_length'", id="400 RSA-1024"
    ),
    pytest.param(
        {"type": "asymmetric", "meta": {"algorithm": "ec", "bit_length": 521}}, "'meta.bit_length'", id="400 P-521"
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "full-cmc", "request_data": "x"}},
        "Full CMC",
        id="400 full-cmc",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "dogtag"}},
        "'meta.request_type'",
        id="400 unknown request type",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "simple-cmc"}}, "'meta.request_data'", id="400 no request_data"
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "simple-cmc", "request_data": "%%%"}},
        "not base64",
        id="400 request_data not base64",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "simple-cmc", "request_data": _cmc("junk")}},
        "neither",
        id="400 request_data no CSR",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"request_type": "stored-key", "subject_dn": "CN=x"}},
        "'meta.source_container_ref'",
        id="400 stored-key without container",
    ),
    pytest.param(
        {
            "type": "certificate",
            "meta": {
                "request_type": "stored-key",
                "subject_dn": "CN=x",
                "container_ref": "https://h/v1/containers/01234567-89ab-7def-8123-456789abcdef",
            },
        },
        "no such container",
        id="400 stored-key unknown container",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"subject_dn": "O=no common name"}}, "common name", id="400 custom without CN"
    ),
    pytest.param(
        {"type": "certificate", "meta": {"subject_dn": "CN=x", "key_algorithm": "SM2"}},
        "'meta.key_algorithm'",
        id="400 custom SM2",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"subject_dn": "CN=x", "profile": "caAdminCert"}},
        "'meta.profile'",
        id="400 unknown profile",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"subject_dn": "CN=x", "ca_id": "0190a1b2-0000-7000-8000-000000000000"}},
        "does not exist",
        id="400 unknown ca_id",
    ),
    pytest.param(
        {"type": "certificate", "meta": {"subject_dn": "CN=x", "validity_days": 9999}},
        "'meta.validity_days'",
        id="400 custom validity too long",
    ),
    # SANs of custom orders: the rules and the limit of every issuance (CCM's), checked at creation
    *(
        pytest.param(
            {"type": "certificate", "meta": {"subject_dn": "CN=x.bar.test", "subject_alt_names": names}},
            f"Invalid property 'meta.subject_alt_names': {message}",
            id=f"400 custom SAN {label}",
        )
        for label, names, message in (
            ("with a space", ["not a name!"], "DNS 'not a name!': not a valid DNS name"),
            ("with an empty label", ["a..b.test"], "DNS 'a..b.test': not a valid DNS name"),
            ("with an underscore", ["_srv.bar.test"], "DNS '_srv.bar.test': not a valid DNS name"),
            ("an IP address as a DNS name", ["10.0.0.1"], "'10.0.0.1' is an IP address, not a DNS name"),
            ("an IPv6 address as a DNS name", "ok.bar.test, 2001:db8::1", "'2001:db8::1' is an IP address"),
            ("a bad IP", ["IP:300.1.1.1"], "IP '300.1.1.1': not an IPv4 or IPv6 address"),
            ("30 names", [f"h{i}.bar.test" for i in range(30)], "must hold at most 20 names; it holds 30"),
            ("not a list of texts", [1, 2], "must be a list of DNS names"),
        )
    ),
    # subject names of custom and stored-key orders: the DN rules of every issuance, after unescaping
    *(
        pytest.param(
            {"type": "certificate", "meta": {**extra, "subject_dn": dn}},
            f"Invalid property 'meta.subject_dn': {message}",
            id=f"400 {kind} {label}",
        )
        for kind, extra in (
            ("custom", {}),
            (
                "stored-key",
                {
                    "request_type": "stored-key",
                    "container_ref": "https://h/v1/containers/01234567-89ab-7def-8123-456789abcdef",
                },
            ),
        )
        for label, dn, message in (
            ("O of 100 characters", "CN=x.bar.test,O=" + "o" * 100, "O must be 1 to 64 printable characters"),
            ("ST of 200 characters", "CN=x.bar.test,ST=" + "s" * 200, "ST must be 1 to 128 printable characters"),
            ("CN of 70 characters", "CN=" + "a" * 70, "CN must be 1 to 64 printable characters"),
            (
                "escaped newline in the CN",
                "CN=s\\0Ax.bar.test",
                f"CN must be 1 to 64 {_RULE}; it contains a control or bidirectional-override character",
            ),
            (
                "escaped bidi override",
                "CN=s\\E2\\80\\AEx.bar.test",
                f"CN must be 1 to 64 {_RULE}; it contains a control or bidirectional-override character",
            ),
            ("C of three letters", "CN=x.bar.test,C=USA", "C must be a two-letter country code"),
            ("garbage", "garbage", "'garbage' is not an attribute=value pair; write it in RFC 4514 form"),
            ("OpenSSL slashes", "/CN=x", "is in OpenSSL's /CN=.../O=... form"),
            ("bad escape", "CN=x\\", "the value of CN is not valid RFC 4514"),
            ("unknown attribute", "CN=x,FOO=y", "attribute type 'FOO' is not supported"),
        )
    ),
]


@pytest.mark.parametrize(("payload_", "message"), REFUSALS)
async def test_bad_orders_are_refused_and_store_nothing(bar, auth, payload_, message):
    await ccm_ca(bar, auth())
    description = await barbican_error(await bar.post(ORDERS, json=payload_, headers=auth()), 400)
    assert message in description
    assert (await body(await bar.get(ORDERS, headers=auth())))["total"] == 0


def _csr_with(*attributes: tuple) -> str:
    return csr_for([x509.NameAttribute(oid, value) for oid, value in attributes], [x509.DNSName("cmc.example.com")])


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        pytest.param(
            lambda: _csr_with((NameOID.COMMON_NAME, "cmc.example.com"), (NameOID.ORGANIZATION_NAME, "o" * 100)),
            "the CSR's subject O must be 1 to 64",
            id="O of 100 characters",
        ),
        pytest.param(
            lambda: _csr_with((NameOID.COMMON_NAME, "cmc\nexample.com")),
            "it contains a control or bidirectional-override character",
            id="newline in the CN",
        ),
    ],
)
async def test_a_csr_subject_is_held_to_the_same_rules_in_every_dialect(bar, auth, csr, message):
    """A CSR's subject that one dialect refuses, every dialect refuses: Barbican simple-cmc at order creation,
    CCM at issuance, Notary at submission. Nothing is stored. (Only a CSR without a CN is a dialect choice:
    Notary signs one that has SANs, CCM and Barbican need the CN; see docs/api/notary.md.)"""
    ca_id = await ccm_ca(bar, auth())
    pem = csr()
    meta = {"request_type": "simple-cmc", "ca_id": ca_id, "request_data": base64.b64encode(pem.encode()).decode()}
    description = await barbican_error(
        await bar.post(ORDERS, json={"type": "certificate", "meta": meta}, headers=auth()), 400
    )
    assert description.startswith("Invalid property 'meta.request_data': ") and message in description
    assert (await body(await bar.get(ORDERS, headers=auth())))["total"] == 0
    ccm = await bar.post(
        "/v1/private-certificates/csr",
        json={"issuer_id": ca_id, "csr": pem, "validity": {"type": "DAY", "value": 30}},
        headers=auth(),
    )
    ccm_error = await body(ccm, 400)
    assert ccm_error["error_code"] == "PCA.1020" and message in ccm_error["error_msg"]
    assert (await body(await bar.get("/v1/private-certificates", headers=auth())))["total"] == 0
    notary = await bar.post("/api/v1/certificate_requests", json={"csr": pem}, headers=auth())
    notary_error = (await body(notary, 400))["error"]
    assert message in notary_error
    assert (await body(await bar.get("/api/v1/certificate_requests", headers=auth())))["result"] == []


async def test_stored_key_subject_rules_with_a_real_container(bar, auth):
    ca_id = await ccm_ca(bar, auth(), alg="RSA2048")
    source = await fulfilled(
        bar, auth(), await order(bar, auth(), "asymmetric", {"algorithm": "rsa", "bit_length": 2048})
    )
    for dn, message in (
        ("CN=s.bar.test,O=" + "o" * 100, "O must be 1 to 64"),
        ("CN=s\\0Ax.bar.test", "control or bidirectional-override character"),
        ("CN=s.bar.test,ST=" + "s" * 200, "ST must be 1 to 128"),
    ):
        meta = {
            "request_type": "stored-key",
            "container_ref": source["container_ref"],
            "subject_dn": dn,
            "ca_id": ca_id,
        }
        description = await barbican_error(
            await bar.post(ORDERS, json={"type": "certificate", "meta": meta}, headers=auth()), 400
        )
        assert description.startswith("Invalid property 'meta.subject_dn': ") and message in description
    assert (await body(await bar.get(ORDERS, headers=auth())))["total"] == 1  # the asymmetric order only


async def test_an_order_stored_before_the_name_rules_ends_in_error(bar, auth):
    """The worker holds a stored order to the rules again: one accepted by an older version never issues."""
    await ccm_ca(bar, auth())
    now = bar.clock()
    stored = Order(
        id="0190a1b2-0000-7000-8000-0000000000aa",
        project_id="p1",
        type=OrderType.CERTIFICATE,
        meta={"subject_dn": "CN=x.bar.test", "subject_alt_names": ["_srv.bar.test"]},
        status=OrderStatus.PENDING,
        creator_id="tester",
        create_time=now,
        update_time=now,
    )
    await bar.orders.insert_order(stored)
    assert await bar.worker.run_once() == 1
    data = await body(await bar.get(f"{ORDERS}/{stored.id}", headers=auth()))
    assert data["status"] == "ERROR" and data["error_status_code"] == "400"
    assert "'meta.subject_alt_names'" in data["error_reason"] and "container_ref" not in data


async def test_bad_csr_signature_and_media_type(bar, auth):
    await ccm_ca(bar, auth())
    pem = make_csr()[0]
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 1
    meta = {"request_type": "simple-cmc", "request_data": base64.b64encode(bytes(der)).decode()}
    assert "signature" in await barbican_error(
        await bar.post(ORDERS, json={"type": "certificate", "meta": meta}, headers=auth()), 400
    )
    resp = await bar.post(ORDERS, data='{"type": "key", "meta": {}}', headers={**auth(), "Content-Type": "text/plain"})
    await barbican_error(resp, 415)
    await barbican_error(await bar.post(ORDERS, data="{", headers={**auth(), "Content-Type": "application/json"}), 400)
    assert (await body(await bar.get(ORDERS, headers=auth())))["total"] == 0


# -- the worker: claims, crashes, races ----------------------------------------------------------------


async def test_an_attempt_that_crashed_is_redone_after_its_lease(bar, auth):
    order_id = await order(bar, auth(), "asymmetric", {"algorithm": "ec", "bit_length": 256})
    dead = OrderWorker(bar.orders, bar.service, worker_id="dead", clock=bar.clock)
    claimed = await dead._claim(await bar.orders.get_order("p1", order_id))
    await bar.service.fulfil(claimed)  # wrote its products, then "crashed" before completing
    first = product_id(claimed, "container")
    assert await bar.orders.get_container("p1", first) is not None
    assert await bar.worker.run_once() == 0  # the lease still holds
    bar.clock.now += dt.timedelta(seconds=61)
    assert await bar.worker.run_once() == 1
    stored = await bar.orders.get_order("p1", order_id)
    assert stored.status.value == "ACTIVE" and stored.attempts == 2 and stored.claimed_by == bar.worker.worker_id
    assert stored.container_id == product_id(stored, "container") != first
    assert await bar.orders.get_container("p1", first) is None  # the crashed attempt left nothing behind
    assert await bar.orders.get_secret("p1", product_id(claimed, "private_key")) is None


async def test_a_completion_that_lost_its_lease_removes_its_products(bar, auth):
    order_id = await order(bar, auth(), "key", AES)
    slow = OrderWorker(bar.orders, bar.service, worker_id="slow", clock=bar.clock)
    claimed = await slow._claim(await bar.orders.get_order("p1", order_id))
    bar.clock.now += dt.timedelta(seconds=61)
    assert await bar.worker.run_once() == 1  # the fast worker took the order over and finished it
    assert await slow._complete(claimed) == 0  # the slow one's result is refused ...
    stored = await bar.orders.get_order("p1", order_id)
    assert stored.secret_id == product_id(stored, "secret") and stored.attempts == 2
    assert await bar.orders.get_secret("p1", product_id(claimed, "secret")) is None  # ... and removed
    assert await bar.orders.get_secret("p1", stored.secret_id) is not None


async def test_two_workers_process_each_order_once(bar, auth):
    ids = [await order(bar, auth(), "key", AES) for _ in range(24)]
    other = OrderWorker(bar.orders, bar.service, worker_id="other", clock=bar.clock)
    done = await asyncio.gather(bar.worker.run_once(), other.run_once())
    assert sum(done) == 24
    stored = [await bar.orders.get_order("p1", i) for i in ids]
    assert all(o.status.value == "ACTIVE" and o.attempts == 1 for o in stored)
    assert {o.claimed_by for o in stored} <= {"other", bar.worker.worker_id}


# -- reads, paging, roles, tenancy --------------------------------------------------------------------------


async def test_order_list_pages_with_links_and_delete(bar, auth):
    ids = [await order(bar, auth(), "key", AES) for _ in range(12)]
    first = await body(await bar.get(ORDERS, headers=auth()))
    assert first["total"] == 12 and len(first["orders"]) == 10 and "previous" not in first
    assert first["next"].endswith("/v1/orders?limit=10&offset=10")
    assert [uuid_of(o["order_ref"]) for o in first["orders"]] == ids[::-1][:10]
    second = await body(await bar.get(ORDERS, params={"offset": "10"}, headers=auth()))
    assert len(second["orders"]) == 2 and "next" not in second and second["previous"].endswith("offset=0")
    await barbican_error(await bar.get(ORDERS, params={"limit": "101"}, headers=auth()), 400)
    await barbican_error(await bar.get(ORDERS, params={"limit": "x"}, headers=auth()), 400)
    # found by fuzzing: an offset beyond SQLite's 64-bit integers was a 500
    assert "offset" in await barbican_error(await bar.get(ORDERS, params={"offset": str(10**40)}, headers=auth()), 400)
    await barbican_error(await bar.get("/v1/cas", params={"offset": str(2**63)}, headers=auth()), 400)
    assert (await bar.delete(f"{ORDERS}/{ids[0]}", headers=auth())).status == 204
    await barbican_error(await bar.get(f"{ORDERS}/{ids[0]}", headers=auth()), 404)
    await barbican_error(await bar.delete(f"{ORDERS}/{ids[0]}", headers=auth()), 404)
    await barbican_error(await bar.get(f"{ORDERS}/not-a-uuid", headers=auth()), 404)


async def test_another_project_and_a_viewer(bar, auth):
    ca_id = await ccm_ca(bar, auth())
    done = await fulfilled(bar, auth(), await order(bar, auth(), "asymmetric", {"algorithm": "ec", "bit_length": 256}))
    _, refs = await container(bar, auth(), done["container_ref"])
    other = auth("p2")
    for path in (
        f"{ORDERS}/{uuid_of(done['order_ref'])}",
        f"/v1/containers/{uuid_of(done['container_ref'])}",
        f"/v1/secrets/{uuid_of(refs['private_key'])}",
        f"/v1/secrets/{uuid_of(refs['private_key'])}/payload",
        f"/v1/cas/{ca_id}",
        f"/v1/cas/{ca_id}/cacert",
    ):
        await barbican_error(await bar.get(path, headers=other), 404)
    assert (await body(await bar.get(ORDERS, headers=other)))["total"] == 0
    assert (await body(await bar.get("/v1/cas", headers=other)))["total"] == 0
    await barbican_error(await bar.post(ORDERS, json={"type": "key", "meta": AES}, headers=auth("p1", "viewer")), 403)
    await barbican_error(
        await bar.delete(f"/v1/containers/{uuid_of(done['container_ref'])}", headers=auth("p1", "viewer")), 403
    )
    await barbican_error(await bar.get(ORDERS), 401)
    assert (await bar.delete(f"/v1/containers/{uuid_of(done['container_ref'])}", headers=auth())).status == 204


async def test_cas_are_the_projects_private_cas(bar, auth):
    ca_id = await ccm_ca(bar, auth(), "Listed CA")
    listed = await body(await bar.get("/v1/cas", headers=auth("p1", "viewer")))
    assert listed["total"] == 1 and [uuid_of(r) for r in listed["cas"]] == [ca_id]
    ca = await body(await bar.get(f"/v1/cas/{ca_id}", headers=auth()))
    assert ca["status"] == "ACTIVE" and ca["plugin_ca_id"] == ca_id and {"name": "Listed CA"} in ca["meta"]
    dt.datetime.fromisoformat(ca["expiration"])
    assert (await (await bar.get(f"/v1/cas/{ca_id}/intermediates", headers=auth())).text()) == ""


async def test_version_document_at_the_root(bar):
    resp = await bar.get("/")
    data = await resp.json()
    assert resp.status == 300 and data["versions"]["values"][0]["id"] == "v1"


async def test_unknown_paths_under_v1_answer_in_the_envelope_of_their_namespace(bar, auth):
    """/v1 is shared with CCM: an unknown /v1/private-* path is CCM's, any other unknown /v1 path Barbican's
    (the version document advertises /v1/), and a path outside every dialect the service's own."""
    for headers in ({}, auth()):
        for path in ("/v1/nothing", "/v1", "/v1/orders-x", "/v1/secret"):
            assert "does not match any API" in await barbican_error(await bar.get(path, headers=headers), 404)
        for path in ("/v1/private-nothing", "/v1/private-certificates-x"):
            data = await body(await bar.get(path, headers=headers), 404)
            assert data == {"error_code": "PCA.1043", "error_msg": "the requested URL does not match any API"}
        data = await body(await bar.get("/nothing", headers=headers), 404)
        assert data == {"error": {"code": 404, "message": "the requested URL does not match any API"}}
