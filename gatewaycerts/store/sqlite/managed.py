"""SqliteManagedCertificateStore: managed certificates and the chain history, on the certificate database.

Each record is a JSON document plus the columns the due query and the claim use. A change is a compare-and-
swap on `revision` (one UPDATE, atomic under SQLite's write lock, also between processes). The due query
reads `managed_by_due` in its order (tests/contract/test_managed_store.py reads the plan).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from gatewaycerts.domain.errors import CertificateNotFoundError, ConflictError, DuplicateNameError
from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate
from gatewaycerts.domain.models import Page
from gatewaycerts.store.managed_codec import (
    chain_revision_from_doc,
    chain_revision_to_doc,
    managed_from_doc,
    managed_to_doc,
)
from gatewaycerts.store.sqlite.base import SqliteBase, SqliteDatabase, decode_json, dump_json, sort_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS managed_certificates (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    create_time TEXT NOT NULL,
    due_at TEXT,
    claim_until TEXT,
    revision INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS managed_names ON managed_certificates (project_id, type, instance_id, name);
CREATE INDEX IF NOT EXISTS managed_recent ON managed_certificates (project_id, create_time, id);
CREATE INDEX IF NOT EXISTS managed_by_due ON managed_certificates (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS certificate_chain_revisions (
    certificate_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    project_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (certificate_id, revision)
) WITHOUT ROWID;
"""

# The due query: the partial index in due_at order; the claim filter is checked on the (few) due rows.
DUE_SQL = (
    "SELECT doc FROM managed_certificates INDEXED BY managed_by_due "
    "WHERE due_at IS NOT NULL AND due_at <= ? AND (claim_until IS NULL OR claim_until < ?) "
    "ORDER BY due_at LIMIT ?"
)
_DUPLICATE = "a managed certificate named {name!r} already exists in this project and scope"


def _opt(value: datetime | None) -> str | None:
    return None if value is None else sort_key(value)


class SqliteManagedCertificateStore(SqliteBase):
    """Borrows the certificate store's database: opening and closing it is that store's business."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database
        self._closed = False

    async def ensure_schema(self) -> None:
        await self._run_alone(lambda conn: conn.executescript(_SCHEMA))

    async def close(self) -> None:
        self._closed = True

    @staticmethod
    def _row(m: ManagedCertificate) -> dict[str, Any]:
        return {
            "id": m.id,
            "project_id": m.project_id,
            "name": m.name,
            "type": m.scope.value,
            "instance_id": m.instance_id,
            "create_time": sort_key(m.create_time),
            "due_at": _opt(m.due_at),
            "claim_until": _opt(m.claim_until),
            "revision": m.revision,
            "doc": dump_json(managed_to_doc(m)),
        }

    @staticmethod
    def _from(doc: str) -> ManagedCertificate:
        return managed_from_doc(json.loads(doc, object_hook=decode_json))

    async def insert_managed(self, managed: ManagedCertificate) -> None:
        row = self._row(managed)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO managed_certificates ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
                    row,
                )
            except sqlite3.IntegrityError:
                raise DuplicateNameError(_DUPLICATE.format(name=managed.name), field="name") from None

        await self._run(op)

    async def get_managed(self, project_id: str, cert_id: str) -> ManagedCertificate | None:
        def op(conn: sqlite3.Connection) -> ManagedCertificate | None:
            row = conn.execute(
                "SELECT doc FROM managed_certificates WHERE id = ? AND project_id = ?", (cert_id, project_id)
            ).fetchone()
            return None if row is None else self._from(row[0])

        return await self._read(op)

    async def list_managed(self, project_id: str, offset: int, limit: int) -> Page[ManagedCertificate]:
        def op(conn: sqlite3.Connection) -> Page[ManagedCertificate]:
            total = conn.execute(
                "SELECT count(*) FROM managed_certificates WHERE project_id = ?", (project_id,)
            ).fetchone()[0]
            rows = conn.execute(
                "SELECT doc FROM managed_certificates INDEXED BY managed_recent WHERE project_id = ? "
                "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                (project_id, limit, offset),
            ).fetchall()
            return Page(items=tuple(self._from(r[0]) for r in rows), total=total)

        return await self._read(op)

    async def replace_managed(self, managed: ManagedCertificate, *, expected_revision: int) -> ManagedCertificate:
        stored = dc_replace(managed, revision=expected_revision + 1)
        row = self._row(stored)
        assignments = ", ".join(f"{k} = :{k}" for k in row if k not in ("id", "project_id"))

        def op(conn: sqlite3.Connection) -> None:
            try:
                cur = conn.execute(
                    f"UPDATE managed_certificates SET {assignments} "  # noqa: S608
                    "WHERE id = :id AND project_id = :project_id AND revision = :expected",
                    {**row, "expected": expected_revision},
                )
            except sqlite3.IntegrityError:
                raise DuplicateNameError(_DUPLICATE.format(name=managed.name), field="name") from None
            if cur.rowcount == 0:
                found = conn.execute(
                    "SELECT 1 FROM managed_certificates WHERE id = ? AND project_id = ?",
                    (managed.id, managed.project_id),
                ).fetchone()
                if found is None:
                    raise CertificateNotFoundError("the managed certificate does not exist")
                raise ConflictError("the managed certificate was changed concurrently; retry")

        await self._run(op)
        return stored

    async def delete_managed(self, project_id: str, cert_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM managed_certificates WHERE id = ? AND project_id = ?", (cert_id, project_id)
            )
            return cur.rowcount > 0

        return await self._run(op)

    async def due_managed(self, now: datetime, limit: int) -> list[ManagedCertificate]:
        at = sort_key(now)

        def op(conn: sqlite3.Connection) -> list[ManagedCertificate]:
            return [self._from(r[0]) for r in conn.execute(DUE_SQL, (at, at, limit)).fetchall()]

        return await self._read(op)

    async def explain_due(self, now: datetime, limit: int) -> list[str]:
        at = sort_key(now)

        def op(conn: sqlite3.Connection) -> list[str]:
            return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + DUE_SQL, (at, at, limit))]

        return await self._read(op)

    async def add_chain_revision(self, entry: ChainRevision) -> None:
        doc = dump_json(chain_revision_to_doc(entry))

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO certificate_chain_revisions (certificate_id, revision, project_id, doc) "
                "VALUES (?, ?, ?, ?)",
                (entry.certificate_id, entry.revision, entry.project_id, doc),
            )

        await self._run(op)

    async def chain_revisions(self, project_id: str, cert_id: str, limit: int) -> list[ChainRevision]:
        def op(conn: sqlite3.Connection) -> list[ChainRevision]:
            rows = conn.execute(
                "SELECT doc FROM certificate_chain_revisions WHERE certificate_id = ? AND project_id = ? "
                "ORDER BY revision DESC LIMIT ?",
                (cert_id, project_id, limit),
            ).fetchall()
            return [chain_revision_from_doc(json.loads(r[0], object_hook=decode_json)) for r in rows]

        return await self._read(op)

    async def delete_chain_revisions(self, project_id: str, cert_id: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM certificate_chain_revisions WHERE certificate_id = ? AND project_id = ?",
                (cert_id, project_id),
            )
        )
