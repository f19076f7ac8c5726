"""The EnvelopeStore contract (KEK labels, keyset paging, compare-and-swap rewrap, canaries) for every kind of
record that holds a key envelope, run against both adapters (SQLite and MongoDB/FerretDB)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from gatewaycerts.app import build_acme_client_store, build_acme_store
from gatewaycerts.domain.acme import AcmePolicy, EabKey
from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.store.mongo.claims import RevisionClaims
from tests.conftest import STORES, open_stores
from tests.contract.test_acme_client_store import account, config
from tests.contract.test_certificate_store import make as apic_certificate
from tests.contract.test_order_store import order, secret
from tests.contract.test_pca_store import ca, cert

VAULT_A = KeyVault(parse_keks(new_kek_line("A")))
VAULT_B = KeyVault(parse_keks(new_kek_line("B")))
NOT_AN_ENVELOPE = b'{"v":1}\x00\xff'


def wrapped(vault: KeyVault, tag: str = "k") -> bytes:
    return vault.encrypt(tag.encode(), context="contract")


@dataclass
class Kind:
    """How the contract creates, reads, changes and deletes one kind of record through the store's own API."""

    kind: EnvelopeKind
    store: Any
    insert: Callable[[str, bytes | None], Awaitable[None]]
    read: Callable[[str], Awaitable[Any]]  # the whole record (None when gone)
    blob: Callable[[Any], bytes | None]
    set_blob: Callable[[str, bytes], Awaitable[None]]  # a concurrent request stores a new envelope
    touch: Callable[[str], Awaitable[Any]] | None  # a concurrent change of another field (None: no such field)
    delete: Callable[[str], Awaitable[Any]] | None  # hard delete (None: the kind is only ever soft-deleted)
    optional: bool  # records may hold no envelope at all

    def __post_init__(self) -> None:
        # Production ids are unique across a store's collections (the PCA kinds share one claims collection):
        # so are the test's, by a prefix per kind that keeps their order.
        prefix = f"{self.kind.value}-"

        def prefixed(fn):
            return None if fn is None else (lambda rid, *a: fn(prefix + rid, *a))

        for name in ("insert", "read", "set_blob", "touch", "delete"):
            setattr(self, name, prefixed(getattr(self, name)))
        self.prefix = prefix


def kinds(certificates, pca, orders, acme_client=None, acme=None) -> list[Kind]:
    seq = iter(range(1, 10_000))

    async def apic_insert(rid: str, blob: bytes | None) -> None:
        await certificates.insert(replace(apic_certificate(rid), encrypted_private_key=blob))

    async def apic_set(rid: str, blob: bytes) -> None:
        cur = await certificates.get("p1", rid)
        await certificates.replace(replace(cur, encrypted_private_key=blob), expected_revision=cur.revision)

    async def apic_touch(rid: str) -> None:
        cur = await certificates.get("p1", rid)
        await certificates.replace(replace(cur, name=f"renamed_{rid}"), expected_revision=cur.revision)

    async def ca_set(rid: str, blob: bytes) -> None:
        cur = await pca.get_authority("p1", rid)
        await pca.replace_authority(replace(cur, encrypted_key=blob), expected_revision=cur.revision)

    async def ca_touch(rid: str) -> None:
        cur = await pca.get_authority("p1", rid)
        await pca.replace_authority(replace(cur, issuer_name="renamed"), expected_revision=cur.revision)

    async def issued_insert(rid: str, blob: bytes | None) -> None:
        await pca.insert_certificate(cert(rid, seconds=next(seq), encrypted_key=blob))

    async def issued_set(rid: str, blob: bytes) -> None:
        cur = await pca.get_certificate("p1", rid)
        await pca.replace_certificate(replace(cur, encrypted_key=blob), expected_revision=cur.revision)

    async def issued_touch(rid: str) -> None:
        cur = await pca.get_certificate("p1", rid)
        await pca.replace_certificate(replace(cur, issuer_name="renamed"), expected_revision=cur.revision)

    async def secret_set(rid: str, blob: bytes) -> None:
        await orders.put_secret(replace(secret(rid), encrypted_payload=blob))

    async def order_set(rid: str, blob: bytes) -> None:
        cur = await orders.get_order("p1", rid)
        await orders.replace_order(replace(cur, encrypted_params=blob), expected_revision=cur.revision)

    async def order_touch(rid: str) -> None:
        cur = await orders.get_order("p1", rid)
        await orders.replace_order(replace(cur, sub_status="touched"), expected_revision=cur.revision)

    async def secret_insert(rid: str, blob: bytes | None) -> None:
        await orders.put_secret(replace(secret(rid), encrypted_payload=blob or b""))

    async def order_insert(rid: str, blob: bytes | None) -> None:
        await orders.insert_order(order(rid, encrypted_params=blob))

    return [
        Kind(
            EnvelopeKind.APIC_CERTIFICATE,
            certificates,
            apic_insert,
            lambda rid: certificates.get("p1", rid),
            lambda r: r.encrypted_private_key,
            apic_set,
            apic_touch,
            lambda rid: certificates.delete_unbound("p1", rid),
            optional=False,
        ),
        Kind(
            EnvelopeKind.AUTHORITY,
            pca,
            lambda rid, blob: pca.insert_authority(ca(rid, encrypted_key=blob)),
            lambda rid: pca.get_authority("p1", rid),
            lambda r: r.encrypted_key,
            ca_set,
            ca_touch,
            None,
            optional=False,
        ),
        Kind(
            EnvelopeKind.ISSUED_CERTIFICATE,
            pca,
            issued_insert,
            lambda rid: pca.get_certificate("p1", rid),
            lambda r: r.encrypted_key,
            issued_set,
            issued_touch,
            None,
            optional=True,
        ),
        Kind(
            EnvelopeKind.SECRET,
            orders,
            secret_insert,
            lambda rid: orders.get_secret("p1", rid),
            lambda r: r.encrypted_payload,
            secret_set,
            None,
            lambda rid: orders.delete_secret("p1", rid),
            optional=False,
        ),
        Kind(
            EnvelopeKind.ORDER,
            orders,
            order_insert,
            lambda rid: orders.get_order("p1", rid),
            lambda r: r.encrypted_params,
            order_set,
            order_touch,
            lambda rid: orders.delete_order("p1", rid),
            optional=True,
        ),
    ] + ([] if acme_client is None else [*acme_client_kinds(acme_client), acme_eab_kind(acme)])


EAB_CA = "ca-1"  # the scope of the ACME server's EAB keys (their envelope's context names the CA)


def acme_eab_kind(acme) -> Kind:
    """The ACME server's EAB keys: rows of one kind in the table (collection) of every ACME record, changed
    by compare-and-swap on their revision, never deleted."""
    t0 = datetime(2026, 12, 7, tzinfo=UTC)

    async def insert(rid: str, blob: bytes | None) -> None:
        await acme.insert_eab_key(EabKey(rid, EAB_CA, "p1", blob, t0, t0 + timedelta(days=1)))

    async def set_blob(rid: str, blob: bytes) -> None:
        cur = await acme.get_eab_key(EAB_CA, rid)
        await acme.replace_eab_key(replace(cur, encrypted_hmac_key=blob), expected_revision=cur.revision)

    async def touch(rid: str) -> None:
        cur = await acme.get_eab_key(EAB_CA, rid)
        await acme.replace_eab_key(replace(cur, status="revoked"), expected_revision=cur.revision)

    return Kind(
        EnvelopeKind.ACME_EAB_KEY,
        acme,
        insert,
        lambda rid: acme.get_eab_key(EAB_CA, rid),
        lambda r: r.encrypted_hmac_key,
        set_blob,
        touch,
        None,
        optional=False,
    )


def acme_client_kinds(acme_client) -> list[Kind]:
    """The ACME client's accounts (two envelopes each, labelled apart) and DNS update configurations. They are
    never updated after their insert: a concurrent request that stores a new envelope deletes and re-creates."""
    not_ours = b"\x01not an envelope"  # the other envelope of an account made for one kind: labelled ""

    async def key_insert(rid: str, blob: bytes | None) -> None:
        await acme_client.insert_account(account(rid, key_envelope=blob, eab_kid=None, eab_hmac_envelope=None))

    async def eab_insert(rid: str, blob: bytes | None) -> None:
        await acme_client.insert_account(account(rid, key_envelope=not_ours, eab_hmac_envelope=blob))

    async def tsig_insert(rid: str, blob: bytes | None) -> None:
        await acme_client.insert_dns_config(replace(config(rid), tsig_secret_envelope=blob))

    def recreate(insert):
        async def set_blob(rid: str, blob: bytes) -> None:
            await acme_client.delete_account("p1", rid)
            await acme_client.delete_dns_config("p1", rid)
            await insert(rid, blob)

        return set_blob

    return [
        Kind(
            EnvelopeKind.ACME_ACCOUNT_KEY,
            acme_client,
            key_insert,
            lambda rid: acme_client.get_account("p1", rid),
            lambda r: r.key_envelope,
            recreate(key_insert),
            None,
            lambda rid: acme_client.delete_account("p1", rid),
            optional=False,
        ),
        Kind(
            EnvelopeKind.ACME_ACCOUNT_EAB,
            acme_client,
            eab_insert,
            lambda rid: acme_client.get_account("p1", rid),
            lambda r: r.eab_hmac_envelope,
            recreate(eab_insert),
            None,
            lambda rid: acme_client.delete_account("p1", rid),
            optional=True,
        ),
        Kind(
            EnvelopeKind.DNS_UPDATE_TSIG,
            acme_client,
            tsig_insert,
            lambda rid: acme_client.get_dns_config("p1", rid),
            lambda r: r.tsig_secret_envelope,
            recreate(tsig_insert),
            None,
            lambda rid: acme_client.delete_dns_config("p1", rid),
            optional=False,
        ),
    ]


async def with_acme_client(stores) -> tuple[Any, ...]:
    """The stores that hold envelopes: certificates, PCA, orders, and the ACME client's and the ACME server's
    on the same database (the server's with a record of another kind beside the EAB keys)."""
    acme_client, acme = build_acme_client_store(stores[0]), build_acme_store(stores[0])
    await acme_client.ensure_schema()
    await acme.ensure_schema()
    if await acme.get_policy(EAB_CA) is None:
        await acme.put_policy(AcmePolicy(EAB_CA, "p1"), expected_revision=None)
    return (*stores[:3], acme_client, acme)


@pytest.fixture(params=STORES)
async def trio(request: pytest.FixtureRequest, tmp_path: Path, mongo_database: str):
    async with open_stores(request.param, request, tmp_path, mongo_database) as stores:
        yield await with_acme_client(stores)  # the stores that hold envelopes (not the audit trail)


async def one(k: Kind, label: str | None, rid: str) -> StoredEnvelope:
    (env,) = [e for e in await k.store.envelopes(k.kind, label, "", 100) if e.record_id == k.prefix + rid]
    return env


async def ids(k: Kind, label: str | None, after: str = "", limit: int = 100) -> list[str]:
    """The un-prefixed ids of a page of `envelopes`."""
    page = await k.store.envelopes(k.kind, label, k.prefix + after if after else "", limit)
    return [e.record_id.removeprefix(k.prefix) for e in page]


async def test_envelopes_are_found_by_their_kek_label_and_paged_by_id(trio):
    for k in kinds(*trio):
        blobs = {f"r{i}": wrapped(VAULT_B if i in (2, 4) else VAULT_A, f"r{i}") for i in range(1, 6)}
        for rid in ("r4", "r1", "r5", "r2", "r3"):  # insertion order is not paging order
            await k.insert(rid, blobs[rid])
        await k.insert("x_fake", NOT_AN_ENVELOPE)  # not an envelope: no KEK could re-wrap it
        if k.optional:
            await k.insert("x_none", None)

        first = await k.store.envelopes(k.kind, "A", "", 2)
        assert await ids(k, "A", "", 2) == ["r1", "r3"], k.kind
        assert await ids(k, "A", "r3", 2) == ["r5"]
        assert await ids(k, "A", "r5", 2) == []
        assert await ids(k, "B") == ["r2", "r4"]
        assert all(e.kind is k.kind and e.project_id == "p1" and e.kek_id == "A" for e in first)
        scope = EAB_CA if k.kind is EnvelopeKind.ACME_EAB_KEY else None  # the parent the context names
        assert all(e.scope == scope for e in first), k.kind
        assert [e.envelope for e in first] == [blobs["r1"], blobs["r3"]]
        assert await k.store.count_envelopes(k.kind, "A") == 3
        assert await k.store.count_envelopes(k.kind, "B") == 2
        # every record written by this version is labelled: nothing is left for the unlabelled query
        assert await k.store.envelopes(k.kind, None, "", 10) == []
        assert await k.store.count_envelopes(k.kind, None) == 0
        samples = {s.kek_id: s for s in await k.store.envelope_samples(k.kind)}
        assert set(samples) == {"A", "B"}, k.kind
        assert samples["A"].envelope == blobs[samples["A"].record_id.removeprefix(k.prefix)]
        assert samples["B"].envelope == blobs[samples["B"].record_id.removeprefix(k.prefix)]


async def test_rewrap_replaces_only_the_envelope_and_its_label(trio):
    for k in kinds(*trio):
        await k.insert("r1", wrapped(VAULT_A))
        before = await k.read("r1")
        new = wrapped(VAULT_B)
        assert await k.store.rewrap_envelope(await one(k, "A", "r1"), new, "B") is RewrapOutcome.REWRAPPED
        after = await k.read("r1")
        assert k.blob(after) == new
        field = {
            EnvelopeKind.APIC_CERTIFICATE: "encrypted_private_key",
            EnvelopeKind.AUTHORITY: "encrypted_key",
            EnvelopeKind.ISSUED_CERTIFICATE: "encrypted_key",
            EnvelopeKind.SECRET: "encrypted_payload",
            EnvelopeKind.ORDER: "encrypted_params",
            EnvelopeKind.ACME_ACCOUNT_KEY: "key_envelope",
            EnvelopeKind.ACME_ACCOUNT_EAB: "eab_hmac_envelope",
            EnvelopeKind.DNS_UPDATE_TSIG: "tsig_secret_envelope",
            EnvelopeKind.ACME_EAB_KEY: "encrypted_hmac_key",
        }[k.kind]
        assert after == replace(before, **{field: new}), k.kind  # revision, times and the rest unchanged
        assert await k.store.count_envelopes(k.kind, "A") == 0
        assert await ids(k, "B") == ["r1"]


async def test_rewrap_never_overwrites_an_envelope_changed_after_the_read(trio):
    for k in kinds(*trio):
        await k.insert("r1", wrapped(VAULT_A))
        read = await one(k, "A", "r1")
        theirs = wrapped(VAULT_B, "uploaded meanwhile")
        await k.set_blob("r1", theirs)
        assert await k.store.rewrap_envelope(read, wrapped(VAULT_B), "B") is RewrapOutcome.CHANGED, k.kind
        assert k.blob(await k.read("r1")) == theirs


async def test_rewrap_never_recreates_a_deleted_record(trio):
    for k in kinds(*trio):
        if k.delete is None:
            continue
        await k.insert("r1", wrapped(VAULT_A))
        read = await one(k, "A", "r1")
        await k.delete("r1")
        assert await k.store.rewrap_envelope(read, wrapped(VAULT_B), "B") is RewrapOutcome.GONE, k.kind
        assert await k.read("r1") is None
        assert await k.store.count_envelopes(k.kind, "A") == 0 and await k.store.count_envelopes(k.kind, "B") == 0


async def test_a_concurrent_change_of_another_field_survives_the_rewrap(trio):
    for k in kinds(*trio):
        if k.touch is None:
            continue
        old = wrapped(VAULT_A)
        await k.insert("r1", old)
        read = await one(k, "A", "r1")
        await k.touch("r1")
        touched = await k.read("r1")
        outcome = await k.store.rewrap_envelope(read, wrapped(VAULT_B), "B")
        # SQLite compares the envelope alone and re-wraps; MongoDB compares the revision it claimed too and
        # leaves the record to the next pass. Either way the other change is kept.
        assert outcome in (RewrapOutcome.REWRAPPED, RewrapOutcome.CHANGED), k.kind
        now = await k.read("r1")
        if outcome is RewrapOutcome.CHANGED:
            assert now == touched
        else:
            assert k.blob(now) != old and now.revision == touched.revision


async def test_labels_follow_every_write(trio):
    for k in kinds(*trio):
        await k.insert("r1", wrapped(VAULT_A))
        await k.set_blob("r1", wrapped(VAULT_B))
        assert await k.store.count_envelopes(k.kind, "A") == 0
        assert await k.store.count_envelopes(k.kind, "B") == 1
        if k.touch is not None:
            await k.touch("r1")
            assert await k.store.count_envelopes(k.kind, "B") == 1


async def test_kek_canaries_keep_the_first_writer(trio):
    certificates = trio[0]
    assert await certificates.kek_canaries() == {}
    first, second = wrapped(VAULT_A, "1"), wrapped(VAULT_A, "2")
    assert await certificates.add_kek_canary("A", first) == first
    assert await certificates.add_kek_canary("A", second) == first  # another replica lost the race: keeps ours
    b = wrapped(VAULT_B)
    assert await certificates.add_kek_canary("B", b) == b
    assert await certificates.kek_canaries() == {"A": first, "B": b}


async def test_sqlite_databases_from_before_labels_are_labelled_at_start(tmp_path: Path, request, mongo_database):
    async with open_stores("sqlite", request, tmp_path, mongo_database) as stores:
        ks = kinds(*await with_acme_client(stores))
        for k in ks:
            for i in range(3):
                await k.insert(f"r{i}", wrapped(VAULT_A if i else VAULT_B))
            if k.optional:
                await k.insert("x_none", None)
        # Turn the file into one written before this version: no kek_id columns, no label indexes.
        with sqlite3.connect(tmp_path / "store.db") as conn:
            for table in ("certificates", "pca_authorities", "pca_certificates", "orders", "secrets"):
                conn.execute(f"DROP INDEX {table}_kek")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN kek_id")
            for table, column, index in (
                ("acme_accounts", "kek_id", "acme_accounts_kek"),
                ("acme_accounts", "eab_kek_id", "acme_accounts_eab_kek_id"),
                ("dns_update_configs", "kek_id", "dns_update_configs_kek"),
            ):
                conn.execute(f"DROP INDEX {index}")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            conn.execute("DROP INDEX acme_records_acme_eab_kek")
            conn.execute("ALTER TABLE acme_records DROP COLUMN kek_id")
        for store in (*stores, ks[-2].store, ks[-1].store):
            await store.ensure_schema()
        for k in ks:
            assert await ids(k, "A") == ["r1", "r2"], k.kind
            assert await k.store.count_envelopes(k.kind, "B") == 1
            assert await k.store.count_envelopes(k.kind, None) == 0
        with sqlite3.connect(tmp_path / "store.db") as conn:
            indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            plan = " ".join(
                str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM secrets WHERE kek_id = 'A' AND id > ''")
            )
        assert {
            "certificates_kek",
            "pca_authorities_kek",
            "pca_certificates_kek",
            "orders_kek",
            "secrets_kek",
            "acme_accounts_kek",
            "acme_accounts_eab_kek_id",
            "dns_update_configs_kek",
            "acme_records_acme_eab_kek",
        } <= indexes
        assert "secrets_kek" in plan  # the query that finds old envelopes is an index range scan
    with sqlite3.connect(tmp_path / "store.db") as conn:
        for sql, index in (  # the rotation's own queries for the ACME kinds: the label indexes
            (ks[-1].store._envelope_table(EnvelopeKind.ACME_EAB_KEY), "acme_records_acme_eab_kek"),
            (ks[-3].store._envelope_table(EnvelopeKind.ACME_ACCOUNT_EAB), "acme_accounts_eab_kek_id"),
        ):
            where, _ = sql.label_clause("A")
            query = f"EXPLAIN QUERY PLAN SELECT {sql.selected} FROM {sql.table} WHERE {where} AND id > '' ORDER BY id"
            plan = " ".join(str(r) for r in conn.execute(query.replace("?", "'A'")))
            assert index in plan, plan


async def test_mongo_documents_from_before_labels_are_found_and_labelled_by_rewrap(
    tmp_path: Path, request, mongo_database, mongodb_uri
):
    collections = {  # kind -> (collection, label field)
        EnvelopeKind.APIC_CERTIFICATE: ("certificates", "kek_id"),
        EnvelopeKind.AUTHORITY: ("pca_authorities", "kek_id"),
        EnvelopeKind.ISSUED_CERTIFICATE: ("pca_certificates", "kek_id"),
        EnvelopeKind.SECRET: ("secrets", "kek_id"),
        EnvelopeKind.ORDER: ("orders", "kek_id"),
        EnvelopeKind.ACME_ACCOUNT_KEY: ("acme_accounts", "kek_id"),
        EnvelopeKind.ACME_ACCOUNT_EAB: ("acme_accounts", "eab_kek_id"),
        EnvelopeKind.DNS_UPDATE_TSIG: ("dns_update_configs", "kek_id"),
        EnvelopeKind.ACME_EAB_KEY: ("acme_records", "kek_id"),
    }
    async with open_stores("mongo", request, tmp_path, mongo_database) as stores:
        client: AsyncMongoClient = AsyncMongoClient(mongodb_uri, tz_aware=True)
        try:
            db = client[mongo_database]
            for k in kinds(*await with_acme_client(stores)):
                await k.insert("r1", wrapped(VAULT_A))
                await k.insert("r2", wrapped(VAULT_B))
                if k.optional:
                    await k.insert("x_none", None)
                # written before this version: no kek_id field
                collection, label = collections[k.kind]
                await db[collection].update_many({}, {"$unset": {label: ""}})
                legacy = await k.store.envelopes(k.kind, None, "", 10)
                assert [(e.record_id, e.kek_id) for e in legacy] == [(k.prefix + "r1", None), (k.prefix + "r2", None)]
                assert await k.store.count_envelopes(k.kind, None) == 2
                assert [s.kek_id for s in await k.store.envelope_samples(k.kind)] == [None]
                assert await k.store.rewrap_envelope(legacy[0], wrapped(VAULT_B), "B") is RewrapOutcome.REWRAPPED
                assert await k.store.count_envelopes(k.kind, None) == 1
                assert await k.store.count_envelopes(k.kind, "B") == 1
        finally:
            await client.close()


async def test_mongo_rewrap_yields_to_a_writer_holding_the_record(tmp_path: Path, request, mongo_database):
    """On MongoDB a rewrap claims the record like any writer (FerretDB's filtered updates are not atomic):
    while another writer holds the claim, or a secret's lock, the rewrap changes nothing."""
    async with open_stores("mongo", request, tmp_path, mongo_database) as stores:
        certificates = stores[0]
        for k in kinds(*await with_acme_client(stores)):
            if k.kind is EnvelopeKind.APIC_CERTIFICATE:
                claims = RevisionClaims(certificates._claims)
            elif hasattr(k.store, "_claims"):
                claims = k.store._claims
            else:  # the ACME client's records: the lock of the kind's envelope collection
                claims = k.store._envelope_collection(k.kind).claims
            old = wrapped(VAULT_A)
            await k.insert("r1", old)
            read = await one(k, "A", "r1")
            rid = read.record_id
            if k.kind is EnvelopeKind.ACME_EAB_KEY:  # claims are keyed by the document's _id: "eab/<kid>"
                rid = k.store._envelope_collection(k.kind).id_prefix + rid
            if read.revision is None:
                await claims.lock(rid)  # put_secret in progress
            else:
                await claims.claim(rid, read.revision)  # a replace in progress
            assert await k.store.rewrap_envelope(read, wrapped(VAULT_B), "B") is RewrapOutcome.CHANGED, k.kind
            assert k.blob(await k.read("r1")) == old
            if read.revision is None:
                await claims.unlock(rid)
            else:
                await claims.give_back(rid, read.revision)
            assert await k.store.rewrap_envelope(read, wrapped(VAULT_B), "B") is RewrapOutcome.REWRAPPED


async def test_mongo_put_secret_never_writes_while_a_rewrap_holds_the_secret(tmp_path: Path, request, mongo_database):
    async with open_stores("mongo", request, tmp_path, mongo_database) as (_, _, orders, _):
        ours = replace(secret("s1"), encrypted_payload=wrapped(VAULT_A))
        await orders.put_secret(ours)
        await orders._claims.lock("s1")  # a rewrap between its compare and its write
        theirs = replace(secret("s1"), encrypted_payload=wrapped(VAULT_B, "overwrite"))
        with pytest.raises(ConflictError):  # it waited (bounded) for the lock and wrote nothing
            await orders.put_secret(theirs)
        assert (await orders.get_secret("p1", "s1")).encrypted_payload == ours.encrypted_payload
        await orders._claims.unlock("s1")
        await orders.put_secret(theirs)
        assert (await orders.get_secret("p1", "s1")).encrypted_payload == theirs.encrypted_payload


async def test_a_batch_of_rewraps_answers_each_record_in_order(trio):
    for k in kinds(*trio):
        if k.delete is None:
            continue
        for rid in ("r1", "r2", "r3"):
            await k.insert(rid, wrapped(VAULT_A, rid))
        read = {e.record_id.removeprefix(k.prefix): e for e in await k.store.envelopes(k.kind, "A", "", 10)}
        await k.set_blob("r2", wrapped(VAULT_B, "theirs"))
        await k.delete("r3")
        new = {rid: wrapped(VAULT_B, f"new {rid}") for rid in read}
        outcomes = await k.store.rewrap_envelopes([(read[rid], new[rid]) for rid in ("r3", "r1", "r2")], "B")
        assert outcomes == [RewrapOutcome.GONE, RewrapOutcome.REWRAPPED, RewrapOutcome.CHANGED], k.kind
        assert k.blob(await k.read("r1")) == new["r1"] and k.blob(await k.read("r2")) != new["r2"]
        assert await k.read("r3") is None
        assert await k.store.rewrap_envelopes([], "B") == []
