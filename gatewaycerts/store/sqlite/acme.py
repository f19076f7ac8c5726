"""SqliteAcmeStore: every ACME record in one table (kind, id), the columns its queries use beside the document.

Changes are one UPDATE ... WHERE revision = ? (atomic under SQLite's write lock, also between processes);
uniqueness (a key thumbprint per CA, a used nonce, a replaced certificate) is the primary key of an insert."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Sequence
from dataclasses import replace as dc_replace
from datetime import datetime
from pathlib import Path
from typing import Any

from gatewaycerts.domain.acme import Account, AcmeCertificate, AcmeOrder, AcmePolicy, Authorization, EabKey
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError, NotFoundError
from gatewaycerts.store import acme_codec as c
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    SqliteDatabase,
    decode_json,
    dump_json,
    prepare_envelope_tables,
    sort_key,
)
from gatewaycerts.store.sqlite.nonces import UsedNonces

_SCHEMA = """
CREATE TABLE IF NOT EXISTS acme_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    ca_id TEXT NOT NULL,
    lookup TEXT,
    status TEXT,
    claim_until TEXT,
    sort TEXT NOT NULL,
    revision INTEGER NOT NULL,
    doc TEXT NOT NULL,
    kek_id TEXT,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS acme_lookup ON acme_records (kind, ca_id, lookup, sort);
CREATE INDEX IF NOT EXISTS acme_work ON acme_records (kind, status, claim_until);
DROP TABLE IF EXISTS acme_nonces;
"""


def _params(row: c.Row) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "id": row.id,
        "ca_id": row.ca_id,
        "lookup": row.lookup,
        "status": row.status,
        "claim_until": None if row.claim_until is None else sort_key(row.claim_until),
        "sort": row.sort,
        "revision": row.revision,
        "doc": dump_json(row.doc),
        "kek_id": c.kek_label(row),
    }


def _insert(conn: sqlite3.Connection, row: c.Row) -> None:
    try:
        conn.execute(
            "INSERT INTO acme_records (kind, id, ca_id, lookup, status, claim_until, sort, revision, doc, kek_id) "
            "VALUES (:kind, :id, :ca_id, :lookup, :status, :claim_until, :sort, :revision, :doc, :kek_id)",
            _params(row),
        )
    except sqlite3.IntegrityError:
        raise ConflictError(f"the ACME {row.kind} exists already") from None


def _load(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=decode_json)


class SqliteAcmeStore(SqliteBase):
    # EAB keys' HMAC keys: the rows of kind 'eab', labelled in `kek_id` (NULL for the other kinds), a partial
    # index; the project is in the document, the CA (which the envelope's context names) in ca_id.
    _ENVELOPES = (
        EnvelopeTable(
            EnvelopeKind.ACME_EAB_KEY,
            "acme_records",
            "doc",
            json_key="encrypted_hmac_key",
            where=f"kind = '{c.EAB}'",
            project="json_extract(doc, '$.project_id')",
            scope="ca_id",
        ),
    )

    def __init__(self, path_or_database: str | Path | SqliteDatabase) -> None:
        super().__init__(path_or_database)
        # Used nonces beside the database: `<database>-nonces` (an in-memory database keeps them in memory).
        path = self._db.path
        self._used_nonces = UsedNonces(path if path == ":memory:" else path + "-nonces")

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, self._ENVELOPES)

        await self._run_alone(op)
        await self._used_nonces.ensure_schema()

    async def close(self) -> None:
        await self._used_nonces.close()
        await super().close()

    # -- generic ------------------------------------------------------------------------------------

    async def _insert(self, *rows: c.Row) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for row in rows:
                _insert(conn, row)

        await self._run(op)

    async def _get(self, kind: str, record_id: str, ca_id: str | None = None) -> dict[str, Any] | None:
        def op(conn: sqlite3.Connection) -> dict[str, Any] | None:
            r = conn.execute(
                "SELECT doc, ca_id FROM acme_records WHERE kind = ? AND id = ?", (kind, record_id)
            ).fetchone()
            if r is None or (ca_id is not None and r[1] != ca_id):
                return None
            return _load(r[0])

        # One row by its primary key, on nearly every ACME request (the policy, the account, the order...):
        # read on the calling thread, not handed to a reader thread (SqliteDatabase.read, `point`).
        return await self._read_point(op)

    async def _replace(self, row: c.Row, expected_revision: int) -> None:
        params = _params(row)

        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE acme_records SET lookup = :lookup, status = :status, claim_until = :claim_until, "
                "sort = :sort, revision = :revision, doc = :doc, kek_id = :kek_id "
                "WHERE kind = :kind AND id = :id AND revision = :expected",
                {**params, "expected": expected_revision},
            )
            if cur.rowcount == 1:
                return
            exists = conn.execute("SELECT 1 FROM acme_records WHERE kind = ? AND id = ?", (row.kind, row.id)).fetchone()
            if exists is None:
                raise NotFoundError(f"the ACME {row.kind} does not exist")
            raise ConflictError("the record was changed concurrently; retry")

        await self._run(op)

    async def _delete(self, kind: str, record_id: str) -> None:
        await self._run(
            lambda conn: conn.execute("DELETE FROM acme_records WHERE kind = ? AND id = ?", (kind, record_id))
        )

    async def _find(
        self, kind: str, ca_id: str, lookup: str, after: str = "", limit: int = 1000
    ) -> list[dict[str, Any]]:
        def op(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT doc FROM acme_records WHERE kind = ? AND ca_id = ? AND lookup = ? AND sort > ? "
                "ORDER BY sort LIMIT ?",
                (kind, ca_id, lookup, after, limit),
            ).fetchall()
            return [_load(r[0]) for r in rows]

        return await self._read(op)

    # -- policy and EAB keys ------------------------------------------------------------------------

    async def get_policy(self, ca_id: str) -> AcmePolicy | None:
        doc = await self._get(c.POLICY, ca_id)
        return None if doc is None else c.policy_from(doc)

    async def put_policy(self, policy: AcmePolicy, *, expected_revision: int | None) -> AcmePolicy:
        if expected_revision is None:
            stored = dc_replace(policy, revision=0)
            await self._insert(c.policy_row(stored))
            return stored
        stored = dc_replace(policy, revision=expected_revision + 1)
        await self._replace(c.policy_row(stored), expected_revision)
        return stored

    async def insert_eab_key(self, key: EabKey) -> None:
        await self._insert(c.eab_row(key))

    async def get_eab_key(self, ca_id: str, kid: str) -> EabKey | None:
        doc = await self._get(c.EAB, kid, ca_id)
        return None if doc is None else c.eab_from(doc)

    async def list_eab_keys(self, ca_id: str) -> list[EabKey]:
        return [c.eab_from(d) for d in await self._find(c.EAB, ca_id, ca_id)]

    async def replace_eab_key(self, key: EabKey, *, expected_revision: int) -> EabKey:
        stored = dc_replace(key, revision=expected_revision + 1)
        await self._replace(c.eab_row(stored), expected_revision)
        return stored

    # -- accounts -----------------------------------------------------------------------------------

    async def insert_account(self, account: Account) -> None:
        await self._insert(c.account_key_row(account.ca_id, account.thumbprint, account.id), c.account_row(account))

    async def get_account(self, ca_id: str, account_id: str) -> Account | None:
        doc = await self._get(c.ACCOUNT, account_id, ca_id)
        return None if doc is None else c.account_from(doc)

    async def account_by_thumbprint(self, ca_id: str, thumbprint: str) -> Account | None:
        marker = await self._get(c.ACCOUNT_KEY, f"{ca_id}:{thumbprint}")
        return None if marker is None else await self.get_account(ca_id, marker["account_id"])

    async def replace_account(self, account: Account, *, expected_revision: int) -> Account:
        current = await self.get_account(account.ca_id, account.id)
        if current is None:
            raise NotFoundError("the ACME account does not exist")
        stored = dc_replace(account, revision=expected_revision + 1)
        if current.thumbprint == account.thumbprint:
            await self._replace(c.account_row(stored), expected_revision)
            return stored
        await self._insert(c.account_key_row(account.ca_id, account.thumbprint, account.id))
        try:
            await self._replace(c.account_row(stored), expected_revision)
        except Exception:
            await self._delete(c.ACCOUNT_KEY, f"{account.ca_id}:{account.thumbprint}")
            raise
        await self._delete(c.ACCOUNT_KEY, f"{account.ca_id}:{current.thumbprint}")
        return stored

    # -- orders and authorizations ------------------------------------------------------------------

    async def insert_order(self, order: AcmeOrder, authorizations: Sequence[Authorization]) -> None:
        await self._insert(*(c.authz_row(a) for a in authorizations), c.order_row(order))

    async def get_order(self, ca_id: str, order_id: str) -> AcmeOrder | None:
        doc = await self._get(c.ORDER, order_id, ca_id)
        return None if doc is None else c.order_from(doc)

    async def replace_order(self, order: AcmeOrder, *, expected_revision: int) -> AcmeOrder:
        stored = dc_replace(order, revision=expected_revision + 1)
        await self._replace(c.order_row(stored), expected_revision)
        return stored

    async def list_orders(self, ca_id: str, account_id: str, after: str, limit: int) -> list[AcmeOrder]:
        return [c.order_from(d) for d in await self._find(c.ORDER, ca_id, account_id, after, limit)]

    async def get_authorization(self, ca_id: str, authz_id: str) -> Authorization | None:
        doc = await self._get(c.AUTHZ, authz_id, ca_id)
        return None if doc is None else c.authz_from(doc)

    async def replace_authorization(self, authz: Authorization, *, expected_revision: int) -> Authorization:
        stored = dc_replace(authz, revision=expected_revision + 1)
        await self._replace(c.authz_row(stored), expected_revision)
        return stored

    async def claimable_authorizations(self, now: datetime, limit: int) -> list[Authorization]:
        def op(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT doc FROM acme_records WHERE kind = ? AND status = 'processing' "
                "AND (claim_until IS NULL OR claim_until < ?) ORDER BY sort LIMIT ?",
                (c.AUTHZ, sort_key(now), limit),
            ).fetchall()
            return [_load(r[0]) for r in rows]

        return [c.authz_from(d) for d in await self._read(op)]

    async def claimable_finalizations(self, now: datetime, limit: int) -> list[AcmeOrder]:
        def op(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT doc FROM acme_records WHERE kind = ? AND status = 'processing' "
                "AND (claim_until IS NULL OR claim_until < ?) ORDER BY sort LIMIT ?",
                (c.ORDER, sort_key(now), limit),
            ).fetchall()
            return [_load(r[0]) for r in rows]

        return [c.order_from(d) for d in await self._read(op)]

    # -- certificates, ARI ----------------------------------------------------------------------------

    async def insert_certificate(self, cert: AcmeCertificate) -> None:
        await self._insert(c.cert_row(cert))

    async def get_certificate(self, ca_id: str, serial_number: str) -> AcmeCertificate | None:
        doc = await self._get(c.CERT, f"{ca_id}:{serial_number}")
        return None if doc is None else c.cert_from(doc)

    async def mark_replaced(self, ca_id: str, serial_number: str, order_id: str) -> bool:
        row = c.Row(c.REPLACED, f"{ca_id}:{serial_number}", ca_id, order_id, None, None, "", 0, {"order": order_id})
        try:
            await self._insert(row)
        except ConflictError:
            return False
        return True

    # -- nonces ---------------------------------------------------------------------------------------

    def use_nonce(self, nonce: bytes) -> Awaitable[bool]:
        # In a file of its own, committed on the calling thread (store/sqlite/nonces.py): on every ACME request.
        # UsedNonces.use's own coroutine is the awaitable (one coroutine layer less per request).
        return self._used_nonces.use(nonce)

    async def purge_nonces(self, before: datetime) -> int:
        return await self._used_nonces.purge(before)

    async def nonce_key(self, candidate: bytes) -> bytes:
        doc = await self._get(c.SECRET, "nonce-key")
        if doc is not None:
            return bytes(doc["key"])
        try:
            await self._insert(c.Row(c.SECRET, "nonce-key", "", None, None, None, "", 0, {"key": candidate}))
            return candidate
        except ConflictError:
            doc = await self._get(c.SECRET, "nonce-key")
            assert doc is not None
            return bytes(doc["key"])
