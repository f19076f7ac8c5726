"""The managed-certificate store contract, on both stores (SQLite and FerretDB), and the due query's plan:
finding due renewals reads the due-time index, never the table."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gatewaycerts.app import build_managed_store
from gatewaycerts.domain.errors import CertificateNotFoundError, ConflictError, DuplicateNameError
from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate, RenewalState, WindowSource
from gatewaycerts.domain.models import CertificateScope
from gatewaycerts.store.sqlite.managed import SqliteManagedCertificateStore
from tests.contract.test_query_plans import _stages

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def managed(i: int, *, due: datetime | None = NOW, project: str = "p1", **kw) -> ManagedCertificate:
    return ManagedCertificate(
        id=f"m{i:06d}",
        project_id=project,
        name=kw.pop("name", f"managed_{i}"),
        scope=CertificateScope.GLOBAL,
        instance_id="common",
        domains=(f"h{i}.example.com", "www.example.com"),
        source="private_ca",
        key_algorithm="EC256",
        settings={"ca_id": "ca-1", "validity_days": 90},
        state=kw.pop("state", RenewalState.ACTIVE),
        due_at=due,
        create_time=NOW + timedelta(seconds=i),
        update_time=NOW,
        **kw,
    )


@pytest.fixture
async def mstore(store):
    s = build_managed_store(store)
    await s.ensure_schema()
    yield s
    await s.close()


async def test_insert_get_replace_delete(mstore):
    m = managed(1, window_source=WindowSource.ARI, window_start=NOW, window_end=NOW + timedelta(days=1))
    await mstore.insert_managed(m)
    assert await mstore.get_managed("p1", m.id) == m
    assert await mstore.get_managed("p2", m.id) is None
    with pytest.raises(DuplicateNameError):
        await mstore.insert_managed(replace(m, id="other"))
    changed = await mstore.replace_managed(
        replace(m, last_error="rate limited", consecutive_failures=2), expected_revision=1
    )
    assert changed.revision == 2 and (await mstore.get_managed("p1", m.id)) == changed
    with pytest.raises(ConflictError):
        await mstore.replace_managed(replace(m, last_error="stale"), expected_revision=1)
    assert (await mstore.get_managed("p1", m.id)).last_error == "rate limited"
    page = await mstore.list_managed("p1", 0, 10)
    assert page.total == 1 and page.items[0].id == m.id
    assert await mstore.delete_managed("p1", m.id)
    assert not await mstore.delete_managed("p1", m.id)
    with pytest.raises(CertificateNotFoundError):
        await mstore.replace_managed(changed, expected_revision=2)


async def test_one_of_two_concurrent_claims_wins(mstore):
    m = managed(1)
    await mstore.insert_managed(m)
    claims = [replace(m, claimed_by=w, claim_until=NOW + timedelta(minutes=10)) for w in ("a", "b", "c", "d")]
    results = await asyncio.gather(
        *(mstore.replace_managed(c, expected_revision=1) for c in claims), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, ManagedCertificate)]
    assert len(winners) == 1 and all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert (await mstore.get_managed("p1", m.id)).claimed_by == winners[0].claimed_by


async def test_due_lists_what_is_due_and_unclaimed_soonest_first(mstore):
    await mstore.insert_managed(managed(1, due=NOW - timedelta(hours=1)))
    await mstore.insert_managed(managed(2, due=NOW - timedelta(hours=2)))
    await mstore.insert_managed(managed(3, due=NOW + timedelta(seconds=1)))  # not yet
    await mstore.insert_managed(managed(4, due=None, state=RenewalState.STOPPED))  # never by itself
    await mstore.insert_managed(managed(5, due=NOW, claim_until=NOW + timedelta(minutes=5), claimed_by="x"))
    await mstore.insert_managed(managed(6, due=NOW, claim_until=NOW - timedelta(seconds=1), claimed_by="y"))
    await mstore.insert_managed(managed(7, due=NOW - timedelta(hours=3), project="p2"))
    assert [m.id for m in await mstore.due_managed(NOW, 10)] == ["m000007", "m000002", "m000001", "m000006"]
    assert [m.id for m in await mstore.due_managed(NOW, 2)] == ["m000007", "m000002"]
    later = NOW + timedelta(minutes=6)
    assert {m.id for m in await mstore.due_managed(later, 10)} == {f"m00000{i}" for i in (1, 2, 3, 5, 6, 7)}


async def test_chain_history_is_idempotent_and_newest_first(mstore):
    def entry(rev: int, fp: str) -> ChainRevision:
        return ChainRevision("p1", "c1", rev, f"PEM{rev}", fp, str(rev), NOW, NOW + timedelta(days=90), NOW)

    await mstore.add_chain_revision(entry(1, "a"))
    await mstore.add_chain_revision(entry(3, "b"))
    await mstore.add_chain_revision(entry(3, "changed"))  # recorded already: left as it is
    got = await mstore.chain_revisions("p1", "c1", 10)
    assert [(r.revision, r.fingerprint_sha256) for r in got] == [(3, "b"), (1, "a")]
    assert await mstore.chain_revisions("p2", "c1", 10) == []
    assert len(await mstore.chain_revisions("p1", "c1", 1)) == 1
    await mstore.delete_chain_revisions("p1", "c1")
    assert await mstore.chain_revisions("p1", "c1", 10) == []


async def test_the_due_query_reads_the_due_index(mstore):
    """The renewal loop's tick is this one query: it must read managed_by_due in its order (no table scan,
    no sort), however many managed certificates there are."""
    for i in range(20):
        await mstore.insert_managed(managed(i, due=NOW + timedelta(days=i)))
    if isinstance(mstore, SqliteManagedCertificateStore):
        plan = await mstore.explain_due(NOW, 32)
        assert any("USING INDEX managed_by_due" in line for line in plan), plan
        assert not any(line.startswith("SCAN managed_certificates") and "INDEX" not in line for line in plan), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
    else:
        assert await mstore.index_keys("managed_by_due") == ["due_at", "_id"]
        explain = await mstore.due_cursor(NOW, 32).explain()
        if "ferretdbVersion" not in explain.get("serverInfo", {}):
            stages = _stages(explain)
            assert "IXSCAN" in stages and "COLLSCAN" not in stages and "SORT" not in stages, stages
        else:
            # FerretDB v1 ignores indexes except _id (see test_query_plans.py): check what MongoDB's planner
            # would be handed: the command hints the index whose first key is the range and the sort.
            query, sort, hint = mstore.due_spec(NOW)
            keys = await mstore.index_keys(hint)
            ranged = [f for f, v in query.items() if isinstance(v, dict) and not f.startswith("$")]
            assert ranged == ["due_at"] and keys[0] == "due_at", (query, keys)
            assert [f for f, _ in sort] == keys, (sort, keys)  # read in index order: no sort stage
    assert [m.id for m in await mstore.due_managed(NOW, 32)] == ["m000000"]
