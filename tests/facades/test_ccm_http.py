"""The CCM private CA dialect over HTTP, against both real stores."""

from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from gatewaycerts.app import create_app
from tests.factories import MovableClock, ca_spec, ec_key, issue, rsa_key, sign_ca_csr

CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"

SEED_BODY = {
    "key_algorithm": "RSA2048",
    "distinguished_name": {
        "country": "CN",
        "state": "your state",
        "locality": "your locality",
        "organization": "your organization",
        "organizational_unit": "your unit",
        "common_name": "your CN",
    },
    "subject_alternative_names": [{"type": "IP", "value": "156.127.116.38"}],
    "signature_algorithm": "SHA256",
    "validity": {"type": "YEAR", "value": 3},
    "key_usages": ["digitalSignature", "nonRepudiation"],
    "customized_extension": {"object_identifier": "1.3.6.1.4.1.2011.4.1", "value": "This is custom extensions."},
}


@pytest.fixture
async def ccm(aiohttp_client, settings, pca_store):
    app = create_app(settings, pca_store=pca_store)
    return await aiohttp_client(app)


def root_body(**overrides) -> dict:
    body = {
        "type": "ROOT",
        "distinguished_name": {"common_name": "Example Root CA", "country": "CN", "organization": "Example Org"},
        "key_algorithm": "EC256",
        "signature_algorithm": "SHA256",
        "validity": {"type": "YEAR", "value": 10},
        "crl_configuration": {"enabled": True, "valid_days": 7},
    }
    body.update(overrides)
    return body


async def ok(resp, status: int = 200):
    assert resp.status == status, await resp.text()
    return await resp.json() if status == 200 else None


async def create_ca(ccm, auth, **overrides) -> str:
    return (await ok(await ccm.post(CAS, json=root_body(**overrides), headers=auth())))["ca_id"]


# The seed's 3 years exceed the TLS server profile's 825 days (its IP SAN makes it a serverAuth certificate).
TWO_YEARS = {"type": "YEAR", "value": 2}


async def issue_cert(ccm, auth, issuer_id: str, **overrides) -> str:
    body = {**SEED_BODY, "issuer_id": issuer_id, "key_algorithm": "EC256", "validity": TWO_YEARS, **overrides}
    return (await ok(await ccm.post(CERTS, json=body, headers=auth())))["certificate_id"]


async def export_pem(ccm, auth, cert_id: str) -> dict:
    return await ok(await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "OTHER"}, headers=auth()))


async def crl_of(ccm, ca_id: str) -> x509.CertificateRevocationList:
    resp = await ccm.get(f"{CAS}/{ca_id}/crl")  # no token: CRLs are public
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pkix-crl"
    return x509.load_der_x509_crl(await resp.read())


def load_all(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


# -- the happy paths ---------------------------------------------------------------------------------


async def test_root_subordinate_issue_chain_verifies(ccm, auth):
    root_id = await create_ca(ccm, auth)
    sub_id = await create_ca(
        ccm,
        auth,
        type="SUBORDINATE",
        issuer_id=root_id,
        distinguished_name={"common_name": "Example Issuing CA"},
        validity={"type": "YEAR", "value": 5},
        path_length=0,
    )
    sub = await ok(await ccm.get(f"{CAS}/{sub_id}", headers=auth()))
    assert sub["status"] == "ACTIVED" and sub["issuer_id"] == root_id and sub["path_length"] == 0
    # the DN inherits the parent's attributes it omits
    assert {k: v for k, v in sub["distinguished_name"].items() if v is not None} == {
        "common_name": "Example Issuing CA",
        "country": "CN",
        "organization": "Example Org",
    }
    cert_id = await issue_cert(
        ccm,
        auth,
        sub_id,
        subject_alternative_names=[{"type": "DNS", "value": "api.example.com"}],
        extended_key_usage={"server_auth": True},
        key_usages=["digitalSignature"],
    )
    exported = await export_pem(ccm, auth, cert_id)
    leaf = x509.load_pem_x509_certificate(exported["certificate"].encode())
    chain = load_all(exported["certificate_chain"])
    assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example Issuing CA"
    root = chain[-1]
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
        .build_server_verifier(x509.DNSName("api.example.com"))
    )
    path = verifier.verify(leaf, chain[:-1])
    assert len(path) == 3
    # CRL distribution point of the issuing CA, custom extension, EKU
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value.endswith(f"{CAS}/{sub_id}/crl")
    custom = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.2011.4.1"))
    assert b"This is custom extensions." in custom.value.value
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    # the private key belongs to the certificate and is never in a read response
    key = serialization.load_pem_private_key(exported["private_key"].encode(), None)
    assert key.public_key() == leaf.public_key()
    shown = await ok(await ccm.get(f"{CERTS}/{cert_id}", headers=auth()))
    assert "PRIVATE KEY" not in str(shown)
    assert shown["status"] == "ISSUED" and shown["issuer_id"] == sub_id and shown["gen_mode"] == "GENERATE"
    assert shown["serial_number"] == str(leaf.serial_number)
    assert shown["not_after"] == int(leaf.not_valid_after_utc.timestamp() * 1000)


async def test_seed_body_issues_an_rsa_certificate(ccm, auth):
    """The seed's body asks for 3 years for an IP address with no EKU: a TLS server certificate (serverAuth by
    default) for longer than 825 days, which is refused; for 2 years it is issued, with serverAuth."""
    root_id = await create_ca(ccm, auth, key_algorithm="RSA2048")
    resp = await ccm.post(CERTS, json={**SEED_BODY, "issuer_id": root_id}, headers=auth())
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1012"
    assert "825 days" in (await resp.json())["error_msg"]
    body = {**SEED_BODY, "issuer_id": root_id, "validity": TWO_YEARS}
    cert_id = (await ok(await ccm.post(CERTS, json=body, headers=auth())))["certificate_id"]
    assert len(cert_id) == 36
    leaf = x509.load_pem_x509_certificate((await export_pem(ccm, auth, cert_id))["certificate"].encode())
    assert leaf.public_key().key_size == 2048
    assert leaf.signature_hash_algorithm.name == "sha256"
    subject = {a.oid: a.value for a in leaf.subject}
    assert subject[NameOID.COMMON_NAME] == "your CN" and subject[NameOID.COUNTRY_NAME] == "CN"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["156.127.116.38"]
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    # 2 YEAR = 24 calendar months
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days in (730, 731)
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


async def test_revocation_lands_in_a_growing_signed_crl(ccm, auth):
    root_id = await create_ca(ccm, auth)
    ca_cert = x509.load_pem_x509_certificate(
        (await ok(await ccm.post(f"{CAS}/{root_id}/export", headers=auth())))["certificate"].encode()
    )
    first = await crl_of(ccm, root_id)
    assert first.is_signature_valid(ca_cert.public_key())
    number0 = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    cert_id = await issue_cert(ccm, auth, root_id)
    serial = int((await ok(await ccm.get(f"{CERTS}/{cert_id}", headers=auth())))["serial_number"])
    await ok(await ccm.post(f"{CERTS}/{cert_id}/revoke", json={"reason": "KEY_COMPROMISE"}, headers=auth()), 204)
    crl = await crl_of(ccm, root_id)
    assert crl.is_signature_valid(ca_cert.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number0
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    shown = await ok(await ccm.get(f"{CERTS}/{cert_id}", headers=auth()))
    assert shown["status"] == "REVOKED"
    # PEM form of the same CRL
    resp = await ccm.get(f"{CAS}/{root_id}/crl?format=pem")
    assert resp.status == 200 and (await resp.text()).startswith("-----BEGIN X509 CRL-----")


async def test_revoke_accepts_an_empty_body_and_refuses_twice(ccm, auth):
    root_id = await create_ca(ccm, auth)
    cert_id = await issue_cert(ccm, auth, root_id)
    await ok(await ccm.post(f"{CERTS}/{cert_id}/revoke", json={}, headers=auth()), 204)
    resp = await ccm.post(f"{CERTS}/{cert_id}/revoke", headers=auth())
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1032"


async def test_subordinate_ca_revocation_goes_into_the_parent_crl(ccm, auth):
    root_id = await create_ca(ccm, auth)
    sub_id = await create_ca(
        ccm,
        auth,
        type="SUBORDINATE",
        issuer_id=root_id,
        distinguished_name={"common_name": "Sub"},
        # shorter than the root's 10 years: created a second later, an equal span would end after the root's
        validity={"type": "YEAR", "value": 5},
    )
    serial = int((await ok(await ccm.get(f"{CAS}/{sub_id}", headers=auth())))["serial_number"])
    await ok(await ccm.post(f"{CAS}/{sub_id}/revoke", json={"reason": "CESSATION_OF_OPERATION"}, headers=auth()), 204)
    assert (await crl_of(ccm, root_id)).get_revoked_certificate_by_serial_number(serial) is not None
    resp = await ccm.post(CERTS, json={**SEED_BODY, "issuer_id": sub_id, "key_algorithm": "EC256"}, headers=auth())
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1031"


async def test_lifecycle_disable_enable_delete_restore(ccm, auth):
    root_id = await create_ca(ccm, auth)
    await ok(await ccm.post(f"{CAS}/{root_id}/disable", headers=auth()), 204)
    resp = await ccm.post(CERTS, json={**SEED_BODY, "issuer_id": root_id}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error_code"] == "PCA.1031" and "disabled" in body["error_msg"]
    await ok(await ccm.post(f"{CAS}/{root_id}/enable", headers=auth()), 204)
    resp = await ccm.delete(f"{CAS}/{root_id}", headers=auth())
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1030"  # active: disable first
    await ok(await ccm.post(f"{CAS}/{root_id}/disable", headers=auth()), 204)
    await ok(await ccm.delete(f"{CAS}/{root_id}?pending_days=7", headers=auth()), 204)
    shown = await ok(await ccm.get(f"{CAS}/{root_id}", headers=auth()))
    assert shown["status"] == "DELETED" and shown["delete_time"] > shown["create_time"]
    await ok(await ccm.post(f"{CAS}/{root_id}/restore", headers=auth()), 204)
    shown = await ok(await ccm.get(f"{CAS}/{root_id}", headers=auth()))
    assert shown["status"] == "DISABLED" and shown["delete_time"] is None


async def test_pending_ca_signed_outside_then_imported(ccm, auth):
    pending = await ok(
        await ccm.post(
            CAS,
            json={
                "type": "SUBORDINATE",
                "distinguished_name": {"common_name": "Outside Signed CA", "organization": "Example Org"},
                "key_algorithm": "EC384",
                "signature_algorithm": "SHA384",
            },
            headers=auth(),
        )
    )
    ca_id = pending["ca_id"]
    assert (await ok(await ccm.get(f"{CAS}/{ca_id}", headers=auth())))["status"] == "PENDING"
    csr_pem = (await ok(await ccm.get(f"{CAS}/{ca_id}/csr", headers=auth())))["csr"]
    assert x509.load_pem_x509_csr(csr_pem.encode()).is_signature_valid
    # an outside root signs the CSR
    outside = issue(ca_spec("Outside Root"), ec_key("secp256r1", 7))
    pem = sign_ca_csr(csr_pem, outside)
    # a chain that did not sign it is refused, and changes nothing
    stranger = issue(ca_spec("Stranger Root"), ec_key("secp256r1", 8))
    resp = await ccm.post(
        f"{CAS}/{ca_id}/import", json={"certificate": pem, "certificate_chain": stranger.pem}, headers=auth()
    )
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1019"
    assert (await ok(await ccm.get(f"{CAS}/{ca_id}", headers=auth())))["status"] == "PENDING"
    await ok(
        await ccm.post(
            f"{CAS}/{ca_id}/import", json={"certificate": pem, "certificate_chain": outside.pem}, headers=auth()
        ),
        204,
    )
    shown = await ok(await ccm.get(f"{CAS}/{ca_id}", headers=auth()))
    assert shown["status"] == "ACTIVED" and shown["gen_mode"] == "IMPORT" and shown["issuer_name"] == "Outside Root"
    cert_id = await issue_cert(
        ccm,
        auth,
        ca_id,
        subject_alternative_names=[{"type": "DNS", "value": "x.example.com"}],
        validity={"type": "DAY", "value": 30},
    )
    chain = load_all((await export_pem(ccm, auth, cert_id))["certificate_chain"])
    assert [c.subject for c in chain] == [x509.load_pem_x509_certificate(pem.encode()).subject, outside.cert.subject]


async def test_pending_ca_activated_by_an_internal_ca(ccm, auth):
    root_id = await create_ca(ccm, auth)
    ca_id = (
        await ok(
            await ccm.post(
                CAS,
                json={
                    "type": "SUBORDINATE",
                    "distinguished_name": {"common_name": "Late CA"},
                    "key_algorithm": "EC256",
                },
                headers=auth(),
            )
        )
    )["ca_id"]
    await ok(
        await ccm.post(
            f"{CAS}/{ca_id}/activate",
            json={"issuer_id": root_id, "validity": {"type": "YEAR", "value": 2}},
            headers=auth(),
        ),
        204,
    )
    shown = await ok(await ccm.get(f"{CAS}/{ca_id}", headers=auth()))
    assert shown["status"] == "ACTIVED" and shown["issuer_id"] == root_id
    assert shown["distinguished_name"]["organization"] == "Example Org"  # inherited at activation


async def test_csr_issue_parse_and_intermediate(ccm, auth):
    root_id = await create_ca(ccm, auth)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-17.example.com")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("device-17.example.com")]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    parsed = await ok(await ccm.post(f"{CERTS}/csr/parse", json={"csr": csr}, headers=auth()))
    assert parsed["distinguished_name"]["common_name"] == "device-17.example.com"
    assert parsed["distinguished_name"]["organization"] is None
    assert parsed["key_algorithm"] == "EC" and parsed["key_algorithm_length"] == 256
    cert_id = (
        await ok(
            await ccm.post(
                f"{CERTS}/csr",
                json={"issuer_id": root_id, "csr": csr, "validity": {"type": "DAY", "value": 30}},
                headers=auth(),
            )
        )
    )["certificate_id"]
    shown = await ok(await ccm.get(f"{CERTS}/{cert_id}", headers=auth()))
    assert shown["gen_mode"] == "CSR"
    exported = await export_pem(ccm, auth, cert_id)
    assert exported["private_key"] is None  # we never saw the key
    leaf = x509.load_pem_x509_certificate(exported["certificate"].encode())
    assert leaf.public_key() == key.public_key()
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # an intermediate from a CSR carries CA:TRUE with the path length asked for
    mid_id = (
        await ok(
            await ccm.post(
                f"{CERTS}/csr",
                json={
                    "issuer_id": root_id,
                    "csr": csr,
                    "validity": {"type": "YEAR", "value": 1},
                    "type": "INTERMEDIATE_CA",
                    "path_length": 0,
                },
                headers=auth(),
            )
        )
    )["certificate_id"]
    mid = x509.load_pem_x509_certificate((await export_pem(ccm, auth, mid_id))["certificate"].encode())
    bc = mid.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True and bc.path_length == 0


async def test_export_formats(ccm, auth):
    root_id = await create_ca(ccm, auth)
    cert_id = await issue_cert(ccm, auth, root_id, distinguished_name={"common_name": "shop.example.com"})
    resp = await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "NGINX", "is_compressed": "true"}, headers=auth())
    assert resp.status == 200 and resp.content_type == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()
    assert any(n.endswith(".key") for n in names) and any(n.endswith(".pem") for n in names)
    resp = await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "IIS", "password": "s3cret-pass"}, headers=auth())
    assert resp.status == 200 and resp.content_type == "application/x-pkcs12"
    key, leaf, extra = pkcs12.load_key_and_certificates(await resp.read(), b"s3cret-pass")
    assert leaf is not None and key.public_key() == leaf.public_key() and len(extra) == 1
    resp = await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "TOMCAT"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error_code"] == "PCA.1010" and "password" in body["error_msg"]


async def test_lists_filter_sort_and_page(ccm, auth):
    root_id = await create_ca(ccm, auth, distinguished_name={"common_name": "Alpha Root"})
    await create_ca(ccm, auth, distinguished_name={"common_name": "Beta Root"})
    page = await ok(await ccm.get(f"{CAS}?name=alpha", headers=auth()))
    assert page["total"] == 1 and page["certificate_authorities"][0]["ca_id"] == root_id
    page = await ok(await ccm.get(f"{CAS}?sort_key=common_name&sort_dir=ASC&limit=1", headers=auth()))
    assert page["total"] == 2 and [c["distinguished_name"]["common_name"] for c in page["certificate_authorities"]] == [
        "Alpha Root"
    ]
    ids = [
        await issue_cert(ccm, auth, root_id, distinguished_name={"common_name": f"h{i}.example.com"}) for i in range(3)
    ]
    await ok(await ccm.post(f"{CERTS}/{ids[0]}/revoke", json={}, headers=auth()), 204)
    page = await ok(await ccm.get(f"{CERTS}?status=REVOKED", headers=auth()))
    assert [c["certificate_id"] for c in page["certificates"]] == [ids[0]]
    page = await ok(await ccm.get(f"{CERTS}?limit=2&offset=1", headers=auth()))
    assert page["total"] == 3 and [c["certificate_id"] for c in page["certificates"]] == [ids[1], ids[0]]


async def test_delete_certificate_requires_revocation_first(ccm, auth):
    root_id = await create_ca(ccm, auth)
    cert_id = await issue_cert(ccm, auth, root_id)
    resp = await ccm.delete(f"{CERTS}/{cert_id}", headers=auth())
    assert resp.status == 400 and (await resp.json())["error_code"] == "PCA.1030"
    await ok(await ccm.post(f"{CERTS}/{cert_id}/revoke", json={}, headers=auth()), 204)
    await ok(await ccm.delete(f"{CERTS}/{cert_id}", headers=auth()), 204)
    resp = await ccm.get(f"{CERTS}/{cert_id}", headers=auth())
    assert resp.status == 404 and (await resp.json())["error_code"] == "PCA.1041"
    # still on the CRL after deletion
    serial_count = len(list(await crl_of(ccm, root_id)))
    assert serial_count == 1


async def test_import_to_apic_in_one_call(ccm, auth):
    root_id = await create_ca(ccm, auth, key_algorithm="RSA2048")
    cert_id = await issue_cert(
        ccm,
        auth,
        root_id,
        key_algorithm="RSA2048",
        distinguished_name={"common_name": "gw.example.com"},
        subject_alternative_names=[{"type": "DNS", "value": "gw.example.com"}],
    )
    created = await ok(await ccm.post(f"{CERTS}/{cert_id}/import-to-apic", json={"name": "gw_cert"}, headers=auth()))
    apic = await ok(await ccm.get(f"/v2/p1/apic/certificates/{created['id']}", headers=auth()))
    assert apic["common_name"] == "gw.example.com" and apic["name"] == "gw_cert"


# -- refusals: every documented PCA code -------------------------------------------------------------------


ERROR_CASES = [
    ("400/PCA.1010 missing type", "ca", {"type": None}, 400, "PCA.1010"),
    ("400/PCA.1010 missing common_name", "ca", {"distinguished_name": {"country": "CN"}}, 400, "PCA.1010"),
    ("400/PCA.1020 bad key algorithm", "ca", {"key_algorithm": "DSA1024"}, 400, "PCA.1020"),
    ("400/PCA.1017 SM2", "ca", {"key_algorithm": "SM2"}, 400, "PCA.1017"),
    ("400/PCA.1017 SM3", "ca", {"signature_algorithm": "SM3"}, 400, "PCA.1017"),
    ("400/PCA.1012 root over 30 years", "ca", {"validity": {"type": "YEAR", "value": 31}}, 400, "PCA.1012"),
    ("400/PCA.1012 zero value", "ca", {"validity": {"type": "DAY", "value": 0}}, 400, "PCA.1012"),
    (
        "400/PCA.1012 start_from in the past",
        "ca",
        {"validity": {"type": "DAY", "value": 1, "start_from": 1_000_000}},
        400,
        "PCA.1012",
    ),
    ("400/PCA.1020 bad validity type", "ca", {"validity": {"type": "WEEK", "value": 1}}, 400, "PCA.1020"),
    ("400/PCA.1020 bad country", "ca", {"distinguished_name": {"common_name": "X", "country": "CHN"}}, 400, "PCA.1020"),
    ("400/PCA.1020 CN too long", "ca", {"distinguished_name": {"common_name": "x" * 65}}, 400, "PCA.1020"),
    (
        "400/PCA.1020 bidi override in the CN",
        "cert",
        {"distinguished_name": {"common_name": "www.\u202emoc.example"}},
        400,
        "PCA.1020",
    ),
    (
        "400/PCA.1020 C1 control in the O",
        "ca",
        {"distinguished_name": {"common_name": "X", "organization": "Ex\u0085ample"}},
        400,
        "PCA.1020",
    ),
    ("400/PCA.1020 bad crl days", "ca", {"crl_configuration": {"enabled": True, "valid_days": 99}}, 400, "PCA.1020"),
    ("400/PCA.1020 bad key usage", "ca", {"key_usages": ["fly"]}, 400, "PCA.1020"),
    ("400/PCA.1020 root with issuer", "ca", {"issuer_id": "2cb2878b-6cd1-460d-bd25-afe655159bdc"}, 400, "PCA.1020"),
    (
        "404/PCA.1040 unknown parent",
        "ca",
        {"type": "SUBORDINATE", "issuer_id": "2cb2878b-6cd1-460d-bd25-afe655159bdc"},
        404,
        "PCA.1040",
    ),
    ("400/PCA.1012 cert beyond 20 years", "cert", {"validity": {"type": "YEAR", "value": 21}}, 400, "PCA.1012"),
    ("400/PCA.1012 cert beyond the CA", "cert", {"validity": {"type": "YEAR", "value": 11}}, 400, "PCA.1012"),
    ("400/PCA.1012 server cert over 825 days", "cert", {"validity": {"type": "DAY", "value": 826}}, 400, "PCA.1012"),
    (
        "400/PCA.1013 bad DNS SAN",
        "cert",
        {"subject_alternative_names": [{"type": "DNS", "value": "bad..name"}]},
        400,
        "PCA.1013",
    ),
    (
        "400/PCA.1013 bad IP SAN",
        "cert",
        {"subject_alternative_names": [{"type": "IP", "value": "300.1.1.1"}]},
        400,
        "PCA.1013",
    ),
    (
        "400/PCA.1013 21 SANs",
        "cert",
        {"subject_alternative_names": [{"type": "DNS", "value": f"h{i}.example.com"} for i in range(21)]},
        400,
        "PCA.1013",
    ),
    (
        "400/PCA.1020 bad SAN type",
        "cert",
        {"subject_alternative_names": [{"type": "X400", "value": "a"}]},
        400,
        "PCA.1020",
    ),
    (
        "400/PCA.1014 bad OID",
        "cert",
        {"customized_extension": {"object_identifier": "9.x", "value": "v"}},
        400,
        "PCA.1014",
    ),
    ("400/PCA.1010 missing issuer", "cert", {"issuer_id": None}, 400, "PCA.1010"),
    (
        "404/PCA.1040 issuer of another project",
        "cert",
        {"issuer_id": "00000000-0000-7000-8000-000000000000"},
        404,
        "PCA.1040",
    ),
    ("400/PCA.1020 keyCertSign on a leaf", "cert", {"key_usages": ["keyCertSign"]}, 400, "PCA.1020"),
]


@pytest.mark.parametrize(("case", "kind", "overrides", "status", "code"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_error_cases(ccm, auth, case, kind, overrides, status, code):
    root_id = await create_ca(ccm, auth)
    before = await ok(await ccm.get(CAS, headers=auth()))
    if kind == "ca":
        body = {k: v for k, v in root_body(**overrides).items() if v is not None}
        resp = await ccm.post(CAS, json=body, headers=auth())
    else:
        body = {**SEED_BODY, "issuer_id": root_id, "key_algorithm": "EC256", "validity": TWO_YEARS, **overrides}
        resp = await ccm.post(CERTS, json={k: v for k, v in body.items() if v is not None}, headers=auth())
    data = await resp.json()
    assert (resp.status, data["error_code"]) == (status, code), data
    assert set(data) == {"error_code", "error_msg"}
    # nothing changed
    assert await ok(await ccm.get(CAS, headers=auth())) == before
    assert (await ok(await ccm.get(CERTS, headers=auth())))["total"] == 0


def _csr(key, cn: str = "device.example.com") -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )


def _pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _tampered(csr: x509.CertificateSigningRequest) -> str:
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


CSR_CASES = [
    ("400/PCA.1015 garbage", lambda: "not a csr", "PCA.1015"),
    ("400/PCA.1015 a certificate instead", lambda: issue(ca_spec("X"), ec_key("secp256r1", 9)).pem, "PCA.1015"),
    ("400/PCA.1015 bad signature", lambda: _tampered(_csr(ec.generate_private_key(ec.SECP256R1()))), "PCA.1015"),
    ("400/PCA.1016 RSA-1024", lambda: _pem(_csr(rsa_key(1024))), "PCA.1016"),
    ("400/PCA.1011 oversize", lambda: "A" * 20000, "PCA.1011"),
]


@pytest.mark.parametrize(("case", "make_csr", "code"), CSR_CASES, ids=[c[0] for c in CSR_CASES])
async def test_csr_refusals(ccm, auth, case, make_csr, code):
    root_id = await create_ca(ccm, auth)
    body = {"issuer_id": root_id, "csr": make_csr(), "validity": {"type": "DAY", "value": 1}}
    resp = await ccm.post(f"{CERTS}/csr", json=body, headers=auth())
    data = await resp.json()
    assert (resp.status, data["error_code"]) == (400, code), data
    assert (await ok(await ccm.get(CERTS, headers=auth())))["total"] == 0


async def test_unknown_ids_and_routes(ccm, auth):
    for path, code in (
        (f"{CAS}/2cb2878b-6cd1-460d-bd25-afe655159bdc", "PCA.1040"),
        (f"{CAS}/..%2F..%2Fetc%2Fpasswd", "PCA.1040"),
        (f"{CERTS}/2cb2878b-6cd1-460d-bd25-afe655159bdc", "PCA.1041"),
        (f"{CERTS}/not-an-id", "PCA.1041"),
        (f"{CAS}/2cb2878b-6cd1-460d-bd25-afe655159bdc/nope", "PCA.1043"),
    ):
        resp = await ccm.get(path, headers=auth())
        data = await resp.json()
        assert resp.status == 404 and data["error_code"] == code, (path, data)
        assert "passwd" not in data["error_msg"] and "not-an-id" not in data["error_msg"]
    resp = await ccm.get(f"{CAS}/2cb2878b-6cd1-460d-bd25-afe655159bdc/crl")
    assert resp.status == 404 and (await resp.json())["error_code"] == "PCA.1040"


async def test_crl_disabled_is_not_published(ccm, auth):
    root_id = await create_ca(ccm, auth, crl_configuration={"enabled": False})
    resp = await ccm.get(f"{CAS}/{root_id}/crl")
    assert resp.status == 404 and (await resp.json())["error_code"] == "PCA.1042"
    await ok(await ccm.post(f"{CAS}/{root_id}/crl/enable", json={"valid_days": 3}, headers=auth()), 204)
    crl = await crl_of(ccm, root_id)
    assert (crl.next_update_utc - crl.last_update_utc) == dt.timedelta(days=3)
    await ok(await ccm.post(f"{CAS}/{root_id}/crl/disable", headers=auth()), 204)
    assert (await ccm.get(f"{CAS}/{root_id}/crl")).status == 404


async def test_roles_and_tenants(ccm, auth):
    root_id = await create_ca(ccm, auth)
    # a viewer reads but cannot issue; an editor issues but cannot manage CAs
    assert (await ccm.get(f"{CAS}/{root_id}", headers=auth(role="viewer"))).status == 200
    resp = await ccm.post(
        CERTS, json={**SEED_BODY, "issuer_id": root_id, "key_algorithm": "EC256"}, headers=auth(role="viewer")
    )
    assert resp.status == 403 and (await resp.json())["error_code"] == "PCA.1003"
    resp = await ccm.post(CAS, json=root_body(), headers=auth(role="editor"))
    assert resp.status == 403 and (await resp.json())["error_code"] == "PCA.1003"
    cert_id = await issue_cert(ccm, lambda: auth(role="editor"), root_id)
    resp = await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "OTHER"}, headers=auth(role="viewer"))
    assert resp.status == 403  # exporting hands out the key: not for viewers
    # another project's token sees nothing of p1
    for path in (f"{CAS}/{root_id}", f"{CERTS}/{cert_id}"):
        resp = await ccm.get(path, headers=auth(project="p2"))
        assert resp.status == 404, path
    assert (await ok(await ccm.get(CAS, headers=auth(project="p2"))))["total"] == 0
    resp = await ccm.post(CERTS, json={**SEED_BODY, "issuer_id": root_id}, headers=auth(project="p2"))
    assert resp.status == 404 and (await resp.json())["error_code"] == "PCA.1040"
    # no token
    resp = await ccm.get(CAS)
    assert resp.status == 401 and (await resp.json())["error_code"] == "PCA.1001"


@pytest.fixture
async def timed(aiohttp_client, settings, pca_store):
    clock = MovableClock()
    client = await aiohttp_client(create_app(settings, pca_store=pca_store, clock=clock))
    return client, clock


async def test_expired_ca_cannot_issue_and_reads_as_expired(timed, auth):
    ccm, clock = timed
    root_id = await create_ca(ccm, auth, validity={"type": "HOUR", "value": 2})
    clock.now += dt.timedelta(hours=3)
    shown = await ok(await ccm.get(f"{CAS}/{root_id}", headers=auth()))
    assert shown["status"] == "EXPIRED"
    assert [
        c["ca_id"]
        for c in (await ok(await ccm.get(f"{CAS}?status=EXPIRED", headers=auth())))["certificate_authorities"]
    ] == [root_id]
    resp = await ccm.post(CERTS, json={**SEED_BODY, "issuer_id": root_id, "key_algorithm": "EC256"}, headers=auth())
    body = await resp.json()
    assert resp.status == 400 and body["error_code"] == "PCA.1031" and "expired" in body["error_msg"]


async def test_crl_is_rebuilt_before_it_goes_stale(timed, auth):
    ccm, clock = timed
    root_id = await create_ca(ccm, auth, crl_configuration={"enabled": True, "valid_days": 2})
    first = await crl_of(ccm, root_id)
    again = await crl_of(ccm, root_id)
    number = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number  # fresh: served as is
    clock.now += dt.timedelta(days=1, seconds=1)  # past half of its validity
    later = await crl_of(ccm, root_id)
    assert later.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    assert later.last_update_utc == clock.now and later.next_update_utc == clock.now + dt.timedelta(days=2)


async def test_concurrent_revocations_all_land_and_the_crl_number_only_grows(ccm, auth):
    import asyncio

    root_id = await create_ca(ccm, auth)
    ids = [await issue_cert(ccm, auth, root_id, validity={"type": "DAY", "value": 5}) for _ in range(6)]
    serials = {int((await ok(await ccm.get(f"{CERTS}/{i}", headers=auth())))["serial_number"]) for i in ids}
    before = (await crl_of(ccm, root_id)).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    results = await asyncio.gather(*(ccm.post(f"{CERTS}/{i}/revoke", json={}, headers=auth()) for i in ids))
    assert [r.status for r in results] == [204] * 6
    crl = await crl_of(ccm, root_id)
    assert {entry.serial_number for entry in crl} == serials
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= before + 6
    # two concurrent revocations of one certificate: exactly one wins
    dup = await issue_cert(ccm, auth, root_id, validity={"type": "DAY", "value": 5})
    both = await asyncio.gather(*(ccm.post(f"{CERTS}/{dup}/revoke", json={}, headers=auth()) for _ in range(2)))
    assert sorted(r.status for r in both) == [204, 400]


async def test_multi_project_tokens_name_their_project(ccm, settings):
    from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token

    key = load_or_create_dev_key(settings.state_dir)
    both = mint_token(key, subject="ops", projects=["p1", "p2"], roles=["admin"], ttl=600)
    resp = await ccm.get(CAS, headers={"X-Auth-Token": both})
    assert resp.status == 403 and "X-Project-Id" in (await resp.json())["error_msg"]
    resp = await ccm.post(CAS, json=root_body(), headers={"X-Auth-Token": both, "X-Project-Id": "p2"})
    assert resp.status == 200
    page = await ok(await ccm.get(CAS, headers={"X-Auth-Token": both, "X-Project-Id": "p2"}))
    assert page["total"] == 1
    resp = await ccm.get(CAS, headers={"X-Auth-Token": both, "X-Project-Id": "p3"})
    assert resp.status == 403 and (await resp.json())["error_code"] == "PCA.1003"


async def test_bad_bodies_get_the_pca_envelope(ccm, auth):
    for raw, ctype, status in (
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (b"type=ROOT", "application/x-www-form-urlencoded", 415),
        (b"x" * (600 * 1024), "application/json", 413),
    ):
        resp = await ccm.post(CAS, data=raw, headers={**auth(), "Content-Type": ctype})
        data = await resp.json()
        assert (resp.status, data["error_code"]) == (status, "PCA.1020"), (raw[:20], data)
    assert (await ok(await ccm.get(CAS, headers=auth())))["total"] == 0


async def test_import_refuses_a_certificate_for_another_key(ccm, auth):
    ca_id = (
        await ok(
            await ccm.post(
                CAS,
                json={
                    "type": "SUBORDINATE",
                    "distinguished_name": {"common_name": "Pending"},
                    "key_algorithm": "EC256",
                },
                headers=auth(),
            )
        )
    )["ca_id"]
    outside = issue(ca_spec("Outside Root"), ec_key("secp256r1", 7))
    other = issue(ca_spec("Some Other CA"), ec_key("secp256r1", 10), outside)  # a CA cert, but not for our key
    resp = await ccm.post(
        f"{CAS}/{ca_id}/import", json={"certificate": other.pem, "certificate_chain": outside.pem}, headers=auth()
    )
    data = await resp.json()
    assert (resp.status, data["error_code"]) == (400, "PCA.1018"), data
    assert (await ok(await ccm.get(f"{CAS}/{ca_id}", headers=auth())))["status"] == "PENDING"


async def test_store_outage_and_unexpected_errors_use_the_pca_envelope(
    aiohttp_client, settings, tmp_path, auth, caplog
):
    from pymongo import AsyncMongoClient

    from gatewaycerts.store.mongo.pca import MongoPcaStore
    from gatewaycerts.store.sqlite.pca import SqlitePcaStore
    from tests.mongo_server import free_port

    # a real driver that cannot reach its server
    unreachable = AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=200, tz_aware=True)
    down = MongoPcaStore(unreachable, "gc_down")
    # the app would refuse to start otherwise (its schema and its KEK check read the store): the outage
    # begins after start
    down.ensure_schema = _no_schema
    down.envelope_samples = _no_samples
    client = await aiohttp_client(create_app(settings, pca_store=down))
    resp = await client.get(CAS, headers=auth())
    data = await resp.json()
    assert (resp.status, data["error_code"]) == (503, "PCA.1099"), data
    await unreachable.close()

    class FaultyStore(SqlitePcaStore):
        """The real SQLite store with one injected fault (a bug below the core, not a storage mock)."""

        async def list_certificates(self, *args, **kwargs):
            raise RuntimeError("boom: internal detail -----BEGIN PRIVATE KEY-----")

    client = await aiohttp_client(create_app(settings, pca_store=FaultyStore(tmp_path / "faulty.db")))
    resp = await client.get(CERTS, headers={**auth(), "X-Request-Id": "req-456"})
    data = await resp.json()
    assert resp.status == 500 and data == {"error_code": "PCA.1000", "error_msg": "System error, request_id:req-456"}
    assert any("req-456" in r.getMessage() and r.exc_info for r in caplog.records)


async def _no_schema() -> None:
    return None


async def _no_samples(kind) -> list:
    return []


def test_conflict_maps_to_pca_1050_and_409():
    from gatewaycerts.domain.errors import ConflictError
    from gatewaycerts.facades.ccm.errors import code_for
    from gatewaycerts.web.errors import status_for

    exc = ConflictError("the CA is being changed by other requests; retry")
    assert (status_for(exc), code_for(exc)) == (409, "PCA.1050")
