"""Real ACME parts for tests: the Go tools tests/tools/build.sh builds (pebble-challtestsrv, lego) and a
pebble-challtestsrv process (a DNS server with a management API, plus its own tls-alpn-01 responder).

On a dev machine without Go (or without the tool cached) the tests skip saying what to run; in CI
(CI=true) they fail instead, because .ci/run builds every tool first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "tests" / "tools" / "build.sh"


def missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run in CI: {why}")
    pytest.skip(why)


def go_tool(name: str) -> Path:
    """The cached binary of a tests/tools/build.sh tool, built on first use (a few minutes)."""
    try:
        out = subprocess.run(["bash", str(BUILD), name], capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        missing(f"building {name} timed out (run: bash tests/tools/build.sh {name})")
    if out.returncode != 0:
        missing(f"{name} is not built and cannot be built here ({out.stderr.strip()[-300:]}); run: bash {BUILD} {name}")
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited ({process.returncode}) before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {deadline} s")


@dataclass
class ChallTestSrv:
    dns_port: int
    management_port: int
    tlsalpn_port: int | None

    def post(self, path: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management_port}{path}", data=json.dumps(body).encode(), method="POST"
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            assert response.status == 200, response.status

    def set_txt(self, name: str, value: str) -> None:
        self.post("/set-txt", {"host": name.rstrip(".") + ".", "value": value})

    def clear_txt(self, name: str) -> None:
        self.post("/clear-txt", {"host": name.rstrip(".") + "."})


@contextmanager
def challtestsrv(*, tlsalpn: bool = False, default_ipv4: str = "127.0.0.1") -> Iterator[ChallTestSrv]:
    binary = go_tool("pebble-challtestsrv")
    srv = ChallTestSrv(free_port(), free_port(), free_port() if tlsalpn else None)
    argv = [
        str(binary),
        "-dnsserver",
        f"127.0.0.1:{srv.dns_port}",
        "-management",
        f"127.0.0.1:{srv.management_port}",
        "-defaultIPv4",
        default_ipv4,
        "-defaultIPv6",
        "",
        "-http01",
        "",
        "-https01",
        "",
        "-doh",
        "",
        "-tlsalpn01",
        f"127.0.0.1:{srv.tlsalpn_port}" if srv.tlsalpn_port else "",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(srv.management_port, process)
        wait_for_port(srv.dns_port, process)  # the TCP listener of its DNS server
        if srv.tlsalpn_port:
            wait_for_port(srv.tlsalpn_port, process)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class TLSFiles:
    ca: Path  # the CA certificate clients trust
    cert: Path  # leaf then CA
    key: Path


def tls_files(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """A throwaway CA and a server certificate for ``names`` (DNS names or IP addresses), as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatewaycerts test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key.chmod(0o600)
    return files
