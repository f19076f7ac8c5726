"""Real NGINX fed by `gatewaycerts sync` from the real service, configured with the exact blocks of
docs/gateways.md (## NGINX): SNI handshakes see every change; RSA and ECC side by side; mutual TLS; an unbound
name is refused; the service stopping leaves NGINX serving the last certificates and the files in place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.sync_stack import (
    INSTANCE,
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


class Nginx:
    """NGINX from the Debian package with the documented nginx.conf, every path under `root`."""

    def __init__(self, root: Path, files: Path, port: int) -> None:
        self.binary = gateway_binary("nginx")
        self.port = port
        self.conf = root / "nginx.conf"
        self.error_log = root / "error.log"
        self.locations = root / "gatewaycerts-locations.conf"
        self.locations.write_text(doc_block("NGINX", "# /etc/nginx/gatewaycerts-locations.conf"))
        self.conf.write_text(
            substitute(
                doc_block("NGINX", "# /etc/nginx/nginx.conf"),
                {
                    "/run/nginx.pid": str(root / "nginx.pid"),
                    "/var/log/nginx/": f"{root}/",
                    "/var/lib/gatewaycerts/nginx": str(files),
                },
            )
        )
        self.proc: subprocess.Popen | None = None

    @property
    def reload_command(self) -> str:
        return f"{self.binary} -c {self.conf} -e {self.error_log} -s reload"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-e", str(self.error_log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_listen(self.port, self.proc, "nginx")

    def stop(self) -> None:
        stop(self.proc)


def agent_for(tmp_path: Path, service: Service, key_file: Path, files: Path, nginx: Nginx) -> Agent:
    argv = doc_command(
        "NGINX",
        {
            "http://127.0.0.1:8080/gateway/v1/demo/instances/inst-1": service.gateway_url,
            "/etc/gatewaycerts/gateway.key": str(key_file),
            "/var/lib/gatewaycerts/nginx": str(files),
            "--nginx-listen 8443": f"--nginx-listen 127.0.0.1:{nginx.port}",
            "/etc/nginx/gatewaycerts-locations.conf": str(nginx.locations),
            "nginx -s reload": nginx.reload_command,
        },
    )
    return Agent(argv, tmp_path / "agent.log")


def test_nginx_serves_every_change_through_the_agent(tmp_path: Path):
    gateway_binary("nginx")
    m = Material()
    service = Service(tmp_path / "state")
    files = tmp_path / "gatewaycerts-nginx"
    nginx = Nginx(tmp_path, files, free_port())
    agent: Agent | None = None
    service.start()
    try:
        rsa_id = service.create_certificate("rsa_www", m.rsa_bundle(m.rsa_www), m.rsa_www.key_pem())
        ecc_id = service.create_certificate("ecc_www", m.ecc_bundle(m.ecc_www), m.ecc_www.key_pem())
        mtls_id = service.create_certificate("mtls", m.rsa_bundle(m.mtls), m.mtls.key_pem(), m.client_root.pem)
        service.attach(rsa_id, "www.example.com", "*.api.example.com")
        service.attach(ecc_id, "www.example.com")
        service.attach(mtls_id, "mtls.example.com", verify=True)
        key_file = tmp_path / "gateway.key"
        key_file.write_text(service.gateway_key()["key"] + "\n")
        agent = agent_for(tmp_path, service, key_file, files, nginx)

        first = agent.once()  # before NGINX starts, so the include exists
        assert first.returncode == 0, first.stderr
        assert (files / "gatewaycerts.conf").exists() and (files / f"{rsa_id}.crt").exists()
        assert oct((files / "keys" / f"{rsa_id}.key").stat().st_mode & 0o777) == "0o600"
        nginx.start()
        agent.start()
        port = nginx.port

        # dual binding: each client gets the certificate it can use; the wildcard covers one label
        answer = https_get(port, "www.example.com", "ecdsa")
        assert answer.leaf == fingerprint(m.ecc_www) and answer.status == 200 and "gateway ok" in answer.body
        assert served_leaf(port, "www.example.com", "rsa") == fingerprint(m.rsa_www)
        assert served_leaf(port, "WWW.Example.COM", "rsa") == fingerprint(m.rsa_www)
        assert served_leaf(port, "www.example.com.", "rsa") == fingerprint(m.rsa_www)
        assert served_leaf(port, "a.api.example.com") == fingerprint(m.rsa_www)
        assert served_leaf(port, "a.api.example.com", "ecdsa") is None  # no ECC certificate for it
        # names bound to nothing: no certificate at all
        assert served_leaf(port, "nope.example.com") is None
        assert served_leaf(port, "a.b.api.example.com") is None
        # mutual TLS: refused without a client certificate or with one from another root, accepted with one
        # signed by the binding's trusted root
        assert https_get(port, "mtls.example.com").status == 400
        assert https_get(port, "mtls.example.com", client=m.stranger).status == 400
        accepted = https_get(port, "mtls.example.com", client=m.client)
        assert accepted.status == 200 and accepted.leaf == fingerprint(m.mtls)

        # PUT: the new certificate is served for every name of that binding
        service.update_certificate(rsa_id, "rsa_www", m.rsa_bundle(m.rsa_www_v2), m.rsa_www_v2.key_pem())
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2), "rsa")
        eventually_served(port, "b.api.example.com", fingerprint(m.rsa_www_v2))
        eventually_served(port, "www.example.com", fingerprint(m.ecc_www), "ecdsa")

        # a more specific name bound to another certificate wins over the wildcard
        specific_id = service.create_certificate("specific", m.rsa_bundle(m.specific), m.specific.key_pem())
        service.attach(specific_id, "x.api.example.com")
        eventually_served(port, "x.api.example.com", fingerprint(m.specific))
        eventually_served(port, "y.api.example.com", fingerprint(m.rsa_www_v2))

        # detach: the ECC certificate is gone from the gateway and from the directory
        service.detach(ecc_id, "www.example.com")
        eventually_served(port, "www.example.com", None, "ecdsa")
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2))
        assert not (files / f"{ecc_id}.crt").exists() and not (files / "keys" / f"{ecc_id}.key").exists()

        # the service stops: the agent logs failures, keeps every file; NGINX keeps serving them
        kept = files_snapshot(files)
        service.stop()
        wait_until(lambda: any("sync failed" in line for line in agent.lines()), "the agent notices the outage")
        wait_until(lambda: sum("sync failed" in line for line in agent.lines()) >= 2, "the agent retries")
        assert agent.proc is not None and agent.proc.poll() is None
        assert files_snapshot(files) == kept
        eventually_served(port, "www.example.com", fingerprint(m.rsa_www_v2))
        eventually_served(port, "x.api.example.com", fingerprint(m.specific))
        log = "\n".join(agent.lines())
        assert "PRIVATE KEY" not in log and key_file.read_text().strip() not in log
        agent.stop()  # SIGTERM while it waits to retry: a clean exit
        assert agent.proc.returncode == 0
    finally:
        if agent is not None:
            agent.stop()
        nginx.stop()
        service.stop()


def test_an_error_answer_never_deletes_files(tmp_path: Path):
    """The real service refusing the agent (a revoked key, another instance's key) changes nothing on disk."""
    m = Material()
    service = Service(tmp_path / "state")
    files = tmp_path / "files"
    service.start()
    try:
        rsa_id = service.create_certificate("rsa_www", m.rsa_bundle(m.rsa_www), m.rsa_www.key_pem())
        service.attach(rsa_id, "www.example.com")
        created = service.gateway_key()
        other = service.gateway_key("another-instance")
        base = [sys.executable, "-m", "gatewaycerts", "sync", "--url", service.gateway_url, "--dir", str(files)]
        base += ["--format", "nginx", "--once", "--on-change", f"touch {tmp_path / 'reloaded'}"]

        def once(key: str) -> subprocess.CompletedProcess:
            env = {"GATEWAYCERTS_GATEWAY_KEY": key, "PATH": "/usr/bin:/bin"}
            return subprocess.run(base, env=env, capture_output=True, text=True, timeout=120, check=False)

        done = once(created["key"])
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "reloaded").exists()
        (tmp_path / "reloaded").unlink()
        kept = files_snapshot(files)
        assert f"keys/{rsa_id}.key" in kept

        for key, code in [(other["key"], "403"), (created["key"][:-4] + "AAAA", "401"), ("gk_nonsense", "401")]:
            done = once(key)
            assert done.returncode == 1 and f"HTTP {code}" in done.stderr, done.stderr
            assert done.stderr.count("\n") == 1 and key not in done.stderr
            assert files_snapshot(files) == kept and not (tmp_path / "reloaded").exists()
        admin = service.admin  # a management token is not a gateway credential: 403, nothing changes
        done = once(admin)
        assert done.returncode == 1 and "HTTP 403" in done.stderr and files_snapshot(files) == kept
        token_file = tmp_path / "gateway.jwt"  # a gateway JWT of this instance reads the same snapshot
        token_file.write_text(service.cli("token", "--project", "gwproj", "--role", "gateway", "--instance", INSTANCE))
        with_token = [*base, "--token-file", str(token_file)]
        done = subprocess.run(with_token, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert files_snapshot(files) == kept and not (tmp_path / "reloaded").exists()  # nothing new: no reload
        service.api("DELETE", f"/instances/{INSTANCE}/gateway-keys/{created['id']}", expect=204)
        done = once(created["key"])
        assert done.returncode == 1 and "HTTP 401" in done.stderr
        assert files_snapshot(files) == kept
    finally:
        service.stop()


def test_nginx_starts_with_nothing_bound_and_refuses_every_name(tmp_path: Path):
    """An instance with no bindings yet: the include holds only the refusing default server, NGINX starts, and
    the first binding is then served without a restart."""
    gateway_binary("nginx")
    m = Material()
    service = Service(tmp_path / "state")
    files = tmp_path / "gatewaycerts-nginx"
    nginx = Nginx(tmp_path, files, free_port())
    agent: Agent | None = None
    service.start()
    try:
        key_file = tmp_path / "gateway.key"
        key_file.write_text(service.gateway_key()["key"] + "\n")
        agent = agent_for(tmp_path, service, key_file, files, nginx)
        assert agent.once().returncode == 0
        assert (files / "gatewaycerts.conf").read_text().count("server {") == 1
        nginx.start()
        agent.start()
        assert served_leaf(nginx.port, "www.example.com") is None
        rsa_id = service.create_certificate("rsa_www", m.rsa_bundle(m.rsa_www), m.rsa_www.key_pem())
        service.attach(rsa_id, "www.example.com")
        eventually_served(nginx.port, "www.example.com", fingerprint(m.rsa_www))
    finally:
        if agent is not None:
            agent.stop()
        nginx.stop()
        service.stop()
