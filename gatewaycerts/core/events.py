"""Events the service tells tenants about (webhooks deliver them): the Protocol core emits into.

Core modules that have something to say (renewals, the expiry watch) take an ``EventSink`` and call
``emit``; the notifications module stores the event and its deliveries before ``emit`` returns (at least
once), and a background loop delivers and retries. Payloads carry ids, names, dates and error text only,
never key material or credentials.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Protocol


class EventType(enum.StrEnum):
    CERTIFICATE_EXPIRING = "certificate.expiring"  # data: certificate_id, name, not_after, days (30, 7 or 1)
    CERTIFICATE_EXPIRED = "certificate.expired"  # data: certificate_id, name, not_after
    CERTIFICATE_RENEWED = "certificate.renewed"  # data: certificate_id, name, revision, not_after, source
    CERTIFICATE_RENEWAL_FAILED = "certificate.renewal_failed"  # data: certificate_id, name, source, error, attempt


class EventSink(Protocol):
    async def emit(self, project_id: str, event_type: EventType, data: Mapping[str, object]) -> None:
        """Record the event for every matching webhook of the project (durably, before returning)."""
        ...
