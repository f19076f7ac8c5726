"""certbot (PyPI) end to end against a private CA's ACME directory: certonly --standalone with and without
EAB, renew, revoke; the certificate and the CRL are checked after each step. The server validates for real
(connectors/validators.py as app.py wires it): it resolves the name through pebble-challtestsrv (every name
-> 127.0.0.1), may reach 127.0.0.0/8 (GATEWAYCERTS_ACME_ALLOWED_TARGETS) and fetches http-01 from certbot's
standalone server on GATEWAYCERTS_ACME_HTTP_PORT."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from tests.acme.harness import CAS, start_server
from tests.acme_tools import challtestsrv, free_port

pytestmark = pytest.mark.parametrize("every_store", ["sqlite", "mongo"], indirect=True)
CERTBOT = shutil.which("certbot", path=str(Path(sys.executable).parent)) or shutil.which("certbot")


def _need_certbot() -> str:
    if CERTBOT is None:
        if os.environ.get("CI"):
            pytest.fail("certbot must be installed in CI (pip install -e '.[test]')")
        pytest.skip("certbot is not installed: pip install -e '.[test]'")
    return CERTBOT


async def certbot(work: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        _need_certbot(),
        *args,
        "--config-dir",
        str(work / "conf"),
        "--work-dir",
        str(work / "work"),
        "--logs-dir",
        str(work / "logs"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.fixture(scope="module")
def dns():
    with challtestsrv() as srv:
        yield srv


async def _validated_authorizations(server) -> int:
    """How many orders were finalized (from the audit trail)."""
    status, trail = await server.admin_json("GET", "/v3/p1/traces?limit=200")
    assert status == 200
    return sum(1 for t in trail["traces"] if t["trace_name"] == "acme.order.finalize")


def _leaf(work: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((work / "conf" / "live" / name / "cert.pem").read_bytes())


async def _crl_serials(server) -> set[int]:
    resp = await server.http.get(f"{CAS}/{server.ca_id}/crl")
    assert resp.status == 200
    return {r.serial_number for r in x509.load_der_x509_crl(await resp.read())}


@pytest.mark.parametrize("with_eab", [True, False], ids=["eab", "no-eab"])
async def test_certbot_certonly_renew_revoke(aiohttp_client, settings, every_store, auth, tmp_path, with_eab, dns):
    _need_certbot()
    port = free_port()
    settings = replace(
        settings,
        acme_http_port=port,
        acme_resolver=("127.0.0.1", dns.dns_port),
        acme_allowed_targets=("127.0.0.0/8",),
    )
    policy = {"enabled": True, "eab_required": with_eab, "allowed_domains": ["example.test"]}
    server = await start_server(aiohttp_client, settings, every_store, auth, policy=policy, validator="real")
    name = "site.example.test"
    common = ["-n", "--server", server.directory_url]
    eab: list[str] = []
    if with_eab:
        kid, hmac_key = await server.eab()
        eab = ["--eab-kid", kid, "--eab-hmac-key", hmac_key]
    code, out = await certbot(
        tmp_path,
        "certonly",
        *common,
        "--standalone",
        "--http-01-port",
        str(port),
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--key-type",
        "ecdsa",
        *eab,
        "-d",
        name,
    )
    assert code == 0, out
    first = _leaf(tmp_path, name)
    assert first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == [name]
    assert await _validated_authorizations(server) == 1

    # Validation is real: certbot answering on a port the validator does not ask gets no certificate.
    other_eab: list[str] = []
    if with_eab:
        kid2, hmac2 = await server.eab()
        other_eab = ["--eab-kid", kid2, "--eab-hmac-key", hmac2]
    code, out = await certbot(
        tmp_path / "elsewhere",
        "certonly",
        *common,
        "--standalone",
        "--http-01-port",
        str(free_port()),
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "--register-unsafely-without-email",
        *other_eab,
        "-d",
        "other.example.test",
    )
    assert code != 0 and "connection" in out.lower(), out

    # Not due yet (ARI window in the last third of the lifetime): certbot renews nothing.
    code, out = await certbot(tmp_path, "renew", *common, "--no-random-sleep-on-renew")
    assert code == 0, out
    assert _leaf(tmp_path, name).serial_number == first.serial_number
    code, out = await certbot(
        tmp_path,
        "renew",
        *common,
        "--no-random-sleep-on-renew",
        "--force-renewal",
        "--http-01-port",
        str(port),
        "--http-01-address",
        "127.0.0.1",
    )
    assert code == 0, out
    second = _leaf(tmp_path, name)
    assert second.serial_number != first.serial_number

    code, out = await certbot(
        tmp_path,
        "revoke",
        *common,
        "--cert-path",
        str(tmp_path / "conf" / "live" / name / "cert.pem"),
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    )
    assert code == 0, out
    serials = await _crl_serials(server)
    assert second.serial_number in serials and first.serial_number not in serials
