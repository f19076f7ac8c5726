"""The installed command as a user runs it: token, serve (SQLite), a real HTTP round trip, restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.factories import rsa_chain
from tests.mongo_server import free_port, wait_for_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gatewaycerts", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _request(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"X-Auth-Token": token, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Server:
    def __init__(self, env: dict) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewaycerts", "serve"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_port(int(self.env["GATEWAYCERTS_PORT"]), self.proc)
        return self.proc

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)


def dev_env(state_dir: Path, port: int) -> dict[str, str]:
    """The environment of `make run`: embedded store, dev keys in `state_dir`, nothing from the caller's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    return {**env, "GATEWAYCERTS_STATE_DIR": str(state_dir), "GATEWAYCERTS_PORT": str(port)}


def test_serve_token_and_restart(tmp_path: Path):
    port = free_port()
    env = dev_env(tmp_path / "state", port)
    out = _cli("token", "--project", "demo", "--role", "editor", env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.count(".") == 2
    base = f"http://127.0.0.1:{port}/v2/demo/apic/certificates"
    chain = rsa_chain()
    with Server(env):
        status, created = _request(
            "POST",
            base,
            token,
            {"name": "e2e_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
        )
        assert status == 200, created
    assert (tmp_path / "state" / "gatewaycerts.db").exists()
    kek = (tmp_path / "state" / "dev-kek").stat()
    assert oct(kek.st_mode & 0o777) == "0o600"
    with Server(env) as proc:
        status, shown = _request("GET", f"{base}/{created['id']}", token)
        assert status == 200 and shown == created
        status, err = _request("GET", f"http://127.0.0.1:{port}/v2/other/apic/certificates", token)
        assert status == 403 and err["error_code"] == "APIG.1005"
    stdout = proc.stdout.read()
    assert f"http://127.0.0.1:{port}" in stdout and "token --project" in stdout and "curl" in stdout
    assert "BEGIN" not in stdout + proc.stderr.read()


def test_bad_configuration_fails_at_start(tmp_path: Path):
    env = {**os.environ, "GATEWAYCERTS_STATE_DIR": str(tmp_path), "GATEWAYCERTS_KEK": "k1:not-base64!"}
    out = _cli("serve", env=env)
    assert out.returncode != 0 and "KEK" in out.stderr and "Traceback" not in out.stderr
    out = _cli("serve", env={**os.environ, "GATEWAYCERTS_PORT": "nope"})
    assert out.returncode != 0 and "GATEWAYCERTS_PORT" in out.stderr


def test_init_db_creates_the_store(tmp_path: Path):
    db = tmp_path / "custom" / "certs.db"
    env = {**os.environ, "GATEWAYCERTS_DATABASE_URL": f"sqlite:///{db}"}
    out = _cli("init-db", env=env)
    assert out.returncode == 0, out.stderr
    import sqlite3

    with sqlite3.connect(db) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    # every store's schema: certificates, the CA registry (with certificate requests), orders, the audit trail
    assert {"certificates_name", "certificates_newest", "pca_authorities_recent", "pca_requests_outstanding"} <= indexes
    assert {"orders_recent", "orders_pending"} <= indexes
    assert {"audit_recent", "audit_by_object_id", "audit_by_actor", "audit_by_request_id"} <= indexes
