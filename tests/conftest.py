"""Fixtures: both real stores, the FerretDB server, an app client and tokens from the real dev key."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from gatewaycerts.app import create_app
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.settings import Settings
from gatewaycerts.store.mongo.access_keys import MongoAccessKeyStore
from gatewaycerts.store.mongo.audit import MongoAuditStore
from gatewaycerts.store.mongo.certificates import MongoCertificateStore
from gatewaycerts.store.mongo.orders import MongoOrderStore
from gatewaycerts.store.mongo.pca import MongoPcaStore
from gatewaycerts.store.sqlite.access_keys import SqliteAccessKeyStore
from gatewaycerts.store.sqlite.audit import SqliteAuditStore
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.orders import SqliteOrderStore
from gatewaycerts.store.sqlite.pca import SqlitePcaStore
from tests.mongo_server import FerretDB, MongoUnavailable

STORES = ["sqlite", "mongo"]


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory):
    uri = os.environ.get("GATEWAYCERTS_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    data_dir = ferretdb_data_dir(tmp_path_factory)
    server = FerretDB(data_dir)
    try:
        try:
            server.start()
        except MongoUnavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(f"MongoDB tests must run in CI: {exc}")
            pytest.skip(f"no MongoDB wire server: {exc}")
        yield server.uri
    finally:
        server.stop()
        if data_dir.parent == SHM:
            shutil.rmtree(data_dir, ignore_errors=True)


SHM = Path("/dev/shm")


def ferretdb_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's FerretDB keeps its SQLite files: in memory (/dev/shm) where there is one. Every
    Mongo-half test creates a database with its indexes and drops it afterwards; on the disk under /tmp each of
    those SQLite files is created, synced and unlinked, and opening and dropping the four stores took a median
    0.33-0.36 s there against 0.15-0.17 s on /dev/shm (same FerretDB binary, same machine, same minute).
    Nothing here tests durability; the tests that stop and restart a server (own_ferretdb) keep theirs under
    tmp_path."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="gatewaycerts-ferretdb-", dir=SHM))
    return tmp_path_factory.mktemp("ferretdb")


@pytest.fixture
def mongo_database() -> str:
    return f"gc_test_{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def open_stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path, database: str) -> AsyncIterator:
    """The certificate, private-CA, order and audit stores of one kind, on one database (as the service runs
    them)."""
    if kind == "sqlite":
        db = SqliteDatabase(tmp_path / "store.db")  # one writer and reader pool for the four, as build_stores
        four = (SqliteCertificateStore(db), SqlitePcaStore(db), SqliteOrderStore(db), SqliteAuditStore(db))
        for s in four:
            await s.ensure_schema()
        yield four
        for s in four:
            await s.close()
        return
    uri = request.getfixturevalue("mongodb_uri")
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    four = (
        MongoCertificateStore(client, database, owns_client=False),
        MongoPcaStore(client, database),
        MongoOrderStore(client, database),
        MongoAuditStore(client, database),
    )
    for s in four:
        await s.ensure_schema()
    yield four
    await client.drop_database(database)
    await client.close()


@asynccontextmanager
async def open_access_key_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> AsyncIterator:
    """The access-key store of one kind (SQLite: its own file; MongoDB: `database`, dropped afterwards)."""
    if kind == "sqlite":
        keys = SqliteAccessKeyStore(SqliteDatabase(tmp_path / "access-keys.db"))
        await keys.ensure_schema()
        yield keys
        await keys.close()
        return
    uri = request.getfixturevalue("mongodb_uri")
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    keys = MongoAccessKeyStore(client, database)
    await keys.ensure_schema()
    yield keys
    await client.drop_database(database)
    await client.close()


@pytest.fixture(params=STORES)
async def access_key_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    async with open_access_key_store(request.param, request, tmp_path, mongo_database) as keys:
        yield keys


@pytest.fixture(params=STORES)
async def every_store_and_keys(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    """(certificate, private-CA, order, audit, access-key) stores of the same kind (MongoDB: one database)."""
    async with (
        open_stores(request.param, request, tmp_path, mongo_database) as four,
        open_access_key_store(request.param, request, tmp_path, mongo_database) as keys,
    ):
        yield (*four, keys)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    async with open_stores(request.param, request, tmp_path, mongo_database) as (certificates, _, _, _):
        yield certificates


@pytest.fixture(params=STORES)
async def pca_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    async with open_stores(request.param, request, tmp_path, mongo_database) as (_, pca, _, _):
        yield pca


@pytest.fixture(params=STORES)
async def order_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    async with open_stores(request.param, request, tmp_path, mongo_database) as (_, _, orders, _):
        yield orders


@pytest.fixture(params=STORES)
async def ca_and_order_stores(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    """(private-CA store, order store) of the same kind, on one database."""
    async with open_stores(request.param, request, tmp_path, mongo_database) as (_, pca, orders, _):
        yield pca, orders


@pytest.fixture(params=STORES)
async def stores(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    """(certificate store, private-CA store) of the same kind."""
    async with open_stores(request.param, request, tmp_path, mongo_database) as (certificates, pca, _, _):
        yield certificates, pca


@pytest.fixture(params=STORES)
async def audit_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    async with open_stores(request.param, request, tmp_path, mongo_database) as (_, _, _, audit):
        yield audit


@pytest.fixture(params=STORES)
async def every_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    """(certificate, private-CA, order, audit) stores of the same kind, on one database."""
    async with open_stores(request.param, request, tmp_path, mongo_database) as four:
        yield four


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


@pytest.fixture
async def client(aiohttp_client, settings: Settings, store):
    app = create_app(settings, store=store)
    return await aiohttp_client(app)


@pytest.fixture
def token(settings: Settings) -> Callable[..., str]:
    key = load_or_create_dev_key(settings.state_dir)

    def make(project: str = "p1", role: str = "admin", ttl: int = 600, **kw) -> str:
        return mint_token(
            key, subject=kw.get("subject", "tester"), projects=[project], roles=[role], ttl=ttl, now=kw.get("now")
        )

    return make


@pytest.fixture
def auth(token) -> Callable[..., dict[str, str]]:
    def headers(project: str = "p1", role: str = "admin") -> dict[str, str]:
        return {"X-Auth-Token": token(project, role)}

    return headers


def app_on(settings: Settings, every_store, **kw):
    """The service on the given (certificates, pca, orders, audit) stores; the order worker and the renewal loop
    driven by the test."""
    certificates, pca, orders, audit = every_store
    kw.setdefault("renewal_worker", False)
    return create_app(
        settings, store=certificates, pca_store=pca, order_store=orders, audit_store=audit, order_worker=False, **kw
    )
