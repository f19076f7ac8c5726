"""What the NGINX and HAProxy tests share: the real service as a subprocess, its APIC API, the `gatewaycerts
sync` agent as a subprocess, the copy-paste blocks of docs/gateways.md, and TLS handshakes with SNI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.factories import CertSpec, Issued, ca_spec, ec_chain, ec_key, issue, leaf_for, rsa_chain, rsa_key
from tests.mongo_server import free_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateways.md"
PROJECT = "gwproj"
INSTANCE = "inst1"
DEADLINE = 30.0  # bound on every "the gateway shows the change" poll


def gateway_binary(name: str) -> str:
    """The Debian package's binary; skip on a dev machine without it, fail in CI (.ci/run installs it)."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    message = f"{name} is not installed (apt-get install -y --no-install-recommends {name})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def doc_section(heading: str) -> str:
    text = DOCS.read_text()
    start = text.index(f"\n## {heading}\n") if not text.startswith(f"## {heading}\n") else 0
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def doc_blocks(heading: str) -> list[str]:
    """The fenced code blocks of a section of docs/gateways.md, indentation of list items removed."""
    blocks: list[str] = []
    current: list[str] | None = None
    indent = 0
    for line in doc_section(heading).splitlines():
        stripped = line.lstrip()
        if stripped.startswith("```"):
            if current is None:
                current, indent = [], len(line) - len(stripped)
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def doc_block(heading: str, first_line: str) -> str:
    matches = [b for b in doc_blocks(heading) if b.startswith(first_line)]
    assert len(matches) == 1, f"docs/gateways.md ## {heading}: one block starting {first_line!r}"
    return matches[0]


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the documented text"
        text = text.replace(old, new)
    return text


def doc_command(heading: str, replacements: dict[str, str]) -> list[str]:
    """The documented `gatewaycerts sync ...` command as the shell would split it, after the replacements."""
    block = doc_block(heading, "gatewaycerts sync")
    argv = shlex.split(substitute(block, replacements).replace("\\\n", " "))
    assert argv[:2] == ["gatewaycerts", "sync"]
    return [sys.executable, "-m", "gatewaycerts", *argv[1:]]


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> object:
    """Poll a condition with a bounded deadline (never a fixed sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what} (last: {last!r})")


def wait_for_listen(port: int, proc: subprocess.Popen, what: str) -> None:
    def up() -> bool:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False

    wait_until(up, f"{what} listens on {port}", timeout=60)


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


# --- the service ----------------------------------------------------------------------------------------------


class Service:
    """`gatewaycerts serve` with SQLite and the development keys in `state`, on a free loopback port."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
        self.env = {**env, "GATEWAYCERTS_STATE_DIR": str(state), "GATEWAYCERTS_PORT": str(self.port)}
        # a stop does not wait out the agent's held long poll
        self.env["GATEWAYCERTS_SHUTDOWN_TIMEOUT"] = "1"
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.admin = self.cli("token", "--project", PROJECT, "--role", "admin")

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gatewaycerts", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewaycerts", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_listen(self.port, self.proc, "gatewaycerts serve")

    def stop(self) -> None:
        stop(self.proc)

    @property
    def gateway_url(self) -> str:
        return f"{self.base}/gateway/v1/{PROJECT}/instances/{INSTANCE}"

    def api(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}/v2/{PROJECT}/apic{path}",
            data=data,
            method=method,
            headers={"X-Auth-Token": self.admin, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        assert status == expect, f"{method} {path}: {status} {raw[:500]!r}"
        return json.loads(raw) if raw else {}

    def create_certificate(self, name: str, chain_pem: str, key_pem: str, root: str | None = None) -> str:
        body = {"name": name, "cert_content": chain_pem, "private_key": key_pem}
        body |= {"type": "instance", "instance_id": INSTANCE}
        if root:
            body["trusted_root_ca"] = root
        return self.api("POST", "/certificates", body)["id"]

    def update_certificate(self, cid: str, name: str, chain_pem: str, key_pem: str) -> None:
        body = {"name": name, "cert_content": chain_pem, "private_key": key_pem}
        self.api("PUT", f"/certificates/{cid}", body | {"type": "instance", "instance_id": INSTANCE})

    def attach(self, cid: str, *domains: str, verify: bool = False) -> None:
        entries = [
            {"domain": d, "instance_ids": [INSTANCE], "verified_client_certificate_enabled": verify} for d in domains
        ]
        self.api("POST", f"/certificates/{cid}/domains/attach", {"domains": entries}, expect=204)

    def detach(self, cid: str, *domains: str) -> None:
        entries = [{"domain": d, "instance_ids": [INSTANCE]} for d in domains]
        self.api("POST", f"/certificates/{cid}/domains/detach", {"domains": entries}, expect=204)

    def gateway_key(self, instance: str = INSTANCE) -> dict:
        return self.api("POST", f"/instances/{instance}/gateway-keys", expect=201)


# --- the agent ------------------------------------------------------------------------------------------------


@dataclass
class Agent:
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None

    def once(self) -> subprocess.CompletedProcess:
        """The first run, before the gateway starts: `--once`, without `--on-change` (as docs/gateways.md says)."""
        at = self.argv.index("--on-change")
        argv = self.argv[:at] + self.argv[at + 2 :]
        return subprocess.run([*argv, "--once"], capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(self.argv, stdout=self.handle, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        stop(self.proc)
        if self.proc is not None:
            self.handle.close()

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


# --- certificates ---------------------------------------------------------------------------------------------


class Material:
    """The certificates both gateway tests bind: an RSA certificate for www + *.api (and its replacement), an ECC
    one for www, a more specific name, and a certificate that verifies clients against its own root."""

    def __init__(self) -> None:
        rsa = rsa_chain()
        ec = ec_chain()
        self.rsa_chain = rsa
        self.rsa_www = rsa.leaf  # www.example.com, *.api.example.com
        self.rsa_www_v2 = leaf_for(rsa, CertSpec(), rsa_key(2048, 4))
        self.ecc_www = issue(
            CertSpec(cn="www.example.com", dns=("www.example.com",)), ec_key("secp256r1", 5), ec.intermediate
        )
        self.ec_intermediate = ec.intermediate
        self.specific = leaf_for(rsa, CertSpec(cn="x.api.example.com", dns=("x.api.example.com",)), rsa_key(2048, 5))
        self.mtls = leaf_for(rsa, CertSpec(cn="mtls.example.com", dns=("mtls.example.com",)), rsa_key(2048, 6))
        self.client_root = issue(ca_spec("Client Root CA"), ec_key("secp256r1", 7))
        self.client = issue(CertSpec(cn="client-1", dns=()), ec_key("secp256r1", 8), self.client_root)
        stranger_root = issue(ca_spec("Stranger Root CA"), ec_key("secp256r1", 9))
        self.stranger = issue(CertSpec(cn="client-2", dns=()), ec_key("secp256r1", 10), stranger_root)

    def rsa_bundle(self, leaf: Issued) -> str:
        return leaf.pem + self.rsa_chain.intermediate.pem

    def ecc_bundle(self, leaf: Issued) -> str:
        return leaf.pem + self.ec_intermediate.pem


# --- TLS clients ----------------------------------------------------------------------------------------------


def fingerprint(issued: Issued) -> str:
    return hashlib.sha256(issued.cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def client_context(kind: str = "any", client: Issued | None = None) -> ssl.SSLContext:
    """A client that verifies nothing (we compare the served leaf ourselves). `ecdsa`/`rsa`: TLS 1.2 with only
    ECDSA or only RSA authentication among its cipher suites, so the server must pick that certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if kind != "any":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers({"ecdsa": "ECDHE-ECDSA-AES128-GCM-SHA256", "rsa": "ECDHE-RSA-AES128-GCM-SHA256"}[kind])
    if client is not None:
        directory = Path(os.environ.get("TMPDIR", "/tmp"))
        pem = directory / f"gc-client-{os.getpid()}-{id(client)}.pem"
        pem.write_text(client.pem + client.key_pem())
        try:
            context.load_cert_chain(pem)
        finally:
            pem.unlink()
    return context


@dataclass
class Answer:
    leaf: str  # sha256 of the served leaf's DER
    status: int | None
    body: str
    key_type: str


def https_get(port: int, server_name: str, kind: str = "any", client: Issued | None = None) -> Answer:
    """Handshake with SNI `server_name`, then `GET /`; raises ssl.SSLError / OSError when refused."""
    context = client_context(kind, client)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        leaf = x509.load_der_x509_certificate(der)
        data = b""
        # a server refusing the client certificate says so after the client's side of a TLS 1.3 handshake
        # is done: on the request or the answer, which then never comes (status None)
        with contextlib.suppress(ssl.SSLError, OSError):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    status = int(head.split()[1]) if head.startswith("HTTP/") else None
    return Answer(hashlib.sha256(der).hexdigest(), status, body, type(leaf.public_key()).__name__)


def served_leaf(port: int, server_name: str, kind: str = "any") -> str | None:
    """The fingerprint served for `server_name`, or None when the handshake is refused."""
    try:
        return https_get(port, server_name, kind).leaf
    except (ssl.SSLError, ConnectionError):
        return None


def eventually_served(port: int, server_name: str, expected: str | None, kind: str = "any") -> None:
    """After a change the gateway reloads; until its old workers have closed their listening sockets a new
    connection may still meet the old configuration, so every check after a change polls (bounded)."""
    wait_until(
        lambda: served_leaf(port, server_name, kind) == expected,
        f"{server_name} ({kind}) served {expected}",
    )


def files_snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def running(*procs: object) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()  # type: ignore[attr-defined]
