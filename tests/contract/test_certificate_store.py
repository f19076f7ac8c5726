"""One contract suite, run against every CertificateStore adapter (SQLite and MongoDB/FerretDB)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.domain.errors import CertificateNotFoundError, ConflictError, DuplicateNameError
from gatewaycerts.domain.models import (
    AlgorithmType,
    Certificate,
    CertificateFilter,
    CertificateInfo,
    CertificateScope,
    DeleteOutcome,
    DomainBinding,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make(cert_id: str, *, project: str = "p1", name: str | None = None, seconds: int = 0, **kw) -> Certificate:
    info = CertificateInfo(
        common_name=kw.pop("cn", "www.example.com"),
        san=("www.example.com", "10.0.0.1"),
        dns_names=("www.example.com",),
        ip_addresses=("10.0.0.1",),
        organization=("Org",),
        organizational_unit=(),
        locality=("City",),
        state=(),
        country=("CN",),
        issuer=("CA Org",),
        serial_number="123456789012345678901234567890",
        version=3,
        not_before=T0,
        not_after=T0 + dt.timedelta(days=90),
        signature_algorithm=kw.pop("sig", "SHA256-RSA"),
        algorithm_type=kw.pop("alg", AlgorithmType.RSA),
        key_size=2048,
        fingerprint_sha256="ab" * 32,
    )
    return Certificate(
        id=cert_id,
        project_id=project,
        name=name or f"cert_{cert_id}",
        scope=kw.pop("scope", CertificateScope.GLOBAL),
        instance_id=kw.pop("instance_id", "common"),
        info=info,
        chain_pem="-----BEGIN CERTIFICATE-----\n...",
        encrypted_private_key=b'{"v":1}\x00\xff',
        trusted_root_ca_pem=None,
        has_trusted_root_ca=False,
        create_time=T0 + dt.timedelta(seconds=seconds),
        update_time=T0 + dt.timedelta(seconds=seconds),
        **kw,
    )


async def test_round_trip_preserves_every_field(store):
    binding = DomainBinding(
        id="b1",
        url_domain="www.example.com",
        instance_ids=("i1",),
        verified_client_certificate_enabled=True,
        create_time=T0,
    )
    cert = make("c1", bindings=(binding,))
    await store.insert(cert)
    assert await store.get("p1", "c1") == cert


async def test_get_is_scoped_to_project(store):
    await store.insert(make("c1"))
    assert await store.get("p2", "c1") is None
    assert await store.get("p1", "missing") is None


async def test_get_summary_is_the_record_without_chain_key_trusted_root_or_bindings(store):
    binding = DomainBinding(
        id="b1",
        url_domain="www.example.com",
        instance_ids=("i1",),
        verified_client_certificate_enabled=True,
        create_time=T0,
    )
    cert = make("c1", bindings=(binding,))
    cert = replace(cert, trusted_root_ca_pem="-----BEGIN CERTIFICATE-----\nroot", has_trusted_root_ca=True)
    await store.insert(cert)
    summary = await store.get_summary("p1", "c1")
    assert summary == replace(cert, chain_pem="", encrypted_private_key=b"", trusted_root_ca_pem=None, bindings=())
    assert await store.get_summary("p2", "c1") is None
    assert await store.get_summary("p1", "missing") is None
    # Every change is read at once, even right after the same record was read.
    assert await store.get_summary("p1", "c1") == summary
    stored = await store.replace(replace(cert, name="renamed"), expected_revision=1)
    again = await store.get_summary("p1", "c1")
    assert again.name == "renamed" and again.revision == stored.revision == 2
    assert await store.delete_unbound("p1", "c1") == DeleteOutcome.IN_USE
    await store.replace(replace(stored, bindings=()), expected_revision=2)
    assert (await store.get_summary("p1", "c1")).revision == 3
    assert await store.delete_unbound("p1", "c1") == DeleteOutcome.DELETED
    assert await store.get_summary("p1", "c1") is None


async def test_duplicate_name_in_same_scope(store):
    await store.insert(make("c1", name="same_name"))
    with pytest.raises(DuplicateNameError):
        await store.insert(make("c2", name="same_name"))
    await store.insert(make("c3", name="same_name", project="p2"))
    await store.insert(make("c4", name="same_name", scope=CertificateScope.INSTANCE, instance_id="i1"))


async def test_concurrent_inserts_of_one_name_admit_one(store):
    results = await asyncio.gather(
        *(store.insert(make(f"c{i}", name="racy_name")) for i in range(10)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, DuplicateNameError) for r in results if r is not None)


async def test_list_orders_newest_first_and_pages(store):
    for i in range(5):
        await store.insert(make(f"c{i}", seconds=i))
    await store.insert(make("other", project="p2", seconds=10))
    page = await store.list("p1", CertificateFilter(), 0, 2)
    assert page.total == 5 and [c.id for c in page.items] == ["c4", "c3"]
    page = await store.list("p1", CertificateFilter(), 4, 10)
    assert [c.id for c in page.items] == ["c0"]
    summary = page.items[0]
    assert summary.chain_pem == "" and summary.encrypted_private_key == b"" and summary.bindings == ()
    assert summary.info == make("c0").info


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        pytest.param(CertificateFilter(name_contains="ALPHA"), {"a"}, id="name case-insensitive"),
        pytest.param(CertificateFilter(name_contains="ha_"), {"a"}, id="name literal underscore"),
        pytest.param(CertificateFilter(name_contains=".*"), set(), id="name regex is literal"),
        pytest.param(CertificateFilter(common_name="ec.example.com"), {"b"}, id="common_name"),
        pytest.param(CertificateFilter(signature_algorithm="ECDSA-SHA256"), {"b"}, id="signature_algorithm"),
        pytest.param(CertificateFilter(scope=CertificateScope.INSTANCE), {"c"}, id="type"),
        pytest.param(CertificateFilter(instance_id="i9"), {"c"}, id="instance_id"),
        pytest.param(CertificateFilter(algorithm_type=AlgorithmType.ECC), {"b"}, id="algorithm_type"),
        pytest.param(CertificateFilter(algorithm_type=AlgorithmType.RSA, name_contains="x"), {"c"}, id="combined"),
    ],
)
async def test_list_filters(store, flt, expected):
    await store.insert(make("a", name="alpha_one"))
    await store.insert(make("b", name="beta_two", cn="ec.example.com", sig="ECDSA-SHA256", alg=AlgorithmType.ECC))
    await store.insert(make("c", name="gamma_xx", scope=CertificateScope.INSTANCE, instance_id="i9"))
    page = await store.list("p1", flt, 0, 10)
    assert {c.id for c in page.items} == expected and page.total == len(expected)


async def test_replace_with_revision_check(store):
    cert = make("c1")
    await store.insert(cert)
    stored = await store.replace(replace(cert, name="renamed"), expected_revision=1)
    assert stored.revision == 2 and (await store.get("p1", "c1")).name == "renamed"
    with pytest.raises(ConflictError):
        await store.replace(replace(cert, name="stale"), expected_revision=1)
    with pytest.raises(CertificateNotFoundError):
        await store.replace(make("ghost"), expected_revision=1)
    await store.insert(make("c2", name="taken_name"))
    with pytest.raises(DuplicateNameError):
        await store.replace(replace(stored, name="taken_name"), expected_revision=2)
    assert (await store.get("p1", "c1")).name == "renamed"


async def test_concurrent_replaces_one_wins(store):
    cert = make("c1")
    await store.insert(cert)
    results = await asyncio.gather(
        *(store.replace(replace(cert, name=f"n_{i}"), expected_revision=1) for i in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, Exception))


async def test_delete_only_while_unbound(store):
    binding = DomainBinding(
        id="b1",
        url_domain="www.example.com",
        instance_ids=(),
        verified_client_certificate_enabled=False,
        create_time=T0,
    )
    await store.insert(make("c1", bindings=(binding,)))
    await store.insert(make("c2"))
    assert await store.delete_unbound("p1", "c1") is DeleteOutcome.IN_USE
    assert await store.delete_unbound("p2", "c2") is DeleteOutcome.NOT_FOUND
    assert await store.delete_unbound("p1", "c2") is DeleteOutcome.DELETED
    assert await store.get("p1", "c2") is None
    assert await store.delete_unbound("p1", "c2") is DeleteOutcome.NOT_FOUND
    assert await store.get("p1", "c1") is not None


async def test_ping(store):
    await store.ping()


async def test_concurrent_delete_and_replace_never_both_win(store):
    binding = DomainBinding(
        id="b1",
        url_domain="www.example.com",
        instance_ids=(),
        verified_client_certificate_enabled=False,
        create_time=T0,
    )
    for i in range(5):
        cert = make(f"c{i}")
        await store.insert(cert)
        replaced, deleted = await asyncio.gather(
            store.replace(replace(cert, bindings=(binding,)), expected_revision=1),
            store.delete_unbound("p1", cert.id),
            return_exceptions=True,
        )
        stored = await store.get("p1", cert.id)
        if deleted is DeleteOutcome.DELETED:
            assert stored is None and isinstance(replaced, (ConflictError, CertificateNotFoundError))
        else:
            assert isinstance(deleted, ConflictError) or deleted is DeleteOutcome.IN_USE
            assert stored is not None and stored.bindings == (binding,)


async def test_mongo_stale_revision_claim_is_taken_over(request, mongodb_uri, mongo_database):
    """Mongo adapter only: a claim left by a crashed writer blocks for CLAIM_TIMEOUT, then is taken over."""
    from pymongo import AsyncMongoClient

    from gatewaycerts.store.mongo.certificates import CLAIM_TIMEOUT, MongoCertificateStore

    client = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        store = MongoCertificateStore(client, mongo_database, owns_client=False)
        await store.ensure_schema()
        cert = make("c1")
        await store.insert(cert)
        claims = client[mongo_database]["certificate_revisions"]
        await claims.insert_one({"_id": "c1@2", "project_id": "p1", "at": dt.datetime.now(dt.UTC)})
        with pytest.raises(ConflictError):
            await store.replace(replace(cert, name="blocked"), expected_revision=1)
        await claims.update_one({"_id": "c1@2"}, {"$set": {"at": dt.datetime.now(dt.UTC) - 2 * CLAIM_TIMEOUT}})
        stored = await store.replace(replace(cert, name="after_takeover"), expected_revision=1)
        assert stored.revision == 2 and (await store.get("p1", "c1")).name == "after_takeover"
    finally:
        await client.drop_database(mongo_database)
        await client.close()


async def test_failed_replace_leaves_the_record_writable(store):
    cert = make("c1")
    await store.insert(cert)
    await store.insert(make("c2", name="taken_name"))
    with pytest.raises(DuplicateNameError):
        await store.replace(replace(cert, name="taken_name"), expected_revision=1)
    stored = await store.replace(replace(cert, name="free_name"), expected_revision=1)
    assert stored.revision == 2


async def test_count_expiring_per_project_and_boundary(store):
    def expiring(cert_id: str, days: int, project: str = "p1") -> Certificate:
        base = make(cert_id, project=project)
        return replace(base, info=replace(base.info, not_after=T0 + dt.timedelta(days=days)))

    for i, days in enumerate((-3, 1, 6, 6, 45)):
        await store.insert(expiring(f"a{i}", days))
    await store.insert(expiring("b0", 20, project="p2"))
    await store.insert(expiring("far", 400, project="p3"))
    boundaries = [T0 + dt.timedelta(days=d) for d in (0, 2, 30, 90)]
    assert await store.count_expiring(boundaries) == {"p1": (1, 2, 4, 5), "p2": (0, 0, 1, 1)}
    assert await store.count_expiring([]) == {}


@pytest.mark.parametrize("sorted_here", [1000, 2], ids=["rare name: matches sorted by the store", "common name"])
async def test_name_filter_pages_newest_first_either_way(store, monkeypatch, sorted_here):
    """A name filter collects few matches itself and leaves many to the recency index; both give the same page."""
    import gatewaycerts.store.mongo.certificates as mongo_store
    import gatewaycerts.store.sqlite.certificates as sqlite_store

    monkeypatch.setattr(mongo_store, "NAME_MATCHES_SORTED_HERE", sorted_here)
    monkeypatch.setattr(sqlite_store, "NAME_MATCHES_SORTED_HERE", sorted_here)
    for i, name in enumerate(["shop_a", "Shop_b", "mail_c", "shop_d", "SHOP_e", "shop_f"]):
        await store.insert(make(f"c{i}", name=name, seconds=i))
    await store.insert(make("elsewhere", project="p2", name="shop_z", seconds=99))
    page = await store.list("p1", CertificateFilter(name_contains="shop"), 0, 3)
    assert (page.total, [c.id for c in page.items]) == (5, ["c5", "c4", "c3"])
    page = await store.list("p1", CertificateFilter(name_contains="sHoP"), 3, 3)
    assert (page.total, [c.id for c in page.items]) == (5, ["c1", "c0"])
    page = await store.list("p1", CertificateFilter(name_contains="shop", signature_algorithm="SHA256-RSA"), 4, 3)
    assert (page.total, [c.id for c in page.items]) == (5, ["c0"])
    assert (await store.list("p1", CertificateFilter(name_contains="nomatch"), 0, 3)).total == 0
    page = await store.list("p1", CertificateFilter(name_contains="Sh"), 0, 10)  # too short for the pieces
    assert (page.total, [c.id for c in page.items]) == (5, ["c5", "c4", "c3", "c1", "c0"])
    # renames and deletes keep the name pieces right
    renamed = replace(await store.get("p1", "c5"), name="mail_renamed")
    await store.replace(renamed, expected_revision=1)
    assert await store.delete_unbound("p1", "c4") is DeleteOutcome.DELETED
    page = await store.list("p1", CertificateFilter(name_contains="shop"), 0, 10)
    assert (page.total, [c.id for c in page.items]) == (3, ["c3", "c1", "c0"])
    page = await store.list("p1", CertificateFilter(name_contains="mail_"), 0, 10)
    assert [c.id for c in page.items] == ["c5", "c2"]
    summary = (await store.list("p1", CertificateFilter(name_contains="mail"), 0, 3)).items[0]
    assert summary.chain_pem == "" and summary.encrypted_private_key == b"" and summary.info == make("c2").info


async def test_totals_follow_inserts_changes_and_deletes(store):
    """Totals per filter stay exact through every kind of write (SQLite keeps them in trigger-fed counters)."""
    for i in range(4):
        await store.insert(make(f"c{i}", seconds=i, sig="SHA256-RSA"))
    await store.insert(make("e", sig="ECDSA-SHA256", alg=AlgorithmType.ECC, cn="ec.example.com"))
    await store.insert(make("other", project="p2"))
    changed = await store.get("p1", "c0")
    changed = replace(
        changed, info=replace(changed.info, signature_algorithm="ECDSA-SHA256", algorithm_type=AlgorithmType.ECC)
    )
    await store.replace(changed, expected_revision=1)
    assert await store.delete_unbound("p1", "c1") is DeleteOutcome.DELETED

    async def total(**kw) -> int:
        return (await store.list("p1", CertificateFilter(**kw), 0, 1)).total

    assert await total() == 4
    assert await total(signature_algorithm="SHA256-RSA") == 2
    assert await total(signature_algorithm="ECDSA-SHA256") == 2
    assert await total(algorithm_type=AlgorithmType.ECC) == 2
    assert await total(common_name="ec.example.com") == 1
    assert await total(scope=CertificateScope.GLOBAL) == 4
    assert await total(instance_id="common") == 4
    assert await total(signature_algorithm="none") == 0
    assert (await store.list("p2", CertificateFilter(), 0, 1)).total == 1


async def test_sqlite_databases_from_before_the_counters_are_migrated(tmp_path):
    """A database written before name_lower, the counters and the name pieces: ensure_schema fills them."""
    import sqlite3

    from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

    path = tmp_path / "old.db"
    store = SqliteCertificateStore(path)
    await store.ensure_schema()
    for i in range(3):
        await store.insert(make(f"c{i}", name=f"Old_Name_{i}", seconds=i))
    await store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER certificates_counted_insert; DROP TRIGGER certificates_counted_delete;"
        "DROP TRIGGER certificates_counted_update; DROP TABLE certificate_counts; DROP TABLE certificate_name_grams;"
        "UPDATE certificates SET name_lower = NULL;"
    )
    conn.close()
    store = SqliteCertificateStore(path)
    await store.ensure_schema()
    try:
        assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 3
        page = await store.list("p1", CertificateFilter(name_contains="old_name_1"), 0, 10)
        assert [c.id for c in page.items] == ["c1"]
        await store.insert(make("c9", seconds=9))
        assert (await store.list("p1", CertificateFilter(), 0, 10)).total == 4
    finally:
        await store.close()


async def test_list_expiring_is_the_projects_window_soonest_first(store):
    def expiring(cert_id: str, days: float, project: str = "p1") -> Certificate:
        base = make(cert_id, project=project, name=f"n_{cert_id}")
        return replace(base, info=replace(base.info, not_after=T0 + dt.timedelta(days=days)))

    for cert_id, days in (("late", 40), ("b", 6), ("gone", -1), ("a", 6), ("first", 0), ("c", 2.5), ("edge", 30)):
        await store.insert(expiring(cert_id, days))
    await store.insert(expiring("other", 3, project="p2"))
    window = await store.list_expiring("p1", T0, T0 + dt.timedelta(days=30), 10)
    # after <= not_after < before; equal expiries by id; another project's never
    assert [c.id for c in window] == ["first", "c", "a", "b"]
    assert window[0].chain_pem == "" and window[0].bindings == ()  # summaries
    assert [c.id for c in await store.list_expiring("p1", T0, T0 + dt.timedelta(days=30), 2)] == ["first", "c"]
    assert await store.list_expiring("p3", T0, T0 + dt.timedelta(days=30), 10) == ()
