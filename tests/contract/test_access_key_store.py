"""The AccessKeyStore contract on both adapters (SQLite and MongoDB/FerretDB): records, scoping, compare-and-swap,
and the EnvelopeStore side (KEK labels, keyset paging, a rewrap that changes only the secret's envelope)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gatewaycerts.domain.access_keys import AccessKey, AccessKeyNotFoundError, AccessKeyStatus
from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.domain.models import Role
from gatewaycerts.keyvault import KeyVault, new_kek_line, parse_keks
from gatewaycerts.store.mongo.claims import RevisionClaims
from tests.conftest import open_access_key_store

VAULT_A = KeyVault(parse_keks(new_kek_line("A")))
VAULT_B = KeyVault(parse_keks(new_kek_line("B")))
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KIND = EnvelopeKind.ACCESS_KEY


def key(access: str, project: str = "p1", *, seconds: int = 0, vault: KeyVault = VAULT_A, **kw) -> AccessKey:
    values = dict(
        access=access,
        project_id=project,
        role=Role.EDITOR,
        status=AccessKeyStatus.ACTIVE,
        description=f"key {access}",
        create_time=T0 + timedelta(seconds=seconds),
        created_by="admin-1",
        encrypted_secret=vault.encrypt(access.encode(), context="contract"),
    )
    values.update(kw)
    return AccessKey(**values)


async def test_insert_get_list_and_scoping(access_key_store):
    store = access_key_store
    k1, k2, other = key("AK1", seconds=2), key("AK2", seconds=1), key("AK3", "p2")
    for k in (k1, k2, other):
        await store.insert(k)
    assert await store.get("AK1") == k1
    assert await store.get("AK3") == other  # by access id alone: the verifier knows no project yet
    assert await store.get("nope") is None
    assert [k.access for k in await store.list("p1")] == ["AK2", "AK1"]  # oldest first
    assert await store.list("p2") == [other]
    assert await store.list("p9") == []
    with pytest.raises(ConflictError):
        await store.insert(key("AK1", "p2"))  # ids are unique across projects
    assert await store.get("AK1") == k1


async def test_replace_is_a_compare_and_swap_that_keeps_the_secret(access_key_store):
    store = access_key_store
    k = key("AK1")
    await store.insert(k)
    changed = await store.replace(
        replace(k, status=AccessKeyStatus.INACTIVE, description="off", encrypted_secret=b"ignored"), expected_revision=0
    )
    assert changed.revision == 1
    stored = await store.get("AK1")
    assert (stored.status, stored.description, stored.revision) == (AccessKeyStatus.INACTIVE, "off", 1)
    assert stored.encrypted_secret == k.encrypted_secret  # only a rewrap re-encrypts the secret
    with pytest.raises(ConflictError):
        await store.replace(replace(k, status=AccessKeyStatus.ACTIVE), expected_revision=0)
    assert (await store.get("AK1")).status is AccessKeyStatus.INACTIVE
    with pytest.raises(AccessKeyNotFoundError):
        await store.replace(replace(k, project_id="p2"), expected_revision=1)  # another project's key
    with pytest.raises(AccessKeyNotFoundError):
        await store.replace(key("AK9"), expected_revision=0)


async def test_delete_is_scoped_to_the_project(access_key_store):
    store = access_key_store
    await store.insert(key("AK1"))
    assert await store.delete("p2", "AK1") is False
    assert await store.get("AK1") is not None
    assert await store.delete("p1", "AK1") is True
    assert await store.get("AK1") is None
    assert await store.delete("p1", "AK1") is False


async def test_envelopes_are_labelled_paged_and_rewrapped_alone(access_key_store):
    store = access_key_store
    for i in (3, 1, 4, 2):
        await store.insert(key(f"AK{i}", seconds=i, vault=VAULT_B if i == 4 else VAULT_A))
    page = await store.envelopes(KIND, "A", "", 2)
    assert [e.record_id for e in page] == ["AK1", "AK2"]
    assert [e.record_id for e in await store.envelopes(KIND, "A", "AK2", 2)] == ["AK3"]
    assert all(e.kind is KIND and e.project_id == "p1" and e.kek_id == "A" for e in page)
    assert await store.count_envelopes(KIND, "A") == 3 and await store.count_envelopes(KIND, "B") == 1
    assert await store.count_envelopes(KIND, None) == 0
    assert {s.kek_id for s in await store.envelope_samples(KIND)} == {"A", "B"}

    before = await store.get("AK1")
    new = VAULT_B.encrypt(b"AK1", context="contract")
    assert await store.rewrap_envelope(page[0], new, "B") is RewrapOutcome.REWRAPPED
    assert await store.get("AK1") == replace(before, encrypted_secret=new)  # revision and the rest unchanged
    assert await store.count_envelopes(KIND, "B") == 2
    # the envelope read is no longer stored: a second rewrap of the same read changes nothing
    assert await store.rewrap_envelope(page[0], VAULT_B.encrypt(b"x", context="c"), "B") is RewrapOutcome.CHANGED
    assert (await store.get("AK1")).encrypted_secret == new
    with pytest.raises(ValueError):
        await store.envelopes(EnvelopeKind.SECRET, "A", "", 1)


async def test_a_rewrap_never_recreates_a_deleted_key_nor_loses_a_status_change(access_key_store):
    store = access_key_store
    await store.insert(key("AK1"))
    await store.insert(key("AK2", seconds=1))
    read = {e.record_id: e for e in await store.envelopes(KIND, "A", "", 10)}
    await store.delete("p1", "AK1")
    disabled = await store.replace(
        replace(await store.get("AK2"), status=AccessKeyStatus.INACTIVE), expected_revision=0
    )
    outcomes = await store.rewrap_envelopes(
        [(read["AK1"], VAULT_B.encrypt(b"1", context="c")), (read["AK2"], VAULT_B.encrypt(b"2", context="c"))], "B"
    )
    assert outcomes[0] is RewrapOutcome.GONE
    assert await store.get("AK1") is None
    # SQLite compares the envelope alone; MongoDB also the revision it claimed. The disable survives either way.
    assert outcomes[1] in (RewrapOutcome.REWRAPPED, RewrapOutcome.CHANGED)
    now = await store.get("AK2")
    assert now.status is AccessKeyStatus.INACTIVE and now.revision == disabled.revision


async def test_mongo_rewrap_yields_to_a_status_change_in_progress(tmp_path: Path, request, mongo_database):
    async with open_access_key_store("mongo", request, tmp_path, mongo_database) as store:
        k = key("AK1")
        await store.insert(k)
        (read,) = await store.envelopes(KIND, "A", "", 10)
        claims: RevisionClaims = store._claims
        await claims.claim("AK1", 0)  # a replace between its claim and its write
        assert await store.rewrap_envelope(read, VAULT_B.encrypt(b"x", context="c"), "B") is RewrapOutcome.CHANGED
        assert (await store.get("AK1")).encrypted_secret == k.encrypted_secret
        await claims.give_back("AK1", 0)
        assert await store.rewrap_envelope(read, VAULT_B.encrypt(b"x", context="c"), "B") is RewrapOutcome.REWRAPPED
