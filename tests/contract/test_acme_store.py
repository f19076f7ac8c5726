"""AcmeStore contract, on SQLite and on MongoDB (FerretDB): every adapter passes the same tests."""

from __future__ import annotations

import asyncio
import hmac
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from gatewaycerts.core.acme import nonces
from gatewaycerts.domain.acme import (
    PENDING,
    PROCESSING,
    Account,
    AcmeCertificate,
    AcmeOrder,
    AcmePolicy,
    AcmeProblem,
    Authorization,
    Challenge,
    EabKey,
    Identifier,
)
from gatewaycerts.domain.errors import ConflictError, NotFoundError
from gatewaycerts.pki.jws import b64d, b64e
from gatewaycerts.store.mongo.acme import MongoAcmeStore
from gatewaycerts.store.sqlite.acme import SqliteAcmeStore
from gatewaycerts.store.sqlite.base import SqliteDatabase

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CA, OTHER_CA = "ca-1", "ca-2"


@pytest.fixture(params=["sqlite", "mongo"])
async def acme_store(request, tmp_path, mongo_database):
    if request.param == "sqlite":
        store = SqliteAcmeStore(SqliteDatabase(tmp_path / "acme.db"))
        await store.ensure_schema()
        yield store
        await store.close()
        return
    uri = request.getfixturevalue("mongodb_uri")
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    store = MongoAcmeStore(client, mongo_database)
    await store.ensure_schema()
    yield store
    await client.drop_database(mongo_database)
    await client.close()


def account(aid: str = "a1", thumb: str = "t1", ca: str = CA) -> Account:
    return Account(aid, ca, "p1", {"kty": "EC"}, thumb, "valid", ("mailto:x@example.test",), NOW)


def authz(aid: str, order_id: str, status: str = PENDING, challenge: str = PENDING, **kw) -> Authorization:
    return Authorization(
        id=aid,
        ca_id=kw.get("ca", CA),
        project_id="p1",
        account_id="a1",
        order_id=order_id,
        identifier=Identifier("dns", f"{aid}.example.test"),
        wildcard=False,
        status=status,
        expires=NOW + timedelta(days=7),
        challenges=(Challenge("c1", "http-01", "tok", status=challenge),),
        create_time=kw.get("created", NOW),
    )


def order(oid: str, authz_ids: tuple[str, ...], account_id: str = "a1") -> AcmeOrder:
    return AcmeOrder(
        id=oid,
        ca_id=CA,
        project_id="p1",
        account_id=account_id,
        status=PENDING,
        identifiers=tuple(Identifier("dns", f"{a}.example.test") for a in authz_ids),
        authorization_ids=authz_ids,
        expires=NOW + timedelta(days=7),
        create_time=NOW,
        not_after_days=90,
    )


async def test_policy_insert_once_then_compare_and_swap(acme_store):
    assert await acme_store.get_policy(CA) is None
    p = await acme_store.put_policy(
        AcmePolicy(CA, "p1", enabled=True, allowed_domains=("example.test",)), expected_revision=None
    )
    with pytest.raises(ConflictError):
        await acme_store.put_policy(AcmePolicy(CA, "p1"), expected_revision=None)
    p2 = await acme_store.put_policy(replace(p, eab_required=False), expected_revision=p.revision)
    assert p2.revision == p.revision + 1
    with pytest.raises(ConflictError):
        await acme_store.put_policy(replace(p, enabled=False), expected_revision=p.revision)
    got = await acme_store.get_policy(CA)
    assert got == p2 and got.allowed_domains == ("example.test",) and got.eab_required is False


async def test_eab_keys_per_ca_and_single_use_by_revision(acme_store):
    key = EabKey("k1", CA, "p1", b"\x00envelope", NOW, NOW + timedelta(days=1))
    await acme_store.insert_eab_key(key)
    with pytest.raises(ConflictError):
        await acme_store.insert_eab_key(key)
    assert await acme_store.get_eab_key(OTHER_CA, "k1") is None
    got = await acme_store.get_eab_key(CA, "k1")
    assert got == key and isinstance(got.encrypted_hmac_key, bytes)
    used = await acme_store.replace_eab_key(replace(key, status="used", account_id="a1"), expected_revision=0)
    with pytest.raises(ConflictError):  # a second account racing for the same key loses
        await acme_store.replace_eab_key(replace(key, status="used", account_id="a2"), expected_revision=0)
    assert [k.kid for k in await acme_store.list_eab_keys(CA)] == ["k1"]
    assert (await acme_store.get_eab_key(CA, "k1")).account_id == used.account_id == "a1"
    assert await acme_store.list_eab_keys(OTHER_CA) == []


async def test_accounts_unique_by_key_thumbprint_per_ca_and_key_change(acme_store):
    await acme_store.insert_account(account())
    with pytest.raises(ConflictError):
        await acme_store.insert_account(account("a2", "t1"))
    await acme_store.insert_account(account("a3", "t1", OTHER_CA))  # another CA's directory
    assert (await acme_store.account_by_thumbprint(CA, "t1")).id == "a1"
    assert await acme_store.get_account(OTHER_CA, "a1") is None
    await acme_store.insert_account(account("a4", "t4"))
    a1 = await acme_store.get_account(CA, "a1")
    with pytest.raises(ConflictError):  # t4 is a4's key
        await acme_store.replace_account(replace(a1, thumbprint="t4"), expected_revision=a1.revision)
    assert (await acme_store.account_by_thumbprint(CA, "t4")).id == "a4"
    moved = await acme_store.replace_account(replace(a1, thumbprint="t9"), expected_revision=a1.revision)
    assert (await acme_store.account_by_thumbprint(CA, "t9")).id == "a1"
    assert await acme_store.account_by_thumbprint(CA, "t1") is None
    with pytest.raises(ConflictError):
        await acme_store.replace_account(replace(a1, status="deactivated"), expected_revision=a1.revision)
    with pytest.raises(NotFoundError):
        await acme_store.replace_account(account("ghost", "tg"), expected_revision=0)
    assert moved.revision == 1


async def test_orders_authorizations_and_listing(acme_store):
    await acme_store.insert_order(order("o1", ("z1", "z2")), [authz("z1", "o1"), authz("z2", "o1")])
    await acme_store.insert_order(order("o2", ("z3",)), [authz("z3", "o2")])
    await acme_store.insert_order(order("o3", ("z4",), account_id="a9"), [authz("z4", "o3")])
    got = await acme_store.get_order(CA, "o1")
    assert got.authorization_ids == ("z1", "z2") and got.identifiers[0] == Identifier("dns", "z1.example.test")
    assert await acme_store.get_order(OTHER_CA, "o1") is None
    assert [o.id for o in await acme_store.list_orders(CA, "a1", "", 10)] == ["o1", "o2"]
    assert [o.id for o in await acme_store.list_orders(CA, "a1", "o1", 10)] == ["o2"]
    assert [o.id for o in await acme_store.list_orders(CA, "a1", "", 1)] == ["o1"]
    ready = await acme_store.replace_order(replace(got, status="ready"), expected_revision=0)
    with pytest.raises(ConflictError):
        await acme_store.replace_order(replace(got, status="invalid"), expected_revision=0)
    assert (await acme_store.get_order(CA, "o1")).status == "ready" == ready.status
    z1 = await acme_store.get_authorization(CA, "z1")
    assert z1.challenges[0] == Challenge("c1", "http-01", "tok")


async def test_claimable_authorizations_and_claims(acme_store):
    await acme_store.insert_order(
        order("o1", ("z1", "z2", "z3")),
        [
            authz("z1", "o1", challenge=PROCESSING, created=NOW),
            authz("z2", "o1", challenge=PROCESSING, created=NOW + timedelta(seconds=1)),
            authz("z3", "o1"),
        ],
    )
    claimable = await acme_store.claimable_authorizations(NOW, 10)
    assert [a.id for a in claimable] == ["z1", "z2"]
    z1 = claimable[0]
    claimed = await acme_store.replace_authorization(
        replace(z1, claim_until=NOW + timedelta(seconds=90)), expected_revision=z1.revision
    )
    with pytest.raises(ConflictError):  # a second worker's claim on the same revision loses
        await acme_store.replace_authorization(
            replace(z1, claim_until=NOW + timedelta(seconds=90)), expected_revision=z1.revision
        )
    assert [a.id for a in await acme_store.claimable_authorizations(NOW, 10)] == ["z2"]
    # A claim that lapsed (its worker died) is claimable again.
    assert [a.id for a in await acme_store.claimable_authorizations(NOW + timedelta(seconds=91), 10)] == ["z1", "z2"]
    done = replace(
        claimed, status="valid", challenges=(replace(claimed.challenges[0], status="valid"),), claim_until=None
    )
    await acme_store.replace_authorization(done, expected_revision=claimed.revision)
    assert [a.id for a in await acme_store.claimable_authorizations(NOW + timedelta(seconds=91), 10)] == ["z2"]


async def test_concurrent_claims_have_one_winner(acme_store):
    await acme_store.insert_order(order("o1", ("z1",)), [authz("z1", "o1", challenge=PROCESSING)])
    (z1,) = await acme_store.claimable_authorizations(NOW, 10)

    async def claim() -> bool:
        try:
            await acme_store.replace_authorization(
                replace(z1, claim_until=NOW + timedelta(seconds=60)), expected_revision=z1.revision
            )
            return True
        except ConflictError:
            return False

    results = await asyncio.gather(*(claim() for _ in range(8)))
    assert results.count(True) == 1


def _nonce(expires: datetime, tag: bytes) -> bytes:
    """A nonce's body as NonceService makes it: its expiry (8 bytes, big-endian), then 12 random bytes."""
    return int(expires.timestamp()).to_bytes(8, "big") + tag.ljust(12, b"\0")


async def test_nonces_are_single_use_and_purged(acme_store):
    n1, n2 = _nonce(NOW + timedelta(hours=1), b"n1"), _nonce(NOW, b"n2")
    assert await acme_store.use_nonce(n1) is True
    assert await acme_store.use_nonce(n1) is False
    results = await asyncio.gather(*(acme_store.use_nonce(n2) for _ in range(8)))
    assert results.count(True) == 1
    assert await acme_store.purge_nonces(NOW + timedelta(minutes=1)) == 1  # n2 expired, n1 not yet
    assert await acme_store.use_nonce(n1) is False
    assert await acme_store.use_nonce(n2) is True  # purged: the store forgot it (its own expiry refuses it)
    first = await acme_store.nonce_key(b"k" * 32)
    assert first == b"k" * 32 and await acme_store.nonce_key(b"z" * 32) == first


@pytest.mark.parametrize("key_len", [0, 1, 32, 64, 65, 200])
def test_the_nonce_mac_from_precomputed_states_is_hmac_sha256(key_len):
    key = os.urandom(key_len)
    mac = nonces.nonce_mac(key)
    for _ in range(50):
        body = os.urandom(20)
        want = hmac.digest(key, nonces._LABEL + body, "sha256")[: nonces._MAC_BYTES]
        assert mac(body) == want == nonces.nonce_mac_one_shot(key)(body) == nonces.nonce_mac_openssl(key)(body)


def test_the_nonce_mac_uses_cpythons_own_sha256_states():
    """Not OpenSSL's (the module docstring says why): the states nonce_mac copies are the interpreter's own."""
    import hashlib

    assert nonces.SHA256_STATES is not hashlib.sha256
    assert type(nonces.SHA256_STATES(b"")).__module__ in ("_sha2", "_sha256")


def test_random_parts_are_twelve_bytes_each_handed_out_once_across_pools():
    parts = [nonces.random_part() for _ in range(3 * nonces.RANDOM_POOL + 5)]  # three pools spent, a fourth begun
    assert {len(p) for p in parts} == {12}
    assert len(set(parts)) == len(parts)


def test_a_forked_child_does_not_hand_out_its_parents_pooled_parts():
    nonces.random_part()  # a pool with RANDOM_POOL - 1 parts left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next parts, then gone
        try:
            os.write(write, b"".join(nonces.random_part() for _ in range(nonces.RANDOM_POOL)))
        finally:
            os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 65536):
        child += chunk
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    assert len(child) == 12 * nonces.RANDOM_POOL
    mine = {nonces.random_part() for _ in range(nonces.RANDOM_POOL - 1)}  # the rest of the parent's pool
    theirs = {child[i : i + 12] for i in range(0, len(child), 12)}
    assert not mine & theirs


async def test_the_nonce_service_accepts_its_nonce_once_and_refuses_forged_ones(acme_store):
    service = nonces.NonceService(acme_store)
    nonce = await service.new()
    assert len(nonce) == 43 and b64e(b64d(nonce, "nonce")) == nonce
    await service.use(nonce)
    with pytest.raises(AcmeProblem, match="used already"):
        await service.use(nonce)
    raw = bytearray(b64d(await service.new(), "nonce"))
    raw[-1] ^= 1  # one bit of the MAC
    with pytest.raises(AcmeProblem, match="not issued by this server"):
        await service.use(b64e(bytes(raw)))
    raw[-1] ^= 1
    raw[10] ^= 1  # one bit of the random part: the MAC no longer matches
    with pytest.raises(AcmeProblem, match="not issued by this server"):
        await service.use(b64e(bytes(raw)))
    raw[10] ^= 1
    good = b64e(bytes(raw))
    for bad in (
        good[:-1],  # one character short
        good + "A",
        good + "=",  # padded
        good[:42] + "=",
        good[:5] + "é" + good[6:],  # not ASCII
        good[:5] + "!" + good[6:],
        good.replace("-", "+").replace("_", "/") if ("-" in good or "_" in good) else "+" + good[1:],  # base64
        " " + good[1:],
    ):
        assert bad != good
        with pytest.raises(AcmeProblem, match="not issued by this server"):
            await service.use(bad)
    for missing in (None, "", 42):
        with pytest.raises(AcmeProblem, match="no nonce"):
            await service.use(missing)
    await service.use(good)  # the untouched one is still unused
    other = nonces.NonceService(acme_store)  # another worker on the same store: same key, and used is used
    with pytest.raises(AcmeProblem, match="used already"):
        await other.use(b64e(bytes(raw)))
    await other.use(await service.new())
    old = nonces.NonceService(acme_store)
    old.mac_from_key = nonces.nonce_mac_one_shot  # the same nonces with the MAC by hmac.digest
    await old.use(await service.new())
    await service.use(await old.new())
    expired = nonces.NonceService(acme_store, lifetime_seconds=-10)
    with pytest.raises(AcmeProblem, match="expired"):
        await service.use(await expired.new())


async def test_certificates_and_replacement_once(acme_store):
    cert = AcmeCertificate(CA, "12345", "cert-1", "a1", "o1", NOW, NOW + timedelta(days=90))
    await acme_store.insert_certificate(cert)
    assert await acme_store.get_certificate(CA, "12345") == cert
    assert await acme_store.get_certificate(OTHER_CA, "12345") is None
    results = await asyncio.gather(*(acme_store.mark_replaced(CA, "12345", f"o{i}") for i in range(4)))
    assert results.count(True) == 1
    assert await acme_store.mark_replaced(CA, "12345", "o9") is False


async def test_claimable_finalizations_are_processing_orders_without_a_live_lease(acme_store):
    await acme_store.insert_order(order("o1", ("z1",)), [authz("z1", "o1")])
    await acme_store.insert_order(order("o2", ("z2",)), [authz("z2", "o2")])
    await acme_store.insert_order(order("o3", ("z3",)), [authz("z3", "o3")])
    assert await acme_store.claimable_finalizations(NOW, 10) == []  # pending orders are not finalizations
    o1, o2 = await acme_store.get_order(CA, "o1"), await acme_store.get_order(CA, "o2")
    leased = await acme_store.replace_order(
        replace(o1, status=PROCESSING, csr_pem="CSR", certificate_id="c1", claim_until=NOW + timedelta(seconds=60)),
        expected_revision=o1.revision,
    )
    await acme_store.replace_order(replace(o2, status=PROCESSING), expected_revision=o2.revision)  # no lease
    assert [o.id for o in await acme_store.claimable_finalizations(NOW, 10)] == ["o2"]
    lapsed = await acme_store.claimable_finalizations(NOW + timedelta(seconds=61), 10)
    assert [o.id for o in lapsed] == ["o1", "o2"]
    assert (lapsed[0].csr_pem, lapsed[0].certificate_id, lapsed[0].claim_until) == (
        "CSR",
        "c1",
        NOW + timedelta(seconds=60),
    )
    await acme_store.replace_order(
        replace(leased, status="valid", claim_until=None, csr_pem=None), expected_revision=leased.revision
    )
    assert [o.id for o in await acme_store.claimable_finalizations(NOW + timedelta(seconds=61), 10)] == ["o2"]
