"""lego v5 (tests/tools/build.sh lego) against `gatewaycerts serve` over HTTPS: http-01 and tls-alpn-01 answered
by lego's own servers and checked by the service's validator, dns-01 through lego's exec provider writing the
TXT record into pebble-challtestsrv (the validator's resolver), and an ARI renewal that sends `replaces`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_tools import go_tool
from tests.e2e.acme_stack import AcmeStack, acme_stack, clean_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def lego() -> Path:
    return go_tool("lego")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeStack]:
    with acme_stack(tmp_path_factory.mktemp("acme-lego")) as s:
        yield s


def run_lego(lego: Path, stack: AcmeStack, path: Path, domain: str, *args: str) -> subprocess.CompletedProcess[str]:
    kid, hmac_key = stack.eab()
    argv = [
        str(lego),
        "--log.format",
        "text",
        "run",
        "--server",
        stack.directory,
        "--accept-tos",
        "--email",
        "ops@example.test",
        "--domains",
        domain,
        "--path",
        str(path),
        "--eab",
        "--eab.kid",
        kid,
        "--eab.hmac",
        hmac_key,
        *args,
    ]
    return subprocess.run(
        argv,
        env=clean_env(LEGO_CA_CERTIFICATES=str(stack.tls.ca)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def issued(path: Path, domain: str) -> list[x509.Certificate]:
    found = sorted(path.rglob(f"{domain}.crt"))
    assert found, f"lego saved no certificate under {path}: {sorted(p.name for p in path.rglob('*'))}"
    return x509.load_pem_x509_certificates(found[0].read_bytes())


def check_certificate(stack: AcmeStack, chain: list[x509.Certificate], domain: str) -> None:
    leaf = chain[0]
    ca = x509.load_pem_x509_certificate(stack.ca_pem().encode())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [domain]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_lego_http01(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    domain = "lego-http.example.test"
    out = run_lego(lego, stack, tmp_path, domain, "--http", "--http.address", f"127.0.0.1:{stack.http_port}")
    assert out.returncode == 0, out.stdout + out.stderr
    check_certificate(stack, issued(tmp_path, domain), domain)


def test_lego_tls_alpn01_with_an_ec384_key(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    domain = "lego-alpn.example.test"
    out = run_lego(
        lego, stack, tmp_path, domain, "--tls", "--tls.address", f"127.0.0.1:{stack.tls_port}", "--key-type", "EC384"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    chain = issued(tmp_path, domain)
    check_certificate(stack, chain, domain)
    key = chain[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"


def test_lego_dns01_through_the_validators_resolver(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    hook = tmp_path / "dns-hook.py"
    hook.write_text(
        "import json, sys, urllib.request\n"
        "action, fqdn, value = sys.argv[1], sys.argv[2], sys.argv[3]\n"
        f"base = 'http://127.0.0.1:{stack.dns.management_port}'\n"
        "path, body = ('/set-txt', {'host': fqdn, 'value': value}) if action == 'present' else "
        "('/clear-txt', {'host': fqdn})\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "opener.open(urllib.request.Request(base + path, data=json.dumps(body).encode()), timeout=10)\n"
    )
    script = tmp_path / "dns-hook"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {hook} "$@"\n')
    script.chmod(0o755)
    domain = "lego-dns.example.test"
    kid, hmac_key = stack.eab()
    out = subprocess.run(
        [
            str(lego),
            "--log.format",
            "text",
            "run",
            "--server",
            stack.directory,
            "--accept-tos",
            "--email",
            "ops@example.test",
            "--domains",
            f"*.{domain}",
            "--path",
            str(tmp_path / "lego"),
            "--eab",
            "--eab.kid",
            kid,
            "--eab.hmac",
            hmac_key,
            "--dns",
            "exec",
            "--dns.resolvers",
            f"127.0.0.1:{stack.dns.dns_port}",
            "--dns.propagation.disable-ans",
        ],
        env=clean_env(LEGO_CA_CERTIFICATES=str(stack.tls.ca), EXEC_PATH=str(script)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    chain = issued(tmp_path / "lego", f"_.{domain}")  # lego names a wildcard's files "_.<base>"
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [f"*.{domain}"]


async def test_lego_ari_renewal_sends_replaces(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    from gatewaycerts.store.sqlite.acme import SqliteAcmeStore

    domain = "lego-renew.example.test"
    http = ("--http", "--http.address", f"127.0.0.1:{stack.http_port}")
    out = run_lego(lego, stack, tmp_path, domain, *http)
    assert out.returncode == 0, out.stdout + out.stderr
    first = issued(tmp_path, domain)[0]
    # lego asks renewalInfo for the certificate, then renews it sending `replaces` (RFC 9773)
    out = run_lego(lego, stack, tmp_path, domain, *http, "--renew-force", "--no-random-sleep")
    assert out.returncode == 0, out.stdout + out.stderr
    second = issued(tmp_path, domain)[0]
    assert second.serial_number != first.serial_number
    store = SqliteAcmeStore(stack.state_dir / "gatewaycerts.db")
    try:
        renewed = await store.get_certificate(stack.ca_id, str(second.serial_number))  # decimal, as core keys it
        assert renewed is not None, "the renewed certificate is not on the ACME server's records"
        order = await store.get_order(stack.ca_id, renewed.order_id)
        assert order is not None
        assert order.replaces == ari_cert_id(first), "the renewal's order does not name the certificate it replaces"
        # and the first certificate is marked replaced: a second claim on it is refused (alreadyReplaced)
        assert await store.mark_replaced(stack.ca_id, str(first.serial_number), "another-order") is False
    finally:
        await store.close()


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(DER serial number), no padding."""
    import base64

    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")  # a leading 0 if needed

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(aki)}.{b64(serial)}"


def test_a_name_on_a_forbidden_address_is_refused_end_to_end(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    """The service's validator resolves the name to 10.0.0.7 (not in GATEWAYCERTS_ACME_ALLOWED_TARGETS) and
    refuses to connect: the authorization fails with rejectedIdentifier and no certificate is issued."""
    domain = "lego-internal.example.test"
    stack.dns.post("/add-a", {"host": domain, "addresses": ["10.0.0.7"]})
    out = run_lego(lego, stack, tmp_path, domain, "--http", "--http.address", f"127.0.0.1:{stack.http_port}")
    assert out.returncode != 0
    assert "rejectedIdentifier" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "10.0.0.7" in out.stdout + out.stderr
    assert not list(tmp_path.rglob(f"{domain}.crt"))


def test_lego_http01_for_an_ip_address(lego: Path, stack: AcmeStack, tmp_path: Path) -> None:
    """RFC 8738: an IP identifier, validated over http-01 at that very address (allowed by the operator here)."""
    out = run_lego(lego, stack, tmp_path, "127.0.0.1", "--http", "--http.address", f"127.0.0.1:{stack.http_port}")
    assert out.returncode == 0, out.stdout + out.stderr
    leaf = issued(tmp_path, "127.0.0.1")[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == []
