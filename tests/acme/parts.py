"""The real parts of the ACME client tests: Pebble v2.10.3 (Let's Encrypt's test CA, built by
tests/tools/build.sh from the Go module proxy) with a TLS certificate made here, and BIND 9 (`named`, Debian)
serving a TSIG-keyed dynamic zone on a high port, unprivileged, that Pebble resolves every name through.

Pebble keeps its spurious badNonce rejections (PEBBLE_WFE_NONCEREJECT unset: 5 %); PEBBLE_VA_NOSLEEP removes
only its random 0-5 s validation delay, and PEBBLE_AUTHZREUSE=0 makes every order validate (by default Pebble
reuses a valid authorization half the time). Profiles: `default` (90 days) and `short` (SHORT_LIFETIME
seconds), so renewals happen inside a test. A missing part skips on a dev machine (saying what to install)
and fails in CI.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.sync_stack import stop, wait_for_listen
from tests.mongo_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ZONE = "acme.test"
TSIG_KEY_NAME = "acme-update."
SHORT_PROFILE = "short"
SHORT_LIFETIME = 90  # seconds: a certificate of the short profile
# Two labels: Pebble 2.10.3 panics (IsDomainBlocked indexes past the end) on an identifier with fewer labels
# than a blocklist entry, and the tests order the two-label acme.test.
BLOCKED = "blocked.test"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"ACME client tests must run in CI: {what}")
    pytest.skip(what)


def tool(name: str) -> str:
    """A Go tool from tests/tools/build.sh (cached under .cache/tools)."""
    cached = ROOT / ".cache" / "tools" / f"{name}-v2.10.3" / name
    if cached.exists():
        return str(cached)
    if shutil.which("go") is None:
        _missing(f"{name} is not built and Go is missing: install Go, then bash tests/tools/build.sh {name}")
    done = subprocess.run(
        ["bash", str(ROOT / "tests" / "tools" / "build.sh"), name], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        _missing(f"bash tests/tools/build.sh {name} failed: {done.stderr[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def named_binary() -> str:
    path = shutil.which("named") or ("/usr/sbin/named" if os.access("/usr/sbin/named", os.X_OK) else None)
    if path is None:
        _missing("BIND 9 is not installed (apt-get install -y bind9 bind9-utils)")
    return str(path)


def write_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a localhost / 127.0.0.1 server certificate for Pebble (its bundled one expires 2027-10-03)."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatewaycerts test Pebble TLS root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "tls-ca.pem", directory / "tls-cert.pem", directory / "tls-key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_pem, cert_pem, key_pem


@dataclass
class Bind:
    """named with the zone acme.test: every name has A 127.0.0.1; TXT records change by TSIG-signed updates."""

    directory: Path
    port: int
    tsig_secret: str  # base64
    proc: subprocess.Popen | None = None

    @classmethod
    def start(cls, directory: Path) -> Bind:
        binary = named_binary()
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        (directory / f"{ZONE}.zone").write_text(
            f"$TTL 60\n@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 600 60\n@ IN NS ns.{ZONE}.\n"
            f"ns IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
        )
        (directory / "named.conf").write_text(
            f"""options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify no;
}};
controls {{ }};
key "{TSIG_KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ZONE}" {{
    type primary;
    file "{directory}/{ZONE}.zone";
    update-policy {{ grant {TSIG_KEY_NAME} zonesub TXT; }};
}};
"""
        )
        bind = cls(directory, port, secret)
        bind.proc = subprocess.Popen(
            [binary, "-g", "-c", str(directory / "named.conf")],
            stdout=open(directory / "named.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        wait_for_listen(port, bind.proc, "named")
        return bind

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class Pebble:
    directory: Path
    port: int
    management_port: int
    http_port: int
    ca_bundle: Path
    proc: subprocess.Popen | None = None

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @classmethod
    def start(cls, directory: Path, dns_port: int, http_port: int, eab: dict[str, str] | None = None) -> Pebble:
        """`eab`: kid -> base64url HMAC key; with it Pebble requires External Account Binding."""
        binary = tool("pebble")
        directory.mkdir(parents=True, exist_ok=True)
        ca_pem, cert_pem, key_pem = write_tls(directory)
        port, management_port = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{port}",
                "managementListenAddress": f"127.0.0.1:{management_port}",
                "certificate": str(cert_pem),
                "privateKey": str(key_pem),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": bool(eab),
                "externalAccountMACKeys": eab or {},
                "domainBlocklist": [BLOCKED],
                "retryAfter": {"authz": 1, "order": 1},
                "keyAlgorithm": "ecdsa",
                "profiles": {
                    "default": {"description": "90 days", "validityPeriod": 7776000},
                    SHORT_PROFILE: {"description": "minutes, for renewals in tests", "validityPeriod": SHORT_LIFETIME},
                },
            }
        }
        (directory / "pebble.json").write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1"}
        env.pop("PEBBLE_WFE_NONCEREJECT", None)  # keep the default 5 % spurious badNonce
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)
        # Pebble reuses a valid authorization half the time by default: every order here must be validated
        # (through the gateway, or failing when it is down), so never.
        env["PEBBLE_AUTHZREUSE"] = "0"
        pebble = cls(directory, port, management_port, http_port, ca_pem)
        pebble.proc = subprocess.Popen(
            [binary, "-config", str(directory / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
            env=env,
            stdout=open(directory / "pebble.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        wait_for_listen(port, pebble.proc, "pebble")
        wait_for_listen(management_port, pebble.proc, "pebble management")
        return pebble

    def _management(self, path: str, body: dict | None = None) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.management_url + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.read()

    def issuing_roots(self) -> str:
        return self._management("/roots/0").decode()

    def set_renewal_window(self, chain_pem: str, start: datetime, end: datetime) -> None:
        leaf = chain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        window = {"suggestedWindow": {"start": _rfc3339(start), "end": _rfc3339(end)}}
        self._management("/set-renewal-info/", {"certificate": leaf, "ariResponse": json.dumps(window)})

    def log(self) -> str:
        return (self.directory / "pebble.log").read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
