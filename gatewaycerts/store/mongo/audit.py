"""MongoAuditStore: the audit trail, one document per event in `audit_events` (append-only: inserts only, so
it needs nothing FerretDB v1 lacks)."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from gatewaycerts.store.audit_codec import FILTER_FIELDS, equality_filters, event_from_doc, event_to_doc
from gatewaycerts.store.mongo.claims import guard

_ORDER = [("time", DESCENDING), ("_id", DESCENDING)]
INDEXES: dict[str, list[tuple[str, int]]] = {
    "audit_recent": [("project_id", ASCENDING), *_ORDER],
    **{f"audit_by_{name}": [("project_id", ASCENDING), (name, ASCENDING), *_ORDER] for name in FILTER_FIELDS},
}


def list_filter(project_id: str, query: AuditQuery) -> dict[str, Any]:
    """The find() filter of a list query (exposed so that the contract suite can check its plan)."""
    flt: dict[str, Any] = {"project_id": project_id, **equality_filters(query)}
    time: dict[str, Any] = {}
    if query.since is not None:
        time["$gte"] = query.since
    until = query.until
    if query.after is not None:
        until = query.after.time if until is None else min(until, query.after.time)
    if until is not None:
        time["$lte"] = until
    if time:
        flt["time"] = time
    if query.after is not None:
        # time <= t is the index range; within the marker's own time only ids below it remain.
        flt["$or"] = [{"time": {"$lt": query.after.time}}, {"_id": {"$lt": query.after.id}}]
    return flt


class MongoAuditStore:
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self._events = client[database]["audit_events"]

    async def ensure_schema(self) -> None:
        for name, keys in INDEXES.items():
            await guard(self._events.create_index(keys, name=name))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def insert(self, event: AuditEvent) -> None:
        # A DuplicateKeyError means an earlier attempt wrote it and its answer was lost: it is stored once.
        with contextlib.suppress(DuplicateKeyError):
            await guard(self._events.insert_one(event_to_doc(event)))

    async def list(self, project_id: str, query: AuditQuery, limit: int) -> tuple[AuditEvent, ...]:
        cursor = self._events.find(list_filter(project_id, query)).sort(_ORDER).limit(limit)
        return tuple(event_from_doc(d) for d in await guard(cursor.to_list(length=limit)))
