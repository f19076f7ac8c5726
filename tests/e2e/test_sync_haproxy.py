"""Real HAProxy (master-worker) fed by `gatewaycerts sync` from the real service, configured with the exact
blocks of docs/gateways.md (## HAProxy): SNI handshakes see every change, RSA and ECC side by side, an unbound
name is refused, mutual TLS where the binding verifies clients, and the service stopping leaves HAProxy
serving the last certificates."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.sync_stack import (
    Agent,
    Material,
    Service,
    doc_block,
    doc_command,
    eventually_served,
    files_snapshot,
    fingerprint,
    gateway_binary,
    https_get,
    served_leaf,
    stop,
    substitute,
    wait_for_listen,
    wait_until,
)
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class HAProxy:
    def __init__(self, root: Path, files: Path, port: int) -> None:
        self.binary = gateway_binary("haproxy")
        self.port = port
        self.pidfile = root / "haproxy.pid"
        self.config = root / "haproxy.cfg"
        self.config.write_text(
            substitute(
                doc_block("HAProxy", "# /etc/haproxy/haproxy.cfg"),
                {
                    "/run/haproxy.pid": str(self.pidfile),
                    "bind :8443 ": f"bind 127.0.0.1:{port} ",
                    "/var/lib/gatewaycerts/haproxy": str(files),
                },
            )
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-W", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_listen(self.port, self.proc, "haproxy")

    def stop(self) -> None:
        stop(self.proc)


def test_haproxy_serves_every_change_through_the_agent(tmp_path: Path):
    gateway_binary("haproxy")
    m = Material()
    service = Service(tmp_path / "state")
    files = tmp_path / "gatewaycerts-haproxy"
    haproxy = HAProxy(tmp_path, files, free_port())
    agent: Agent | None = None
    service.start()
    try:
        rsa_id = service.create_certificate("rsa_www", m.rsa_bundle(m.rsa_www), m.rsa_www.key_pem())
        ecc_id = service.create_certificate("ecc_www", m.ecc_bundle(m.ecc_www), m.ecc_www.key_pem())
        service.attach(rsa_id, "www.example.com", "*.api.example.com")
        service.attach(ecc_id, "www.example.com")
        mtls_id = service.create_certificate("mtls", m.rsa_bundle(m.mtls), m.mtls.key_pem(), m.client_root.pem)
        service.attach(mtls_id, "mtls.example.com", verify=True)
        key_file = tmp_path / "gateway.key"
        key_file.write_text(service.gateway_key()["key"] + "\n")
        argv = doc_command(
            "HAProxy",
            {
                "http://127.0.0.1:8080/gateway/v1/demo/instances/inst-1": service.gateway_url,
                "/etc/gatewaycerts/gateway.key": str(key_file),
                "/var/lib/gatewaycerts/haproxy": str(files),
                "/run/haproxy.pid": str(haproxy.pidfile),
            },
        )
        agent = Agent(argv, tmp_path / "agent.log")
        first = agent.once()
        assert first.returncode == 0, first.stderr
        assert (files / "crt-list.txt").exists() and (files / "keys" / f"{ecc_id}.pem").exists()
        assert oct((files / "keys" / f"{ecc_id}.pem").stat().st_mode & 0o777) == "0o600"
        haproxy.start()
        agent.start()
        port = haproxy.port

        answer = https_get(port, "www.example.com", "ecdsa")
        assert answer.leaf == fingerprint(m.ecc_www) and answer.status == 200 and "gateway ok" in answer.body
        assert served_leaf(port, "www.example.com", "rsa") == fingerprint(m.rsa_www)
        assert served_leaf(port, "a.api.example.com") == fingerprint(m.rsa_www)
        assert served_leaf(port, "nope.example.com") is None
        # `verify required` on the crt-list line: no answer without a client certificate of the binding's root
        assert https_get(port, "mtls.example.com").status is None
        assert https_get(port, "mtls.example.com", client=m.stranger).status is None
        accepted = https_get(port, "mtls.example.com", client=m.client)
        assert accepted.status == 200 and accepted.leaf == fingerprint(m.mtls)
        assert served_leaf(port, "a.b.api.example.com") is None

        service.update_certificate(rsa_id, "rsa_www", m.rsa_bundle(m.rsa_www_v2), m.rsa_www_v2.key_pem())
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2), "rsa")
        eventually_served(port, "b.api.example.com", fingerprint(m.rsa_www_v2))
        eventually_served(port, "www.example.com", fingerprint(m.ecc_www), "ecdsa")

        specific_id = service.create_certificate("specific", m.rsa_bundle(m.specific), m.specific.key_pem())
        service.attach(specific_id, "x.api.example.com")
        eventually_served(port, "x.api.example.com", fingerprint(m.specific))
        eventually_served(port, "y.api.example.com", fingerprint(m.rsa_www_v2))

        service.detach(ecc_id, "www.example.com")
        eventually_served(port, "www.example.com", None, "ecdsa")
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2))
        assert not (files / "keys" / f"{ecc_id}.pem").exists()

        # SIGTERM while the long poll is held: the agent exits 0 at once; a new one finds nothing to change
        agent.stop()
        assert agent.proc is not None and agent.proc.returncode == 0
        agent.start()
        kept = files_snapshot(files)
        service.stop()
        wait_until(lambda: sum("sync failed" in line for line in agent.lines()) >= 2, "the agent retries")
        assert agent.proc is not None and agent.proc.poll() is None
        assert files_snapshot(files) == kept
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2))
        log = "\n".join(agent.lines())
        assert "PRIVATE KEY" not in log and key_file.read_text().strip() not in log
        agent.stop()  # SIGTERM while it waits to retry: a clean exit
        assert agent.proc.returncode == 0
    finally:
        if agent is not None:
            agent.stop()
        haproxy.stop()
        service.stop()


def test_haproxy_starts_with_nothing_bound_and_refuses_every_name(tmp_path: Path):
    """An instance with no bindings yet: the crt-list is empty, HAProxy still starts (strict-sni) and refuses
    every handshake; the first binding is then served without a restart."""
    gateway_binary("haproxy")
    m = Material()
    service = Service(tmp_path / "state")
    files = tmp_path / "gatewaycerts-haproxy"
    haproxy = HAProxy(tmp_path, files, free_port())
    agent: Agent | None = None
    service.start()
    try:
        key_file = tmp_path / "gateway.key"
        key_file.write_text(service.gateway_key()["key"] + "\n")
        argv = doc_command(
            "HAProxy",
            {
                "http://127.0.0.1:8080/gateway/v1/demo/instances/inst-1": service.gateway_url,
                "/etc/gatewaycerts/gateway.key": str(key_file),
                "/var/lib/gatewaycerts/haproxy": str(files),
                "/run/haproxy.pid": str(haproxy.pidfile),
            },
        )
        agent = Agent(argv, tmp_path / "agent.log")
        assert agent.once().returncode == 0
        assert [ln for ln in (files / "crt-list.txt").read_text().splitlines() if not ln.startswith("#")] == []
        haproxy.start()
        agent.start()
        assert served_leaf(haproxy.port, "www.example.com") is None
        rsa_id = service.create_certificate("rsa_www", m.rsa_bundle(m.rsa_www), m.rsa_www.key_pem())
        service.attach(rsa_id, "www.example.com")
        eventually_served(haproxy.port, "www.example.com", fingerprint(m.rsa_www))
    finally:
        if agent is not None:
            agent.stop()
        haproxy.stop()
        service.stop()
