"""AuditLog: the services record each change they made, after it succeeded; project admins list them.

The change and its event are two writes (FerretDB v1 has no transactions to join them), in that order: the
event is written only once the change has succeeded, and a failed event write never undoes the change or
its answer. It is retried (the event keeps its id, so a write whose answer was lost is not doubled); when
every attempt fails, one ERROR line carries the event (it holds no secrets) and `on_lost` counts it.

One exception, where the store can join them: a service may build the event first (`event`) and hand it to a
store write that stores the change and the event in one transaction, both or neither (on SQLite, the
certificates of the CCM issue paths: PcaStore.insert_certificate_reserving_serial). The event is then "with
the change" rather than "after" it: a failed write fails the change too, and nothing is retried or logged
as lost, because nothing happened. Where the store cannot join them (MongoDB), the service writes the event
after the change as above (`write`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from enum import Enum

from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.context import request_id_var
from gatewaycerts.core.ids import new_id
from gatewaycerts.domain.audit import AuditEvent, AuditMarker, AuditPage, AuditQuery, DetailValue
from gatewaycerts.domain.errors import InvalidInputError
from gatewaycerts.domain.models import Action, Principal
from gatewaycerts.store.interfaces import AuditStore

log = logging.getLogger("gatewaycerts.audit")

ATTEMPTS = 3
BACKOFF_SECONDS = 0.05  # doubled after each failed attempt
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_FILTER = 255
MAX_DETAIL_TEXT = 256
MAX_DETAIL_ITEMS = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MARKER = re.compile(r"(\d{1,17})\.([0-9a-f]{32})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PEM = "-----BEGIN"

# Set by a service that makes its change through another service's method (Notary's CA calls are the CCM
# engine's): the event then carries the name of the operation the client asked for.
_action_override: ContextVar[str | None] = ContextVar("gatewaycerts_audit_action", default=None)


def _fact(value: object) -> DetailValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)  # BSON and JSON readers stop at 64 / 53 bits
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        return [str(_fact(v)) for v in items[:MAX_DETAIL_ITEMS]]
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(value, Enum):
        text = str(value.value)
    else:
        text = str(value)
    # Details are facts chosen by the services; a PEM block here would be a bug, and must not be stored.
    return "[redacted]" if _PEM in text else text[:MAX_DETAIL_TEXT]


def facts(details: Mapping[str, object]) -> dict[str, DetailValue]:
    """Details as stored: primitives and lists of strings, bounded, None left out, never a PEM block."""
    return {key: _fact(value) for key, value in details.items() if value is not None}


def encode_marker(marker: AuditMarker) -> str:
    raw = f"{(marker.time - _EPOCH) // _US}.{marker.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_marker(text: str) -> AuditMarker:
    bad = InvalidInputError(
        "Invalid parameter value, parameterName:next. Use the marker of the previous page's meta_data", field="next"
    )
    if len(text) > 96:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    match = _MARKER.fullmatch(raw)
    if match is None or int(match[1]) > MAX_TIME_MS * 1000:
        raise bad
    return AuditMarker(time=_EPOCH + int(match[1]) * _US, id=match[2])


def _time(ms: int | None, field: str) -> datetime | None:
    if ms is None:
        return None
    if isinstance(ms, bool) or not 0 <= ms <= MAX_TIME_MS:
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:{field}. Use a UTC time in milliseconds since 1970, "
            f"0 to {MAX_TIME_MS}",
            field=field,
        )
    return _EPOCH + timedelta(milliseconds=ms)


def _filter(value: str | None, field: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_FILTER or _CONTROL.search(value):
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:{field}. Use 1 to {MAX_FILTER} characters, no control characters",
            field=field,
        )
    return value


class AuditLog:
    def __init__(
        self,
        store: AuditStore | None,
        *,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_id,
        on_lost: Callable[[str], None] | None = None,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        """`store` None records nothing (services built without an audit trail, e.g. in benchmarks)."""
        self._store = store
        self._clock = clock
        self._new_id = new_id
        self._on_lost = on_lost or (lambda action: None)
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds

    @contextmanager
    def renamed(self, action: str) -> Iterator[None]:
        """Events recorded inside are named `action` (the operation the client called)."""
        token = _action_override.set(action)
        try:
            yield
        finally:
            _action_override.reset(token)

    async def record(
        self,
        actor: Principal | str,
        project_id: str,
        action: str,
        object_type: str,
        object_id: str,
        *,
        object_name: str | None = None,
        **details: object,
    ) -> AuditEvent | None:
        """Record a change that has happened; never raises for a failed write (see the module docstring)."""
        event = self.event(actor, project_id, action, object_type, object_id, object_name=object_name, **details)
        return None if event is None else await self.write(event)

    def event(
        self,
        actor: Principal | str,
        project_id: str,
        action: str,
        object_type: str,
        object_id: str,
        *,
        object_name: str | None = None,
        **details: object,
    ) -> AuditEvent | None:
        """The event `record` would write (None when this log records nothing), for a store write that stores
        it with its change (see the module docstring); its time is now, its request id the current one."""
        if self._store is None:
            return None
        if isinstance(actor, Principal):
            subject, roles = actor.subject, tuple(sorted(r.value for r in actor.roles))
        else:
            subject, roles = actor, ()
        return AuditEvent(
            id=self._new_id(),
            project_id=project_id,
            time=self._clock(),
            actor=subject,
            roles=roles,
            action=_action_override.get() or action,
            object_type=object_type,
            object_id=object_id,
            object_name=None if object_name is None else str(_fact(object_name)),  # names are clients' text too
            request_id=request_id_var.get(),
            details=facts(details),
        )

    async def write(self, event: AuditEvent) -> AuditEvent | None:
        """Write an event built by `event`, after its change, as `record` does: retried, never raising."""
        assert self._store is not None
        failure = ""
        for attempt in range(self._attempts):
            try:
                await self._store.insert(event)
                return event
            except Exception as exc:  # noqa: BLE001 - the change has happened; its answer must still go out
                failure = type(exc).__name__
                if attempt + 1 < self._attempts:
                    await asyncio.sleep(self._backoff * 2**attempt)
        log.error(
            "audit event not recorded after %d attempts (%s): %s",
            self._attempts,
            failure,
            json.dumps(_summary(event), ensure_ascii=False, sort_keys=True),
        )
        self._on_lost(event.action)
        return None

    async def list(
        self,
        principal: Principal,
        project_id: str,
        *,
        limit: int | None = None,
        marker: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        request_id: str | None = None,
    ) -> AuditPage:
        """The project's events, newest first; admins of the project only."""
        authorize(principal, project_id, Action.READ_AUDIT)
        size = DEFAULT_LIMIT if limit is None else limit
        if isinstance(size, bool) or not 1 <= size <= MAX_LIMIT:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:limit. Use 1 to {MAX_LIMIT}", field="limit"
            )
        since, until = _time(since_ms, "from"), _time(until_ms, "to")
        if since is not None and until is not None and since > until:
            raise InvalidInputError("Invalid parameter value, parameterName:from. It is later than to", field="from")
        query = AuditQuery(
            since=since,
            until=until,
            object_type=_filter(object_type, "resource_type"),
            object_id=_filter(object_id, "resource_id"),
            action=_filter(action, "trace_name"),
            actor=_filter(actor, "user"),
            request_id=_filter(request_id, "request_id"),
            after=decode_marker(marker) if marker else None,
        )
        assert self._store is not None, "listing needs an audit store"
        found = await self._store.list(project_id, query, size + 1)
        events = found[:size]
        more = len(found) > size
        return AuditPage(events=events, next=AuditMarker(events[-1].time, events[-1].id) if more else None)


def _summary(event: AuditEvent) -> dict[str, object]:
    return {
        "id": event.id,
        "project_id": event.project_id,
        "time": event.time.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_name": event.object_name,
        "request_id": event.request_id,
        "details": dict(event.details),
    }
