"""Audit events -> CTS trace JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gatewaycerts.core.audit import encode_marker
from gatewaycerts.domain.audit import AuditEvent, AuditPage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def trace(e: AuditEvent) -> dict[str, Any]:
    return {
        "trace_id": e.id,
        "trace_name": e.action,
        "trace_rating": "normal",  # only changes that succeeded are recorded
        "trace_type": "SystemAction" if e.actor.startswith("system:") else "ApiCall",
        "service_type": e.service.upper(),
        "resource_type": e.object_type,
        "resource_id": e.object_id,
        "resource_name": e.object_name,
        "user": {"name": e.actor, "roles": list(e.roles)},
        "request_id": e.request_id,
        "time": epoch_ms(e.time),
        "details": dict(e.details),
    }


def trace_list(page: AuditPage) -> dict[str, Any]:
    meta: dict[str, Any] = {"count": len(page.events)}
    if page.next is not None:
        meta["marker"] = encode_marker(page.next)
    return {"traces": [trace(e) for e in page.events], "meta_data": meta}
