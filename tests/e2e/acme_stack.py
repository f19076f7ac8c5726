"""The ACME server as a user runs it, for the real-client tests (lego, Caddy): `gatewaycerts serve` serving TLS,
its validator pointed at pebble-challtestsrv as its DNS resolver (every name answers 127.0.0.1) and allowed to
reach 127.0.0.0/8 on two test ports (http-01, tls-alpn-01), a private CA with ACME switched on."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.acme_tools import ChallTestSrv, TLSFiles, challtestsrv, free_port, tls_files, wait_for_port

CAS = "/v1/private-certificate-authorities"
PROJECT = "acme-e2e"
ROOT_CA = {
    "type": "ROOT",
    "key_algorithm": "EC256",
    "distinguished_name": {"common_name": "ACME E2E Root", "organization": "Gatewaycerts Tests", "country": "DE"},
    "validity": {"type": "YEAR", "value": 2},
    "crl_configuration": {"enabled": True, "crl_name": "acme-e2e", "valid_days": 7},
}
POLICY = {"enabled": True, "allowed_domains": ["example.test"], "allow_wildcards": True, "allow_ip": True}


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without our settings and without proxies (never send 127.0.0.1 to a CI proxy)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAYCERTS_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env.update(extra)
    return env


@dataclass
class AcmeStack:
    state_dir: Path
    port: int
    tls: TLSFiles
    dns: ChallTestSrv
    http_port: int  # where the validator asks http-01 (a client's http-01 server listens here)
    tls_port: int  # where the validator asks tls-alpn-01
    token: str
    ca_id: str
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def directory(self) -> str:
        return f"{self.base}/acme/{self.ca_id}/directory"

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(
            method,
            self.base + path,
            json=body,
            headers={"X-Auth-Token": self.token},
            verify=str(self.tls.ca),
            timeout=60,
        )
        return response.status_code, (response.json() if response.content else None)

    def eab(self) -> tuple[str, str]:
        status, body = self.api("POST", f"{CAS}/{self.ca_id}/acme/eab-keys", {})
        assert status == 201, body
        return body["kid"], body["hmac_key"]

    def ca_pem(self) -> str:
        status, body = self.api("POST", f"{CAS}/{self.ca_id}/export")
        assert status == 200, body
        return str(body["certificate"])


@contextmanager
def acme_stack(tmp: Path) -> Iterator[AcmeStack]:
    with challtestsrv() as dns:
        tls = tls_files(tmp / "tls")
        port, http_port, tls_port = free_port(), free_port(), free_port()
        env = clean_env(
            GATEWAYCERTS_STATE_DIR=str(tmp / "state"),
            GATEWAYCERTS_PORT=str(port),
            GATEWAYCERTS_PUBLIC_URL=f"https://localhost:{port}",
            GATEWAYCERTS_TLS_CERT_FILE=str(tls.cert),
            GATEWAYCERTS_TLS_KEY_FILE=str(tls.key),
            GATEWAYCERTS_ACME_HTTP_PORT=str(http_port),
            GATEWAYCERTS_ACME_TLS_PORT=str(tls_port),
            GATEWAYCERTS_ACME_RESOLVER=f"127.0.0.1:{dns.dns_port}",
            GATEWAYCERTS_ACME_ALLOWED_TARGETS="127.0.0.0/8",
        )
        token = subprocess.run(
            [sys.executable, "-m", "gatewaycerts", "token", "--project", PROJECT, "--role", "admin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        log = (tmp / "serve.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "gatewaycerts", "serve"], env=env, stdout=log, stderr=log)
        try:
            wait_for_port(port, process, deadline=60)
            stack = AcmeStack(tmp / "state", port, tls, dns, http_port, tls_port, token, "", process)
            status, body = stack.api("POST", CAS, ROOT_CA)
            assert status == 200, body
            stack.ca_id = body["ca_id"]
            status, body = stack.api("PUT", f"{CAS}/{stack.ca_id}/acme", POLICY)
            assert status == 200, body
            yield stack
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
