"""`make bench`: every main path of the real service against its physical limit, measured side by side in one run.

For each store (SQLite; MongoDB = FerretDB v1, the test server) the real `gatewaycerts serve` runs on loopback in
its own process(es) and bench/loadgen (Go) drives it from another process over many keep-alive connections. In the
same run this process measures the pure cost of the same work in-process, single-threaded (the "limit"): the
upload validation, the store read, the cryptography of an issuance. Printed as one table and appended to
docs/performance.md: requests/s, p50/p99 latency, service CPU per request, peak RSS, ratio to the limit.

Not a test: nothing here asserts; docs/performance.md reads the figures against issue #7's targets.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.harness import ROOT, Service, build_loadgen, rate, request
from bench.seed import Dataset, certificates, name_of, seed_mongo_sync, seed_sqlite
from gatewaycerts.app import build_vault
from gatewaycerts.domain.models import AlgorithmType, CertificateFilter, CertificateScope
from gatewaycerts.domain.pca import DistinguishedName, KeyAlgorithm, KeyUsage, SignatureHash
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.pki.issue import IssueSpec, build_certificate
from gatewaycerts.pki.keygen import generate_private_key, new_serial
from gatewaycerts.settings import Settings
from tests.factories import NOW, ec_chain, rsa_chain
from tests.mongo_server import FerretDB

APIC = "/v2/bench/apic/certificates"
CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"
PERF_DOC = ROOT / "docs" / "performance.md"
HAS_WORKERS = hasattr(Settings(), "workers")


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, path: str, store: str, result: dict[str, Any], *, limit: float | None = None, **extra: Any) -> None:
        bad = result["requests"] - result["ok"]
        row = {
            "path": path,
            "store": store,
            "workers": extra.pop("workers", 1),
            "c": result["concurrency"],
            "n": result["requests"],
            "rps": result["rps"],
            "p50": result["p50_ms"],
            "p99": result["p99_ms"],
            "cpu": result["cpu_ms_per_request"],
            "rss": result["peak_rss_mb"],
            "limit": limit,
            "ratio": result["rps"] / limit if limit else None,
            "failed": bad,
            **extra,
        }
        if bad:
            row["note"] = f"{bad} not 2xx: {result['status']} {result.get('first_error', '')}".strip()
        self.rows.append(row)
        print(self.line(row), flush=True)

    HEADER = (
        "| path | store | workers | conc. | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS MB | limit/s | ratio "
        "| note |"
    )

    @staticmethod
    def line(r: dict[str, Any]) -> str:
        limit = f"{r['limit']:,.0f}" if r["limit"] else "—"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        return (
            f"| {r['path']} | {r['store']} | {r['workers']} | {r['c']} | {r['rps']:,.0f} | {r['p50']:.1f} | "
            f"{r['p99']:.1f} | {r['cpu']:.2f} | {r['rss']:.0f} | {limit} | {ratio} | {r.get('note', '')} |"
        )

    def markdown(self) -> str:
        return "\n".join([self.HEADER, "|" + "---|" * 12, *(self.line(r) for r in self.rows)])


# -- the limits: the same work, in-process, single-threaded ------------------------------------------


def validation_limit(bundle: str, key: str) -> float:
    return rate(lambda: validate_bundle(bundle, key, None, now=NOW))


def issue_limit(*, keygen: bool) -> float:
    """Key generation (where the path makes one) plus signing with the same profile, P-256 CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = generate_private_key(KeyAlgorithm.EC256)

    def spec(key, cn: str, ca: bool) -> IssueSpec:
        return IssueSpec(
            subject=DistinguishedName(cn),
            public_key=key.public_key(),
            serial=new_serial(),
            not_before=now,
            not_after=now + dt.timedelta(days=30 if not ca else 3650),
            hash=SignatureHash.SHA256,
            is_ca=ca,
            path_length=None,
            key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN) if ca else (KeyUsage.DIGITAL_SIGNATURE,),
        )

    ca = build_certificate(spec(ca_key, "Bench CA", True), None, ca_key)
    fixed = generate_private_key(KeyAlgorithm.EC256)

    def one() -> None:
        key = generate_private_key(KeyAlgorithm.EC256) if keygen else fixed
        build_certificate(spec(key, "bench.example.com", False), ca, ca_key)

    return rate(one)


def csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example.com")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# -- sections --------------------------------------------------------------------------------------


def upload_section(table: Table, store: str, env: dict[str, str], scale: float, workers: list[int]) -> None:
    rsa, ecc = rsa_chain(), ec_chain()
    inputs = {
        "upload RSA-2048 leaf+intermediate": (rsa.bundle(), rsa.leaf.key_pem(), 2000),
        "upload P-256 leaf+intermediate": (ecc.bundle(), ecc.leaf.key_pem(), 4000),
    }
    limits = {path: validation_limit(bundle, key) for path, (bundle, key, _) in inputs.items()}
    for w in workers:
        with Service(env={**env, **_workers(w)}) as svc:
            token = svc.token()
            for path, (bundle, key, count) in inputs.items():
                n = max(200, int(count * scale))
                prefix = "r" if "RSA" in path else "e"
                reqs = [
                    request(
                        "POST",
                        APIC,
                        token,
                        {"name": f"{prefix}{w}_{i:07d}", "cert_content": bundle, "private_key": key},
                    )
                    for i in range(n)
                ]
                table.add(path, store, svc.load(reqs, concurrency=32, total=n), limit=limits[path], workers=w)
    # the same service with cryptography's default RSA key load (OpenSSL's check with primality tests)
    bundle, key, _ = inputs["upload RSA-2048 leaf+intermediate"]
    with Service(env={**env, "GATEWAYCERTS_RSA_KEY_CHECK": "openssl"}) as svc:
        token = svc.token()
        n = max(60, int(200 * scale))
        reqs = [
            request("POST", APIC, token, {"name": f"o_{i:07d}", "cert_content": bundle, "private_key": key})
            for i in range(n)
        ]
        table.add(
            "upload RSA-2048, OpenSSL's RSA key check",
            store,
            svc.load(reqs, concurrency=8, total=n),
            limit=limits["upload RSA-2048 leaf+intermediate"],
        )


def issue_section(table: Table, store: str, env: dict[str, str], scale: float, workers: list[int]) -> None:
    limit_keygen, limit_sign = issue_limit(keygen=True), issue_limit(keygen=False)
    for w in workers:
        with Service(env={**env, **_workers(w)}) as svc:
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
            n = max(300, int(3000 * scale))
            body = {
                "issuer_id": ca["ca_id"],
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "bench.example.com"},
                "validity": {"type": "DAY", "value": 30},
            }
            table.add(
                "CCM issue, P-256 CA, key generated",
                store,
                svc.load([request("POST", CERTS, token, body)], concurrency=32, total=n),
                limit=limit_keygen,
                workers=w,
            )
            csrs = [csr_pem() for _ in range(64)]
            reqs = [
                request(
                    "POST",
                    CERTS + "/csr",
                    token,
                    {"issuer_id": ca["ca_id"], "csr": c, "validity": {"type": "DAY", "value": 30}},
                )
                for c in csrs
            ]
            table.add(
                "CCM issue from a CSR, P-256 CA",
                store,
                svc.load(reqs, concurrency=32, total=n),
                limit=limit_sign,
                workers=w,
            )


READ_FILTERS: list[tuple[str, str, CertificateFilter, int]] = [
    ("list first page", "", CertificateFilter(), 0),
    ("list name=_004242 (one match)", "&name=_004242", CertificateFilter(name_contains="_004242"), 0),
    ("list name=nomatch (none)", "&name=nomatch", CertificateFilter(name_contains="nomatch"), 0),
    ("list name=shop (a tenth)", "&name=shop", CertificateFilter(name_contains="shop"), 0),
    (
        "list common_name",
        "&common_name=svc7.example.com",
        CertificateFilter(common_name="svc7.example.com"),
        0,
    ),
    (
        "list signature_algorithm",
        "&signature_algorithm=SHA384WITHECDSA",
        CertificateFilter(signature_algorithm="SHA384WITHECDSA"),
        0,
    ),
    ("list type=instance", "&type=instance", CertificateFilter(scope=CertificateScope.INSTANCE), 0),
    ("list instance_id", "&instance_id=inst1", CertificateFilter(instance_id="inst1"), 0),
    ("list algorithm_type=ECC", "&algorithm_type=ECC", CertificateFilter(algorithm_type=AlgorithmType.ECC), 0),
    ("list offset 90,000", "", CertificateFilter(), 90_000),
]


def _store_limits(open_store, project: str, ids: list[str], filters) -> dict[str, float]:
    """In-process, single-threaded store calls per second on the same data (get, and each list)."""

    async def measure() -> dict[str, float]:
        store = await open_store()
        out: dict[str, float] = {}
        try:
            for label, _, flt, offset in [("get", "", None, 0), *filters]:
                n, start = 0, time.perf_counter()
                while (elapsed := time.perf_counter() - start) < 1.5 or n < 3:
                    if flt is None:
                        await store.get(project, random.choice(ids))
                    else:
                        await store.list(project, flt, offset, 20)
                    n += 1
                out[label] = n / elapsed
        finally:
            await store.close()
        return out

    return asyncio.run(measure())


def read_section(
    table: Table,
    store: str,
    env: dict[str, str],
    data: Dataset,
    state: Path,
    ids: list[str],
    open_store,
    *,
    requests_per_list: int,
    shows: int,
) -> None:
    filters = [f for f in READ_FILTERS if f[3] < data.big_count]
    limits = _store_limits(open_store, data.big_project, ids, filters)
    with Service(env=env, state_dir=state) as svc:
        token = svc.token(project=data.big_project)
        base = f"/v2/{data.big_project}/apic/certificates"
        gets = [request("GET", f"{base}/{i}", token) for i in random.sample(ids, min(len(ids), 5000))]
        table.add(
            f"show one of {data.big_count:,}",
            store,
            svc.load(gets, concurrency=8, total=shows),
            limit=limits["get"],
        )
        for label, query, _, offset in filters:
            reqs = [request("GET", f"{base}?limit=20&offset={offset}{query}", token)]
            table.add(
                f"{label} of {data.big_count:,}",
                store,
                svc.load(reqs, concurrency=4, total=requests_per_list),
                limit=limits[label],
            )


def event_loop_section(table: Table, store: str, env: dict[str, str], scale: float) -> None:
    """The same small request (show one certificate) on the standard asyncio loop and on uvloop."""
    ecc = ec_chain()
    for loop in ("asyncio", "uvloop"):
        with Service(env={**env, "GATEWAYCERTS_EVENT_LOOP": loop}) as svc:
            token = svc.token()
            _, cert = svc.call(
                "POST",
                APIC,
                token,
                {"name": "loop_cert", "cert_content": ecc.bundle(), "private_key": ecc.leaf.key_pem()},
            )
            n = max(2000, int(10000 * scale))
            table.add(
                f"show one certificate, {loop} event loop",
                store,
                svc.load([request("GET", f"{APIC}/{cert['id']}", token)], concurrency=16, total=n),
            )


def memory_section(table: Table, store: str, env: dict[str, str], total: int) -> dict[str, Any]:
    """RSS of the serving process over `total` requests (shows, lists, uploads, issues), sampled per tenth."""
    ecc = ec_chain()
    with Service(env=env) as svc:
        token = svc.token()
        _, ca = svc.call(
            "POST",
            CAS,
            token,
            {
                "type": "ROOT",
                "distinguished_name": {"common_name": "Mem CA"},
                "key_algorithm": "EC256",
                "validity": {"type": "YEAR", "value": 5},
            },
        )
        ids = []
        for i in range(50):
            _, cert = svc.call(
                "POST",
                APIC,
                token,
                {"name": f"mem_seed_{i:04d}", "cert_content": ecc.bundle(), "private_key": ecc.leaf.key_pem()},
            )
            ids.append(cert["id"])
        issue = {
            "issuer_id": ca["ca_id"],
            "key_algorithm": "EC256",
            "distinguished_name": {"common_name": "m.example.com"},
            "validity": {"type": "DAY", "value": 30},
        }
        chunk = total // 10
        samples = []
        started = time.perf_counter()
        upload = {"cert_content": ecc.bundle(), "private_key": ecc.leaf.key_pem()}
        for round_ in range(10):
            reqs = []  # one in 20 an upload (each a new name), one in 20 an issuance, a fifth lists, the rest show
            for i in range(chunk):
                if i % 20 == 0:
                    reqs.append(request("POST", APIC, token, {"name": f"mem_{round_}_{i:07d}", **upload}))
                elif i % 20 == 1:
                    reqs.append(request("POST", CERTS, token, issue))
                elif i % 5 == 0:
                    reqs.append(request("GET", f"{APIC}?limit=20&name=mem_seed", token))
                else:
                    reqs.append(request("GET", f"{APIC}/{ids[i % len(ids)]}", token))
            result = svc.load(reqs, concurrency=16, total=chunk)
            samples.append(svc.rss_kb() / 1024)
        elapsed = time.perf_counter() - started
        first, last = samples[0], samples[-1]
        table.add(
            f"memory: {total:,} mixed requests",
            store,
            {**result, "requests": total, "ok": total - (result["requests"] - result["ok"]), "rps": total / elapsed},
            note=f"RSS after the 1st tenth {first:.0f} MB, after the last {last:.0f} MB "
            f"({(last - first) / first:+.1%})",
        )
        return {"first_mb": first, "last_mb": last, "samples": samples}


def micro_section() -> list[tuple[str, float, float]]:
    """Before/after of the in-process optimisations, side by side (calls/s)."""
    import orjson

    from gatewaycerts.auth.tokens import StaticKeySource, TokenVerifier, load_or_create_dev_key, mint_token

    rows: list[tuple[str, float, float]] = []
    page = {
        "size": 500,
        "total": 100000,
        "certs": [
            {
                "id": f"{i:032x}",
                "name": name_of(i),
                "san": ["a.example.com"],
                "not_after": "2031-08-16T06:36:13Z",
                "is_has_trusted_root_ca": False,
            }
            for i in range(500)
        ],
    }
    rows.append(
        (
            "JSON encode a 500-item list page: json.dumps → orjson.dumps",
            rate(lambda: json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode(), 1.0),
            rate(lambda: orjson.dumps(page), 1.0),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        key = load_or_create_dev_key(Path(tmp))
        token = mint_token(key, subject="b", projects=["p"], roles=["admin"], ttl=3600)
        uncached = TokenVerifier(StaticKeySource(key.public_key()), algorithms=("EdDSA",), cache_seconds=0)
        cached = TokenVerifier(StaticKeySource(key.public_key()), algorithms=("EdDSA",))

        async def many(verifier: TokenVerifier, n: int = 2000) -> float:
            start = time.perf_counter()
            for _ in range(n):
                await verifier.verify(token)
            return n / (time.perf_counter() - start)

        rows.append(
            (
                "verify the token of a request: EdDSA signature check → remembered token",
                asyncio.run(many(uncached)),
                asyncio.run(many(cached)),
            )
        )
    return rows


def group_commit_before_after() -> tuple[str, float, float]:
    """SQLite inserts of uploads (every index, the counters and the name pieces), 32 writers at a time: each
    awaited alone (one commit each, as without group commit) and all 32 in flight (sharing commits)."""
    from gatewaycerts.store.sqlite.base import SqliteDatabase
    from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

    async def inserts(in_flight: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteCertificateStore(SqliteDatabase(Path(tmp) / "g.db"))
            await store.ensure_schema()
            vault = build_vault(Settings(state_dir=Path(tmp)))
            certs = list(certificates(Dataset("group", 3000, 0, 0), vault))
            gate = asyncio.Semaphore(in_flight)

            async def one(cert) -> None:
                async with gate:
                    await store.insert(cert)

            start = time.perf_counter()
            await asyncio.gather(*(one(c) for c in certs))
            elapsed = time.perf_counter() - start
            await store.close()
            return len(certs) / elapsed

    return (
        "SQLite upload inserts, 32 writers: one commit each → group commit",
        asyncio.run(inserts(1)),
        asyncio.run(inserts(32)),
    )


def counting_before_after(db: Path, project: str) -> list[tuple[str, float, float]]:
    """The list's total and a name filter as the store did them before (count scans, LIKE on rows) and now."""
    conn = sqlite3.connect(db)

    def q(sql: str, *args: Any):
        return lambda: conn.execute(sql, args).fetchall()

    from gatewaycerts.store.sqlite.certificates import NAME_MATCHES_SORTED_HERE, SqliteCertificateStore

    # the store's own statements for a name filter (its list plan), run as its list() runs them
    plan = SqliteCertificateStore(db)._list_plan(project, CertificateFilter(name_contains="_004242"), 0, 10)
    assert plan.piece_matches is not None

    def pieces() -> int:
        """What the store does for a rare name: bounded counts of each piece, then the rarest one's rows."""
        counts = {
            g: conn.execute(plan.piece_count, (project, g, NAME_MATCHES_SORTED_HERE + 1)).fetchone()[0]
            for g in plan.pieces
        }
        rarest = min(counts, key=counts.__getitem__)
        sql, params = plan.piece_matches
        return len(conn.execute(sql, [project, rarest, *params[2:]]).fetchall())

    rows = [
        (
            "list total, no filter: count(*) over the project → trigger-kept counter",
            rate(q("SELECT count(*) FROM certificates WHERE project_id = ?", project), 1.0),
            rate(
                q("SELECT n FROM certificate_counts WHERE project_id = ? AND facet = '' AND value = ''", project), 1.0
            ),
        ),
        (
            "list total, signature_algorithm filter: count(*) → counter",
            rate(
                q(
                    "SELECT count(*) FROM certificates NOT INDEXED WHERE project_id = ? AND signature_algorithm = ?",
                    project,
                    "SHA384WITHECDSA",
                ),
                1.0,
            ),
            rate(
                q(
                    "SELECT n FROM certificate_counts WHERE project_id = ? AND facet = 'signature_algorithm' "
                    "AND value = ?",
                    project,
                    "SHA384WITHECDSA",
                ),
                1.0,
            ),
        ),
        (
            "name filter (one match), its total: LIKE over the project's rows → its rarest name piece",
            rate(
                q(
                    "SELECT count(*) FROM certificates NOT INDEXED WHERE project_id = ? AND name LIKE ?",
                    project,
                    "%_004242%",
                ),
                1.0,
            ),
            rate(pieces, 1.0),
        ),
    ]
    conn.close()
    return rows


def _workers(n: int) -> dict[str, str]:
    return {"GATEWAYCERTS_WORKERS": str(n)} if HAS_WORKERS and n > 1 else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts (0.2 for a quick run)")
    parser.add_argument("--stores", default="sqlite,mongo")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not append to docs/performance.md")
    args = parser.parse_args()
    build_loadgen()
    started = time.perf_counter()
    table = Table()
    workers = [1, 2] if HAS_WORKERS else [1]
    stores = args.stores.split(",")
    micro: list[tuple[str, float, float]] = []
    memory: dict[str, Any] = {}
    print(Table.HEADER)
    if "sqlite" in stores:
        event_loop_section(table, "SQLite", {}, args.scale)
        upload_section(table, "SQLite", {}, args.scale, workers)
        issue_section(table, "SQLite", {}, args.scale, workers)
        data = Dataset("bigproject", 100_000, 100, 1_000)
        state = Path(tempfile.mkdtemp(prefix="gc-bench-read-"))
        with Service(state_dir=state):  # creates the schema (and its counters) as a new installation would
            pass
        db = state / "gatewaycerts.db"
        t0 = time.perf_counter()
        ids = seed_sqlite(db, data, build_vault(Settings(state_dir=state)))
        print(f"(seeded {data.total:,} certificates into SQLite in {time.perf_counter() - t0:.0f} s)", flush=True)

        async def open_sqlite():
            from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

            return SqliteCertificateStore(db)

        read_section(
            table,
            "SQLite",
            {},
            data,
            state,
            ids,
            open_sqlite,
            requests_per_list=max(200, int(600 * args.scale)),
            shows=max(2000, int(10000 * args.scale)),
        )
        micro += counting_before_after(db, data.big_project)
        micro.append(group_commit_before_after())
        memory = memory_section(table, "SQLite", {}, max(10_000, int(100_000 * args.scale)))
    if "mongo" in stores:
        server = FerretDB(Path(tempfile.mkdtemp(prefix="gc-bench-ferretdb-")))
        server.start()
        try:
            env = {"GATEWAYCERTS_DATABASE_URL": server.uri}
            upload_section(table, "FerretDB", env, args.scale * 0.2, [1])
            issue_section(table, "FerretDB", env, args.scale * 0.2, [1])
            data = Dataset("bigproject", 1_000, 10, 100)
            mstate = Path(tempfile.mkdtemp(prefix="gc-bench-mread-"))
            ids = seed_mongo_sync(server.uri, "benchread", data, build_vault(Settings(state_dir=mstate)))
            env_read = {"GATEWAYCERTS_DATABASE_URL": server.uri, "GATEWAYCERTS_MONGODB_DATABASE": "benchread"}

            async def open_mongo():
                from pymongo import AsyncMongoClient

                from gatewaycerts.store.mongo.certificates import MongoCertificateStore

                return MongoCertificateStore(AsyncMongoClient(server.uri, tz_aware=True), "benchread")

            read_section(
                table,
                "FerretDB",
                env_read,
                data,
                mstate,
                ids,
                open_mongo,
                requests_per_list=8,
                shows=100,
            )
        finally:
            server.stop()
    micro += micro_section()
    minutes = (time.perf_counter() - started) / 60
    print()
    print("| in-process step | before/s | after/s | x |\n|---|---:|---:|---:|")
    for name, before, after in micro:
        print(f"| {name} | {before:,.0f} | {after:,.0f} | {after / before:.1f} |")
    print(f"\nmake bench took {minutes:.1f} min on {os.cpu_count()} cores")
    if not args.no_doc:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        with PERF_DOC.open("a") as doc:
            doc.write(
                f"\n### `make bench`, {stamp} ({minutes:.1f} min, {os.cpu_count()} cores, scale {args.scale})\n\n"
            )
            doc.write(table.markdown() + "\n\n")
            doc.write("| in-process step | before/s | after/s | x |\n|---|---:|---:|---:|\n")
            for name, before, after in micro:
                doc.write(f"| {name} | {before:,.0f} | {after:,.0f} | {after / before:.1f} |\n")
            if memory:
                doc.write(
                    "\nRSS samples (MB, one per tenth of the memory run): "
                    + ", ".join(f"{s:.0f}" for s in memory["samples"])
                    + "\n"
                )


if __name__ == "__main__":
    main()
