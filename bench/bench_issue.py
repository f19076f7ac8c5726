"""Issuance throughput end to end (real server, SQLite store, HTTP from a separate process) against the bare
cost of the same cryptographic work measured in this process, in the same run.

Paths: CCM issue with server-side key generation (P-256 CA + P-256 key; RSA-2048 CA + RSA-2048 key) and CCM
issue from a CSR (P-256 CA; no key generation). The "limit" is pki alone, single-threaded: generate the key
(where the path does) and sign the certificate with the same profile. The server runs its crypto in a pool
sized to the cores, so on a 2-core machine the end-to-end rate can approach (cores x limit) minus HTTP,
JSON, key wrapping and two store writes. Prints a table; run with `make bench`. Not a test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewaycerts.domain.pca import DistinguishedName, KeyAlgorithm, KeyUsage, SignatureHash
from gatewaycerts.pki.issue import IssueSpec, build_certificate
from gatewaycerts.pki.keygen import generate_private_key, new_serial
from tests.mongo_server import free_port, wait_for_port

CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"
REQUESTS = int(os.environ.get("BENCH_ISSUE_REQUESTS", "400"))
CONCURRENCY = 16


def rate(fn, seconds: float = 2.0) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def bare(alg: KeyAlgorithm, *, keygen: bool) -> float:
    """Single-threaded ops/s of the cryptographic work of one issuance."""
    now = dt.datetime.now(dt.UTC)
    ca_key = generate_private_key(alg)
    ca = build_certificate(
        IssueSpec(
            subject=DistinguishedName("Bench CA"),
            public_key=ca_key.public_key(),
            serial=new_serial(),
            not_before=now,
            not_after=now + dt.timedelta(days=3650),
            hash=SignatureHash.SHA256,
            is_ca=True,
            path_length=None,
            key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
        ),
        None,
        ca_key,
    )
    fixed_key = generate_private_key(alg)

    def one() -> None:
        key = generate_private_key(alg) if keygen else fixed_key
        spec = IssueSpec(
            subject=DistinguishedName("bench.example.com"),
            public_key=key.public_key(),
            serial=new_serial(),
            not_before=now,
            not_after=now + dt.timedelta(days=30),
            hash=SignatureHash.SHA256,
            is_ca=False,
            path_length=None,
            key_usages=(KeyUsage.DIGITAL_SIGNATURE,),
        )
        build_certificate(spec, ca, ca_key)

    return rate(one)


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example.com")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def drive(base: str, token: str, path: str, body: dict) -> float:
    headers = {"X-Auth-Token": token}
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(REQUESTS):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                async with session.post(path, json=body, headers=headers) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()

        async with session.post(path, json=body, headers=headers) as resp:  # warm-up
            assert resp.status == 200, await resp.text()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return REQUESTS / (time.perf_counter() - start)


async def create_ca(base: str, token: str, alg: str) -> str:
    body = {
        "type": "ROOT",
        "distinguished_name": {"common_name": f"Bench {alg} CA"},
        "key_algorithm": alg,
        "validity": {"type": "YEAR", "value": 10},
    }
    async with (
        aiohttp.ClientSession(base) as session,
        session.post(CAS, json=body, headers={"X-Auth-Token": token}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return (await resp.json())["ca_id"]


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="gc-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "GATEWAYCERTS_STATE_DIR": str(state),
        "GATEWAYCERTS_PORT": str(port),
        "GATEWAYCERTS_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "gatewaycerts"]
    token = subprocess.run(
        [*cli, "token", "--project", "bench", "--role", "admin", "--ttl", "3600"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with (state / "server.log").open("w") as log:
        server = subprocess.Popen([*cli, "serve"], env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        ec_ca = asyncio.run(create_ca(base, token, "EC256"))
        rsa_ca = asyncio.run(create_ca(base, token, "RSA2048"))
        issue = {"distinguished_name": {"common_name": "bench.example.com"}, "validity": {"type": "DAY", "value": 30}}
        rows = [
            (
                "issue, P-256 CA, P-256 key generated",
                asyncio.run(drive(base, token, CERTS, {**issue, "issuer_id": ec_ca, "key_algorithm": "EC256"})),
                bare(KeyAlgorithm.EC256, keygen=True),
            ),
            (
                "issue from CSR, P-256 CA",
                asyncio.run(
                    drive(
                        base,
                        token,
                        f"{CERTS}/csr",
                        {"issuer_id": ec_ca, "csr": _csr(), "validity": {"type": "DAY", "value": 30}},
                    )
                ),
                bare(KeyAlgorithm.EC256, keygen=False),
            ),
            (
                "issue, RSA-2048 CA, RSA-2048 key generated",
                asyncio.run(drive(base, token, CERTS, {**issue, "issuer_id": rsa_ca, "key_algorithm": "RSA2048"})),
                bare(KeyAlgorithm.RSA2048, keygen=True),
            ),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    width = max(len(r[0]) for r in rows)
    print(f"{REQUESTS} requests per path, {CONCURRENCY} concurrent connections, {os.cpu_count()} cores")
    print(f"{'path':<{width}}  {'end-to-end/s':>12}  {'bare 1-core/s':>13}  {'ratio':>6}")
    for name, e2e, limit in rows:
        print(f"{name:<{width}}  {e2e:12.0f}  {limit:13.0f}  {e2e / limit:6.2f}")
    print(json.dumps({name: {"end_to_end": round(e2e), "bare": round(limit)} for name, e2e, limit in rows}))


if __name__ == "__main__":
    main()
