"""cert-manager's ACME issuer's client code against `gatewaycerts serve` over HTTPS.

No Kubernetes runs here, so the cert-manager controller itself cannot; what runs is cert-manager's own ACME
client (github.com/cert-manager/cert-manager v1.21.2: third_party/forked/acme behind pkg/acme/accounts), driven by
tests/tools/certmanager-acme (built by `bash tests/tools/build.sh certmanager-acme`) through the same calls in the
same order as the ACME issuer's setup and its order and challenge controllers: an RSA account registered with EAB
(HS256), newOrder, the authorizations, the solver's answer (cert-manager's own http-01 solver code on the port the
validator asks; dns-01 through pebble-challtestsrv, the validator's resolver), Accept, WaitAuthorization, finalize
with cert-manager's CSR, the chain download."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from tests.acme_tools import free_port, go_tool
from tests.e2e.acme_stack import AcmeStack, acme_stack, clean_env

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def driver() -> Path:
    return go_tool("certmanager-acme")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeStack]:
    with acme_stack(tmp_path_factory.mktemp("acme-certmanager")) as s:
        yield s


def run_driver(
    driver: Path, stack: AcmeStack, out: Path, domain: str, *args: str, eab: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    kid, hmac_key = eab or stack.eab()
    argv = [
        str(driver),
        "-directory",
        stack.directory,
        "-ca-bundle",
        str(stack.tls.ca),
        "-eab-kid",
        kid,
        "-eab-hmac",
        hmac_key,
        "-email",
        "ops@example.test",
        "-domains",
        domain,
        "-cert-out",
        str(out / "tls.crt"),
        "-key-out",
        str(out / "tls.key"),
        *args,
    ]
    return subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=300, check=False)


def verified_chain(stack: AcmeStack, out: Path, domain: str) -> list[x509.Certificate]:
    """The chain verifies to the CA's root for `domain` as a TLS server (SAN, serverAuth, validity)."""
    chain = x509.load_pem_x509_certificates((out / "tls.crt").read_bytes())
    root = x509.load_pem_x509_certificate(stack.ca_pem().encode())
    host = "host." + domain.removeprefix("*.") if domain.startswith("*.") else domain  # a name a wildcard covers
    verifier = (
        PolicyBuilder().store(Store([root])).time(dt.datetime.now(dt.UTC)).build_server_verifier(x509.DNSName(host))
    )
    path = verifier.verify(chain[0], chain[1:])
    assert path[-1] == root
    leaf = chain[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [domain]
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # the key cert-manager generated and wrote is the key the certificate certifies
    key = serialization.load_pem_private_key((out / "tls.key").read_bytes(), password=None)
    assert key.public_key() == leaf.public_key()
    return chain


def test_certmanager_http01_with_eab(driver: Path, stack: AcmeStack, tmp_path: Path) -> None:
    domain = "cm-http.example.test"
    out = run_driver(driver, stack, tmp_path, domain, "-challenge", "http-01", "-http01-port", str(stack.http_port))
    assert out.returncode == 0, out.stdout + out.stderr
    leaf = verified_chain(stack, tmp_path, domain)[0]
    key = leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048  # cert-manager's default private key


def test_certmanager_dns01_wildcard_through_the_validators_resolver(
    driver: Path, stack: AcmeStack, tmp_path: Path
) -> None:
    domain = "*.cm-dns.example.test"
    out = run_driver(
        driver,
        stack,
        tmp_path,
        domain,
        "-challenge",
        "dns-01",
        "-dns01-challtestsrv",
        f"http://127.0.0.1:{stack.dns.management_port}",
        "-dns01-nameserver",
        f"127.0.0.1:{stack.dns.dns_port}",
        "-key-algorithm",
        "ECDSA",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    leaf = verified_chain(stack, tmp_path, domain)[0]
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_certmanager_with_a_wrong_eab_hmac_gets_no_account(driver: Path, stack: AcmeStack, tmp_path: Path) -> None:
    """The issuer's setup fails on the server's ACME problem (which cert-manager reports and does not retry on a
    4xx) and nothing is issued."""
    kid, _ = stack.eab()
    wrong = "A" * 43  # 32 bytes of zeros, base64url
    out = run_driver(
        driver,
        stack,
        tmp_path,
        "cm-bad-eab.example.test",
        "-challenge",
        "http-01",
        "-http01-port",
        str(stack.http_port),
        eab=(kid, wrong),
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "register account: 401 urn:ietf:params:acme:error:unauthorized" in out.stderr, out.stderr
    assert not (tmp_path / "tls.crt").exists()


def test_certmanager_enable_duration_feature_is_refused_as_documented(
    driver: Path, stack: AcmeStack, tmp_path: Path
) -> None:
    """An Issuer with enableDurationFeature makes cert-manager send the Certificate's duration as the order's
    notAfter; this server refuses notBefore/notAfter (docs/api/acme.md, Differences from Let's Encrypt) with
    `malformed`, a 4xx on which cert-manager marks the Order errored. Nothing is issued."""
    out = run_driver(
        driver,
        stack,
        tmp_path,
        "cm-duration.example.test",
        "-challenge",
        "http-01",
        "-http01-port",
        str(stack.http_port),
        "-duration",
        "720h",
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error creating new order: 400 urn:ietf:params:acme:error:malformed" in out.stderr, out.stderr
    assert not (tmp_path / "tls.crt").exists()


def test_certmanager_solver_that_cannot_listen_fails_with_the_reason(
    driver: Path, stack: AcmeStack, tmp_path: Path
) -> None:
    """The driver's own failure path: cert-manager's http-01 solver cannot take its port, and the driver exits
    non-zero with the solver's error (not a self-check that ran out of time)."""
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        out = run_driver(
            driver,
            stack,
            tmp_path,
            "cm-busy.example.test",
            "-challenge",
            "http-01",
            "-http01-port",
            str(port),
        )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the http-01 solver stopped" in out.stderr and "address already in use" in out.stderr, out.stderr
    assert not (tmp_path / "tls.crt").exists()
