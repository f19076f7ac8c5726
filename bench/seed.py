"""Filling a store with many certificates for the read benchmarks, fast (bulk writes, not one request each).

The records are real: one validated upload (chain, metadata, key envelope) copied under new ids, names, common
names, algorithms and creation times, written through the adapters' own row/document mapping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.domain.models import AlgorithmType, Certificate, CertificateScope
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.bundle import validate_bundle
from tests.factories import ec_chain

WORDS = ("shop", "api", "pay", "auth", "edge", "mail", "cdn", "login", "search", "cart")
SIGNATURES = ("SHA256WITHECDSA", "SHA384WITHECDSA")


@dataclasses.dataclass(frozen=True)
class Dataset:
    big_project: str
    big_count: int
    other_projects: int
    per_other: int

    @property
    def total(self) -> int:
        return self.big_count + self.other_projects * self.per_other


def name_of(i: int) -> str:
    """`shop_api_000042`-style names: every word occurs in a tenth of them, `_000042` in one."""
    return f"{WORDS[i % 10]}_{WORDS[(i // 10) % 10]}_{i:06d}"


def certificates(data: Dataset, vault: KeyVault) -> Iterator[Certificate]:
    """`vault`: the service's own KEKs (its start-up check decrypts a sample of the stored keys)."""
    chain = ec_chain()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    bundle = validate_bundle(chain.bundle(), chain.leaf.key_pem(), None, now=now)
    base = Certificate(
        id="",
        project_id="",
        name="",
        scope=CertificateScope.GLOBAL,
        instance_id="common",
        info=bundle.info,
        chain_pem=bundle.chain_pem,
        encrypted_private_key=b"",
        trusted_root_ca_pem=None,
        has_trusted_root_ca=False,
        create_time=now,
        update_time=now,
    )
    projects = [(data.big_project, data.big_count)] + [
        (f"tenant{p:03d}", data.per_other) for p in range(data.other_projects)
    ]
    for project, count in projects:
        for i in range(count):
            instance = i % 7 == 0  # one in seven instance-scoped, on one of three instances
            info = dataclasses.replace(
                bundle.info,
                common_name=f"svc{i % 1000}.example.com",
                signature_algorithm=SIGNATURES[i % 2],
                algorithm_type=AlgorithmType.ECC,
            )
            cert_id = uuid.uuid4().hex
            yield dataclasses.replace(
                base,
                id=cert_id,
                encrypted_private_key=vault.encrypt(bundle.private_key_pem, context=apic_key_context(project, cert_id)),
                project_id=project,
                name=name_of(i),
                scope=CertificateScope.INSTANCE if instance else CertificateScope.GLOBAL,
                instance_id=f"inst{i % 3}" if instance else "common",
                info=info,
                create_time=now - dt.timedelta(seconds=count - i),
            )


def seed_sqlite(path: Path, data: Dataset, vault: KeyVault) -> list[str]:
    """Bulk-insert into a SQLite store whose schema exists (the counters' triggers run as for any insert);
    returns the big project's ids."""
    from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

    ids: list[str] = []
    conn = sqlite3.connect(path)
    batch: list[dict] = []
    columns: list[str] = []

    def flush() -> None:
        if batch:
            conn.executemany(
                f"INSERT INTO certificates ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
                batch,
            )
            batch.clear()

    conn.execute("BEGIN")
    for cert in certificates(data, vault):
        row = SqliteCertificateStore._row(cert)
        columns = columns or list(row)
        batch.append(row)
        if cert.project_id == data.big_project:
            ids.append(cert.id)
        if len(batch) == 5000:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return ids


async def seed_mongo(uri: str, database: str, data: Dataset, vault: KeyVault) -> list[str]:
    from pymongo import AsyncMongoClient

    from gatewaycerts.store.mongo.certificates import MongoCertificateStore, _to_doc

    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    store = MongoCertificateStore(client, database, owns_client=False)
    await store.ensure_schema()
    coll = client[database]["certificates"]
    ids: list[str] = []
    batch: list[dict] = []
    for cert in certificates(data, vault):
        batch.append(_to_doc(cert))
        if cert.project_id == data.big_project:
            ids.append(cert.id)
        if len(batch) == 1000:
            await coll.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await coll.insert_many(batch, ordered=False)
    await client.close()
    return ids


def seed_mongo_sync(uri: str, database: str, data: Dataset, vault: KeyVault) -> list[str]:
    return asyncio.run(seed_mongo(uri, database, data, vault))
