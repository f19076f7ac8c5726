"""SqliteOrderStore: orders, secrets, containers and each project's preferred CA.

Each record is a JSON document plus the columns that lists and the worker's claim query use; order changes
are a compare-and-swap on `revision`: one UPDATE statement, atomic under SQLite's write lock (also between
processes).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError, OrderNotFoundError
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.orders import Container, Order, Secret
from gatewaycerts.store.order_codec import (
    container_from_doc,
    container_to_doc,
    order_from_doc,
    order_to_doc,
    secret_from_doc,
    secret_to_doc,
)
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    decode_json,
    dump_json,
    prepare_envelope_tables,
    sort_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    create_time TEXT NOT NULL,
    claim_until TEXT,
    revision INTEGER NOT NULL,
    doc TEXT NOT NULL,
    kek_id TEXT
);
CREATE INDEX IF NOT EXISTS orders_recent ON orders (project_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (status, create_time);
CREATE TABLE IF NOT EXISTS secrets (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, doc TEXT NOT NULL, kek_id TEXT);
CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS preferred_cas (project_id TEXT PRIMARY KEY, ca_id TEXT NOT NULL);
"""
_ENVELOPE_TABLES = (
    EnvelopeTable(EnvelopeKind.ORDER, "orders", "doc", "encrypted_params"),
    EnvelopeTable(EnvelopeKind.SECRET, "secrets", "doc", "encrypted_payload", has_revision=False),
)


def _load(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=decode_json)


def _order_row(order: Order) -> dict[str, Any]:
    doc = order_to_doc(order)
    kek_id = doc.pop("kek_id")  # a column only: a rewrap changes the envelope and its label, nothing else
    return {
        "id": order.id,
        "project_id": order.project_id,
        "status": order.status.value,
        "create_time": sort_key(order.create_time),
        "claim_until": None if order.claim_until is None else sort_key(order.claim_until),
        "revision": order.revision,
        "doc": dump_json(doc),
        "kek_id": kek_id,
    }


class SqliteOrderStore(SqliteBase):
    _ENVELOPES = _ENVELOPE_TABLES

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, _ENVELOPE_TABLES)

        await self._run_alone(op)

    # -- orders -------------------------------------------------------------------------------------

    async def insert_order(self, order: Order) -> None:
        row = _order_row(order)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO orders (id, project_id, status, create_time, claim_until, revision, doc, kek_id) "
                    "VALUES (:id, :project_id, :status, :create_time, :claim_until, :revision, :doc, :kek_id)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise ConflictError("an order with this id exists already") from None

        await self._run(op)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        def op(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else _load(row[0])

        return await self._read(op)

    async def get_order(self, project_id: str, order_id: str) -> Order | None:
        doc = await self._one("SELECT doc FROM orders WHERE id = ? AND project_id = ?", (order_id, project_id))
        return None if doc is None else order_from_doc(doc)

    async def list_orders(self, project_id: str, offset: int, limit: int) -> Page[Order]:
        def op(conn: sqlite3.Connection) -> tuple[list[str], int]:
            total = conn.execute("SELECT count(*) FROM orders WHERE project_id = ?", (project_id,)).fetchone()[0]
            rows = conn.execute(
                "SELECT doc FROM orders WHERE project_id = ? ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                (project_id, limit, offset),
            ).fetchall()
            return [r[0] for r in rows], total

        docs, total = await self._read(op)
        return Page(items=tuple(order_from_doc(_load(d)) for d in docs), total=total)

    async def replace_order(self, order: Order, *, expected_revision: int) -> Order:
        stored = dc_replace(order, revision=expected_revision + 1)
        row = _order_row(stored)

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE orders SET status = :status, claim_until = :claim_until, revision = :revision, doc = :doc, "
                "kek_id = :kek_id "
                "WHERE id = :id AND project_id = :project_id AND revision = :expected",
                {**row, "expected": expected_revision},
            )
            if cur.rowcount == 0:
                if conn.execute("SELECT 1 FROM orders WHERE id = ?", (row["id"],)).fetchone() is None:
                    raise OrderNotFoundError("the order does not exist")
                raise ConflictError("the order was changed concurrently; retry")

        await self._run(op)
        return stored

    async def delete_order(self, project_id: str, order_id: str) -> bool:
        return await self._delete("orders", project_id, order_id)

    async def claimable_orders(self, now: datetime, limit: int) -> list[Order]:
        def op(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT doc FROM orders WHERE status = 'PENDING' AND (claim_until IS NULL OR claim_until < ?) "
                "ORDER BY create_time LIMIT ?",
                (sort_key(now), limit),
            ).fetchall()
            return [r[0] for r in rows]

        return [order_from_doc(_load(d)) for d in await self._read(op)]

    # -- secrets and containers -----------------------------------------------------------------------

    async def _put(self, table: str, record_id: str, project_id: str, doc: dict[str, Any]) -> None:
        columns, values = ["id", "project_id", "doc"], [record_id, project_id]
        if "kek_id" in doc:
            columns.append("kek_id")
            values.append(doc.pop("kek_id"))
        values.insert(2, dump_json(doc))
        sql = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
        await self._run(lambda conn: conn.execute(sql, values))

    async def _delete(self, table: str, project_id: str, record_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            sql = f"DELETE FROM {table} WHERE id = ? AND project_id = ?"  # noqa: S608 - table is ours
            return conn.execute(sql, (record_id, project_id)).rowcount > 0

        return await self._run(op)

    async def put_secret(self, secret: Secret) -> None:
        await self._put("secrets", secret.id, secret.project_id, secret_to_doc(secret))

    async def get_secret(self, project_id: str, secret_id: str) -> Secret | None:
        doc = await self._one("SELECT doc FROM secrets WHERE id = ? AND project_id = ?", (secret_id, project_id))
        return None if doc is None else secret_from_doc(doc)

    async def delete_secret(self, project_id: str, secret_id: str) -> bool:
        return await self._delete("secrets", project_id, secret_id)

    async def put_container(self, container: Container) -> None:
        await self._put("containers", container.id, container.project_id, container_to_doc(container))

    async def get_container(self, project_id: str, container_id: str) -> Container | None:
        sql = "SELECT doc FROM containers WHERE id = ? AND project_id = ?"
        doc = await self._one(sql, (container_id, project_id))
        return None if doc is None else container_from_doc(doc)

    async def delete_container(self, project_id: str, container_id: str) -> bool:
        return await self._delete("containers", project_id, container_id)

    # -- preferred CA -----------------------------------------------------------------------------

    async def set_preferred_ca(self, project_id: str, ca_id: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO preferred_cas (project_id, ca_id) VALUES (?, ?)", (project_id, ca_id)
            )
        )

    async def preferred_ca(self, project_id: str) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT ca_id FROM preferred_cas WHERE project_id = ?", (project_id,)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(op)
