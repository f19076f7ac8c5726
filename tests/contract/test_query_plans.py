"""Every list query of the certificate store is served by an index, read from the store's own query plan.

SQLite: EXPLAIN QUERY PLAN of every statement list() may run must reach every table through an index or a
primary key (the counters, the name pieces) and never sort in a temporary B-tree. MongoDB: the winning plan
of every command must use an index (IXSCAN / COUNT_SCAN) with neither COLLSCAN nor an in-memory SORT.
FerretDB v1 (the test server) pushes only `_id` equality down to its storage
(internal/backends/sqlite/collection.go) and ignores indexes otherwise, so there the test checks what
MongoDB's planner would be handed: every command names (hints) an index whose keys begin with the query's
equality fields and continue with the sort.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatewaycerts.domain.models import AlgorithmType, CertificateFilter, CertificateScope
from gatewaycerts.store.sqlite.certificates import EXPIRING_SQL, SqliteCertificateStore
from gatewaycerts.store.sqlite.pca import _CERTIFICATE_STATUS_SQL, _OTHER_STATUS_SQL, SqlitePcaStore
from tests.contract.test_certificate_store import make

QUERIES = [
    pytest.param(CertificateFilter(), 0, id="no filter"),
    pytest.param(CertificateFilter(), 90_000, id="no filter at offset 90000"),
    pytest.param(CertificateFilter(name_contains="shop"), 0, id="name"),
    pytest.param(CertificateFilter(name_contains="shop"), 5_000, id="name at offset 5000"),
    pytest.param(CertificateFilter(common_name="www.example.com"), 0, id="common_name"),
    pytest.param(CertificateFilter(signature_algorithm="SHA256-RSA"), 0, id="signature_algorithm"),
    pytest.param(CertificateFilter(scope=CertificateScope.INSTANCE), 0, id="type"),
    pytest.param(CertificateFilter(instance_id="i1"), 0, id="instance_id"),
    pytest.param(CertificateFilter(scope=CertificateScope.INSTANCE, instance_id="i1"), 0, id="type and instance_id"),
    pytest.param(CertificateFilter(algorithm_type=AlgorithmType.ECC), 0, id="algorithm_type"),
    pytest.param(CertificateFilter(name_contains="shop", algorithm_type=AlgorithmType.RSA), 0, id="name and algorithm"),
]


def _stages(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["stage"]] if isinstance(node.get("stage"), str) else []
        return own + [s for value in node.values() for s in _stages(value)]
    if isinstance(node, list):
        return [s for value in node for s in _stages(value)]
    return []


async def _check_mongo(store: Any, flt: CertificateFilter, offset: int) -> None:
    indexes = await store._coll.index_information()
    for entry in await store.explain_list("p1", flt, offset, 20):
        explain, command = entry["explain"], entry["command"]
        if "ferretdbVersion" not in explain.get("serverInfo", {}):
            stages = _stages(explain)
            assert {"IXSCAN", "COUNT_SCAN", "IDHACK", "EXPRESS_IXSCAN"} & set(stages), (command, stages)
            assert "COLLSCAN" not in stages and "SORT" not in stages, (command, stages)
            continue
        keys = [field for field, _ in indexes[entry["hint"]]["key"]]
        query = command.get("filter") or command["pipeline"][0]["$match"]
        equal = {f for f, v in query.items() if not isinstance(v, dict)}
        ranged = {f for f, v in query.items() if isinstance(v, dict)}
        prefix = 0
        while prefix < len(keys) and keys[prefix] in equal:
            prefix += 1
        # bounds on the project and on one equality filter when there is one (others are checked on the rows)
        assert keys[0] in ("project_id", "_id") and prefix >= min(len(equal), 2), (entry["hint"], keys, query)
        if len(equal) == 1:  # the name alone: its match is evaluated on index keys, no document fetch
            assert ranged <= set(keys), (entry["hint"], keys, query)
        if "sort" in command:
            assert keys[prefix : prefix + 2] == ["create_time", "_id"], (entry["hint"], keys)


@pytest.mark.parametrize(("flt", "offset"), QUERIES)
async def test_every_list_query_is_served_by_an_index(store, flt, offset):
    for i in range(3):  # planners see a populated collection
        await store.insert(make(f"c{i}", name=f"shop_{i}", seconds=i))
    if isinstance(store, SqliteCertificateStore):
        plan = await store.explain_list("p1", flt, offset, 20)
        assert plan
        tables = [line for line in plan if line.startswith(("SCAN ", "SEARCH ")) and "(subquery" not in line]
        assert tables, plan
        for line in tables:  # every table access goes through an index or a primary key
            assert any(k in line for k in ("USING INDEX", "USING COVERING INDEX", "PRIMARY KEY")), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
    else:
        await _check_mongo(store, flt, offset)
    page = await store.list("p1", flt, offset, 20)  # and the planned queries answer
    matching = flt.scope is None and flt.instance_id is None and flt.algorithm_type in (None, AlgorithmType.RSA)
    assert page.total == (3 if matching else 0)
    assert len(page.items) == (min(3, max(0, 3 - offset)) if matching else 0)


async def test_the_expiry_overview_reads_one_projects_index_in_its_order(store):
    """list_expiring (the console's overview) reads the project's own expiry index in its order: no other
    project's rows, no sort."""
    for i in range(3):
        await store.insert(make(f"c{i}", name=f"shop_{i}", seconds=i))
    after, before = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=36_500)
    if isinstance(store, SqliteCertificateStore):
        plan = await store._read(
            lambda conn: [
                row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + EXPIRING_SQL, ("p1", "a", "z", 20)).fetchall()
            ]
        )
        assert any("certificates_by_expiry" in line for line in plan), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
    else:
        keys = [field for field, _ in (await store._coll.index_information())["certificates_by_expiry"]["key"]]
        assert keys == ["project_id", "not_after", "_id"]
        explain = (
            await store._coll.find({"project_id": "p1", "not_after": {"$gte": after, "$lt": before}})
            .sort([("not_after", 1), ("_id", 1)])
            .hint("certificates_by_expiry")
            .explain()
        )
        if "ferretdbVersion" not in explain.get("serverInfo", {}):
            stages = _stages(explain)
            assert "IXSCAN" in stages and "COLLSCAN" not in stages and "SORT" not in stages, stages
    got = await store.list_expiring("p1", after, before, 20)
    assert len(got) == 3 and [c.info.not_after for c in got] == sorted(c.info.not_after for c in got)
    assert await store.list_expiring("other-project", after, before, 20) == ()


async def test_serial_status_reaches_each_table_by_its_serial_index(pca_store):
    """OCSP reads serial_status on every request (on SQLite, on the event loop's thread): each of its (up to)
    three lookups must be an index search on (issuer_id, serial), never a scan."""
    if not isinstance(pca_store, SqlitePcaStore):
        indexes = {}
        for coll in (pca_store._certificates, pca_store._authorities, pca_store._requests):
            indexes[coll.name] = {tuple(f for f, _ in i["key"]) for i in (await coll.index_information()).values()}
        assert all(("issuer_id", "serial_number") in keys for keys in indexes.values()), indexes
        return
    await pca_store.serial_status("root", 1)  # creates the schema's file and WAL first
    plan = await pca_store._read(
        lambda conn: [
            row[-1]
            for sql, args in ((_CERTIFICATE_STATUS_SQL, ("i", "1")), (_OTHER_STATUS_SQL, ("i", "1") * 2))
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)
        ]
    )
    searches = [line for line in plan if line.startswith("SEARCH")]
    assert len(searches) == 3, plan
    assert not any(line.startswith("SCAN") for line in plan), plan
    for index in ("pca_certificates_serial", "pca_authorities_serial", "pca_requests_serial"):
        assert any(index in line for line in searches), plan
