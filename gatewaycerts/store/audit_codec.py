"""The one mapping between audit events and stored documents, and the filters both adapters index."""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from gatewaycerts.store.codec import utc

# Each equality filter of a list has an index (project_id, <field>, time desc, id desc) in both adapters.
FILTER_FIELDS = ("object_type", "object_id", "action", "actor", "request_id")


def event_to_doc(e: AuditEvent) -> dict[str, Any]:
    return {
        "_id": e.id,
        "project_id": e.project_id,
        "time": e.time,
        "actor": e.actor,
        "roles": list(e.roles),
        "action": e.action,
        "object_type": e.object_type,
        "object_id": e.object_id,
        "object_name": e.object_name,
        "request_id": e.request_id,
        "details": dict(e.details),
    }


def event_from_doc(d: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=d["_id"],
        project_id=d["project_id"],
        time=utc(d["time"]),
        actor=d["actor"],
        roles=tuple(d.get("roles") or ()),
        action=d["action"],
        object_type=d["object_type"],
        object_id=d["object_id"],
        object_name=d.get("object_name"),
        request_id=d.get("request_id"),
        details=dict(d.get("details") or {}),
    )


def equality_filters(query: AuditQuery) -> dict[str, str]:
    """The stored fields the query compares for equality."""
    return {name: value for name in FILTER_FIELDS if (value := getattr(query, name)) is not None}
