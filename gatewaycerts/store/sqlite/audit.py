"""SqliteAuditStore: the audit trail in one append-only table; the filterable fields are columns, the rest JSON."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from gatewaycerts.store.audit_codec import FILTER_FIELDS, equality_filters, event_from_doc, event_to_doc
from gatewaycerts.store.sqlite.base import SqliteBase, decode_json, dump_json, sort_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    request_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_recent ON audit_events (project_id, time DESC, id DESC);
""" + "".join(
    f"CREATE INDEX IF NOT EXISTS audit_by_{name} ON audit_events (project_id, {name}, time DESC, id DESC);\n"
    for name in FILTER_FIELDS
)


def list_sql(project_id: str, query: AuditQuery, limit: int) -> tuple[str, list[Any]]:
    """The statement of a list query (exposed so that the contract suite can check its plan)."""
    clauses, params = ["project_id = ?"], [project_id]
    for column, value in equality_filters(query).items():
        clauses.append(f"{column} = ?")
        params.append(value)
    if query.since is not None:
        clauses.append("time >= ?")
        params.append(sort_key(query.since))
    if query.until is not None:
        clauses.append("time <= ?")
        params.append(sort_key(query.until))
    if query.after is not None:
        # A row-value comparison: SQLite turns it into a range on the index that also gives the order.
        clauses.append("(time, id) < (?, ?)")
        params += [sort_key(query.after.time), query.after.id]
    sql = (
        f"SELECT doc FROM audit_events WHERE {' AND '.join(clauses)} "  # noqa: S608 - columns are our constants
        "ORDER BY time DESC, id DESC LIMIT ?"
    )
    return sql, [*params, limit]


INSERT_EVENT = (
    "INSERT INTO audit_events (id, project_id, time, actor, action, object_type, object_id, request_id, doc) "
    "VALUES (:id, :project_id, :time, :actor, :action, :object_type, :object_id, :request_id, :doc) "
    "ON CONFLICT (id) DO NOTHING"
)


def event_row(event: AuditEvent) -> dict[str, Any]:
    """The audit_events row of `event` (INSERT_EVENT's parameters); other stores of the same database use it to
    write an event in the transaction of its change (SqlitePcaStore.insert_certificate_reserving_serial)."""
    return {
        "id": event.id,
        "project_id": event.project_id,
        "time": sort_key(event.time),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "request_id": event.request_id,
        "doc": dump_json(event_to_doc(event)),
    }


class SqliteAuditStore(SqliteBase):
    async def ensure_schema(self) -> None:
        await self._run_alone(lambda conn: conn.executescript(_SCHEMA))

    async def insert(self, event: AuditEvent) -> None:
        row = event_row(event)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(INSERT_EVENT, row)

        await self._run_point(op)

    async def list(self, project_id: str, query: AuditQuery, limit: int) -> tuple[AuditEvent, ...]:
        sql, params = list_sql(project_id, query, limit)

        def op(conn: sqlite3.Connection) -> tuple[AuditEvent, ...]:
            rows = conn.execute(sql, params).fetchall()
            return tuple(event_from_doc(json.loads(r[0], object_hook=decode_json)) for r in rows)

        return await self._run(op)
