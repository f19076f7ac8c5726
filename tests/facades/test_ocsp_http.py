"""The OCSP responder (/pki/ocsp/{ca_id}) and the caIssuers URL (/pki/ca/{ca_id}.cer), on both stores.

Debian's `openssl ocsp` asks about good and revoked certificates over POST and GET, with the CA or a delegated
responder signing, and verifies the answers (a serial the CA never signed is answered unauthorized);
revocation is visible in the CRL and OCSP at once, on the replica that revoked and on another replica on the
same store.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import shutil
import urllib.parse
import urllib.request
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import METRICS, OCSP_RESPONDER
from gatewaycerts.core.ocsp import SIGNER_LIFETIME, SIGNER_RENEW_BEFORE
from gatewaycerts.keyvault import envelope_kek_id, new_kek_line
from gatewaycerts.settings import Settings
from tests.conftest import STORES, app_on
from tests.e2e.gateway_harness import serve

CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"
PUBLIC = "https://pki.example.test"


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl CLI is missing (apt-get install openssl)")
        pytest.skip("the openssl CLI is missing (apt-get install openssl)")
    return path


def _replicas_fixture(signers: list[str]):
    @pytest.fixture(params=[(s, signer) for s in STORES for signer in signers], ids=lambda p: f"{p[0]}-{p[1]}")
    async def fixture(request, aiohttp_client, tmp_path):
        kind, signer = request.param
        env = {
            "GATEWAYCERTS_STATE_DIR": str(tmp_path / "state"),
            "GATEWAYCERTS_PUBLIC_URL": PUBLIC,
            "GATEWAYCERTS_OCSP_SIGNER": signer,
        }
        if kind == "mongo":
            env["GATEWAYCERTS_DATABASE_URL"] = (
                request.getfixturevalue("mongodb_uri") + f"gc_ocsp_{uuid.uuid4().hex[:12]}"
            )
        settings = Settings.from_env(env)
        a = await aiohttp_client(create_app(settings, order_worker=False))
        b = await aiohttp_client(create_app(settings, order_worker=False))
        return a, b

    return fixture


replicas = _replicas_fixture(["ca", "delegated"])
ca_signed = _replicas_fixture(["ca"])
delegated = _replicas_fixture(["delegated"])


async def _post(client, auth, path: str, body: dict) -> dict:
    resp = await client.post(path, json=body, headers=auth())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _root(client, auth, cn: str = "OCSP Root") -> str:
    body = {
        "type": "ROOT",
        "distinguished_name": {"common_name": cn, "country": "CN", "organization": "OCSP Org"},
        "key_algorithm": "EC256",
        "validity": {"type": "YEAR", "value": 5},
        "crl_configuration": {"enabled": True, "valid_days": 7},
    }
    return (await _post(client, auth, CAS, body))["ca_id"]


async def _leaf(client, auth, issuer_id: str, cn: str) -> dict:
    body = {
        "issuer_id": issuer_id,
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": cn},
        "validity": {"type": "DAY", "value": 30},
        "subject_alternative_names": [{"type": "DNS", "value": cn}],
    }
    cert_id = (await _post(client, auth, CERTS, body))["certificate_id"]
    exported = await _post(client, auth, f"{CERTS}/{cert_id}/export", {"type": "OTHER"})
    return {"id": cert_id, "pem": exported["certificate"], "chain": exported["certificate_chain"]}


async def _revoke(client, auth, cert_id: str, reason: str = "KEY_COMPROMISE") -> None:
    resp = await client.post(f"{CERTS}/{cert_id}/revoke", json={"reason": reason}, headers=auth())
    assert resp.status == 204, await resp.text()


async def _ca_pem(client, auth, ca_id: str) -> str:
    resp = await client.get(f"/pki/ca/{ca_id}.cer")
    assert resp.status == 200 and resp.content_type == "application/pkix-cert"
    return x509.load_der_x509_certificate(await resp.read()).public_bytes(serialization.Encoding.PEM).decode()


def _request(cert_pem: str, issuer_pem: str, algorithm=None, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_pem_x509_certificate(cert_pem.encode()),
        x509.load_pem_x509_certificate(issuer_pem.encode()),
        algorithm or hashes.SHA1(),
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


async def _ask(client, ca_id: str, der: bytes, *, get: bool = False) -> ocsp.OCSPResponse:
    if get:
        resp = await client.get(f"/pki/ocsp/{ca_id}/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    else:
        resp = await client.post(f"/pki/ocsp/{ca_id}", data=der, headers={"Content-Type": "application/ocsp-request"})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(await resp.read())


async def _openssl(openssl: str, *args: str, ok: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        openssl, "ocsp", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()
    assert (proc.returncode == 0) is ok, text
    return text


async def test_openssl_verifies_good_revoked_and_never_issued_over_post_and_get(replicas, auth, openssl, tmp_path):
    a, _ = replicas
    root = await _root(a, auth)
    other_root = await _root(a, auth, "Other Root")
    good = await _leaf(a, auth, root, "good.example.com")
    bad = await _leaf(a, auth, root, "bad.example.com")
    stranger = await _leaf(a, auth, other_root, "stranger.example.com")
    await _revoke(a, auth, bad["id"])
    files = {"root": await _ca_pem(a, auth, root), "good": good["pem"], "bad": bad["pem"]}
    files["stranger"] = stranger["pem"]
    for name, pem in files.items():
        (tmp_path / f"{name}.pem").write_text(pem)
    url = str(a.make_url(f"/pki/ocsp/{root}"))
    issuer, trust = ["-issuer", str(tmp_path / "root.pem")], ["-CAfile", str(tmp_path / "root.pem")]
    signer = a.app[OCSP_RESPONDER]._signer_mode
    # -VAfile: the CA itself is the trusted responder; a delegated responder is trusted through the CA (-CAfile).
    va = ["-VAfile", str(tmp_path / "root.pem")] if signer == "ca" else trust
    for digest in ("-sha1", "-sha256"):
        for name, expected in (("good", "good"), ("bad", "revoked")):
            for nonce in ("-nonce", "-no_nonce"):
                out = await _openssl(
                    openssl, *issuer, digest, "-cert", str(tmp_path / f"{name}.pem"), "-url", url, *va, nonce
                )
                assert "Response verify OK" in out, out
                assert f"{tmp_path / name}.pem: {expected}" in out, out
                if expected == "revoked":
                    assert "Reason: keyCompromise" in out and "Revocation Time:" in out, out
                if nonce == "-nonce":
                    assert "WARNING: no nonce in response" not in out, out
    # GET: openssl writes the request, the test sends it base64 in the path, openssl verifies the answer
    for name, expected in (("good", "good"), ("bad", "revoked")):
        req, rsp = tmp_path / f"{name}.req", tmp_path / f"{name}.rsp"
        cert = ["-cert", str(tmp_path / f"{name}.pem")]
        await _openssl(openssl, *issuer, "-sha256", *cert, "-no_nonce", "-reqout", str(req))
        encoded = urllib.parse.quote(base64.b64encode(req.read_bytes()).decode(), safe="")
        resp = await a.get(f"/pki/ocsp/{root}/{encoded}")
        assert resp.status == 200 and resp.content_type == "application/ocsp-response"
        assert "max-age=" in resp.headers["Cache-Control"] and "Expires" in resp.headers
        rsp.write_bytes(await resp.read())
        out = await _openssl(openssl, "-respin", str(rsp), *issuer, "-sha256", *cert, *trust)
        assert "Response verify OK" in out and f"{tmp_path / name}.pem: {expected}" in out, out
    # a certificate of another CA, asked of this CA's responder: unauthorized (RFC 5019 2.2.3)
    stranger_req = _request(stranger["pem"], await _ca_pem(a, auth, other_root))
    assert (await _ask(a, root, stranger_req)).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # a serial this CA never issued: unauthorized, unsigned (as Let's Encrypt answers; RFC 5019 2.2.3), not a
    # signed "unknown" (the other root's leaf, with this root as the issuer in its CertID), over POST and GET,
    # with and without a nonce; no signature is spent on it
    never = x509.load_pem_x509_certificate(stranger["pem"].encode())
    signatures = a.app[OCSP_RESPONDER].signatures
    for nonce in (None, os.urandom(16)):
        builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            *_issuer_hashes(files["root"]), serial_number=never.serial_number, algorithm=hashes.SHA256()
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        forged = builder.build().public_bytes(serialization.Encoding.DER)
        for get in (False, True):
            answer = await _ask(a, root, forged, get=get)
            assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    for nonce in ("-nonce", "-no_nonce"):  # openssl ocsp: the stranger's serial with this root as its issuer
        out = await _openssl(
            openssl, *issuer, "-cert", str(tmp_path / "stranger.pem"), "-url", url, *va, nonce, ok=False
        )
        assert "Responder Error: unauthorized (6)" in out, out
    assert a.app[OCSP_RESPONDER].signatures == signatures


def _issuer_hashes(issuer_pem: str) -> tuple[bytes, bytes]:
    issuer = x509.load_pem_x509_certificate(issuer_pem.encode())
    req = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, hashes.SHA256()).build()
    return req.issuer_name_hash, req.issuer_key_hash


async def test_delegated_responder_certificate_profile(delegated, auth):
    a, b = delegated
    root = await _root(a, auth)
    leaf = await _leaf(a, auth, root, "d.example.com")
    root_pem = await _ca_pem(a, auth, root)
    answer = await _ask(a, root, _request(leaf["pem"], root_pem))
    [responder] = answer.certificates
    ca = x509.load_pem_x509_certificate(root_pem.encode())
    assert responder.issuer == ca.subject and responder != ca
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    life = responder.not_valid_after_utc - responder.not_valid_before_utc
    assert life.days <= 4
    assert answer.next_update_utc <= responder.not_valid_after_utc
    responder.verify_directly_issued_by(ca)
    answer_key = responder.public_key()
    answer_key.verify(answer.signature, answer.tbs_response_bytes, _ecdsa(answer))
    # one responder certificate per CA, stored (key under the KEK): the other replica answers with the same one
    [again] = (await _ask(b, root, _request(leaf["pem"], root_pem))).certificates
    assert again == responder


def _ecdsa(answer: ocsp.OCSPResponse):
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(answer.signature_hash_algorithm)


async def test_revocation_is_in_crl_and_ocsp_at_once_on_both_replicas(replicas, auth):
    a, b = replicas
    root = await _root(a, auth)
    leaf = await _leaf(a, auth, root, "soon-revoked.example.com")
    req = _request(leaf["pem"], await _ca_pem(a, auth, root))
    serial = x509.load_pem_x509_certificate(leaf["pem"].encode()).serial_number
    responder_a, responder_b = a.app[OCSP_RESPONDER], b.app[OCSP_RESPONDER]
    for client in (a, b):
        assert (await _ask(client, root, req)).certificate_status is ocsp.OCSPCertStatus.GOOD
    signed = responder_a.signatures, responder_b.signatures
    for client in (a, b):  # answered from the cache: no new signature for an unchanged status
        for get in (False, True):
            assert (await _ask(client, root, req, get=get)).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert (responder_a.signatures, responder_b.signatures) == signed
    await _revoke(a, auth, leaf["id"], "SUPERSEDED")
    # on either replica: no wait, no poll; the very next answer says revoked, as the CRL does
    for client, responder, before in ((a, responder_a, signed[0]), (b, responder_b, signed[1])):
        answer = await _ask(client, root, req)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason is x509.ReasonFlags.superseded
        await _in_crl(client, root, serial, answer)
        assert responder.signatures == before + 1  # signed once for the new status ...
        assert (await _ask(client, root, req, get=True)).certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert responder.signatures == before + 1  # ... and answered from the cache after that
    # the other order on the replica that did not revoke: the CRL first, then OCSP
    second = await _leaf(a, auth, root, "revoked-second.example.com")
    req2 = _request(second["pem"], await _ca_pem(a, auth, root))
    serial2 = x509.load_pem_x509_certificate(second["pem"].encode()).serial_number
    assert (await _ask(b, root, req2)).certificate_status is ocsp.OCSPCertStatus.GOOD
    await _revoke(a, auth, second["id"], "KEY_COMPROMISE")
    crl = x509.load_der_x509_crl(await (await b.get(f"{CAS}/{root}/crl")).read())
    entry = crl.get_revoked_certificate_by_serial_number(serial2)
    assert entry is not None
    answer = await _ask(b, root, req2)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc == entry.revocation_date_utc
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise


def _status_reads(client) -> float:
    """How many times the app has read a serial's status from its store (its own metric of that operation)."""
    labels = {"store": "pca", "operation": "serial_status"}
    name = "gatewaycerts_store_operation_duration_seconds_count"
    return client.app[METRICS].registry.get_sample_value(name, labels) or 0


async def test_a_status_is_read_again_exactly_when_the_store_has_changed(ca_signed, auth):
    """SQLite: while nothing at all is committed, answers reuse the status read last (no store read); after any
    commit (here an unrelated CA, through the other replica) the next answer reads it again. MongoDB: every answer
    reads it."""
    a, b = ca_signed
    root = await _root(a, auth)
    sqlite = a.app[OCSP_RESPONDER]._store.change_stamp() is not None
    leaf = await _leaf(a, auth, root, "read-once.example.com")
    req = _request(leaf["pem"], await _ca_pem(a, auth, root))
    assert (await _ask(a, root, req)).certificate_status is ocsp.OCSPCertStatus.GOOD
    before = _status_reads(a)
    for get in (False, True, False):
        assert (await _ask(a, root, req, get=get)).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert _status_reads(a) - before == (0 if sqlite else 3)
    await _root(b, auth, "Unrelated Root")  # a commit by the other replica, to other rows
    assert (await _ask(a, root, req)).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert _status_reads(a) - before == (1 if sqlite else 4)
    await _revoke(b, auth, leaf["id"])  # and the status itself, through the other replica
    assert (await _ask(a, root, req, get=True)).certificate_status is ocsp.OCSPCertStatus.REVOKED


async def _in_crl(client, ca_id: str, serial: int, answer: ocsp.OCSPResponse) -> None:
    crl = x509.load_der_x509_crl(await (await client.get(f"{CAS}/{ca_id}/crl")).read())
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None and entry.revocation_date_utc == answer.revocation_time_utc


async def test_nonce_is_echoed_and_never_cached(ca_signed, auth):
    a, _ = ca_signed
    root = await _root(a, auth)
    leaf = await _leaf(a, auth, root, "nonce.example.com")
    root_pem = await _ca_pem(a, auth, root)
    responder = a.app[OCSP_RESPONDER]
    before = responder.signatures
    for n in (b"\x01" * 16, b"\x02" * 32):
        resp = await a.post(
            f"/pki/ocsp/{root}",
            data=_request(leaf["pem"], root_pem, nonce=n),
            headers={"Content-Type": "application/ocsp-request"},
        )
        assert resp.headers["Cache-Control"] == "no-store"
        answer = ocsp.load_der_ocsp_response(await resp.read())
        assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == n
    assert responder.signatures == before + 2
    too_long = _request(leaf["pem"], root_pem, nonce=b"\x03" * 33)  # RFC 8954: 1 to 32 octets
    assert (await _ask(a, root, too_long)).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_bad_input_gets_an_ocsp_status_or_an_http_error_never_a_trace(ca_signed, auth, openssl, tmp_path):
    a, _ = ca_signed
    root = await _root(a, auth)
    leaf = await _leaf(a, auth, root, "bad-input.example.com")
    good_req = _request(leaf["pem"], await _ca_pem(a, auth, root))
    ocsp_type = {"Content-Type": "application/ocsp-request"}

    async def status_of(resp, http_status: int) -> ocsp.OCSPResponseStatus:
        body = await resp.read()
        assert resp.status == http_status, body
        assert resp.content_type == "application/ocsp-response" and b"Traceback" not in body
        return ocsp.load_der_ocsp_response(body).response_status

    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert (
        await status_of(await a.post(f"/pki/ocsp/{root}", data=b"\x30\x03garbage", headers=ocsp_type), 200) is malformed
    )
    assert await status_of(await a.post(f"/pki/ocsp/{root}", data=b"", headers=ocsp_type), 200) is malformed
    wrong_type = await a.post(f"/pki/ocsp/{root}", data=good_req, headers={"Content-Type": "application/json"})
    assert await status_of(wrong_type, 415) is malformed
    assert await status_of(await a.post(f"/pki/ocsp/{root}", data=b"\x30" * 5000, headers=ocsp_type), 413) is malformed
    assert await status_of(await a.get(f"/pki/ocsp/{root}/%%%not-base64"), 200) is malformed
    assert await status_of(await a.get(f"/pki/ocsp/{root}/"), 200) is malformed
    assert await status_of(await a.get(f"/pki/ocsp/{root}/" + "A" * 7000), 414) is malformed
    # RFC 5019: one certificate per request; a request for two (openssl writes one) is refused as malformed
    cert_file, root_file, two_file = tmp_path / "leaf.pem", tmp_path / "root.pem", tmp_path / "two.req"
    cert_file.write_text(leaf["pem"])
    root_file.write_text(await _ca_pem(a, auth, root))
    both = ["-cert", str(cert_file), "-cert", str(cert_file)]
    await _openssl(openssl, "-issuer", str(root_file), *both, "-no_nonce", "-reqout", str(two_file))
    two = await a.post(f"/pki/ocsp/{root}", data=two_file.read_bytes(), headers=ocsp_type)
    assert await status_of(two, 200) is malformed
    unauthorized = ocsp.OCSPResponseStatus.UNAUTHORIZED
    for ca_id in (str(uuid.uuid4()), "not-a-ca"):
        assert (
            await status_of(await a.post(f"/pki/ocsp/{ca_id}", data=good_req, headers=ocsp_type), 200) is unauthorized
        )
    missing = await a.get(f"/pki/ca/{uuid.uuid4()}.cer")
    assert missing.status == 404 and "Traceback" not in await missing.text()
    assert (await a.put(f"/pki/ocsp/{root}", data=good_req, headers=ocsp_type)).status == 405


async def test_aia_and_cdp_in_leaves_and_subordinates_never_in_roots(ca_signed, auth):
    a, _ = ca_signed
    root = await _root(a, auth)
    sub_body = {
        "type": "SUBORDINATE",
        "issuer_id": root,
        "distinguished_name": {"common_name": "OCSP Issuing"},
        "key_algorithm": "EC256",
        "validity": {"type": "YEAR", "value": 2},
        "path_length": 0,
    }
    sub = (await _post(a, auth, CAS, sub_body))["ca_id"]
    leaf = await _leaf(a, auth, sub, "aia.example.com")
    root_cert = x509.load_pem_x509_certificate((await _ca_pem(a, auth, root)).encode())
    sub_cert = x509.load_pem_x509_certificate((await _ca_pem(a, auth, sub)).encode())
    leaf_cert = x509.load_pem_x509_certificate(leaf["pem"].encode())
    with pytest.raises(x509.ExtensionNotFound):
        root_cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    for cert, issuer in ((sub_cert, root), (leaf_cert, sub)):
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        urls = {d.access_method: d.access_location.value for d in aia}
        assert urls == {
            AuthorityInformationAccessOID.OCSP: f"{PUBLIC}/pki/ocsp/{issuer}",
            AuthorityInformationAccessOID.CA_ISSUERS: f"{PUBLIC}/pki/ca/{issuer}.cer",
        }
    cdp = sub_cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == f"{PUBLIC}{CAS}/{root}/crl"
    # the caIssuers URL (path part) serves the issuer's certificate, DER
    resp = await a.get(f"/pki/ca/{sub}.cer")
    assert x509.load_der_x509_certificate(await resp.read()) == sub_cert
    sub_cert.verify_directly_issued_by(root_cert)
    leaf_cert.verify_directly_issued_by(sub_cert)


async def test_delegated_responder_is_replaced_before_it_expires(aiohttp_client, auth, every_store, tmp_path):
    now = [dt.datetime.now(dt.UTC)]
    settings = Settings(state_dir=tmp_path / "state", public_url=PUBLIC, ocsp_signer="delegated")
    client = await aiohttp_client(app_on(settings, every_store, clock=lambda: now[0]))
    root = await _root(client, auth)
    leaf = await _leaf(client, auth, root, "rotate.example.com")
    req = _request(leaf["pem"], await _ca_pem(client, auth, root))
    first = await _ask(client, root, req)
    [old] = first.certificates
    now[0] += SIGNER_LIFETIME - SIGNER_RENEW_BEFORE - dt.timedelta(minutes=5)
    [same] = (await _ask(client, root, req)).certificates
    assert same == old  # more than SIGNER_RENEW_BEFORE left: kept
    now[0] += dt.timedelta(minutes=10)
    second = await _ask(client, root, req)
    [new] = second.certificates
    assert new != old and new.serial_number != old.serial_number
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert second.this_update_utc > first.this_update_utc and second.next_update_utc <= new.not_valid_after_utc
    assert second.certificate_status is ocsp.OCSPCertStatus.GOOD
    # stored with the CA, its key under the KEK (an envelope, never PEM)
    ca = await every_store[1].get_authority(None, root)
    assert ca.ocsp_signer.serial_number == str(new.serial_number)
    assert b"PRIVATE KEY" not in ca.ocsp_signer.encrypted_key


async def test_delegated_responder_is_replaced_after_a_kek_rotation(aiohttp_client, auth, every_store, tmp_path):
    """Its short-lived key is not re-wrapped: a responder whose key is under an older KEK is replaced."""
    first_kek, second_kek = new_kek_line("k1"), new_kek_line("k2")
    base = dict(state_dir=tmp_path / "state", public_url=PUBLIC, ocsp_signer="delegated")
    before = await aiohttp_client(app_on(Settings(**base, kek=first_kek), every_store))
    root = await _root(before, auth)
    leaf = await _leaf(before, auth, root, "kek.example.com")
    req = _request(leaf["pem"], await _ca_pem(before, auth, root))
    [old] = (await _ask(before, root, req)).certificates
    after = await aiohttp_client(app_on(Settings(**base, kek=f"{first_kek},{second_kek}"), every_store))
    answer = await _ask(after, root, req)
    [new] = answer.certificates
    assert new != old and answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    ca = await every_store[1].get_authority(None, root)
    assert envelope_kek_id(ca.ocsp_signer.encrypted_key) == "k2"


def _http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
        return resp.read()


@pytest.mark.parametrize("kind", STORES)
def test_two_serve_processes_show_a_revocation_in_ocsp_and_the_crl_at_once(kind, request, tmp_path):
    """Two real `gatewaycerts serve` processes on one store: a revocation made through A is, with no wait, in
    B's OCSP answer and B's CRL, whichever B is asked first; never in one and not yet in the other."""
    extra = {"GATEWAYCERTS_PUBLIC_URL": PUBLIC}
    if kind == "mongo":
        extra["GATEWAYCERTS_DATABASE_URL"] = request.getfixturevalue("mongodb_uri") + f"gc_ocsp_{uuid.uuid4().hex[:12]}"
    state = tmp_path / "state"
    with serve(state, **extra) as a, serve(state, **extra) as b:
        root_body = {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Two Process Root", "country": "CN", "organization": "OCSP Org"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        }
        status, made = a.api("POST", CAS, root_body)
        assert status == 200, made
        root = made["ca_id"]
        issuer = x509.load_der_x509_certificate(_http(f"{b.url}/pki/ca/{root}.cer"))
        leaves = []
        for cn in ("first.example.com", "second.example.com"):
            body = {
                "issuer_id": root,
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": cn},
                "validity": {"type": "DAY", "value": 30},
                "subject_alternative_names": [{"type": "DNS", "value": cn}],
            }
            status, made = a.api("POST", CERTS, body)
            assert status == 200, made
            status, exported = a.api("POST", f"{CERTS}/{made['certificate_id']}/export", {"type": "OTHER"})
            assert status == 200, exported
            cert = x509.load_pem_x509_certificate(exported["certificate"].encode())
            der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
            leaves.append((made["certificate_id"], cert.serial_number, der.public_bytes(serialization.Encoding.DER)))

        def ask_ocsp(der: bytes) -> ocsp.OCSPResponse:
            body = _http(f"{b.url}/pki/ocsp/{root}", der, {"Content-Type": "application/ocsp-request"})
            answer = ocsp.load_der_ocsp_response(body)
            issuer.public_key().verify(answer.signature, answer.tbs_response_bytes, _ecdsa(answer))
            return answer

        def crl_entry(serial: int) -> x509.RevokedCertificate | None:
            crl = x509.load_der_x509_crl(_http(f"{b.url}{CAS}/{root}/crl"))
            assert crl.is_signature_valid(issuer.public_key())
            return crl.get_revoked_certificate_by_serial_number(serial)

        for _, serial, der in leaves:  # B has answered (and cached) good for both, and its CRL lists neither
            assert ask_ocsp(der).certificate_status is ocsp.OCSPCertStatus.GOOD
            assert crl_entry(serial) is None
        (first_id, first_serial, first_der), (second_id, second_serial, second_der) = leaves
        # revoked through A; B asked at once, OCSP first, then the CRL
        status, body = a.api("POST", f"{CERTS}/{first_id}/revoke", {"reason": "KEY_COMPROMISE"})
        assert status == 204, body
        answer = ask_ocsp(first_der)
        entry = crl_entry(first_serial)
        assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert entry is not None and entry.revocation_date_utc == answer.revocation_time_utc
        assert answer.revocation_reason is x509.ReasonFlags.key_compromise
        # and the other order: the CRL first, then OCSP
        status, body = a.api("POST", f"{CERTS}/{second_id}/revoke", {"reason": "SUPERSEDED"})
        assert status == 204, body
        entry = crl_entry(second_serial)
        answer = ask_ocsp(second_der)
        assert entry is not None and answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert entry.revocation_date_utc == answer.revocation_time_utc
        assert answer.revocation_reason is x509.ReasonFlags.superseded
        assert ask_ocsp(first_der).certificate_status is ocsp.OCSPCertStatus.REVOKED


async def test_long_requests_are_answered_but_never_remembered(ca_signed, auth):
    """The request-keyed caches keep only requests of at most MAX_REMEMBERED_REQUEST_BYTES (a real one is under
    200), so distinct long requests sent by anyone cannot fill memory; they are still answered."""
    from gatewaycerts.core.ocsp import MAX_REMEMBERED_REQUEST_BYTES

    a, _ = ca_signed
    root = await _root(a, auth)
    leaf = await _leaf(a, auth, root, "long.example.com")
    root_pem = await _ca_pem(a, auth, root)
    responder = a.app[OCSP_RESPONDER]
    short = _request(leaf["pem"], root_pem)
    padding = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x82\x02\x58" + b"x" * 600)
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_pem_x509_certificate(leaf["pem"].encode()),
        x509.load_pem_x509_certificate(root_pem.encode()),
        hashes.SHA1(),
    )
    long = builder.add_extension(padding, critical=False).build().public_bytes(serialization.Encoding.DER)
    assert len(short) <= MAX_REMEMBERED_REQUEST_BYTES < len(long)
    for der in (short, long, long):
        answer = await _ask(a, root, der)
        assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert answer.serial_number == x509.load_pem_x509_certificate(leaf["pem"].encode()).serial_number
    assert short in responder._queries and (root, short) in responder._given
    assert long not in responder._queries and (root, long) not in responder._given
