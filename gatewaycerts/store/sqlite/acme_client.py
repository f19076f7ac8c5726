"""SqliteAcmeClientStore: ACME accounts, DNS update configurations and http-01 tokens, one JSON document per
row (envelopes included, tagged bytes), keyed by id and project."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gatewaycerts.domain.acme_client import AcmeAccount, ChallengeToken, DnsUpdateConfig
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.acme_client_codec import (
    ACCOUNT_EAB_LABEL,
    ACCOUNT_KEY_LABEL,
    DNS_CONFIG_LABEL,
    account_from_doc,
    account_labels,
    account_to_doc,
    dns_config_from_doc,
    dns_config_labels,
    dns_config_to_doc,
    token_from_doc,
    token_to_doc,
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
CREATE TABLE IF NOT EXISTS acme_accounts (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, create_time TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS acme_accounts_project ON acme_accounts (project_id, create_time, id);
CREATE TABLE IF NOT EXISTS dns_update_configs (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, create_time TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dns_update_configs_project ON dns_update_configs (project_id, create_time, id);
CREATE TABLE IF NOT EXISTS acme_challenge_tokens (
    project_id TEXT NOT NULL, token TEXT NOT NULL, expire_time TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (project_id, token)
);
CREATE INDEX IF NOT EXISTS acme_challenge_tokens_expiry ON acme_challenge_tokens (expire_time);
"""


def _load(doc: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
    return decode(json.loads(doc, object_hook=decode_json))


class SqliteAcmeClientStore(SqliteBase):
    # Accounts and DNS configurations are never updated after their insert: a rewrap compares the envelope
    # itself. The label columns are added (and filled for older rows) by prepare_envelope_tables.
    _ENVELOPES = (
        EnvelopeTable(
            EnvelopeKind.ACME_ACCOUNT_KEY,
            "acme_accounts",
            "doc",
            json_key="key_envelope",
            has_revision=False,
            kek_column=ACCOUNT_KEY_LABEL,
        ),
        EnvelopeTable(
            EnvelopeKind.ACME_ACCOUNT_EAB,
            "acme_accounts",
            "doc",
            json_key="eab_hmac_envelope",
            has_revision=False,
            kek_column=ACCOUNT_EAB_LABEL,
        ),
        EnvelopeTable(
            EnvelopeKind.DNS_UPDATE_TSIG,
            "dns_update_configs",
            "doc",
            json_key="tsig_secret_envelope",
            has_revision=False,
            kek_column=DNS_CONFIG_LABEL,
        ),
    )

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executescript(_SCHEMA)
            prepare_envelope_tables(conn, self._ENVELOPES)

        await self._run_alone(op)

    # -- generic rows -----------------------------------------------------------------------------------

    async def _insert(self, table: str, doc: dict[str, Any], labels: dict[str, str], what: str) -> None:
        row = (doc["_id"], doc["project_id"], sort_key(doc["create_time"]), dump_json(doc), *labels.values())
        columns = ", ".join(["id", "project_id", "create_time", "doc", *labels])
        marks = ", ".join("?" * len(row))

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)  # noqa: S608
            except sqlite3.IntegrityError:
                raise ConflictError(f"{what} with this id exists already") from None

        await self._run(op)

    async def _get(self, table: str, project_id: str, rid: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        def op(conn: sqlite3.Connection) -> Any:
            row = conn.execute(
                f"SELECT doc FROM {table} WHERE id = ? AND project_id = ?",  # noqa: S608 - our constant
                (rid, project_id),
            ).fetchone()
            return None if row is None else _load(row[0], decode)

        return await self._read(op)

    async def _list(self, table: str, project_id: str, decode: Callable[[dict[str, Any]], Any]) -> list[Any]:
        def op(conn: sqlite3.Connection) -> list[Any]:
            rows = conn.execute(
                f"SELECT doc FROM {table} WHERE project_id = ? ORDER BY create_time, id",  # noqa: S608
                (project_id,),
            ).fetchall()
            return [_load(r[0], decode) for r in rows]

        return await self._read(op)

    async def _delete(self, table: str, project_id: str, rid: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(f"DELETE FROM {table} WHERE id = ? AND project_id = ?", (rid, project_id)).rowcount > 0  # noqa: S608

        return await self._run(op)

    # -- accounts ---------------------------------------------------------------------------------------

    async def insert_account(self, account: AcmeAccount) -> None:
        await self._insert("acme_accounts", account_to_doc(account), account_labels(account), "an ACME account")

    async def get_account(self, project_id: str, account_id: str) -> AcmeAccount | None:
        return await self._get("acme_accounts", project_id, account_id, account_from_doc)

    async def list_accounts(self, project_id: str) -> list[AcmeAccount]:
        return await self._list("acme_accounts", project_id, account_from_doc)

    async def delete_account(self, project_id: str, account_id: str) -> bool:
        return await self._delete("acme_accounts", project_id, account_id)

    # -- DNS update configurations ----------------------------------------------------------------------

    async def insert_dns_config(self, config: DnsUpdateConfig) -> None:
        await self._insert(
            "dns_update_configs", dns_config_to_doc(config), dns_config_labels(config), "a DNS update configuration"
        )

    async def get_dns_config(self, project_id: str, config_id: str) -> DnsUpdateConfig | None:
        return await self._get("dns_update_configs", project_id, config_id, dns_config_from_doc)

    async def list_dns_configs(self, project_id: str) -> list[DnsUpdateConfig]:
        return await self._list("dns_update_configs", project_id, dns_config_from_doc)

    async def delete_dns_config(self, project_id: str, config_id: str) -> bool:
        return await self._delete("dns_update_configs", project_id, config_id)

    # -- http-01 tokens ---------------------------------------------------------------------------------

    async def put_token(self, token: ChallengeToken) -> None:
        row = (token.project_id, token.token, sort_key(token.expire_time), dump_json(token_to_doc(token)))

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO acme_challenge_tokens (project_id, token, expire_time, doc) "
                "VALUES (?, ?, ?, ?)",
                row,
            )

        await self._run(op)

    async def get_token(self, project_id: str, token: str) -> ChallengeToken | None:
        def op(conn: sqlite3.Connection) -> ChallengeToken | None:
            row = conn.execute(
                "SELECT doc FROM acme_challenge_tokens WHERE project_id = ? AND token = ?", (project_id, token)
            ).fetchone()
            return None if row is None else _load(row[0], token_from_doc)

        return await self._read(op)

    async def delete_token(self, project_id: str, token: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM acme_challenge_tokens WHERE project_id = ? AND token = ?", (project_id, token)
            )
        )

    async def delete_expired_tokens(self, before: datetime) -> int:
        return await self._run(
            lambda conn: (
                conn.execute("DELETE FROM acme_challenge_tokens WHERE expire_time < ?", (sort_key(before),)).rowcount
            )
        )
