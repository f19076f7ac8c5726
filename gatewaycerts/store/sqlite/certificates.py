"""SqliteCertificateStore: certificates in one table; filterable columns plus JSON for the rest."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any, TypeVar

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import (
    CertificateNotFoundError,
    ConflictError,
    DuplicateNameError,
)
from gatewaycerts.domain.models import Certificate, CertificateFilter, DeleteOutcome, Page
from gatewaycerts.store.codec import HEAVY_FIELDS, certificate_from_doc, certificate_to_doc, exact_filters
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    add_kek_column,
    decode_json,
    encode_json,
    label_envelopes,
    sort_key,
)

T = TypeVar("T")

_COLUMNS = (
    "_id",
    "project_id",
    "name",
    "type",
    "instance_id",
    "common_name",
    "signature_algorithm",
    "algorithm_type",
    "create_time",
    "not_after",
    "revision",
    "binding_count",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    common_name TEXT NOT NULL,
    signature_algorithm TEXT NOT NULL,
    algorithm_type TEXT NOT NULL,
    create_time TEXT NOT NULL,
    not_after TEXT,
    revision INTEGER NOT NULL,
    binding_count INTEGER NOT NULL,
    summary TEXT NOT NULL,
    heavy TEXT NOT NULL,
    private_key BLOB NOT NULL,
    kek_id TEXT
);
CREATE TABLE IF NOT EXISTS kek_canaries (kek_id TEXT PRIMARY KEY, envelope BLOB NOT NULL);
"""

_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS certificates_name ON certificates (project_id, type, instance_id, name);
CREATE INDEX IF NOT EXISTS certificates_recent ON certificates (project_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_expiry ON certificates (not_after);
"""
_ENVELOPE_TABLE = EnvelopeTable(EnvelopeKind.APIC_CERTIFICATE, "certificates", "private_key")

_DUPLICATE = "a certificate named {name!r} already exists in this project and scope"


class SqliteCertificateStore(SqliteBase):
    _ENVELOPES = (_ENVELOPE_TABLE,)

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(certificates)")}
            if "not_after" not in columns:
                # Databases from before the expiry metrics: add the column and fill it from the summary.
                conn.execute("ALTER TABLE certificates ADD COLUMN not_after TEXT")
            rows = conn.execute("SELECT id, summary FROM certificates WHERE not_after IS NULL").fetchall()
            for cert_id, summary in rows:
                not_after = json.loads(summary, object_hook=decode_json)["not_after"]
                conn.execute("UPDATE certificates SET not_after = ? WHERE id = ?", (sort_key(not_after), cert_id))
            add_kek_column(conn, "certificates")
            label_envelopes(conn, _ENVELOPE_TABLE)
            conn.executescript(_INDEXES)
            conn.execute(_ENVELOPE_TABLE.index_sql)

        await self._run(op)

    # -- mapping ----------------------------------------------------------------------------------

    @staticmethod
    def _row(cert: Certificate) -> dict[str, Any]:
        doc = certificate_to_doc(cert)
        heavy = {k: doc.pop(k) for k in HEAVY_FIELDS}
        private_key = heavy.pop("private_key")
        kek_id = doc.pop("kek_id")  # a column only: a rewrap changes the key and its label, nothing else
        return {
            **{c.lstrip("_"): doc[c] for c in _COLUMNS},
            "create_time": sort_key(cert.create_time),
            "not_after": sort_key(cert.info.not_after),
            "summary": json.dumps(doc, default=encode_json),
            "heavy": json.dumps(heavy, default=encode_json),
            "private_key": private_key,
            "kek_id": kek_id,
        }

    @staticmethod
    def _from_row(summary: str, heavy: str | None, private_key: bytes | None) -> Certificate:
        doc = json.loads(summary, object_hook=decode_json)
        if heavy is not None:
            doc.update(json.loads(heavy, object_hook=decode_json))
            doc["private_key"] = private_key
        return certificate_from_doc(doc)

    # -- operations -------------------------------------------------------------------------------

    async def insert(self, cert: Certificate) -> None:
        row = self._row(cert)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO certificates ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
                    row,
                )
            except sqlite3.IntegrityError:
                raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None

        await self._run(op)

    async def get(self, project_id: str, cert_id: str) -> Certificate | None:
        def op(conn: sqlite3.Connection) -> Certificate | None:
            row = conn.execute(
                "SELECT summary, heavy, private_key FROM certificates WHERE id = ? AND project_id = ?",
                (cert_id, project_id),
            ).fetchone()
            return None if row is None else self._from_row(*row)

        return await self._run(op)

    @staticmethod
    def _where(project_id: str, flt: CertificateFilter) -> tuple[str, list[Any]]:
        clauses, params = ["project_id = ?"], [project_id]
        if flt.name_contains:
            escaped = flt.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("name LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        for column, value in exact_filters(flt).items():
            clauses.append(f"{column} = ?")
            params.append(value)
        return " AND ".join(clauses), params

    async def list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> Page[Certificate]:
        where, params = self._where(project_id, flt)

        def op(conn: sqlite3.Connection) -> Page[Certificate]:
            total = conn.execute(f"SELECT count(*) FROM certificates WHERE {where}", params).fetchone()[0]  # noqa: S608
            rows = conn.execute(
                f"SELECT summary FROM certificates WHERE {where} "  # noqa: S608
                "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return Page(items=tuple(self._from_row(r[0], None, None) for r in rows), total=total)

        return await self._run(op)

    async def replace(self, cert: Certificate, *, expected_revision: int) -> Certificate:
        stored = dc_replace(cert, revision=expected_revision + 1)
        row = self._row(stored)
        assignments = ", ".join(f"{k} = :{k}" for k in row if k != "id")

        def op(conn: sqlite3.Connection) -> None:
            try:
                cur = conn.execute(
                    f"UPDATE certificates SET {assignments} "  # noqa: S608
                    "WHERE id = :id AND project_id = :project_id AND revision = :expected",
                    {**row, "expected": expected_revision},
                )
            except sqlite3.IntegrityError:
                raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None
            if cur.rowcount == 0:
                exists = conn.execute(
                    "SELECT 1 FROM certificates WHERE id = ? AND project_id = ?", (cert.id, cert.project_id)
                ).fetchone()
                if exists is None:
                    raise CertificateNotFoundError("the SSL certificate does not exist")
                raise ConflictError("the certificate was changed concurrently; retry")

        await self._run(op)
        return stored

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        return await self._count_expiring("certificates", "1 = 1", boundaries)

    async def delete_unbound(self, project_id: str, cert_id: str) -> DeleteOutcome:
        def op(conn: sqlite3.Connection) -> DeleteOutcome:
            cur = conn.execute(
                "DELETE FROM certificates WHERE id = ? AND project_id = ? AND binding_count = 0",
                (cert_id, project_id),
            )
            if cur.rowcount:
                return DeleteOutcome.DELETED
            exists = conn.execute(
                "SELECT 1 FROM certificates WHERE id = ? AND project_id = ?", (cert_id, project_id)
            ).fetchone()
            return DeleteOutcome.NOT_FOUND if exists is None else DeleteOutcome.IN_USE

        return await self._run(op)

    # -- KEK canaries -----------------------------------------------------------------------------

    async def kek_canaries(self) -> dict[str, bytes]:
        def op(conn: sqlite3.Connection) -> dict[str, bytes]:
            return {row[0]: bytes(row[1]) for row in conn.execute("SELECT kek_id, envelope FROM kek_canaries")}

        return await self._run(op)

    async def add_kek_canary(self, kek_id: str, envelope: bytes) -> bytes:
        def op(conn: sqlite3.Connection) -> bytes:
            conn.execute("INSERT OR IGNORE INTO kek_canaries (kek_id, envelope) VALUES (?, ?)", (kek_id, envelope))
            return bytes(conn.execute("SELECT envelope FROM kek_canaries WHERE kek_id = ?", (kek_id,)).fetchone()[0])

        return await self._run(op)
