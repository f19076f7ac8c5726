"""SqlitePcaStore.get_authority decodes a row again only when its text changed: every read must still see the
row as it is now, whoever changed it (this process, or another process writing the same file)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from gatewaycerts.domain.pca import CaStatus
from gatewaycerts.store.sqlite.pca import SqlitePcaStore
from tests.contract.test_pca_store import ca

CA_ID = "11111111-1111-4111-8111-111111111111"


async def test_every_read_sees_the_row_as_it_is_now(tmp_path):
    path = tmp_path / "pca.db"
    store = SqlitePcaStore(path)
    await store.ensure_schema()
    try:
        first = ca(CA_ID)
        await store.insert_authority(first)
        assert await store.get_authority("p1", CA_ID) == first
        assert await store.get_authority("p1", CA_ID) == first  # unchanged: the same answer
        assert await store.get_authority("p2", CA_ID) is None  # another project's id: nothing, decoded or not
        assert await store.get_authority(None, CA_ID) == first

        # changed through the store
        disabled = await store.replace_authority(replace(first, status=CaStatus.DISABLED), expected_revision=0)
        got = await store.get_authority("p1", CA_ID)
        assert got == disabled and got.status is CaStatus.DISABLED

        # changed behind its back, as another process writing the same file would
        with sqlite3.connect(path) as conn:
            (summary,) = conn.execute("SELECT summary FROM pca_authorities WHERE id = ?", (CA_ID,)).fetchone()
            doc = json.loads(summary)
            doc["status"] = CaStatus.ACTIVED.value
            conn.execute("UPDATE pca_authorities SET summary = ? WHERE id = ?", (json.dumps(doc), CA_ID))
        got = await store.get_authority("p1", CA_ID)
        assert got is not None and got.status is CaStatus.ACTIVED
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM pca_authorities WHERE id = ?", (CA_ID,))
        assert await store.get_authority("p1", CA_ID) is None
    finally:
        await store.close()


async def test_many_authorities_each_read_as_stored(tmp_path):
    store = SqlitePcaStore(tmp_path / "pca.db")
    await store.ensure_schema()
    try:
        ids = [f"{i:08x}-1111-4111-8111-111111111111" for i in range(300)]  # more than the decoded rows kept
        for i, ca_id in enumerate(ids):
            await store.insert_authority(ca(ca_id, cn=f"CA {i}"))
        for _ in range(2):
            for i, ca_id in enumerate(ids):
                got = await store.get_authority("p1", ca_id)
                assert got is not None and got.id == ca_id and got.distinguished_name.common_name == f"CA {i}"
    finally:
        await store.close()
