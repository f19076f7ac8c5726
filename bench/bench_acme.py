"""ACME issuance end to end, in process, on the embedded store: newOrder -> challenge -> (validation by an
always-succeeding validator injected through the app factory, never a setting) -> order ready -> finalize ->
certificate download, one order after another over real HTTP (aiohttp's test server on loopback), the
client's JWS signed with an EC P-256 account key. Beside it, in the same run: the bare cost of what an
issuance cannot avoid (a P-256 CSR key made and a certificate signed by the CA: `issue`), and the CPU of
nonce creation + check (the MAC, the expiry, the store insert that makes it single use) against the CPU of
one ACME request. Prints a table; run with `make bench`. Not a test.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ACME_NONCES
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.domain.pca import DistinguishedName, KeyAlgorithm, KeyUsage, SanType, SignatureHash, SubjectAltName
from gatewaycerts.pki.authority import Profile, issue, new_key_pem, public_key_pem
from gatewaycerts.pki.jws import b64e, public_jwk
from gatewaycerts.settings import Settings

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
NONCES = 2000


class AlwaysValid:
    async def validate(self, challenge) -> None:
        return None


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Client:
    def __init__(self, http: TestClient, directory: dict, key: ec.EllipticCurvePrivateKey) -> None:
        self.http, self.dir, self.key = http, directory, key
        self.kid: str | None = None
        self.nonce = ""
        self.requests = 0

    async def post(self, url: str, payload) -> tuple[int, dict | str, dict]:
        header = {"alg": "ES256", "url": url, "nonce": self.nonce}
        if self.kid:
            header["kid"] = self.kid
        else:
            header["jwk"] = public_jwk(self.key.public_key())
        p = b64e(json.dumps(header).encode())
        body = "" if payload is None else b64e(json.dumps(payload).encode())
        jws = {"protected": p, "payload": body, "signature": _sign(self.key, f"{p}.{body}".encode())}
        path = url.split(str(self.http.make_url("")).rstrip("/"), 1)[1]
        resp = await self.http.post(path, data=json.dumps(jws), headers={"Content-Type": "application/jose+json"})
        self.requests += 1
        self.nonce = resp.headers["Replay-Nonce"]
        text = await resp.text()
        data = json.loads(text) if resp.content_type.endswith("json") else text
        return resp.status, data, dict(resp.headers)


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return b64e(csr.public_bytes(serialization.Encoding.DER))


async def issue_one(c: Client, n: int) -> None:
    name = f"h{n}.bench.test"
    status, order, headers = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
    assert status == 201, order
    order_url = headers["Location"]
    _, authz, _ = await c.post(order["authorizations"][0], None)
    chall = next(x for x in authz["challenges"] if x["type"] == "http-01")
    await c.post(chall["url"], {})
    while True:
        _, state, _ = await c.post(order_url, None)
        if state["status"] != "pending":
            break
        await asyncio.sleep(0.001)
    assert state["status"] == "ready", state
    status, done, _ = await c.post(order["finalize"], {"csr": _csr(name)})
    assert status == 200 and done["status"] == "valid", done
    status, pem, _ = await c.post(done["certificate"], None)
    assert status == 200 and "BEGIN CERTIFICATE" in pem


def bare_issuance(ca_cert_pem: str, ca_key_pem: bytes, n: int) -> float:
    """Per second: a P-256 key generated and a leaf certificate signed (the floor of any issuance)."""
    now = datetime.now(UTC)
    start = time.perf_counter()
    for i in range(n):
        key_pem = new_key_pem(KeyAlgorithm.EC256)
        profile = Profile(
            subject=DistinguishedName(common_name=f"h{i}.bench.test"),
            not_before=now,
            not_after=now + timedelta(days=90),
            hash=SignatureHash.SHA256,
            is_ca=False,
            path_length=None,
            key_usages=(KeyUsage.DIGITAL_SIGNATURE,),
            sans=(SubjectAltName(SanType.DNS, f"h{i}.bench.test"),),
        )
        issue(
            profile,
            i + 1,
            subject_public_key_pem=public_key_pem(key_pem),
            subject_key_pem=None,
            issuer_certificate_pem=ca_cert_pem,
            issuer_key_pem=ca_key_pem,
        )
    return n / (time.perf_counter() - start)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp) / "state")  # the embedded store in the state dir
        app = create_app(settings, challenge_validator=AlwaysValid(), acme_worker=True, order_worker=False)
        http = TestClient(TestServer(app))
        await http.start_server()
        try:
            token = mint_token(
                load_or_create_dev_key(settings.state_dir), subject="bench", projects=["p1"], roles=["admin"], ttl=3600
            )
            admin = {"X-Auth-Token": token}
            ca_body = {
                "type": "ROOT",
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "Bench ACME Root"},
                "validity": {"type": "YEAR", "value": 2},
            }
            ca_id = (
                await (await http.post("/v1/private-certificate-authorities", json=ca_body, headers=admin)).json()
            )["ca_id"]
            policy = {"enabled": True, "eab_required": False, "allowed_domains": ["bench.test"]}
            assert (
                await http.put(f"/v1/private-certificate-authorities/{ca_id}/acme", json=policy, headers=admin)
            ).status == 200
            directory = await (await http.get(f"/acme/{ca_id}/directory")).json()
            c = Client(http, directory, ec.generate_private_key(ec.SECP256R1()))
            c.nonce = (await http.head(f"/acme/{ca_id}/new-nonce")).headers["Replay-Nonce"]
            _, _, headers = await c.post(directory["newAccount"], {"termsOfServiceAgreed": True})
            c.kid = headers["Location"]
            for n in range(5):  # warm up
                await issue_one(c, -n - 1)
            c.requests = 0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for n in range(ORDERS):
                await issue_one(c, n)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            per_request_cpu = cpu / c.requests

            nonces = app[ACME_NONCES]
            minted = [await nonces.new() for _ in range(10)]
            for m in minted:
                await nonces.use(m)
            ncpu0 = time.process_time()
            for _ in range(NONCES):
                await nonces.use(await nonces.new())
            nonce_cpu = (time.process_time() - ncpu0) / NONCES
        finally:
            await http.close()
    key = new_key_pem(KeyAlgorithm.EC256)
    root_profile = Profile(
        subject=DistinguishedName(common_name="Bare Root"),
        not_before=datetime.now(UTC),
        not_after=datetime.now(UTC) + timedelta(days=365),
        hash=SignatureHash.SHA256,
        is_ca=True,
        path_length=None,
        key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
    )
    root_pem = issue(root_profile, 1, subject_key_pem=key, issuer_certificate_pem=None, issuer_key_pem=None)
    bare = bare_issuance(root_pem, key, ORDERS)
    rate = ORDERS / wall
    rows = [
        ("ACME issuances/s (newOrder..download, 1 client, SQLite)", f"{rate:.1f}"),
        ("requests per issuance", f"{c.requests / ORDERS:.1f}"),
        ("CPU per ACME request (ms, whole process)", f"{per_request_cpu * 1000:.2f}"),
        ("bare key generation + signing/s", f"{bare:.1f}"),
        ("ACME rate / bare rate", f"{rate / bare:.2%}"),
        ("nonce creation + check CPU (ms)", f"{nonce_cpu * 1000:.3f}"),
        ("nonce share of a request's CPU", f"{nonce_cpu / per_request_cpu:.1%}"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
