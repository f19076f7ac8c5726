"""ACME issuance end to end on the embedded store: newOrder -> authz -> challenge -> (validation by an
always-succeeding validator injected through the app factory, never a setting) -> order polled until ready ->
finalize -> certificate download, over real HTTP on loopback. The server runs in this process; the ACME
clients (EC P-256 account keys, JWS signed by hand) run in a child process, so this process's CPU is the
server's alone. Two modes in the same run: 1 client (one issuance's latency, with a per-step breakdown of its
wall time) and CLIENTS concurrent clients (throughput). Beside them, in the same run: the bare cost of what an
issuance cannot avoid (a P-256 CSR key made and a certificate signed by the CA: `issue`), the CPU of nonce
creation + check (the MAC, the expiry, the store insert that makes it single use) and of one ES256 JWS
verification, each against the server's CPU per ACME request. Prints a table; run with `make bench`. Not a
test. `bench_acme.py [ORDERS] [--without NAME]...` also measures each named change (TOGGLES) switched off and
on again in the same process, after the two runs.
"""

from __future__ import annotations

import _lsprof  # cProfile's engine: bench/profile.py shadows the stdlib `profile` that cProfile imports
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import ACME_NONCES
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.core.acme import nonces as nonce_module
from gatewaycerts.domain.pca import DistinguishedName, KeyAlgorithm, KeyUsage, SanType, SignatureHash, SubjectAltName
from gatewaycerts.pki.authority import Profile, issue, new_key_pem, public_key_pem
from gatewaycerts.pki.jws import b64d, b64e, public_jwk, verify
from gatewaycerts.settings import Settings

_ARGS, _WITHOUT = [], []  # `[ORDERS] [--without NAME | --without=NAME]...`
_argv = iter(sys.argv[1:])
for _a in _argv:
    if _a == "--without":
        _WITHOUT.append(next(_argv, ""))
    elif _a.startswith("--without="):
        _WITHOUT.append(_a.split("=", 1)[1])
    else:
        _ARGS.append(_a)
ORDERS = int(_ARGS[0]) if _ARGS else 200
CLIENTS = int(os.environ.get("BENCH_ACME_CLIENTS", "16"))
NONCES = 2000
VERIFIES = 2000
PROFILE = os.environ.get("BENCH_ACME_PROFILE") == "1"  # cProfile the server's loop in the 1-client mode
STEPS = ("newOrder", "authz", "challenge", "wait for ready", "finalize", "download")


class AlwaysValid:
    async def validate(self, challenge) -> None:
        return None


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Client:
    """One ACME client (own account key and nonce) on a shared aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, base: str, directory: dict) -> None:
        self.http, self.base, self.dir = http, base, directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid: str | None = None
        self.nonce = ""
        self.requests = 0
        self.steps: dict[str, float] = defaultdict(float)
        self.polls = 0

    async def post(self, url: str, payload) -> tuple[int, dict | str, dict]:
        header = {"alg": "ES256", "url": url, "nonce": self.nonce}
        if self.kid:
            header["kid"] = self.kid
        else:
            header["jwk"] = public_jwk(self.key.public_key())
        p = b64e(json.dumps(header).encode())
        body = "" if payload is None else b64e(json.dumps(payload).encode())
        jws = {"protected": p, "payload": body, "signature": _sign(self.key, f"{p}.{body}".encode())}
        async with self.http.post(url, data=json.dumps(jws), headers={"Content-Type": "application/jose+json"}) as resp:
            self.requests += 1
            self.nonce = resp.headers["Replay-Nonce"]
            text = await resp.text()
            data = json.loads(text) if resp.content_type.endswith("json") else text
            return resp.status, data, dict(resp.headers)

    async def register(self) -> None:
        async with self.http.head(self.dir["newNonce"]) as resp:
            self.nonce = resp.headers["Replay-Nonce"]
        _, _, headers = await self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        self.kid = headers["Location"]

    def _step(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.steps[name] += now - since
        return now

    async def issue_one(self, name: str) -> None:
        t = time.perf_counter()
        status, order, headers = await self.post(
            self.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}
        )
        assert status == 201, order
        order_url = headers["Location"]
        t = self._step("newOrder", t)
        _, authz, _ = await self.post(order["authorizations"][0], None)
        chall = next(x for x in authz["challenges"] if x["type"] == "http-01")
        t = self._step("authz", t)
        await self.post(chall["url"], {})
        t = self._step("challenge", t)
        while True:
            _, state, _ = await self.post(order_url, None)
            self.polls += 1
            if state["status"] != "pending":
                break
            await asyncio.sleep(0.001)  # Retry-After (1 s) ignored: what is measured is the server
        assert state["status"] == "ready", state
        t = self._step("wait for ready", t)
        csr = _csr(name)  # the client's own key + CSR: not counted in any step
        t = time.perf_counter()
        status, done, _ = await self.post(order["finalize"], {"csr": csr})
        assert status == 200 and done["status"] == "valid", done
        t = self._step("finalize", t)
        status, pem, _ = await self.post(done["certificate"], None)
        assert status == 200 and "BEGIN CERTIFICATE" in pem
        self._step("download", t)


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return b64e(csr.public_bytes(serialization.Encoding.DER))


async def _clients(directory_url: str, clients: int, orders: int, tag: str) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as http:
        async with http.get(directory_url) as resp:
            directory = await resp.json()
        base = directory_url.rsplit("/", 1)[0]
        team = [Client(http, base, directory) for _ in range(clients)]
        for c in team:
            await c.register()
            await c.issue_one(f"warm-{tag}-{id(c)}.bench.test")
        for c in team:
            c.requests, c.polls, c.steps = 0, 0, defaultdict(float)
        per_client = orders // clients

        async def run(i: int, c: Client) -> None:
            for n in range(per_client):
                await c.issue_one(f"h{tag}-{i}-{n}.bench.test")

        wall0 = time.perf_counter()
        await asyncio.gather(*(run(i, c) for i, c in enumerate(team)))
        wall = time.perf_counter() - wall0
    steps = defaultdict(float)
    for c in team:
        for k, v in c.steps.items():
            steps[k] += v
    return {
        "issuances": per_client * clients,
        "wall": wall,
        "requests": sum(c.requests for c in team),
        "polls": sum(c.polls for c in team),
        "steps": dict(steps),
    }


def _client_process(directory_url: str, clients: int, orders: int, tag: str, out) -> None:
    out.put(asyncio.run(_clients(directory_url, clients, orders, tag)))


async def drive(directory_url: str, clients: int, orders: int, tag: str) -> tuple[dict, float]:
    """Run the clients in a child process; (their figures, this (server) process's CPU seconds meanwhile).
    The CPU window includes the child's warm-up (one issuance per client)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client_process, args=(directory_url, clients, orders, tag, out))
    cpu0 = time.process_time()
    proc.start()
    result = await asyncio.to_thread(out.get)
    cpu = time.process_time() - cpu0
    await asyncio.to_thread(proc.join)
    return result, cpu


class NonceMeter:
    """The event-loop thread's CPU inside the app's own NonceService.new() and .use() during the runs, i.e.
    what the requests paid for their nonces with their caches as the rest of the request left them. A call
    that suspends (a used-nonce insert sent to a thread) would count other coroutines' CPU too: this
    overstates, never understates. Its own clock reads are outside the timed span."""

    def __init__(self, service) -> None:
        self.seconds, self.calls = 0.0, 0
        self.service = service
        for name in ("new", "use"):
            setattr(service, name, self._timed(getattr(service, name)))

    def remove(self) -> None:
        for name in ("new", "use"):
            delattr(self.service, name)  # the class's own methods again

    def _timed(self, fn):
        async def timed(*args):
            t = time.thread_time()
            try:
                return await fn(*args)
            finally:
                self.seconds += time.thread_time() - t
                self.calls += 1

        return timed

    def take(self) -> tuple[float, int]:
        taken = self.seconds, self.calls
        self.seconds, self.calls = 0.0, 0
        return taken


# Where the server's event-loop CPU goes per issuance (cumulative, so the rows overlap).
_PROFILED = (
    ("_handle_request", "web_protocol.py", "an HTTP request through aiohttp and every middleware"),
    ("acme_middleware", "facades/acme/app.py", "the ACME middleware (handler + Replay-Nonce)"),
    ("_signed", "facades/acme/views.py", "JWS read + directory + account + verify + nonce use"),
    ("verify", "pki/jws.py", "JWS signature verification"),
    ("use", "core/acme/nonces.py", "nonce check (MAC + single-use insert)"),
    ("new", "core/acme/nonces.py", "nonce creation"),
    ("directory", "core/acme/service.py", "directory lookup (CA + policy)"),
    ("record", "core/audit.py", "audit records"),
    ("finalize", "core/acme/service.py", "finalize (CSR checks + issuance)"),
    ("sign", "core/issuance.py", "serial reservation + signing"),
    ("run_once", "core/acme/worker.py", "validation worker rounds"),
)


def _print_profile(profiler: _lsprof.Profiler, issuances: int) -> None:
    entries = [e for e in profiler.getstats() if not isinstance(e.code, str)]
    total = sum(e.inlinetime for e in profiler.getstats())
    print(f"profile of the server event loop, 1 client: {total / issuances * 1000:.2f} ms per issuance (idle too)")
    print("  (inclusive time while running, profiler overhead and preemption by other processes included)")
    for name, path, what in _PROFILED:
        cum = sum(e.totaltime for e in entries if e.code.co_name == name and e.code.co_filename.endswith(path))
        print(f"  {what:<62} {cum / issuances * 1000:7.2f} ms  {cum / total:6.1%}")


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


# Changes that can be switched off in the running app (`--without NAME`, repeatable): after the two runs
# above, each is measured off and then on again (1 client and CLIENTS clients each), in the same process.
def _nonce_mac(app, on: bool) -> None:  # stop 28: the MAC from precomputed SHA-256 states, not hmac.digest
    service = app[ACME_NONCES]
    service.mac_from_key = nonce_module.nonce_mac if on else nonce_module.nonce_mac_one_shot
    service._mac = None  # made again from the key on the next call


def _nonce_sha(app, on: bool) -> None:  # stop 30: CPython's own SHA-256 states, not hashlib's (OpenSSL's)
    service = app[ACME_NONCES]
    service.mac_from_key = nonce_module.nonce_mac if on else nonce_module.nonce_mac_openssl
    service._mac = None


def _nonce_random(app, on: bool) -> None:  # stop 30: os.urandom read for RANDOM_POOL nonces at once
    app[ACME_NONCES].random_part = nonce_module.random_part if on else nonce_module.random_part_per_call


TOGGLES = {"nonce-mac": _nonce_mac, "nonce-sha": _nonce_sha, "nonce-random": _nonce_random}
WITHOUT = _WITHOUT
assert all(w in TOGGLES for w in WITHOUT), f"--without NAME: NAME one of {sorted(TOGGLES)}"


async def _toggled(app, meter: NonceMeter, directory_url: str) -> list[tuple[str, str]]:
    rows = []
    for name in WITHOUT:
        for on in (False, True):
            TOGGLES[name](app, on)
            for clients in (1, CLIENTS):
                meter.take()
                run, cpu = await drive(directory_url, clients, ORDERS // clients * clients, f"{name}{on}{clients}")
                spent, _ = meter.take()
                requests = run["requests"] * (run["issuances"] + clients) / run["issuances"]
                rows.append(
                    (
                        f"nonce share in the run, {clients} client(s), {name} {'on' if on else 'OFF'}",
                        f"{spent / cpu:.1%} ({spent / requests * 1e6:.0f} µs of {cpu / requests * 1e3:.3f} ms/req)",
                    )
                )
    return rows


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
            directory_url = str(http.make_url(f"/acme/{ca_id}/directory"))
            meter = NonceMeter(app[ACME_NONCES])
            profiler = _lsprof.Profiler() if PROFILE else None
            if profiler is not None:  # the event loop thread only; its overhead inflates every figure
                profiler.enable()
            meter.take()
            one, one_cpu = await drive(directory_url, 1, ORDERS, "one")
            one_nonce, one_nonce_calls = meter.take()
            if profiler is not None:
                profiler.disable()
                _print_profile(profiler, one["issuances"] + 1)
            many, many_cpu = await drive(directory_url, CLIENTS, ORDERS * 2 // CLIENTS * CLIENTS, "many")
            many_nonce, _ = meter.take()
            # The warm-up issuances (one per client) ran inside the CPU window: count their requests too.
            one_requests = one["requests"] * (one["issuances"] + 1) / one["issuances"]
            many_requests = many["requests"] * (many["issuances"] + CLIENTS) / many["issuances"]
            cpu_per_request = one_cpu / one_requests
            cpu_per_request_many = many_cpu / many_requests
            toggled = await _toggled(app, meter, directory_url)

            meter.remove()
            nonces = app[ACME_NONCES]
            minted = [await nonces.new() for _ in range(10)]
            for m in minted:
                await nonces.use(m)
            ncpu0 = time.process_time()
            for _ in range(NONCES):  # each use() its own insert and commit, as a request's
                await nonces.use(await nonces.new())
            nonce_cpu = (time.process_time() - ncpu0) / NONCES  # all threads: includes the checkpoints
        finally:
            await http.close()
    account_key = ec.generate_private_key(ec.SECP256R1())
    signing_input = b"eyJhbGciOiJFUzI1NiJ9." + b"x" * 200
    signature = b64d(_sign(account_key, signing_input), "signature")
    vcpu0 = time.process_time()
    for _ in range(VERIFIES):
        verify("ES256", account_key.public_key(), signing_input, signature)
    verify_cpu = (time.process_time() - vcpu0) / VERIFIES
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
    rate_one = one["issuances"] / one["wall"]
    rate_many = many["issuances"] / many["wall"]
    per_issuance_ms = one["wall"] / one["issuances"] * 1000
    rows = [
        ("ACME issuances/s, 1 client (SQLite)", f"{rate_one:.1f}"),
        (f"ACME issuances/s, {CLIENTS} concurrent clients (SQLite)", f"{rate_many:.1f}"),
        ("bare key generation + signing/s", f"{bare:.1f}"),
        ("ACME rate / bare rate, 1 client", f"{rate_one / bare:.2%}"),
        (f"ACME rate / bare rate, {CLIENTS} clients", f"{rate_many / bare:.2%}"),
        (f"{CLIENTS} clients / 1 client", f"{rate_many / rate_one:.2f}x"),
        ("requests per issuance (1 client)", f"{one['requests'] / one['issuances']:.2f}"),
        ("order polls per issuance (1 client)", f"{one['polls'] / one['issuances']:.2f}"),
        ("1 client: wall per issuance (ms)", f"{per_issuance_ms:.1f}"),
    ]
    for step in STEPS:
        ms = one["steps"].get(step, 0.0) / one["issuances"] * 1000
        rows.append((f"  {step} (ms, share)", f"{ms:.2f}  {ms / per_issuance_ms:.0%}"))
    rows.append(
        (
            "  rest: client's CSR key + CSR (ms)",
            f"{per_issuance_ms - sum(one['steps'].values()) / one['issuances'] * 1000:.2f}",
        )
    )
    many_per_issuance_ms = many["wall"] * CLIENTS / many["issuances"] * 1000
    rows.append((f"{CLIENTS} clients: one client's wall per issuance (ms)", f"{many_per_issuance_ms:.1f}"))
    for step in STEPS:
        ms = many["steps"].get(step, 0.0) / many["issuances"] * 1000
        rows.append((f"  {step} (ms, share)", f"{ms:.2f}  {ms / many_per_issuance_ms:.0%}"))
    rows.append((f"order polls per issuance ({CLIENTS} clients)", f"{many['polls'] / many['issuances']:.2f}"))
    rows += [
        ("server CPU per issuance (ms), 1 client", f"{one_cpu / (one['issuances'] + 1) * 1000:.2f}"),
        ("server CPU per ACME request (ms), 1 client", f"{cpu_per_request * 1000:.3f}"),
        (f"server CPU per ACME request (ms), {CLIENTS} clients", f"{cpu_per_request_many * 1000:.3f}"),
        ("nonce creation + check CPU (ms), in a loop", f"{nonce_cpu * 1000:.3f}"),
        ("nonce share of a request's server CPU, 1 client (loop)", f"{nonce_cpu / cpu_per_request:.1%}"),
        (f"nonce share of a request's server CPU, {CLIENTS} clients (loop)", f"{nonce_cpu / cpu_per_request_many:.1%}"),
        ("nonce CPU in the runs (ms per request), 1 client", f"{one_nonce / one_requests * 1000:.3f}"),
        (f"nonce CPU in the runs (ms per request), {CLIENTS} clients", f"{many_nonce / many_requests * 1000:.3f}"),
        ("nonce calls (new + use) per request, 1 client", f"{one_nonce_calls / one_requests:.2f}"),
        ("nonce share of the server's CPU in the run, 1 client", f"{one_nonce / one_cpu:.1%}"),
        (f"nonce share of the server's CPU in the run, {CLIENTS} clients", f"{many_nonce / many_cpu:.1%}"),
        ("ES256 JWS verification CPU (ms)", f"{verify_cpu * 1000:.3f}"),
        ("JWS verification share of a request's server CPU, 1 client", f"{verify_cpu / cpu_per_request:.1%}"),
        (
            "key generation + signing share of an issuance's server CPU",
            f"{(1 / bare) / (one_cpu / (one['issuances'] + 1)):.1%}",
        ),
    ]
    rows += toggled
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
