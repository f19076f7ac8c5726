"""SqliteCertificateStore: certificates in one table; filterable columns plus JSON for the rest."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import (
    CertificateNotFoundError,
    ConflictError,
    DuplicateNameError,
)
from gatewaycerts.domain.models import Certificate, CertificateFilter, DeleteOutcome, Page
from gatewaycerts.store.codec import (
    HEAVY_FIELDS,
    certificate_from_doc,
    certificate_to_doc,
    exact_filters,
    fold_name,
    name_grams,
)
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    SqliteDatabase,
    decode_json,
    dump_json,
    prepare_envelope_tables,
    sort_key,
    transaction,
)
from gatewaycerts.store.sqlite.summaries import SummaryMemo

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
    name_lower TEXT,
    revision INTEGER NOT NULL,
    binding_count INTEGER NOT NULL,
    summary TEXT NOT NULL,
    heavy TEXT NOT NULL,
    private_key BLOB NOT NULL,
    kek_id TEXT
);
CREATE TABLE IF NOT EXISTS kek_canaries (kek_id TEXT PRIMARY KEY, envelope BLOB NOT NULL);
"""

# Every list query is served by one of these (tests/contract/test_query_plans.py reads the plans): newest
# first within a project, alone or after one equality filter. The name filter is a substring match: it
# scans the slim (project, lower-cased name) index, whose entries carry only the rowid.
_INDEXES = """
DROP INDEX IF EXISTS certificates_recent;
CREATE UNIQUE INDEX IF NOT EXISTS certificates_name ON certificates (project_id, type, instance_id, name);
CREATE INDEX IF NOT EXISTS certificates_newest ON certificates (project_id, create_time DESC, id DESC, name_lower);
CREATE INDEX IF NOT EXISTS certificates_names ON certificates (project_id, name_lower);
CREATE INDEX IF NOT EXISTS certificates_by_common_name
    ON certificates (project_id, common_name, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_by_signature_algorithm
    ON certificates (project_id, signature_algorithm, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_by_algorithm_type
    ON certificates (project_id, algorithm_type, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_by_type ON certificates (project_id, type, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_by_instance
    ON certificates (project_id, instance_id, create_time DESC, id DESC);
CREATE INDEX IF NOT EXISTS certificates_expiry ON certificates (not_after);
-- the console's overview: a project's certificates by expiry (list_expiring), never the other projects' rows
CREATE INDEX IF NOT EXISTS certificates_by_expiry ON certificates (project_id, not_after, id);
"""
# list_expiring: served by certificates_by_expiry in its order (tests/contract/test_query_plans.py)
EXPIRING_SQL = (
    "SELECT summary FROM certificates INDEXED BY certificates_by_expiry "
    "WHERE project_id = ? AND not_after >= ? AND not_after < ? ORDER BY not_after, id LIMIT ?"
)
_ENVELOPE_TABLE = EnvelopeTable(EnvelopeKind.APIC_CERTIFICATE, "certificates", "private_key")

# The list's `total` for no filter or one equality filter, kept by triggers in the same transaction as every
# write (so it cannot drift): counting 100,000 index entries costs ~10 ms, reading one row nothing.
_FACETS = ("common_name", "signature_algorithm", "algorithm_type", "type", "instance_id")


def _count_statements(row: str, delta: str) -> str:
    values = [("''", "''")] + [(f"'{facet}'", f"{row}.{facet}") for facet in _FACETS]
    return "\n".join(
        f"    INSERT INTO certificate_counts VALUES ({row}.project_id, {facet}, {value}, {delta}) "  # noqa: S608
        f"ON CONFLICT DO UPDATE SET n = n + ({delta});"
        for facet, value in values
    )


_COUNTS_TABLE = """
CREATE TABLE certificate_counts (
    project_id TEXT NOT NULL,
    facet TEXT NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (project_id, facet, value)
) WITHOUT ROWID;
"""
_COUNTS = "\n".join(
    [
        _COUNTS_TABLE,
        "CREATE TRIGGER certificates_counted_insert AFTER INSERT ON certificates BEGIN",
        _count_statements("NEW", "1"),
        "END;",
        "CREATE TRIGGER certificates_counted_delete AFTER DELETE ON certificates BEGIN",
        _count_statements("OLD", "-1"),
        "END;",
        f"CREATE TRIGGER certificates_counted_update AFTER UPDATE OF project_id, {', '.join(_FACETS)} "
        "ON certificates BEGIN",
        _count_statements("OLD", "-1"),
        _count_statements("NEW", "1"),
        "END;",
        "INSERT INTO certificate_counts SELECT project_id, '', '', count(*) FROM certificates GROUP BY project_id;",
        *(
            f"INSERT INTO certificate_counts SELECT project_id, '{facet}', {facet}, count(*) "  # noqa: S608
            f"FROM certificates GROUP BY project_id, {facet};"
            for facet in _FACETS
        ),
    ]
)


def _split_script(script: str) -> list[str]:
    """Statements of a script (trigger bodies hold semicolons), to run one by one inside a transaction."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


# The three-character pieces of every name, per project, kept in the same transaction as each write: a name
# filter of three or more characters reads the candidates of its rarest piece instead of every name.
_GRAMS = """
CREATE TABLE certificate_name_grams (
    project TEXT NOT NULL,
    gram TEXT NOT NULL,
    cert_rowid INTEGER NOT NULL,
    PRIMARY KEY (project, gram, cert_rowid)
) WITHOUT ROWID;
"""

# A name filter sorts its matches itself when there are at most this many (a rare name: found through its
# rarest piece, or by scanning the name index); beyond that the recency index finds the page (a common name
# matches early) and the total is counted on the name index.
NAME_MATCHES_SORTED_HERE = 1000


@dataclass(frozen=True)
class _ListPlan:
    """What list() may run. `pieces`: the name's three-character pieces, each counted (up to the bound) with
    `piece_count`, and the rarest read with `piece_matches`; `name_matches`: the scan of the name index."""

    pieces: list[str]
    piece_count: str
    piece_matches: tuple[str, list[Any]] | None
    name_matches: tuple[str, list[Any]] | None
    count: tuple[str, list[Any]]
    page: tuple[str, list[Any]]


_DUPLICATE = "a certificate named {name!r} already exists in this project and scope"


def _add_grams(conn: sqlite3.Connection, project_id: str, name: str, rowid: int) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO certificate_name_grams VALUES (?, ?, ?)",
        [(project_id, g, rowid) for g in name_grams(name)],
    )


def _drop_grams(conn: sqlite3.Connection, project_id: str, name: str, rowid: int) -> None:
    conn.executemany(
        "DELETE FROM certificate_name_grams WHERE project = ? AND gram = ? AND cert_rowid = ?",
        [(project_id, g, rowid) for g in name_grams(name)],
    )


class SqliteCertificateStore(SqliteBase):
    _ENVELOPES = (_ENVELOPE_TABLE,)

    def __init__(self, path_or_database: str | Path | SqliteDatabase) -> None:
        super().__init__(path_or_database)
        # Summaries (list items, the show's record) decoded once per distinct stored text.
        self._summary = SummaryMemo(self._from_summary)

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(certificates)")}
            if "not_after" not in columns:
                # Databases from before the expiry metrics: add the column and fill it from the summary.
                conn.execute("ALTER TABLE certificates ADD COLUMN not_after TEXT")
            if "name_lower" not in columns:
                # Databases from before the indexed name filter.
                conn.execute("ALTER TABLE certificates ADD COLUMN name_lower TEXT")
            rows = conn.execute("SELECT id, summary FROM certificates WHERE not_after IS NULL").fetchall()
            for cert_id, summary in rows:
                not_after = json.loads(summary, object_hook=decode_json)["not_after"]
                conn.execute("UPDATE certificates SET not_after = ? WHERE id = ?", (sort_key(not_after), cert_id))
            for cert_id, name in conn.execute("SELECT id, name FROM certificates WHERE name_lower IS NULL").fetchall():
                conn.execute("UPDATE certificates SET name_lower = ? WHERE id = ?", (fold_name(name), cert_id))
            prepare_envelope_tables(conn, (_ENVELOPE_TABLE,))
            conn.executescript(_INDEXES)
            with transaction(conn):
                known = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'certificate_counts'").fetchone()
                if known is None:  # counts start from the rows already there, in the same transaction
                    for statement in _split_script(_COUNTS):
                        conn.execute(statement)
                known = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'certificate_name_grams'").fetchone()
                if known is None:
                    conn.execute(_GRAMS)
                    for rowid, project_id, name in conn.execute(
                        "SELECT rowid, project_id, name_lower FROM certificates"
                    ).fetchall():
                        _add_grams(conn, project_id, name, rowid)

        await self._run_alone(op)

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
            "name_lower": fold_name(cert.name),
            "summary": dump_json(doc),
            "heavy": dump_json(heavy),
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

    @classmethod
    def _from_summary(cls, summary: str) -> Certificate:
        return cls._from_row(summary, None, None)

    # -- operations -------------------------------------------------------------------------------

    async def insert(self, cert: Certificate) -> None:
        row = self._row(cert)

        def op(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                try:
                    rowid = conn.execute(
                        f"INSERT INTO certificates ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
                        row,
                    ).lastrowid
                except sqlite3.IntegrityError:
                    raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None
                _add_grams(conn, cert.project_id, row["name_lower"], rowid)

        await self._run_point(op)

    async def get(self, project_id: str, cert_id: str) -> Certificate | None:
        def op(conn: sqlite3.Connection) -> Certificate | None:
            row = conn.execute(
                "SELECT summary, heavy, private_key FROM certificates WHERE id = ? AND project_id = ?",
                (cert_id, project_id),
            ).fetchone()
            return None if row is None else self._from_row(*row)

        return await self._read_point(op)

    async def get_summary(self, project_id: str, cert_id: str) -> Certificate | None:
        def op(conn: sqlite3.Connection) -> Certificate | None:
            row = conn.execute(
                "SELECT summary FROM certificates WHERE id = ? AND project_id = ?", (cert_id, project_id)
            ).fetchone()
            return None if row is None else self._summary(row[0])

        return await self._read_point(op)

    @staticmethod
    def _where(project_id: str, flt: CertificateFilter) -> tuple[str, list[Any]]:
        clauses, params = ["project_id = ?"], [project_id]
        if flt.name_contains:
            clauses.append("instr(name_lower, ?) > 0")
            params.append(fold_name(flt.name_contains))
        for column, value in exact_filters(flt).items():
            clauses.append(f"{column} = ?")
            params.append(value)
        return " AND ".join(clauses), params

    @staticmethod
    def _order_index(flt: CertificateFilter) -> str:
        """The index that yields this filter's rows newest first (SQLite's planner cannot know that a
        substring match on the name is rarely selective, so the choice is ours)."""
        exact = exact_filters(flt)
        for column, index in (
            ("common_name", "certificates_by_common_name"),
            ("instance_id", "certificates_by_instance"),
            ("type", "certificates_by_type"),
            ("signature_algorithm", "certificates_by_signature_algorithm"),
            ("algorithm_type", "certificates_by_algorithm_type"),
        ):
            if column in exact:
                return index
        return "certificates_newest"

    def _list_plan(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> _ListPlan:
        where, params = self._where(project_id, flt)
        index = self._order_index(flt)
        exact = exact_filters(flt)
        by_name = bool(flt.name_contains) and index == "certificates_newest"
        if not flt.name_contains and len(exact) <= 1:
            facet, value = next(iter(exact.items()), ("", ""))
            count = (
                "SELECT coalesce(sum(n), 0) FROM certificate_counts WHERE project_id = ? AND facet = ? AND value = ?",
                [project_id, facet, value],
            )
        else:
            count_index = "certificates_names" if by_name else index
            count = (f"SELECT count(*) FROM certificates INDEXED BY {count_index} WHERE {where}", params)  # noqa: S608
        page = (
            f"SELECT summary FROM certificates INDEXED BY {index} WHERE {where} "  # noqa: S608
            "ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        pieces = name_grams(fold_name(flt.name_contains)) if flt.name_contains else []
        return _ListPlan(
            pieces=pieces,
            piece_count="SELECT count(*) FROM (SELECT 1 FROM certificate_name_grams WHERE project = ? AND gram = ? "
            "LIMIT ?)",
            piece_matches=(
                "SELECT create_time, id FROM certificate_name_grams CROSS JOIN certificates "  # noqa: S608
                f"ON certificates.rowid = cert_rowid WHERE project = ? AND gram = ? AND {where}",
                [project_id, pieces[0], *params],
            )
            if pieces
            else None,
            name_matches=(
                f"SELECT create_time, id FROM certificates INDEXED BY certificates_names WHERE {where} LIMIT ?",  # noqa: S608
                [*params, NAME_MATCHES_SORTED_HERE + 1],
            )
            if by_name
            else None,
            count=count,
            page=page,
        )

    async def list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> Page[Certificate]:
        plan = self._list_plan(project_id, flt, offset, limit)
        bound = NAME_MATCHES_SORTED_HERE

        def sorted_here(conn: sqlite3.Connection, matches: list[Any]) -> Page[Certificate]:
            # A rare name: every match is known; sort them and read just the page.
            matches.sort(reverse=True)
            ids = [m[1] for m in matches[offset : offset + limit]]
            return Page(items=self._summaries_by_id(conn, ids), total=len(matches))

        def op(conn: sqlite3.Connection) -> Page[Certificate]:
            if plan.piece_matches is not None:
                counts = {
                    g: conn.execute(plan.piece_count, (project_id, g, bound + 1)).fetchone()[0] for g in plan.pieces
                }
                rarest = min(counts, key=counts.__getitem__)
                if counts[rarest] <= bound:
                    sql, params = plan.piece_matches
                    return sorted_here(conn, conn.execute(sql, [project_id, rarest, *params[2:]]).fetchall())
            if plan.name_matches is not None:
                matches = conn.execute(*plan.name_matches).fetchall()
                if len(matches) <= bound:
                    return sorted_here(conn, matches)
            total = conn.execute(*plan.count).fetchone()[0]
            rows = conn.execute(*plan.page).fetchall()
            return Page(items=tuple(self._summary(r[0]) for r in rows), total=total)

        return await self._read(op)

    def _summaries_by_id(self, conn: sqlite3.Connection, ids: list[str]) -> tuple[Certificate, ...]:
        if not ids:
            return ()
        marks = ", ".join("?" for _ in ids)
        found = dict(conn.execute(f"SELECT id, summary FROM certificates WHERE id IN ({marks})", ids).fetchall())  # noqa: S608
        return tuple(self._summary(found[i]) for i in ids if i in found)

    async def explain_list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> list[str]:
        """SQLite's query plan of every statement list() may run (diagnostics and the query-plan test)."""
        plan = self._list_plan(project_id, flt, offset, limit)
        statements = [
            *((plan.piece_count, [project_id, g, 1]) for g in plan.pieces[:1]),
            *(s for s in (plan.piece_matches, plan.name_matches) if s is not None),
            plan.count,
            plan.page,
        ]

        def op(conn: sqlite3.Connection) -> list[str]:
            return [row[3] for sql, params in statements for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

        return await self._read(op)

    async def replace(self, cert: Certificate, *, expected_revision: int) -> Certificate:
        stored = dc_replace(cert, revision=expected_revision + 1)
        row = self._row(stored)
        assignments = ", ".join(f"{k} = :{k}" for k in row if k != "id")

        def op(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                before = conn.execute(
                    "SELECT rowid, name_lower, revision FROM certificates WHERE id = ? AND project_id = ?",
                    (cert.id, cert.project_id),
                ).fetchone()
                if before is None:
                    raise CertificateNotFoundError("the SSL certificate does not exist")
                rowid, old_name, revision = before
                if revision != expected_revision:
                    raise ConflictError("the certificate was changed concurrently; retry")
                try:
                    conn.execute(f"UPDATE certificates SET {assignments} WHERE rowid = :rowid", {**row, "rowid": rowid})  # noqa: S608
                except sqlite3.IntegrityError:
                    raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None
                if old_name != row["name_lower"]:
                    _drop_grams(conn, cert.project_id, old_name, rowid)
                    _add_grams(conn, cert.project_id, row["name_lower"], rowid)

        await self._run_point(op)
        return stored

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        return await self._count_expiring("certificates", "1 = 1", boundaries)

    async def list_expiring(
        self, project_id: str, after: datetime, before: datetime, limit: int
    ) -> tuple[Certificate, ...]:
        def op(conn: sqlite3.Connection) -> tuple[Certificate, ...]:
            rows = conn.execute(EXPIRING_SQL, (project_id, sort_key(after), sort_key(before), limit)).fetchall()
            return tuple(self._summary(r[0]) for r in rows)

        return await self._read(op)

    async def delete_unbound(self, project_id: str, cert_id: str) -> DeleteOutcome:
        def op(conn: sqlite3.Connection) -> DeleteOutcome:
            with transaction(conn):
                found = conn.execute(
                    "SELECT rowid, name_lower, binding_count FROM certificates WHERE id = ? AND project_id = ?",
                    (cert_id, project_id),
                ).fetchone()
                if found is None:
                    return DeleteOutcome.NOT_FOUND
                rowid, name, bindings = found
                if bindings:
                    return DeleteOutcome.IN_USE
                conn.execute("DELETE FROM certificates WHERE rowid = ?", (rowid,))
                _drop_grams(conn, project_id, name, rowid)
                return DeleteOutcome.DELETED

        return await self._run_point(op)

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
