"""Notifications: per-project webhooks (WebhookService), the EventSink that stores each event's deliveries
(Notifier), the loop that delivers and retries them (DeliveryWorker), and the expiry watch (ExpiryWatch).

At least once: `emit` returns only after one delivery per matching webhook is stored; a worker claims a due
delivery by moving its `next_attempt` to the end of a lease (a compare-and-swap on its revision), so with N
replicas each attempt is made by one, and a worker that dies mid-attempt leaves a delivery that is due again
when the lease runs out. A failed attempt is retried on a schedule (Standard Webhooks' by default: 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over about 28 hours); every attempt is recorded for the delivery log.
The signing secret is a KEK envelope in the store, decrypted only to sign.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from gatewaycerts.core import pagination
from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.events import EventType
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.loops import BackgroundLoop
from gatewaycerts.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    WebhookEventError,
    WebhookNotFoundError,
    WebhookQuotaError,
    WebhookUrlError,
)
from gatewaycerts.domain.models import Action, Page, Principal
from gatewaycerts.domain.notifications import Delivery, DeliveryAttempt, DeliveryState, SendResult, Webhook
from gatewaycerts.keyvault import KeyVault, KeyVaultError
from gatewaycerts.store.interfaces import NotificationStore

log = logging.getLogger("gatewaycerts.notifications")

TEST_EVENT = "webhook.test"
EVENT_TYPES: tuple[str, ...] = tuple(e.value for e in EventType)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Seconds to wait after attempt 1, 2, ...; one more attempt than entries (Standard Webhooks' schedule).
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_WEBHOOKS = 20
MAX_URL = 2048
MAX_DESCRIPTION = 255
LEASE = timedelta(seconds=60)
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
EXPIRY_DAYS: tuple[int, ...] = (30, 7, 1)  # the thresholds of certificate.expiring, widest first
EXPIRED_LOOKBACK = timedelta(days=7)  # a certificate that expired longer ago than this is not announced
_EVENT_IDS = uuid.UUID("3c0b6d3e-5f7a-4c1e-9d0a-8f5e2b7c4a91")  # namespace of deterministic event ids


class WebhookTransport(Protocol):
    """Sends one signed message (connectors/webhooks.py); a failure is a result, never an exception."""

    async def send(self, url: str, secret: str, message_id: str, timestamp: int, body: bytes) -> SendResult: ...


class TargetCheck(Protocol):
    """The outbound address guard (connectors/addresses.AddressPolicy)."""

    def permits(self, address: str) -> bool: ...


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_context(project_id: str, webhook_id: str) -> str:
    return f"webhook:{project_id}:{webhook_id}"


def check_url(value: Any, target: TargetCheck) -> str:
    """An http(s) URL with a host, without credentials; an IP-literal host must be an allowed target now
    (a name is resolved and checked at every delivery)."""
    if not isinstance(value, str) or not value.strip():
        raise WebhookUrlError("url is required", field="url")
    url = value.strip()
    if len(url) > MAX_URL:
        raise WebhookUrlError(f"url is longer than {MAX_URL} characters", field="url")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise WebhookUrlError("url contains whitespace or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlError("url is not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookUrlError("url must be an http or https URL", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookUrlError("url must not carry credentials (user:password@)", field="url")
    host = parts.hostname
    if not host:
        raise WebhookUrlError("url has no host", field="url")
    if port == 0:
        raise WebhookUrlError("url has port 0", field="url")
    if parts.fragment:
        raise WebhookUrlError("url must not have a fragment", field="url")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not target.permits(str(literal)):
        raise WebhookUrlError(
            f"url names {literal}, which is not an allowed target (loopback, private, link-local or reserved)",
            field="url",
        )
    return url


def check_events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise WebhookEventError("events must be a non-empty list of event types", field="events")
    events: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in EVENT_TYPES:
            raise WebhookEventError(
                f"unknown event type {str(item)[:64]!r}; known: {', '.join(EVENT_TYPES)}", field="events"
            )
        if item not in events:
            events.append(item)
    return tuple(events)


def check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"description must be a string of at most {MAX_DESCRIPTION} characters", field="description"
        )
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(type(value).__name__)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(event_type: str, timestamp: datetime, data: Mapping[str, object]) -> str:
    """The JSON body every attempt sends (and signs): Standard Webhooks' {type, timestamp, data}."""
    return json.dumps(
        {"type": event_type, "timestamp": iso(timestamp), "data": dict(data)},
        default=_json_value,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def delivery_id(event_id: str, webhook_id: str) -> str:
    """The same event for the same webhook is one delivery, however often it is emitted."""
    return uuid.uuid5(_EVENT_IDS, f"{event_id}|{webhook_id}").hex


class Notifier:
    """The EventSink: stores one delivery per matching webhook of the project, then wakes the worker."""

    def __init__(self, store: NotificationStore, *, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock
        self.on_stored: Callable[[], None] = lambda: None

    @property
    def store(self) -> NotificationStore:
        return self._store

    async def emit(self, project_id: str, event_type: EventType, data: Mapping[str, object]) -> None:
        await self.publish(project_id, str(event_type), data)

    async def publish(
        self,
        project_id: str,
        event_type: str,
        data: Mapping[str, object],
        *,
        event_id: str | None = None,
        webhooks: Sequence[Webhook] | None = None,
    ) -> list[Delivery]:
        """Store the event's deliveries (to `webhooks`, else to the project's webhooks subscribed to it).
        With an `event_id` (derived from what the event is about) emitting again adds nothing."""
        targets = (
            list(webhooks)
            if webhooks is not None
            else [h for h in await self._store.list_webhooks(project_id) if event_type in h.events]
        )
        if not targets:
            return []
        now = self._clock()
        message_id = event_id or f"msg_{new_id()}"
        body = event_body(event_type, now, data)
        deliveries = [
            Delivery(
                id=delivery_id(message_id, hook.id),
                project_id=project_id,
                webhook_id=hook.id,
                event_id=message_id,
                event_type=event_type,
                body=body,
                state=DeliveryState.PENDING,
                create_time=now,
                next_attempt=now,
            )
            for hook in targets
        ]
        await self._store.insert_deliveries(deliveries)
        self.on_stored()
        return deliveries


class WebhookService:
    """The admin API of webhooks: create (the secret is shown once), list, show, delete, test, the log."""

    def __init__(
        self,
        store: NotificationStore,
        vault: KeyVault,
        notifier: Notifier,
        target: TargetCheck,
        *,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_id,
    ) -> None:
        self._store = store
        self._vault = vault
        self._notifier = notifier
        self._target = target
        self._audit = audit or AuditLog(None)
        self._clock = clock
        self._new_id = new_id

    async def create(
        self, principal: Principal, project_id: str, url: Any, events: Any, description: Any
    ) -> tuple[Webhook, str]:
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        checked_url = check_url(url, self._target)
        checked_events = check_events(events)
        text = check_description(description)
        if len(await self._store.list_webhooks(project_id)) >= MAX_WEBHOOKS:
            raise WebhookQuotaError(f"a project may have at most {MAX_WEBHOOKS} webhooks", field="url")
        webhook_id = self._new_id()
        secret = new_secret()
        hook = Webhook(
            id=webhook_id,
            project_id=project_id,
            url=checked_url,
            events=checked_events,
            description=text,
            encrypted_secret=self._vault.encrypt(
                secret.encode("ascii"), context=secret_context(project_id, webhook_id)
            ),
            creator_id=principal.subject,
            create_time=self._clock(),
        )
        await self._store.insert_webhook(hook)
        # The URL is the admin's own configuration, but may carry a token in its query: not in the trail.
        await self._audit.record(
            principal, project_id, "apic.webhook.create", "webhook", webhook_id, events=list(checked_events)
        )
        return hook, secret

    async def list(self, principal: Principal, project_id: str) -> list[Webhook]:
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        return await self._store.list_webhooks(project_id)

    async def get(self, principal: Principal, project_id: str, webhook_id: str) -> Webhook:
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        return await self._found(project_id, webhook_id)

    async def _found(self, project_id: str, webhook_id: str) -> Webhook:
        hook = await self._store.get_webhook(project_id, webhook_id) if _is_id(webhook_id) else None
        if hook is None:
            raise WebhookNotFoundError("the webhook does not exist")
        return hook

    async def delete(self, principal: Principal, project_id: str, webhook_id: str) -> None:
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        if not (_is_id(webhook_id) and await self._store.delete_webhook(project_id, webhook_id)):
            raise WebhookNotFoundError("the webhook does not exist")
        await self._audit.record(principal, project_id, "apic.webhook.delete", "webhook", webhook_id)

    async def test(self, principal: Principal, project_id: str, webhook_id: str) -> Delivery:
        """A `webhook.test` event to this webhook alone, delivered (and retried, and logged) like any other."""
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        hook = await self._found(project_id, webhook_id)
        (delivery,) = await self._notifier.publish(
            project_id, TEST_EVENT, {"webhook_id": hook.id, "requested_by": principal.subject}, webhooks=[hook]
        )
        await self._audit.record(
            principal, project_id, "apic.webhook.test", "webhook", webhook_id, event_id=delivery.event_id
        )
        return delivery

    async def deliveries(
        self, principal: Principal, project_id: str, webhook_id: str, offset: int | None, limit: int | None
    ) -> tuple[Page[Delivery], int, int]:
        authorize(principal, project_id, Action.MANAGE_WEBHOOKS)
        await self._found(project_id, webhook_id)
        off, lim = pagination.page_bounds(offset, limit, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)
        return await self._store.list_deliveries(project_id, webhook_id, off, lim), off, lim


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


class DeliveryWorker(BackgroundLoop):
    """Claims due deliveries, sends them, records the attempt and schedules the next one."""

    loop_name = "webhook worker"

    def __init__(
        self,
        store: NotificationStore,
        vault: KeyVault,
        transport: WebhookTransport,
        *,
        clock: Clock = system_clock,
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        lease: timedelta = LEASE,
        poll_seconds: float = 1.0,
        batch: int = 16,
        worker_id: str | None = None,
        on_result: Callable[[str], None] | None = None,
        on_pending: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._transport = transport
        self._clock = clock
        self._schedule = tuple(float(s) for s in retry_schedule)
        self.max_attempts = len(self._schedule) + 1
        self._lease = lease
        self._poll = poll_seconds
        self._batch = batch
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._on_result = on_result or (lambda result: None)
        self._on_pending = on_pending or (lambda n: None)
        self._init_loop()

    async def run_once(self) -> int:
        """Attempt every delivery that is due now (each once); how many attempts this worker made."""
        made = 0
        seen: set[tuple[str, int]] = set()
        while True:
            due = [
                d
                for d in await self._store.due_deliveries(self._clock(), self._batch)
                if (d.id, d.revision) not in seen
            ]
            if not due:
                break
            claimed = [c for c in await asyncio.gather(*(self._claim(d) for d in due)) if c is not None]
            seen.update((d.id, d.revision) for d in due)
            seen.update((c.id, c.revision) for c in claimed)
            results = await asyncio.gather(*(self._attempt(c) for c in claimed))
            made += len(claimed)
            seen.update((r.id, r.revision) for r in results if r is not None)
        self._on_pending(await self._store.count_pending())
        return made

    async def _claim(self, delivery: Delivery) -> Delivery | None:
        held = replace(delivery, next_attempt=self._clock() + self._lease, claimed_by=self.worker_id)
        try:
            return await self._store.replace_delivery(held, expected_revision=delivery.revision)
        except (ConflictError, NotFoundError):
            return None  # another worker was faster, or the webhook (and its deliveries) was deleted

    async def _attempt(self, claimed: Delivery) -> Delivery | None:
        hook = await self._store.get_webhook(claimed.project_id, claimed.webhook_id)
        now = self._clock()
        if hook is None:
            result = SendResult(error="the webhook was deleted")
            final = True
        else:
            final = False
            try:
                secret = self._vault.decrypt(
                    hook.encrypted_secret, context=secret_context(hook.project_id, hook.id)
                ).decode("ascii")
            except KeyVaultError:  # its KEK is not in the key set any more: say so, never the envelope
                log.error("webhook %s: its signing secret cannot be decrypted with the configured KEKs", hook.id)
                result = SendResult(error="the webhook's secret cannot be decrypted (its KEK is not configured)")
            else:
                try:
                    result = await self._transport.send(
                        hook.url, secret, claimed.event_id, int(now.timestamp()), claimed.body.encode()
                    )
                except Exception:  # the transport reports failures as results; anything else is a bug, logged
                    log.exception("webhook delivery %s: unexpected error", claimed.id)
                    result = SendResult(error="internal error while sending")
        attempts = (*claimed.attempts, DeliveryAttempt(time=now, status_code=result.status_code, error=result.error))
        if result.delivered:
            state, next_attempt, outcome = DeliveryState.DELIVERED, None, "delivered"
        elif final or len(attempts) >= self.max_attempts:
            state, next_attempt, outcome = DeliveryState.FAILED, None, "failed"
        else:
            delay = self._schedule[len(attempts) - 1]
            state, next_attempt, outcome = DeliveryState.PENDING, self._clock() + timedelta(seconds=delay), "retry"
        done = replace(claimed, state=state, next_attempt=next_attempt, attempts=attempts, claimed_by=None)
        try:
            stored = await self._store.replace_delivery(done, expected_revision=claimed.revision)
        except (ConflictError, NotFoundError):
            return None  # the lease ran out and another worker owns it now, or the webhook was deleted
        self._on_result(outcome)
        if outcome != "delivered":
            # Event type and ids only: never the URL (it may carry a token) or the secret.
            log.info(
                "webhook delivery %s (%s, webhook %s) attempt %d: %s",
                claimed.id,
                claimed.event_type,
                claimed.webhook_id,
                len(attempts),
                result.error,
            )
        return stored

    def poll_seconds(self) -> float:
        return self._poll


def expiry_threshold(not_after: datetime, now: datetime) -> int | None:
    """0 for an expired certificate, else the narrowest of 30/7/1 days it is within; None when further off."""
    if not_after <= now:
        return 0
    remaining = not_after - now
    crossed = [d for d in EXPIRY_DAYS if remaining <= timedelta(days=d)]
    return min(crossed) if crossed else None


class ExpiryWatch(BackgroundLoop):
    """Announces certificate.expiring (within 30, 7, 1 days) and certificate.expired for every APIC
    certificate, once per (certificate, not_after, threshold): a notice key is recorded in the store after the
    event's deliveries are (whose ids derive from that key, so a replica that races or a crash in between
    adds no second delivery). A certificate renewed to a new not_after gets new keys: it starts over.
    Only the narrowest threshold crossed is announced (a certificate uploaded 5 days before it expires gets
    the 7-day event, not the 30-day one too)."""

    loop_name = "expiry watch"

    def __init__(
        self,
        store: NotificationStore,
        notifier: Notifier,
        *,
        clock: Clock = system_clock,
        interval_seconds: float = 300.0,
        page: int = 500,
        lookback: timedelta = EXPIRED_LOOKBACK,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._clock = clock
        self._interval = interval_seconds
        self._page = page
        self._lookback = lookback
        self._init_loop()

    @staticmethod
    def notice_key(project_id: str, cert_id: str, not_after: datetime, threshold: int) -> str:
        return f"{project_id}|{cert_id}|{iso(not_after)}|{threshold}"

    async def run_once(self) -> int:
        """Announce every threshold crossed and not yet announced; how many notices were new."""
        now = self._clock()
        # `before` a second past the widest threshold: a certificate exactly 30 days away has crossed it
        after, before = now - self._lookback, now + timedelta(days=max(EXPIRY_DAYS), seconds=1)
        cursor: str | None = None
        announced = 0
        hooks: dict[str, list[Webhook]] = {}  # each project's webhooks, read once per pass
        while True:
            certs, cursor = await self._store.expiring_certificates(after, before, cursor, self._page)
            keyed = []
            for cert in certs:
                threshold = expiry_threshold(cert.not_after, now)
                if threshold is not None:
                    keyed.append(
                        (self.notice_key(cert.project_id, cert.id, cert.not_after, threshold), threshold, cert)
                    )
            seen = await self._store.seen_notices([k for k, _, _ in keyed])
            for key, threshold, cert in keyed:
                if key in seen:
                    continue
                data: dict[str, object] = {"certificate_id": cert.id, "name": cert.name, "not_after": cert.not_after}
                if threshold:
                    data["days"] = threshold
                event = EventType.CERTIFICATE_EXPIRING if threshold else EventType.CERTIFICATE_EXPIRED
                if cert.project_id not in hooks:
                    hooks[cert.project_id] = await self._store.list_webhooks(cert.project_id)
                await self._notifier.publish(
                    cert.project_id,
                    event.value,
                    data,
                    event_id="msg_" + uuid.uuid5(_EVENT_IDS, key).hex,
                    webhooks=[h for h in hooks[cert.project_id] if event.value in h.events],
                )
                if await self._store.record_notice(key, now):
                    announced += 1
            if cursor is None:
                return announced

    def poll_seconds(self) -> float:
        return self._interval
