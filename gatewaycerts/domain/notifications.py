"""Webhooks, the deliveries of events to them, and the attempts each delivery made (plain data)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Webhook:
    """A project's webhook: where events go and which ones; the signing secret only as a KEK envelope."""

    id: str
    project_id: str
    url: str
    events: tuple[str, ...]
    description: str
    encrypted_secret: bytes
    creator_id: str
    create_time: datetime


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted now, under a lease)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # every attempt failed, or the webhook is gone


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    time: datetime
    status_code: int | None  # the receiver's HTTP status, None when no answer came
    error: str | None  # why it did not count as delivered (never a URL or a secret)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook. `body` is the exact JSON text that is signed and sent on every attempt.

    `next_attempt` is when it may be attempted; a worker claims it by moving `next_attempt` to the end of
    its lease (and `revision` + 1), so a claim that dies is simply due again once the lease has run out.
    """

    id: str
    project_id: str
    webhook_id: str
    event_id: str
    event_type: str
    body: str
    state: DeliveryState
    create_time: datetime
    next_attempt: datetime | None
    attempts: tuple[DeliveryAttempt, ...] = ()
    claimed_by: str | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class ExpiringCertificate:
    """What the expiry watch reads of a certificate (from the expiry index)."""

    project_id: str
    id: str
    name: str
    not_after: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP attempt came to: 2xx is delivered; anything else (or no answer) is retried."""

    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
