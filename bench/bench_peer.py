"""CSR signing beside a peer: step-ca v0.30.2 (smallstep's Go CA) and our CCM CSR route, driven by the same
load generator in one run (issue #22).

Both sign P-256 with P-256 CAs and both use all cores (step-ca: Go's scheduler; ours: `serve --workers 2`).
The bench writes step-ca's configuration itself: a root and an intermediate (P-256, made with cryptography),
a `ca.json` with one JWK provisioner (an ES256 key of ours) and step-ca's own database (badgerv2) in a fresh
directory, serving HTTPS on loopback. Every request to step-ca is `POST /1.0/sign {"csr", "ott"}` with its
own CSR and its own one-time token — a JWT signed with the provisioner's key, claims as `step ca token`
writes them (iss = provisioner name, aud = https://127.0.0.1:PORT/1.0/sign, sub = the CSR's common name,
sans, sha = the root's SHA-256 fingerprint, jti, nbf/iat/exp), checked by step-ca's JWK provisioner
(authority/provisioner/jwk.go: signature, issuer, audience with the port stripped, times with one minute of
leeway; authority/authorize.go: iat not before the CA started, jti never used before — a database write).
Every request to us is `POST /v1/private-certificates/csr` with its own CSR and the client's bearer token
(a session token, reused as clients reuse it; its verification is remembered, see tokens.py), with the
access log on at INFO (step-ca logs every request too). Tokens and CSRs are made before the clock starts.

The two sides run interleaved, in `--rounds` rounds; each round's ratio is ours / step-ca's of that round.
CPU per certificate is the servers' own CPU time (utime + stime of every process of the tree, /proc) over
the round, divided by the certificates signed. `--before DIR` (repeatable) adds our service served from
another checkout (the code before a change) to the same rounds, each against the same step-ca round.
Nothing here asserts. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.harness import ROOT, Service, build_loadgen, cpu_seconds, pinned, process_tree, request
from tests.mongo_server import free_port

CAS = "/v1/private-certificate-authorities"
CSR_ROUTE = "/v1/private-certificates/csr"
PROVISIONER = "bench"


def step_ca_binary() -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "tests" / "tools" / "build.sh"), "step-ca"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_cert(subject: str, key: Any, issuer: x509.Name, signer: Any, path_length: int | None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The provisioner's public key as step-ca's ca.json holds it; kid = the RFC 7638 thumbprint."""
    numbers = key.public_key().public_numbers()
    x, y = _b64(numbers.x.to_bytes(32, "big")), _b64(numbers.y.to_bytes(32, "big"))
    thumb = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"), sort_keys=True)
    kid = _b64(hashlib.sha256(thumb.encode()).digest())
    return {"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": x, "y": y}


def csr_pem(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(cn))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


class StepCa:
    """step-ca on loopback from files written here; stopped (and its directory left for reading) on exit."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="gc-bench-stepca-"))
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _ca_cert("Bench Peer Root", root_key, _name("Bench Peer Root"), root_key, 1)
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = _ca_cert("Bench Peer Intermediate", inter_key, root.subject, root_key, 0)
        self.root_file = self.dir / "root_ca.crt"
        self.root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
        (self.dir / "intermediate_ca.crt").write_bytes(inter.public_bytes(serialization.Encoding.PEM))
        (self.dir / "intermediate_ca_key").write_bytes(
            inter_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.fingerprint = hashlib.sha256(root.public_bytes(serialization.Encoding.DER)).hexdigest()
        self.provisioner_key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = public_jwk(self.provisioner_key)
        config = {
            "root": str(self.root_file),
            "federatedRoots": None,
            "crt": str(self.dir / "intermediate_ca.crt"),
            "key": str(self.dir / "intermediate_ca_key"),
            "address": f"127.0.0.1:{self.port}",
            "insecureAddress": "",
            "dnsNames": ["127.0.0.1"],
            "logger": {"format": "text"},
            "db": {"type": "badgerv2", "dataSource": str(self.dir / "db")},
            "authority": {"provisioners": [{"type": "JWK", "name": PROVISIONER, "key": self.jwk}]},
            "tls": {
                "cipherSuites": [
                    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                ],
                "minVersion": 1.2,
                "maxVersion": 1.3,
                "renegotiation": False,
            },
        }
        self.config_file = self.dir / "ca.json"
        self.config_file.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen | None = None

    def start(self) -> StepCa:
        self.log = (self.dir / "step-ca.log").open("w")
        self.proc = subprocess.Popen(
            pinned([str(self.binary), str(self.config_file)], "server"), stdout=self.log, stderr=self.log
        )
        context = ssl.create_default_context(cafile=str(self.root_file))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: step-ca exited: {(self.dir / 'step-ca.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1, context=context):
                    return self
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: step-ca did not answer /health within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.log.close()

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(process_tree(self.proc.pid))

    def token(self, cn: str) -> str:
        """A one-time token as `step ca token` makes one for the JWK provisioner."""
        now = int(time.time()) + 1  # iat must not be before the CA's start (authority/authorize.go)
        claims = {
            "iss": PROVISIONER,
            "aud": f"{self.base}/1.0/sign",
            "sub": cn,
            "sans": [cn],
            "sha": self.fingerprint,
            "jti": uuid.uuid4().hex,
            "nbf": now,
            "iat": now,
            "exp": now + 300,
        }
        return jwt.encode(claims, self.provisioner_key, algorithm="ES256", headers={"kid": self.jwk["kid"]})

    def requests(self, n: int, tag: str) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            cn = f"peer-{tag}-{i}.bench.example"
            body = json.dumps({"csr": csr_pem(cn), "ott": self.token(cn)})
            out.append(
                {"method": "POST", "path": "/1.0/sign", "headers": {"Content-Type": "application/json"}, "body": body}
            )
        return out


def drive(base: str, reqs: list[dict[str, Any]], cpu: Any, *, concurrency: int, cacert: Path | None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for r in reqs:
            fh.write(json.dumps(r) + "\n")
    args = [str(build_loadgen()), "-url", base, "-requests", fh.name, "-c", str(concurrency), "-n", str(len(reqs))]
    if cacert is not None:
        args += ["-cacert", str(cacert)]
    cpu0 = cpu()
    out = subprocess.run(pinned(args, "loadgen"), capture_output=True, text=True, check=True)
    spent = cpu() - cpu0
    os.unlink(fh.name)
    result = json.loads(out.stdout)
    result["cpu_ms_per_cert"] = spent * 1000 / max(result["ok"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="ours: serve --workers N")
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="also our service from a checkout of the code before a change, in the same rounds (repeatable)",
    )
    args = parser.parse_args()
    build_loadgen()
    peer = StepCa(step_ca_binary()).start()
    env = {"GATEWAYCERTS_LOG_LEVEL": "INFO", "GATEWAYCERTS_LOG_FORMAT": "json"}
    if args.workers > 1:
        env["GATEWAYCERTS_WORKERS"] = str(args.workers)
    sides = [("ours", ROOT)] + [(f"ours ({d.name})", d.resolve()) for d in args.before]
    services: list[Service] = []
    rows: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {label: [] for label, _ in sides}
    try:
        for _, directory in sides:
            os.chdir(directory)  # `python -m gatewaycerts` serves the code of the directory it starts in
            services.append(Service(env=env).start())
        os.chdir(ROOT)
        tokens, cas = [], []
        for svc in services:
            token = svc.token()
            status, ca = svc.call(
                "POST",
                CAS,
                token,
                {
                    "type": "ROOT",
                    "distinguished_name": {"common_name": "Bench P-256 CA"},
                    "key_algorithm": "EC256",
                    "validity": {"type": "YEAR", "value": 10},
                },
            )
            assert status == 200, ca
            tokens.append(token)
            cas.append(ca["ca_id"])
        # warm every side (connections, first-use code paths) before measuring
        drive(peer.base, peer.requests(64, "warm"), peer.cpu, concurrency=8, cacert=peer.root_file)
        for svc, token, ca_id in zip(services, tokens, cas, strict=True):
            warm = [
                request("POST", CSR_ROUTE, token, {"issuer_id": ca_id, "csr": csr_pem(f"w{i}.bench.example")})
                for i in range(64)
            ]
            drive(svc.base, warm, svc.cpu, concurrency=8, cacert=None)
        print(
            f"| round | step-ca/s | p50/p99 ms | CPU ms/cert | side (workers {args.workers}) | /s | p50/p99 ms "
            "| CPU ms/cert | throughput side/step-ca | CPU side/step-ca |\n"
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
            flush=True,
        )
        for rnd in range(args.rounds):
            theirs_reqs = peer.requests(args.requests, f"r{rnd}")  # made before the clock starts
            side_reqs = [
                [
                    request(
                        "POST",
                        CSR_ROUTE,
                        token,
                        {
                            "issuer_id": ca_id,
                            "csr": csr_pem(f"ours-r{rnd}-{i}.bench.example"),
                            "validity": {"type": "DAY", "value": 1},
                        },
                    )
                    for i in range(args.requests)
                ]
                for token, ca_id in zip(tokens, cas, strict=True)
            ]
            theirs = drive(peer.base, theirs_reqs, peer.cpu, concurrency=args.concurrency, cacert=peer.root_file)
            if theirs["ok"] != theirs["requests"]:
                print(f"  (step-ca: {theirs['requests'] - theirs['ok']} not 2xx: {theirs['status']})")
            for (label, _), svc, reqs in zip(sides, services, side_reqs, strict=True):
                mine = drive(svc.base, reqs, svc.cpu, concurrency=args.concurrency, cacert=None)
                rows[label].append((theirs, mine))
                if mine["ok"] != mine["requests"]:
                    print(
                        f"  ({label}: {mine['requests'] - mine['ok']} not 2xx: {mine['status']} "
                        f"{mine.get('first_error', '')})"
                    )
                print(
                    f"| {rnd + 1} | {theirs['rps']:,.0f} | {theirs['p50_ms']:.1f}/{theirs['p99_ms']:.1f} "
                    f"| {theirs['cpu_ms_per_cert']:.2f} | {label} | {mine['rps']:,.0f} "
                    f"| {mine['p50_ms']:.1f}/{mine['p99_ms']:.1f} | {mine['cpu_ms_per_cert']:.2f} "
                    f"| **{mine['rps'] / theirs['rps']:.2f}** "
                    f"| {mine['cpu_ms_per_cert'] / theirs['cpu_ms_per_cert']:.2f} |",
                    flush=True,
                )
    finally:
        os.chdir(ROOT)
        for svc in services:
            svc.stop()
        peer.stop()
    print()
    for label, side_rows in rows.items():
        ratios = [m["rps"] / t["rps"] for t, m in side_rows]
        cpu = [m["cpu_ms_per_cert"] / t["cpu_ms_per_cert"] for t, m in side_rows]
        print(
            f"CSR signing, {label} / step-ca v0.30.2: throughput median {statistics.median(ratios):.2f} "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}); CPU per certificate median "
            f"{statistics.median(cpu):.2f} (rounds {', '.join(f'{r:.2f}' for r in cpu)})"
        )


if __name__ == "__main__":
    main()
