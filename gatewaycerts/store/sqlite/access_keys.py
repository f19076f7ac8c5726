"""SqliteAccessKeyStore: access keys, one row each; the secret's envelope in its own column (KEK rotation)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace as dc_replace
from typing import Any

from gatewaycerts.domain.access_keys import AccessKey, AccessKeyNotFoundError
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.access_key_codec import key_from_doc, key_to_doc
from gatewaycerts.store.sqlite.base import (
    EnvelopeTable,
    SqliteBase,
    decode_json,
    dump_json,
    prepare_envelope_tables,
    sort_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    create_time TEXT NOT NULL,
    revision INTEGER NOT NULL,
    secret BLOB NOT NULL,
    kek_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_keys_project ON access_keys (project_id, create_time, id);
"""
_ENVELOPE_TABLE = EnvelopeTable(EnvelopeKind.ACCESS_KEY, "access_keys", "secret")
_COLUMNS = "id, project_id, create_time, revision, secret, kek_id, doc"


def _row(key: AccessKey) -> dict[str, Any]:
    doc = key_to_doc(key)
    secret, kek_id = doc.pop("secret"), doc.pop("kek_id")  # columns only: a rewrap changes just these
    for column in ("_id", "project_id", "revision"):
        doc.pop(column)
    return {
        "id": key.access,
        "project_id": key.project_id,
        "create_time": sort_key(key.create_time),
        "revision": key.revision,
        "secret": secret,
        "kek_id": kek_id,
        "doc": dump_json(doc),
    }


def _key(row: tuple[Any, ...]) -> AccessKey:
    access, project_id, _, revision, secret, _, doc = row
    fields = json.loads(doc, object_hook=decode_json)
    return key_from_doc({**fields, "_id": access, "project_id": project_id, "revision": revision, "secret": secret})


class SqliteAccessKeyStore(SqliteBase):
    _ENVELOPES = (_ENVELOPE_TABLE,)

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, (_ENVELOPE_TABLE,))

        await self._run_alone(op)

    async def insert(self, key: AccessKey) -> None:
        row = _row(key)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO access_keys ({_COLUMNS}) "  # noqa: S608 - our constant
                    "VALUES (:id, :project_id, :create_time, :revision, :secret, :kek_id, :doc)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise ConflictError("an access key with this id exists already") from None

        await self._run(op)

    async def get(self, access: str) -> AccessKey | None:
        def op(conn: sqlite3.Connection) -> AccessKey | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM access_keys WHERE id = ?", (access,)).fetchone()  # noqa: S608
            return None if row is None else _key(row)

        return await self._read(op)

    async def list(self, project_id: str) -> list[AccessKey]:
        def op(conn: sqlite3.Connection) -> list[AccessKey]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM access_keys WHERE project_id = ? "  # noqa: S608 - our constant
                "ORDER BY create_time, id",
                (project_id,),
            ).fetchall()
            return [_key(r) for r in rows]

        return await self._read(op)

    async def replace(self, key: AccessKey, *, expected_revision: int) -> AccessKey:
        row = _row(key)
        row["revision"] = expected_revision + 1
        row["expected"] = expected_revision

        def op(conn: sqlite3.Connection) -> None:
            updated = conn.execute(
                "UPDATE access_keys SET doc = :doc, revision = :revision "
                "WHERE id = :id AND project_id = :project_id AND revision = :expected",
                row,
            ).rowcount
            if updated:
                return
            exists = conn.execute(
                "SELECT 1 FROM access_keys WHERE id = ? AND project_id = ?", (key.access, key.project_id)
            ).fetchone()
            if exists is None:
                raise AccessKeyNotFoundError("the access key does not exist")
            raise ConflictError("the access key was changed concurrently; retry")

        await self._run(op)
        return dc_replace(key, revision=expected_revision + 1)

    async def delete(self, project_id: str, access: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM access_keys WHERE id = ? AND project_id = ?", (access, project_id))
            return cur.rowcount > 0

        return await self._run(op)
