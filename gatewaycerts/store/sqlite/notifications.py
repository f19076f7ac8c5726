"""SQLite adapter of the notification store: webhooks, deliveries (claimed by revision), expiry notices."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError, NotFoundError
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.notifications import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    ExpiringCertificate,
    Webhook,
)
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    SqliteDatabase,
    prepare_envelope_tables,
    sort_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    secret BLOB NOT NULL,
    kek_id TEXT,
    creator_id TEXT NOT NULL,
    create_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_project ON webhooks (project_id, create_time, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    create_time TEXT NOT NULL,
    next_attempt TEXT,
    attempts TEXT NOT NULL,
    claimed_by TEXT,
    revision INTEGER NOT NULL
);
-- the workers' query: only pending deliveries are in it, soonest first
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_log
    ON webhook_deliveries (project_id, webhook_id, create_time DESC, id DESC);
CREATE TABLE IF NOT EXISTS expiry_notices (key TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID;
"""

_DELIVERY_COLUMNS = (
    "id, project_id, webhook_id, event_id, event_type, body, state, create_time, next_attempt, attempts, "
    "claimed_by, revision"
)
_CHUNK = 500


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _attempts(text: str) -> tuple[DeliveryAttempt, ...]:
    return tuple(
        DeliveryAttempt(time=datetime.fromisoformat(a["time"]), status_code=a["status_code"], error=a["error"])
        for a in json.loads(text)
    )


def _attempts_text(attempts: Sequence[DeliveryAttempt]) -> str:
    return json.dumps([{"time": sort_key(a.time), "status_code": a.status_code, "error": a.error} for a in attempts])


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        project_id=row[1],
        webhook_id=row[2],
        event_id=row[3],
        event_type=row[4],
        body=row[5],
        state=DeliveryState(row[6]),
        create_time=datetime.fromisoformat(row[7]),
        next_attempt=_time(row[8]),
        attempts=_attempts(row[9]),
        claimed_by=row[10],
        revision=row[11],
    )


def _delivery_row(d: Delivery) -> tuple[Any, ...]:
    return (
        d.id,
        d.project_id,
        d.webhook_id,
        d.event_id,
        d.event_type,
        d.body,
        d.state.value,
        sort_key(d.create_time),
        sort_key(d.next_attempt) if d.next_attempt else None,
        _attempts_text(d.attempts),
        d.claimed_by,
        d.revision,
    )


def _webhook(row: Sequence[Any]) -> Webhook:
    return Webhook(
        id=row[0],
        project_id=row[1],
        url=row[2],
        events=tuple(json.loads(row[3])),
        description=row[4],
        encrypted_secret=bytes(row[5]),
        creator_id=row[6],
        create_time=datetime.fromisoformat(row[7]),
    )


_WEBHOOK_COLUMNS = "id, project_id, url, events, description, secret, creator_id, create_time"


class SqliteNotificationStore(SqliteBase):
    """On the certificate store's database (the expiry watch reads its not_after index); closing that
    database is left to the certificate store."""

    # A webhook's secret never changes but by a rewrap, which compares the envelope itself.
    _ENVELOPES = (EnvelopeTable(EnvelopeKind.WEBHOOK_SECRET, "webhooks", "secret", has_revision=False),)

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, self._ENVELOPES)

        await self._run_alone(op)

    # -- webhooks ---------------------------------------------------------------------------------------

    async def insert_webhook(self, hook: Webhook) -> None:
        row = (
            hook.id,
            hook.project_id,
            hook.url,
            json.dumps(list(hook.events)),
            hook.description,
            hook.encrypted_secret,
            envelope_kek_id(hook.encrypted_secret),
            hook.creator_id,
            sort_key(hook.create_time),
        )
        await self._run(lambda conn: conn.execute("INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row))

    async def get_webhook(self, project_id: str, webhook_id: str) -> Webhook | None:
        def op(conn: sqlite3.Connection) -> Webhook | None:
            row = conn.execute(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND project_id = ?",  # noqa: S608
                (webhook_id, project_id),
            ).fetchone()
            return _webhook(row) if row else None

        return await self._read(op)

    async def list_webhooks(self, project_id: str) -> list[Webhook]:
        def op(conn: sqlite3.Connection) -> list[Webhook]:
            rows = conn.execute(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE project_id = ? ORDER BY create_time, id",  # noqa: S608
                (project_id,),
            ).fetchall()
            return [_webhook(r) for r in rows]

        return await self._read(op)

    async def delete_webhook(self, project_id: str, webhook_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM webhooks WHERE id = ? AND project_id = ?", (webhook_id, project_id))
            if cur.rowcount != 1:
                return False
            conn.execute(
                "DELETE FROM webhook_deliveries WHERE project_id = ? AND webhook_id = ?", (project_id, webhook_id)
            )
            return True

        return await self._run(op)

    # -- deliveries -------------------------------------------------------------------------------------

    async def insert_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        rows = [_delivery_row(d) for d in deliveries]

        def op(conn: sqlite3.Connection) -> int:
            new = 0
            for row in rows:
                cur = conn.execute(
                    f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    row,
                )
                new += cur.rowcount
            return new

        return await self._run(op) if rows else 0

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries INDEXED BY webhook_deliveries_due "  # noqa: S608
                "WHERE state = 'pending' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
                (sort_key(now), limit),
            ).fetchall()
            return [_delivery(r) for r in rows]

        return await self._read(op)

    async def replace_delivery(self, delivery: Delivery, *, expected_revision: int) -> Delivery:
        stored = replace(delivery, revision=expected_revision + 1)
        row = _delivery_row(stored)

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE webhook_deliveries SET state = ?, next_attempt = ?, attempts = ?, claimed_by = ?, "
                "revision = ? WHERE id = ? AND project_id = ? AND revision = ?",
                (row[6], row[8], row[9], row[10], row[11], stored.id, stored.project_id, expected_revision),
            )
            if cur.rowcount == 1:
                return
            exists = conn.execute("SELECT 1 FROM webhook_deliveries WHERE id = ?", (stored.id,)).fetchone()
            if exists is None:
                raise NotFoundError("the delivery no longer exists")
            raise ConflictError("the delivery was changed concurrently")

        await self._run(op)
        return stored

    async def get_delivery(self, project_id: str, delivery_id: str) -> Delivery | None:
        def op(conn: sqlite3.Connection) -> Delivery | None:
            row = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ? AND project_id = ?",  # noqa: S608
                (delivery_id, project_id),
            ).fetchone()
            return _delivery(row) if row else None

        return await self._read(op)

    async def list_deliveries(self, project_id: str, webhook_id: str, offset: int, limit: int) -> Page[Delivery]:
        def op(conn: sqlite3.Connection) -> Page[Delivery]:
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries INDEXED BY webhook_deliveries_log "  # noqa: S608
                "WHERE project_id = ? AND webhook_id = ? ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                (project_id, webhook_id, limit, offset),
            ).fetchall()
            (total,) = conn.execute(
                "SELECT count(*) FROM webhook_deliveries INDEXED BY webhook_deliveries_log "
                "WHERE project_id = ? AND webhook_id = ?",
                (project_id, webhook_id),
            ).fetchone()
            return Page(items=tuple(_delivery(r) for r in rows), total=total)

        return await self._read(op)

    async def count_pending(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT count(*) FROM webhook_deliveries INDEXED BY webhook_deliveries_due WHERE state = 'pending'"
            ).fetchone()[0]

        return await self._read(op)

    # -- the expiry watch -------------------------------------------------------------------------------

    async def expiring_certificates(
        self, after: datetime, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[ExpiringCertificate], str | None]:
        # certificates_expiry is (not_after) and its entries are ordered by (not_after, rowid): keyset pages
        # in that order need no sort.
        params: list[Any] = [sort_key(after), sort_key(before)]
        where = "not_after >= ? AND not_after < ?"
        if cursor:
            last_not_after, last_rowid = cursor.rsplit("|", 1)
            where += " AND (not_after, rowid) > (?, ?)"
            params += [last_not_after, int(last_rowid)]

        def op(conn: sqlite3.Connection) -> tuple[list[ExpiringCertificate], str | None]:
            rows = conn.execute(
                "SELECT rowid, project_id, id, name, not_after FROM certificates INDEXED BY certificates_expiry "  # noqa: S608
                f"WHERE {where} ORDER BY not_after, rowid LIMIT ?",
                (*params, limit),
            ).fetchall()
            items = [ExpiringCertificate(r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]
            following = f"{rows[-1][4]}|{rows[-1][0]}" if len(rows) == limit else None
            return items, following

        return await self._read(op)

    async def seen_notices(self, keys: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))

        def op(conn: sqlite3.Connection) -> set[str]:
            seen: set[str] = set()
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                seen.update(
                    r[0]
                    for r in conn.execute(f"SELECT key FROM expiry_notices WHERE key IN ({marks})", chunk)  # noqa: S608
                )
            return seen

        return await self._read(op) if wanted else set()

    async def record_notice(self, key: str, at: datetime) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("INSERT INTO expiry_notices VALUES (?, ?) ON CONFLICT DO NOTHING", (key, sort_key(at)))
            return cur.rowcount == 1

        return await self._run(op)
