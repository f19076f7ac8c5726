"""`gatewaycerts serve` with GATEWAYCERTS_TLS_CERT_FILE / GATEWAYCERTS_TLS_KEY_FILE: HTTPS on a real handshake
(one process and `--workers 2`), and the start-up errors for unusable files."""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_tools import TLSFiles, free_port, tls_files

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def env_for(tmp: Path, port: int, files: TLSFiles | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    env.update(GATEWAYCERTS_STATE_DIR=str(tmp / "state"), GATEWAYCERTS_PORT=str(port))
    if files is not None:
        env.update(GATEWAYCERTS_TLS_CERT_FILE=str(files.cert), GATEWAYCERTS_TLS_KEY_FILE=str(files.key))
    env.update(extra)
    return env


def https_get(port: int, ca: Path, path: str = "/healthz") -> tuple[int, str | None, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        version = conn.sock.version() if conn.sock else None  # type: ignore[union-attr]
        return response.status, version, response.read()
    finally:
        conn.close()


def serve(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gatewaycerts", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], deadline)
    assert ready, f"serve printed nothing in {deadline} s"
    line = proc.stdout.readline()
    assert line, f"serve exited: {proc.wait(10)} {proc.stderr.read() if proc.stderr else ''}"
    return line


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_speaks_https_with_the_configured_certificate(tmp_path: Path, workers: str) -> None:
    files = tls_files(tmp_path / "tls")
    port = free_port()
    proc = serve(env_for(tmp_path, port, files), "--workers", workers)
    try:
        announced = first_line(proc, deadline=90)  # printed once every worker is ready
        assert f"https://127.0.0.1:{port}" in announced
        status, version, body = https_get(port, files.ca)
        assert status == 200, body
        assert version in ("TLSv1.2", "TLSv1.3")
        # the served chain is ours: a client trusting another CA refuses the handshake
        other = tls_files(tmp_path / "other")
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(port, other.ca)
        # plain HTTP gets no HTTP answer on the TLS port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = sock.recv(64)
        assert not answer.startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)


def _start_error(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    return out.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unusable_tls_files_stop_the_start_with_the_reason(tmp_path: Path, workers: str) -> None:
    files = tls_files(tmp_path / "tls")
    port = free_port()
    base = env_for(tmp_path, port, None)
    key_pem = files.key.read_text()

    only_cert = {**base, "GATEWAYCERTS_TLS_CERT_FILE": str(files.cert)}
    assert "must be set together" in _start_error(only_cert, "--workers", workers)

    missing = env_for(tmp_path, port, files, GATEWAYCERTS_TLS_KEY_FILE=str(tmp_path / "nope.key"))
    assert "GATEWAYCERTS_TLS_KEY_FILE" in _start_error(missing, "--workers", workers)

    other_key = tmp_path / "other.key"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    mismatch = env_for(tmp_path, port, files, GATEWAYCERTS_TLS_KEY_FILE=str(other_key))
    err = _start_error(mismatch, "--workers", workers)
    assert "is not the key of the first certificate" in err

    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        serialization.load_pem_private_key(key_pem.encode(), None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret-pass"),
        )
    )
    err = _start_error(env_for(tmp_path, port, files, GATEWAYCERTS_TLS_KEY_FILE=str(encrypted)), "--workers", workers)
    assert "is encrypted" in err

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    err = _start_error(env_for(tmp_path, port, files, GATEWAYCERTS_TLS_CERT_FILE=str(garbage)), "--workers", workers)
    assert "holds no PEM certificate" in err

    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        files.key.chmod(0)
        assert "cannot be read" in _start_error(env_for(tmp_path, port, files), "--workers", workers)
    for err_text in (key_pem,):
        assert err_text.splitlines()[1] not in err  # never the key's content
