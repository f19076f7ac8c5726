"""SqlitePcaStore: private CAs, the certificates they issued and the serials they used.

Each record is a JSON document plus the columns that lists filter and sort on; every change is a
compare-and-swap on `revision`: one UPDATE statement, atomic under SQLite's write lock (also between processes).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace as dc_replace
from datetime import datetime
from pathlib import Path
from typing import Any

from gatewaycerts.domain.audit import AuditEvent
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import (
    AuthorityNotFoundError,
    CertificateRequestNotFoundError,
    ConflictError,
    PrivateCertificateNotFoundError,
)
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.pca import (
    Authority,
    IssuedCertificate,
    PcaQuery,
    RevokedSerial,
    SerialStatus,
)
from gatewaycerts.domain.requests import CertificateRequest
from gatewaycerts.store.pca_codec import (
    AUTHORITY_HEAVY,
    CERTIFICATE_HEAVY,
    authority_from_doc,
    authority_to_doc,
    certificate_from_doc,
    certificate_to_doc,
    duplicate_request,
    request_from_doc,
    request_to_doc,
    revoked_from_doc,
    serial_status_from_rows,
    sort_field,
    status_clause,
)
from gatewaycerts.store.sqlite.audit import INSERT_EVENT, event_row
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    SqliteDatabase,
    decode_json,
    dump_json,
    prepare_envelope_tables,
    sort_key,
)
from gatewaycerts.store.sqlite.summaries import SummaryMemo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pca_serials (
    issuer TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    PRIMARY KEY (issuer, serial_number)
);
CREATE TABLE IF NOT EXISTS pca_authorities (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    issuer_id TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    common_name TEXT NOT NULL,
    not_after TEXT,
    create_time TEXT NOT NULL,
    serial_number TEXT,
    revision INTEGER NOT NULL,
    summary TEXT NOT NULL,
    heavy TEXT NOT NULL,
    kek_id TEXT
);
CREATE INDEX IF NOT EXISTS pca_authorities_recent ON pca_authorities (project_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS pca_authorities_issuer ON pca_authorities (issuer_id, status);
CREATE TABLE IF NOT EXISTS pca_certificates (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    issuer_id TEXT NOT NULL,
    issuer_name TEXT NOT NULL,
    status TEXT NOT NULL,
    common_name TEXT NOT NULL,
    not_after TEXT NOT NULL,
    create_time TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    summary TEXT NOT NULL,
    heavy TEXT NOT NULL,
    kek_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS pca_certificates_serial ON pca_certificates (issuer_id, serial_number);
CREATE INDEX IF NOT EXISTS pca_certificates_recent ON pca_certificates (project_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS pca_certificates_issuer ON pca_certificates (issuer_id, status);
CREATE INDEX IF NOT EXISTS pca_certificates_expiry ON pca_certificates (not_after);
CREATE TABLE IF NOT EXISTS pca_requests (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    csr_fingerprint TEXT NOT NULL,
    issuer_id TEXT,
    not_after TEXT,
    create_time TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    summary TEXT NOT NULL,
    heavy TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pca_requests_recent ON pca_requests (project_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS pca_requests_status ON pca_requests (project_id, status, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS pca_requests_issuer ON pca_requests (issuer_id, status);
CREATE INDEX IF NOT EXISTS pca_requests_expiry ON pca_requests (not_after);
CREATE INDEX IF NOT EXISTS pca_requests_serial ON pca_requests (issuer_id, json_extract(summary, '$.serial_number'));
CREATE INDEX IF NOT EXISTS pca_authorities_serial ON pca_authorities (issuer_id, serial_number);
-- One outstanding request per CSR and project; the index frees the CSR when the request moves on.
CREATE UNIQUE INDEX IF NOT EXISTS pca_requests_outstanding ON pca_requests (project_id, csr_fingerprint)
    WHERE status = 'Outstanding' AND deleted = 0;
"""

# Only the fields a serial's status needs (OCSP reads it on every request), not the whole summary document:
# JSON-decoding that cost more than the lookups. A serial is reserved once per CA (pca_serials), so it is in at
# most one of the three tables: the issued certificates, where nearly every asked-about serial is, come first.
# The revocation time and reason are extracted from the summary's JSON only for a revoked row: a good
# certificate's answer parses no JSON at all (the statement alone: 12.6 -> 8.7 µs).
_REVOKED_FIELDS = """CASE WHEN status IN ('REVOKED', 'Revoked') THEN json_extract(summary, '$.revoked_at."$date"') END,
CASE WHEN status IN ('REVOKED', 'Revoked') THEN json_extract(summary, '$.revocation_reason') END"""
_CERTIFICATE_STATUS_SQL = f"""
SELECT status, {_REVOKED_FIELDS}
FROM pca_certificates WHERE issuer_id = ? AND serial_number = ?
"""  # noqa: S608 - constants only
_OTHER_STATUS_SQL = f"""
SELECT status, {_REVOKED_FIELDS}
FROM pca_authorities WHERE issuer_id = ? AND serial_number = ?
UNION ALL SELECT status, {_REVOKED_FIELDS}
FROM pca_requests WHERE issuer_id = ? AND json_extract(summary, '$.serial_number') = ?
"""  # noqa: S608 - constants only

_AUTHORITY_COLUMNS = (
    "project_id",
    "issuer_id",
    "type",
    "status",
    "common_name",
    "serial_number",
    "revision",
)
_CERTIFICATE_COLUMNS = (
    "project_id",
    "issuer_id",
    "issuer_name",
    "status",
    "common_name",
    "serial_number",
    "revision",
)
_REQUEST_COLUMNS = ("project_id", "status", "csr_fingerprint", "issuer_id", "revision")
_TIME_COLUMNS = ("not_after", "create_time")
_DUPLICATE_CSR = "pca_requests.csr_fingerprint"  # in SQLite's message when the partial unique index refuses
# Deleted certificates keep their keys (hidden, not gone): rotation re-wraps them too.
_ENVELOPE_TABLES = (
    EnvelopeTable(EnvelopeKind.AUTHORITY, "pca_authorities", "heavy", "encrypted_key"),
    EnvelopeTable(EnvelopeKind.ISSUED_CERTIFICATE, "pca_certificates", "heavy", "encrypted_key"),
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else sort_key(value)


def _row(doc: dict[str, Any], columns: tuple[str, ...], heavy_fields: tuple[str, ...]) -> dict[str, Any]:
    row = {"id": doc["_id"], **{c: doc[c] for c in columns}, **{c: _time(doc[c]) for c in _TIME_COLUMNS}}
    if "kek_id" in doc:
        row["kek_id"] = doc.pop("kek_id")  # a column only: a rewrap changes the key and its label, nothing else
    heavy = {k: doc.pop(k) for k in heavy_fields}
    row["summary"] = dump_json(doc)
    row["heavy"] = dump_json(heavy)
    return row


def _doc(summary: str, heavy: str | None) -> dict[str, Any]:
    doc = json.loads(summary, object_hook=decode_json)
    if heavy is not None:
        doc.update(json.loads(heavy, object_hook=decode_json))
    return doc


def _where(project_id: str, query: PcaQuery, now: datetime, *, authority: bool) -> tuple[str, list[Any]]:
    clauses, params = ["project_id = ?"], [project_id]
    if not authority:
        clauses.append("deleted = 0")
    if query.name_contains:
        escaped = query.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("common_name LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if authority and query.type:
        clauses.append("type = ?")
        params.append(query.type)
    clause = status_clause(query.status, authority=authority)
    if clause is not None:
        clauses.append(f"status IN ({', '.join('?' for _ in clause.stored)})")
        params.extend(clause.stored)
        if clause.expired is not None:
            clauses.append("not_after < ?" if clause.expired else "not_after >= ?")
            params.append(sort_key(now))
    return " AND ".join(clauses), params


_RESERVE = "INSERT INTO pca_serials (issuer, serial_number) VALUES (?, ?)"


_DECODED_AUTHORITIES = 256  # get_authority's decoded rows kept (a process serves few CAs at a time)


class SqlitePcaStore(SqliteBase):
    _ENVELOPES = _ENVELOPE_TABLES

    def __init__(self, path_or_database: str | Path | SqliteDatabase) -> None:
        super().__init__(path_or_database)
        # get_authority: the Authority decoded from exactly these (summary, heavy) texts
        self._decoded_authorities: SummaryMemo[tuple[str, str | None], Authority] = SummaryMemo(
            lambda texts: authority_from_doc(_doc(*texts)), kept=_DECODED_AUTHORITIES
        )

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, _ENVELOPE_TABLES)

        await self._run_alone(op)

    async def reserve_serial(self, issuer_key: str, serial_number: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_RESERVE, (issuer_key, serial_number))
            except sqlite3.IntegrityError:
                raise ConflictError("the serial number is in use by this CA already") from None

        await self._run(op)

    # -- generic record plumbing ------------------------------------------------------------------

    async def _insert(self, table: str, row: dict[str, Any], duplicate: Exception | None = None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
                    row,
                )
            except sqlite3.IntegrityError as exc:
                if duplicate is not None and _DUPLICATE_CSR in str(exc):
                    raise duplicate from None
                raise ConflictError("a record with this id or serial number exists already") from None

        await self._run(op)

    async def _get(self, table: str, project_id: str | None, record_id: str, live: str = "") -> dict[str, Any] | None:
        def op(conn: sqlite3.Connection) -> dict[str, Any] | None:
            if project_id is None:
                row = conn.execute(
                    f"SELECT summary, heavy FROM {table} WHERE id = ?{live}",  # noqa: S608
                    (record_id,),
                ).fetchone()
            else:
                row = conn.execute(
                    f"SELECT summary, heavy FROM {table} WHERE id = ? AND project_id = ?{live}",  # noqa: S608
                    (record_id, project_id),
                ).fetchone()
            return None if row is None else _doc(*row)

        return await self._read_point(op)

    async def _list(
        self, table: str, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int, *, authority: bool
    ) -> tuple[list[dict[str, Any]], int]:
        where, params = _where(project_id, query, now, authority=authority)
        column = sort_field(query, authority=authority)
        direction = "DESC" if query.descending else "ASC"

        def op(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            total = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]  # noqa: S608
            rows = conn.execute(
                f"SELECT summary FROM {table} WHERE {where} "  # noqa: S608
                f"ORDER BY {column} {direction}, id {direction} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [_doc(r[0], None) for r in rows], total

        return await self._read(op)

    async def _replace(
        self,
        table: str,
        row: dict[str, Any],
        expected_revision: int,
        missing: Exception,
        duplicate: Exception | None = None,
    ) -> None:
        assignments = ", ".join(f"{k} = :{k}" for k in row if k != "id")

        def op(conn: sqlite3.Connection) -> None:
            try:
                cur = conn.execute(
                    f"UPDATE {table} SET {assignments} "  # noqa: S608
                    "WHERE id = :id AND project_id = :project_id AND revision = :expected",
                    {**row, "expected": expected_revision},
                )
            except sqlite3.IntegrityError as exc:
                if duplicate is not None and _DUPLICATE_CSR in str(exc):
                    raise duplicate from None
                raise
            if cur.rowcount == 0:
                exists = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row["id"],)).fetchone()  # noqa: S608
                if exists is None:
                    raise missing
                raise ConflictError("the record was changed concurrently; retry")

        await self._run(op)

    # -- authorities ------------------------------------------------------------------------------

    @staticmethod
    def _authority_row(ca: Authority) -> dict[str, Any]:
        return _row(authority_to_doc(ca), _AUTHORITY_COLUMNS, AUTHORITY_HEAVY)

    async def insert_authority(self, ca: Authority) -> None:
        await self._insert("pca_authorities", self._authority_row(ca))

    async def get_authority(self, project_id: str | None, ca_id: str) -> Authority | None:
        """Every call reads the row (so a change by any process is seen at once); decoding it (two JSON texts,
        then the Authority) is skipped when the row's texts are exactly texts decoded before (SummaryMemo). What
        is kept is what the row holds: the CA key stays its envelope, encrypted; nothing is decrypted here."""

        def op(conn: sqlite3.Connection) -> tuple[str, str | None] | None:
            if project_id is None:
                return conn.execute("SELECT summary, heavy FROM pca_authorities WHERE id = ?", (ca_id,)).fetchone()
            return conn.execute(
                "SELECT summary, heavy FROM pca_authorities WHERE id = ? AND project_id = ?", (ca_id, project_id)
            ).fetchone()

        row = await self._read_point(op)
        return None if row is None else self._decoded_authorities(tuple(row))

    async def list_authorities(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[Authority]:
        docs, total = await self._list("pca_authorities", project_id, query, now, offset, limit, authority=True)
        return Page(items=tuple(authority_from_doc(d) for d in docs), total=total)

    async def replace_authority(self, ca: Authority, *, expected_revision: int) -> Authority:
        stored = dc_replace(ca, revision=expected_revision + 1)
        missing = AuthorityNotFoundError("the CA does not exist")
        await self._replace("pca_authorities", self._authority_row(stored), expected_revision, missing)
        return stored

    # -- issued certificates ----------------------------------------------------------------------

    @staticmethod
    def _certificate_row(cert: IssuedCertificate) -> dict[str, Any]:
        # Deleted certificates stay (hidden) so that their serials remain reserved and, if revoked, listed.
        return {
            **_row(certificate_to_doc(cert), _CERTIFICATE_COLUMNS, CERTIFICATE_HEAVY),
            "deleted": int(cert.delete_time is not None),
        }

    async def insert_certificate(self, cert: IssuedCertificate) -> None:
        await self._insert("pca_certificates", self._certificate_row(cert))

    joins_audit = True  # insert_certificate_reserving_serial writes an audit event in its own transaction

    async def insert_certificate_reserving_serial(
        self, issuer_key: str, cert: IssuedCertificate, *, audit: AuditEvent | None = None
    ) -> bool:
        row = self._certificate_row(cert)
        insert = f"INSERT INTO pca_certificates ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"  # noqa: S608
        event = None if audit is None else event_row(audit)

        def op(conn: sqlite3.Connection) -> bool:
            # One write (one hand-off to the writer, one share of a group commit) for all rows; the savepoint
            # makes them one change whether the writer runs this alone (autocommit) or inside a group.
            conn.execute("SAVEPOINT issue")
            try:
                try:
                    conn.execute(_RESERVE, (issuer_key, cert.serial_number))
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO issue")
                    conn.execute("RELEASE issue")
                    return False
                try:
                    conn.execute(insert, row)
                except sqlite3.IntegrityError:
                    raise ConflictError("a record with this id or serial number exists already") from None
                if event is not None:  # the audit trail's row, in the same savepoint: both or neither
                    conn.execute(INSERT_EVENT, event)
            except BaseException:
                conn.execute("ROLLBACK TO issue")
                conn.execute("RELEASE issue")
                raise
            conn.execute("RELEASE issue")
            return True

        return bool(await self._run(op))

    async def get_certificate(self, project_id: str, cert_id: str) -> IssuedCertificate | None:
        doc = await self._get("pca_certificates", project_id, cert_id, " AND deleted = 0")
        return None if doc is None else certificate_from_doc(doc)

    async def list_certificates(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[IssuedCertificate]:
        docs, total = await self._list("pca_certificates", project_id, query, now, offset, limit, authority=False)
        return Page(items=tuple(certificate_from_doc(d) for d in docs), total=total)

    async def replace_certificate(self, cert: IssuedCertificate, *, expected_revision: int) -> IssuedCertificate:
        stored = dc_replace(cert, revision=expected_revision + 1)
        missing = PrivateCertificateNotFoundError("the private certificate does not exist")
        await self._replace("pca_certificates", self._certificate_row(stored), expected_revision, missing)
        return stored

    async def revoked_serials(self, issuer_id: str) -> list[RevokedSerial]:
        def op(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT summary FROM pca_certificates WHERE issuer_id = ? AND status = 'REVOKED' "
                "UNION ALL SELECT summary FROM pca_authorities WHERE issuer_id = ? AND status = 'REVOKED' "
                "UNION ALL SELECT summary FROM pca_requests WHERE issuer_id = ? AND status = 'Revoked'",
                (issuer_id, issuer_id, issuer_id),
            ).fetchall()
            return [_doc(r[0], None) for r in rows]

        return [revoked_from_doc(d) for d in await self._read(op)]

    async def serial_status(self, issuer_id: str, serial_number: int) -> SerialStatus | None:
        serial = str(serial_number)

        def op(conn: sqlite3.Connection) -> list[tuple[str, str | None, str | None]]:
            rows = conn.execute(_CERTIFICATE_STATUS_SQL, (issuer_id, serial)).fetchall()
            if not rows:
                rows = conn.execute(_OTHER_STATUS_SQL, (issuer_id, serial, issuer_id, serial)).fetchall()
            return rows

        return serial_status_from_rows(serial_number, await self._read_point(op))  # one to three index lookups

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        # Only certificates a relying party may still accept: issued, not revoked, not deleted.
        return await self._count_expiring("pca_certificates", "status = 'ISSUED' AND deleted = 0", boundaries)

    # -- certificate requests ---------------------------------------------------------------------

    @staticmethod
    def _request_row(req: CertificateRequest) -> dict[str, Any]:
        return {
            **_row(request_to_doc(req), _REQUEST_COLUMNS, ()),
            "deleted": int(req.delete_time is not None),
        }

    async def insert_request(self, req: CertificateRequest) -> None:
        await self._insert("pca_requests", self._request_row(req), duplicate_request())

    async def get_request(self, project_id: str, request_id: str) -> CertificateRequest | None:
        doc = await self._get("pca_requests", project_id, request_id, " AND deleted = 0")
        return None if doc is None else request_from_doc(doc)

    async def list_requests(
        self, project_id: str, status: str | None, offset: int, limit: int
    ) -> Page[CertificateRequest]:
        where, params = "project_id = ? AND deleted = 0", [project_id]
        if status:
            where, params = where + " AND status = ?", [*params, status]

        def op(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
            total = conn.execute(f"SELECT count(*) FROM pca_requests WHERE {where}", params).fetchone()[0]  # noqa: S608
            rows = conn.execute(
                f"SELECT summary FROM pca_requests WHERE {where} "  # noqa: S608
                "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [_doc(r[0], None) for r in rows], total

        docs, total = await self._read(op)
        return Page(items=tuple(request_from_doc(d) for d in docs), total=total)

    async def replace_request(self, req: CertificateRequest, *, expected_revision: int) -> CertificateRequest:
        stored = dc_replace(req, revision=expected_revision + 1)
        missing = CertificateRequestNotFoundError("the certificate request does not exist")
        await self._replace("pca_requests", self._request_row(stored), expected_revision, missing, duplicate_request())
        return stored

    async def count_outstanding_requests(self) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT project_id, count(*) FROM pca_requests WHERE status = 'Outstanding' AND deleted = 0 "
                "GROUP BY project_id"
            )
            return {row[0]: int(row[1]) for row in rows}

        return await self._read(op)

    async def count_expiring_requests(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        return await self._count_expiring("pca_requests", "status = 'Active' AND deleted = 0", boundaries)
