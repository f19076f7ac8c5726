"""The AcmeClientStore contract on both adapters (SQLite and MongoDB/FerretDB): accounts and DNS update
configurations scoped by project, ordered, refused twice; http-01 tokens overwritten, read by any replica of
the store, expired ones deleted by time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from gatewaycerts.domain.acme_client import AcmeAccount, ChallengeToken, DnsUpdateConfig
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.mongo.acme_client import MongoAcmeClientStore
from gatewaycerts.store.sqlite.acme_client import SqliteAcmeClientStore
from gatewaycerts.store.sqlite.base import SqliteDatabase
from tests.conftest import STORES

T0 = datetime(2026, 12, 7, 4, 0, 0, tzinfo=UTC)


@pytest.fixture(params=STORES)
async def acme_store(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str) -> AsyncIterator:
    if request.param == "sqlite":
        store = SqliteAcmeClientStore(SqliteDatabase(tmp_path / "acme.db"))
        await store.ensure_schema()
        yield store
        await store.close()
        return
    client: AsyncMongoClient = AsyncMongoClient(
        request.getfixturevalue("mongodb_uri"), tz_aware=True, serverSelectionTimeoutMS=5000
    )
    store = MongoAcmeClientStore(client, mongo_database)
    await store.ensure_schema()
    await store.ensure_schema()  # idempotent
    yield store
    await client.drop_database(mongo_database)
    await client.close()


def account(aid: str, project: str = "p1", seconds: int = 0, **kw) -> AcmeAccount:
    values = dict(
        id=aid,
        project_id=project,
        directory_url="https://ca.example/dir",
        contact=("mailto:ops@example.com",),
        terms_agreed=True,
        eab_kid="kid-1",
        eab_hmac_envelope=b"\x00eab-envelope",
        key_envelope=b"\x01key-envelope",
        account_url=f"https://ca.example/acct/{aid}",
        create_time=T0 + timedelta(seconds=seconds),
    )
    values.update(kw)
    return AcmeAccount(**values)


def config(cid: str, project: str = "p1", seconds: int = 0) -> DnsUpdateConfig:
    return DnsUpdateConfig(
        id=cid,
        project_id=project,
        server="192.0.2.53",
        port=53,
        zone="example.com.",
        tsig_key_name="acme-update.",
        tsig_algorithm="hmac-sha256",
        tsig_secret_envelope=b"\x02tsig",
        create_time=T0 + timedelta(seconds=seconds),
    )


async def test_accounts_round_trip_scoped_and_ordered(acme_store):
    await acme_store.insert_account(account("b", seconds=2))
    await acme_store.insert_account(account("a", seconds=1, eab_kid=None, eab_hmac_envelope=None, contact=()))
    await acme_store.insert_account(account("c", project="p2"))
    assert await acme_store.get_account("p1", "b") == account("b", seconds=2)
    assert await acme_store.get_account("p2", "b") is None  # another project's id is invisible
    assert [a.id for a in await acme_store.list_accounts("p1")] == ["a", "b"]
    assert (await acme_store.get_account("p1", "a")).eab_hmac_envelope is None
    with pytest.raises(ConflictError):
        await acme_store.insert_account(account("b"))
    assert not await acme_store.delete_account("p2", "b")
    assert await acme_store.delete_account("p1", "b")
    assert await acme_store.get_account("p1", "b") is None
    assert not await acme_store.delete_account("p1", "b")


async def test_dns_configs_round_trip_scoped_and_ordered(acme_store):
    await acme_store.insert_dns_config(config("y", seconds=5))
    await acme_store.insert_dns_config(config("x", seconds=1))
    await acme_store.insert_dns_config(config("z", project="p2"))
    assert await acme_store.get_dns_config("p1", "y") == config("y", seconds=5)
    assert await acme_store.get_dns_config("p2", "y") is None
    assert [c.id for c in await acme_store.list_dns_configs("p1")] == ["x", "y"]
    with pytest.raises(ConflictError):
        await acme_store.insert_dns_config(config("x"))
    assert await acme_store.delete_dns_config("p1", "x")
    assert [c.id for c in await acme_store.list_dns_configs("p1")] == ["y"]


async def test_tokens_are_overwritten_scoped_and_expire(acme_store):
    await acme_store.put_token(ChallengeToken("p1", "t1", "t1.a", T0 + timedelta(minutes=5)))
    await acme_store.put_token(ChallengeToken("p1", "t1", "t1.b", T0 + timedelta(minutes=10)))
    await acme_store.put_token(ChallengeToken("p2", "t1", "t1.other", T0 + timedelta(minutes=1)))
    assert await acme_store.get_token("p1", "t1") == ChallengeToken("p1", "t1", "t1.b", T0 + timedelta(minutes=10))
    assert (await acme_store.get_token("p2", "t1")).key_authorization == "t1.other"
    assert await acme_store.get_token("p3", "t1") is None
    assert await acme_store.delete_expired_tokens(T0 + timedelta(minutes=2)) == 1
    assert await acme_store.get_token("p2", "t1") is None
    assert await acme_store.get_token("p1", "t1") is not None
    await acme_store.delete_token("p1", "t1")
    assert await acme_store.get_token("p1", "t1") is None
    await acme_store.delete_token("p1", "t1")  # absent: no error
