"""Every certificate and CRL the CA engine issues passes pkilint (an independent RFC 5280 linter).

pkilint pins its own dependencies, so it lives in its own venv (`make conformance-venv`, a prerequisite of
`make test`); this test fails in CI when that venv is missing and skips elsewhere.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ORDER_WORKER
from gatewaycerts.settings import Settings
from gatewaycerts.store.sqlite.pca import SqlitePcaStore
from tests.notary_helpers import NCAS, REQS, create_notary_ca, csr_for, make_csr, result, rsa_csr, sign, submit

VENV_BIN = Path(__file__).parents[2] / ".cache" / "pkilint-venv" / "bin"
CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"
ALGORITHMS = ["EC256", "EC384", "RSA2048", "RSA4096"]


@pytest.fixture(scope="module")
def pkilint() -> Path:
    if not (VENV_BIN / "lint_pkix_cert").exists():
        message = f"pkilint is not installed in {VENV_BIN.parent} (run make conformance-venv)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return VENV_BIN


def findings(tool: list[str], pem: str, tmp_path: Path) -> list[str]:
    """pkilint's ERROR and FATAL findings for one PEM document (WARNING and NOTICE ones are printed)."""
    path = tmp_path / f"doc{len(list(tmp_path.iterdir()))}.pem"
    path.write_text(pem)
    out = subprocess.run([*tool, "-s", "NOTICE", "-f", "TEXT", str(path)], capture_output=True, text=True, check=False)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if lines:
        print(f"pkilint {tool[0].rsplit('/', 1)[-1]}:", *lines, sep="\n  ")
    serious = [i for i, line in enumerate(lines) if "(ERROR)" in line or "(FATAL)" in line]
    return [lines[j] for i in serious for j in (i - 1, i) if j >= 0]


@pytest.fixture
async def ccm(aiohttp_client, tmp_path):
    store = SqlitePcaStore(tmp_path / "pca.db")
    return await aiohttp_client(create_app(Settings(state_dir=tmp_path / "state"), pca_store=store))


async def _post(ccm, auth, path: str, body: dict) -> dict:
    resp = await ccm.post(path, json=body, headers=auth())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _export(ccm, auth, cert_id: str) -> dict:
    return await _post(ccm, auth, f"{CERTS}/{cert_id}/export", {"type": "OTHER"})


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_issued_chain_and_crl_pass_pkilint(ccm, auth, pkilint, tmp_path, algorithm):
    lint_dir = tmp_path / "lint"
    lint_dir.mkdir()
    dn = {"common_name": f"Conformance Root {algorithm}", "country": "CN", "organization": "Conformance Org"}
    root = await _post(
        ccm,
        auth,
        CAS,
        {
            "type": "ROOT",
            "distinguished_name": dn,
            "key_algorithm": algorithm,
            "signature_algorithm": "SHA384" if algorithm == "EC384" else "SHA256",
            "validity": {"type": "YEAR", "value": 10},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    sub = await _post(
        ccm,
        auth,
        CAS,
        {
            "type": "SUBORDINATE",
            "issuer_id": root["ca_id"],
            "distinguished_name": {"common_name": f"Conformance Issuing {algorithm}"},
            "key_algorithm": algorithm,
            "validity": {"type": "YEAR", "value": 5},
            "path_length": 0,
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    leaf = await _post(
        ccm,
        auth,
        CERTS,
        {
            "issuer_id": sub["ca_id"],
            "key_algorithm": algorithm,
            "signature_algorithm": "SHA256",
            "distinguished_name": {"common_name": "conformance.example.com", "organizational_unit": "Web"},
            "validity": {"type": "DAY", "value": 90},
            "subject_alternative_names": [
                {"type": "DNS", "value": "conformance.example.com"},
                {"type": "IP", "value": "192.0.2.10"},
                {"type": "IP", "value": "2001:db8::10"},
                {"type": "EMAIL", "value": "pki@example.com"},
                {"type": "URI", "value": "https://conformance.example.com/id"},
            ],
            "extended_key_usage": {"server_auth": True, "client_auth": True},
            "customized_extension": {"object_identifier": "1.3.6.1.4.1.2011.4.99", "value": "conformance"},
        },
    )
    exported = await _export(ccm, auth, leaf["certificate_id"])
    chain = x509.load_pem_x509_certificates(exported["certificate_chain"].encode())
    documents = {
        "leaf": exported["certificate"],
        "subordinate CA": chain[0].public_bytes(serialization.Encoding.PEM).decode(),
        "root CA": chain[1].public_bytes(serialization.Encoding.PEM).decode(),
    }
    # a CA certificate issued from a CSR (INTERMEDIATE_CA)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CSR Intermediate")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    mid = await _post(
        ccm,
        auth,
        f"{CERTS}/csr",
        {"issuer_id": root["ca_id"], "csr": csr, "validity": {"type": "YEAR", "value": 1}, "type": "INTERMEDIATE_CA"},
    )
    documents["intermediate from CSR"] = (await _export(ccm, auth, mid["certificate_id"]))["certificate"]

    problems = {
        name: found
        for name, pem in documents.items()
        if (found := findings([str(pkilint / "lint_pkix_cert"), "lint"], pem, lint_dir))
    }
    # revoke the leaf and lint the issuing CA's CRL
    resp = await ccm.post(f"{CERTS}/{leaf['certificate_id']}/revoke", json={"reason": "KEY_COMPROMISE"}, headers=auth())
    assert resp.status == 204
    crl = await (await ccm.get(f"{CAS}/{sub['ca_id']}/crl?format=pem")).text()
    found = findings([str(pkilint / "lint_crl"), "lint", "-t", "CRL", "-p", "PKIX"], crl, lint_dir)
    if found:
        problems["CRL"] = found
    assert not problems, "pkilint ERROR/FATAL findings:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items()
    )


async def test_wildcard_dns_names_are_the_one_documented_pkix_deviation(ccm, auth, pkilint, tmp_path):
    """RFC 5280's dNSName syntax has no wildcards; RFC 6125 and every TLS client accept them, so we issue them.
    pkilint's PKIX profile reports exactly that and nothing else."""
    root = await _post(
        ccm,
        auth,
        CAS,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Wildcard Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 1},
        },
    )
    leaf = await _post(
        ccm,
        auth,
        CERTS,
        {
            "issuer_id": root["ca_id"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "*.example.com"},
            "validity": {"type": "DAY", "value": 30},
            "subject_alternative_names": [{"type": "DNS", "value": "*.example.com"}],
            "extended_key_usage": {"server_auth": True},
        },
    )
    pem = (await _export(ccm, auth, leaf["certificate_id"]))["certificate"]
    lines = findings([str(pkilint / "lint_pkix_cert"), "lint"], pem, tmp_path)
    codes = [line.strip().split(" ")[0] for line in lines if "(ERROR)" in line or "(FATAL)" in line]
    assert codes == ["pkix.invalid_domain_name_syntax"], lines


@pytest.mark.parametrize("algorithm", ["EC256", "RSA2048"])
async def test_notary_signed_certificates_and_crls_pass_pkilint(ccm, auth, pkilint, tmp_path, algorithm):
    """The Notary dialect: a self-signed CA and an intermediate signed by it (Notary's CA routes), a request of
    each key type signed by the intermediate, then revoked into its CRL."""
    headers = auth()
    root_id = await create_notary_ca(ccm, headers, common_name=f"Notary Root {algorithm}", key_algorithm=algorithm)
    inter_id = await create_notary_ca(
        ccm, headers, self_signed=False, common_name=f"Notary Issuing {algorithm}", key_algorithm=algorithm
    )
    resp = await ccm.post(f"{NCAS}/{inter_id}/sign", json={"certificate_authority_id": root_id}, headers=headers)
    assert resp.status == 200, await resp.text()
    documents: dict[str, str] = {}
    requests = {}
    names_only = [x509.DNSName("names-only.notary.example.com"), x509.IPAddress(ipaddress.ip_address("192.0.2.9"))]
    for kind, key in (
        ("P-256", ec.generate_private_key(ec.SECP256R1())),
        ("RSA-2048", None),
        ("Ed25519", ed25519.Ed25519PrivateKey.generate()),
        ("P-521", ec.generate_private_key(ec.SECP521R1())),
        ("names only, empty subject", None),
        ("names only, no CN", None),
    ):
        if kind == "names only, empty subject":
            csr = csr_for([], names_only)  # the SAN extension is then critical
        elif kind == "names only, no CN":
            csr = csr_for([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")], names_only)
        elif key:
            csr = make_csr(key, cn="notary.example.com", dns=("notary.example.com", "www.notary.example.com"))[0]
        else:
            csr = rsa_csr(2048)
        req_id = await submit(ccm, headers, csr)
        resp = await sign(ccm, headers, req_id, inter_id)
        assert resp.status == 200, await resp.text()
        chain = (await result(await ccm.get(f"{REQS}/{req_id}", headers=headers)))["certificate_chain"]
        certs = x509.load_pem_x509_certificates(chain.encode())
        documents[f"leaf ({kind} key)"] = certs[0].public_bytes(serialization.Encoding.PEM).decode()
        documents.setdefault("intermediate CA", certs[1].public_bytes(serialization.Encoding.PEM).decode())
        documents.setdefault("root CA", certs[2].public_bytes(serialization.Encoding.PEM).decode())
        requests[kind] = req_id
    problems = {
        name: found
        for name, pem in documents.items()
        if (found := findings([str(pkilint / "lint_pkix_cert"), "lint"], pem, tmp_path))
    }
    resp = await ccm.post(
        f"{REQS}/{requests['P-256']}/certificate/revoke", json={"reason": "KEY_COMPROMISE"}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    crl = (await result(await ccm.get(f"{NCAS}/{inter_id}/crl")))["crl"]
    assert x509.load_pem_x509_crl(crl.encode()).get_revoked_certificate_by_serial_number(
        x509.load_pem_x509_certificate(documents["leaf (P-256 key)"].encode()).serial_number
    )
    found = findings([str(pkilint / "lint_crl"), "lint", "-t", "CRL", "-p", "PKIX"], crl, tmp_path)
    if found:
        problems["CRL"] = found
    assert not problems, "pkilint ERROR/FATAL findings:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items()
    )


@pytest.mark.parametrize("algorithm", ["EC256", "RSA2048"])
async def test_order_certificates_pass_pkilint(aiohttp_client, auth, pkilint, tmp_path, algorithm):
    """The Barbican dialect: a certificate of each request type (custom, simple-cmc, stored-key), processed by
    the order worker, signed by a CA of the project."""
    app = create_app(Settings(state_dir=tmp_path / "state"), order_worker=False)
    client = await aiohttp_client(app)
    headers = auth()
    ca = await _post(
        client,
        auth,
        CAS,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": f"Orders Root {algorithm}", "organization": "Conformance Org"},
            "key_algorithm": algorithm,
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True},
        },
    )
    csr = make_csr(cn="cmc.example.com", dns=("cmc.example.com",))[0]
    pair = await client.post(
        "/v1/orders", json={"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 2048}}, headers=headers
    )
    assert pair.status == 202, await pair.text()
    await app[ORDER_WORKER].run_once()
    pair_ref = (
        await (
            await client.get(f"/v1/orders/{(await pair.json())['order_ref'].rsplit('/', 1)[1]}", headers=headers)
        ).json()
    )["container_ref"]
    metas = {
        "custom": {
            "subject_dn": "CN=custom.example.com,O=Example",
            "subject_alt_names": ["custom.example.com", "IP:192.0.2.20", "IP:2001:db8::20"],
        },
        "simple-cmc": {"request_type": "simple-cmc", "request_data": base64.b64encode(csr.encode()).decode()},
        "stored-key": {"request_type": "stored-key", "container_ref": pair_ref, "subject_dn": "CN=stored.example.com"},
    }
    refs = {}
    for kind, meta in metas.items():
        resp = await client.post(
            "/v1/orders", json={"type": "certificate", "meta": {**meta, "ca_id": ca["ca_id"]}}, headers=headers
        )
        assert resp.status == 202, await resp.text()
        refs[kind] = (await resp.json())["order_ref"].rsplit("/", 1)[1]
    await app[ORDER_WORKER].run_once()
    problems = {}
    for kind, order_id in refs.items():
        order = await (await client.get(f"/v1/orders/{order_id}", headers=headers)).json()
        assert order["status"] == "ACTIVE", order
        container = await (
            await client.get(f"/v1/containers/{order['container_ref'].rsplit('/', 1)[1]}", headers=headers)
        ).json()
        cert_ref = next(r["secret_ref"] for r in container["secret_refs"] if r["name"] == "certificate")
        pem = await (await client.get(f"/v1/secrets/{cert_ref.rsplit('/', 1)[1]}/payload", headers=headers)).text()
        if found := findings([str(pkilint / "lint_pkix_cert"), "lint"], pem, tmp_path):
            problems[kind] = found
    assert not problems, "pkilint ERROR/FATAL findings:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items()
    )


def _ocsp_findings(pkilint: Path, der: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / f"ocsp{len(list(tmp_path.iterdir()))}.der"
    path.write_bytes(der)
    tool = [str(pkilint / "lint_ocsp_response"), "lint", "--document-format", "DER"]
    out = subprocess.run([*tool, "-s", "NOTICE", "-f", "TEXT", str(path)], capture_output=True, text=True, check=False)
    assert not out.stderr.strip(), out.stderr  # e.g. "Failed to load OCSP response": nothing was linted
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if lines:
        print("pkilint lint_ocsp_response:", *lines, sep="\n  ")
    serious = [i for i, line in enumerate(lines) if "(ERROR)" in line or "(FATAL)" in line]
    return [lines[j] for i in serious for j in (i - 1, i) if j >= 0]


@pytest.mark.parametrize("signer", ["ca", "delegated"])
@pytest.mark.parametrize("algorithm", ["EC256", "RSA2048"])
async def test_ocsp_responses_pass_pkilint(aiohttp_client, auth, pkilint, tmp_path, signer, algorithm):
    """Good and revoked answers, signed by the CA or its delegated responder, and the unsigned unauthorized
    answer to a serial the CA never signed, pass lint_ocsp_response."""
    from cryptography.x509 import ocsp

    settings = Settings(state_dir=tmp_path / "state", public_url="https://pki.example.test", ocsp_signer=signer)
    client = await aiohttp_client(create_app(settings, pca_store=SqlitePcaStore(tmp_path / "pca.db")))
    lint_dir = tmp_path / "lint"
    lint_dir.mkdir()
    root = await _post(
        client,
        auth,
        CAS,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": f"OCSP Lint Root {algorithm}", "country": "CN", "organization": "O"},
            "key_algorithm": algorithm,
            "validity": {"type": "YEAR", "value": 5},
            "crl_configuration": {"enabled": True, "valid_days": 7},
        },
    )
    leaves = []
    for name in ("good", "revoked"):
        body = {
            "issuer_id": root["ca_id"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": f"{name}.example.com"},
            "validity": {"type": "DAY", "value": 30},
            "subject_alternative_names": [{"type": "DNS", "value": f"{name}.example.com"}],
        }
        leaves.append(await _post(client, auth, CERTS, body))
    resp = await client.post(
        f"{CERTS}/{leaves[1]['certificate_id']}/revoke", json={"reason": "KEY_COMPROMISE"}, headers=auth()
    )
    assert resp.status == 204
    ca_der = await (await client.get(f"/pki/ca/{root['ca_id']}.cer")).read()
    issuer = x509.load_der_x509_certificate(ca_der)
    problems: dict[str, list[str]] = {}
    for leaf in leaves:
        pem = (await _export(client, auth, leaf["certificate_id"]))["certificate"]
        cert = x509.load_pem_x509_certificate(pem.encode())
        for digest in (hashes.SHA1(), hashes.SHA256()):
            requests = {
                "known": ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, digest),
                "unknown": ocsp.OCSPRequestBuilder().add_certificate_by_hash(
                    ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, digest).build().issuer_name_hash,
                    ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, digest).build().issuer_key_hash,
                    cert.serial_number + 1,
                    digest,
                ),
            }
            for kind, builder in requests.items():
                der = builder.build().public_bytes(serialization.Encoding.DER)
                resp = await client.post(
                    f"/pki/ocsp/{root['ca_id']}", data=der, headers={"Content-Type": "application/ocsp-request"}
                )
                body = await resp.read()
                answer = ocsp.load_der_ocsp_response(body)
                if kind == "unknown":  # a serial the CA never signed: unauthorized, unsigned (docs/api/ocsp.md)
                    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
                    label = f"{leaf['certificate_id']} {kind} {digest.name}: unauthorized"
                else:
                    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
                    label = f"{leaf['certificate_id']} {kind} {digest.name}: {answer.certificate_status.name}"
                if found := _ocsp_findings(pkilint, body, lint_dir):
                    problems[label] = found
        # the certificate itself, with AIA (OCSP + caIssuers) and CDP, lints clean too
        if found := findings([str(pkilint / "lint_pkix_cert"), "lint"], pem, lint_dir):
            problems[f"certificate {leaf['certificate_id']}"] = found
    assert not problems, "pkilint ERROR/FATAL findings:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items()
    )
