"""The audit trail's vocabulary: one event per change (who, project, action, object, time, request id)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# A detail is a small non-secret fact: a status, a reason, a serial number, the domains attached.
DetailValue = str | int | bool | None | list[str]

SYSTEM_ORDER_WORKER = "system:order-worker"  # the actor of what the order worker does on a client's behalf


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A change that happened (recorded after it succeeded). `action` is a stable dotted name,
    `<dialect>.<object>.<verb>` (`apic.certificate.create`, `barbican.order.complete`); its first part names the
    API it was made through. Never key material, passphrases, payloads, tokens or PEM bodies: `details` holds
    only facts such as a new status, a revocation reason or attached domain names."""

    id: str
    project_id: str
    time: datetime
    actor: str  # the token's `sub`, or SYSTEM_ORDER_WORKER
    action: str
    object_type: str
    object_id: str
    object_name: str | None = None
    request_id: str | None = None
    roles: tuple[str, ...] = ()
    details: Mapping[str, DetailValue] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return self.action.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class AuditMarker:
    """Where a page ended: the (time, id) of its last event; the next page starts strictly after it."""

    time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an audit list: all optional and combined with AND; times are inclusive bounds."""

    since: datetime | None = None
    until: datetime | None = None
    object_type: str | None = None
    object_id: str | None = None
    action: str | None = None
    actor: str | None = None
    request_id: str | None = None
    after: AuditMarker | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: tuple[AuditEvent, ...]
    next: AuditMarker | None  # None on the last page
