"""MongoAcmeClientStore: ACME accounts, DNS update configurations and http-01 tokens (FerretDB-compatible:
single-document writes, duplicate keys only on insert)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

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
from gatewaycerts.store.mongo.claims import RevisionClaims, guard
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes

_ORDER = [("create_time", ASCENDING), ("_id", ASCENDING)]


class MongoAcmeClientStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._accounts = db["acme_accounts"]
        self._dns = db["dns_update_configs"]
        self._tokens = db["acme_challenge_tokens"]
        # Accounts and DNS configurations are never updated after their insert: a rewrap locks the record
        # (as a webhook's) and compares the envelope itself.
        account_claims = RevisionClaims(db["acme_account_claims"])
        self._envelope_collections = (
            EnvelopeCollection(
                EnvelopeKind.ACME_ACCOUNT_KEY,
                self._accounts,
                "key_envelope",
                account_claims,
                revisioned=False,
                label=ACCOUNT_KEY_LABEL,
            ),
            EnvelopeCollection(
                EnvelopeKind.ACME_ACCOUNT_EAB,
                self._accounts,
                "eab_hmac_envelope",
                account_claims,
                revisioned=False,
                label=ACCOUNT_EAB_LABEL,
            ),
            EnvelopeCollection(
                EnvelopeKind.DNS_UPDATE_TSIG,
                self._dns,
                "tsig_secret_envelope",
                RevisionClaims(db["dns_update_config_claims"]),
                revisioned=False,
                label=DNS_CONFIG_LABEL,
            ),
        )

    async def ensure_schema(self) -> None:
        await guard(self._accounts.create_index([("project_id", ASCENDING), *_ORDER], name="acme_accounts_project"))
        await guard(self._dns.create_index([("project_id", ASCENDING), *_ORDER], name="dns_update_configs_project"))
        await guard(self._tokens.create_index([("expire_time", ASCENDING)], name="acme_challenge_tokens_expiry"))
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    @staticmethod
    async def _insert(collection: Any, doc: dict[str, Any], what: str) -> None:
        try:
            await guard(collection.insert_one(doc))
        except DuplicateKeyError:
            raise ConflictError(f"{what} with this id exists already") from None

    @staticmethod
    async def _get(collection: Any, project_id: str, rid: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        doc = await guard(collection.find_one({"_id": rid}))
        return None if doc is None or doc["project_id"] != project_id else decode(doc)

    @staticmethod
    async def _list(collection: Any, project_id: str, decode: Callable[[dict[str, Any]], Any]) -> list[Any]:
        cursor = collection.find({"project_id": project_id}).sort(_ORDER)
        return [decode(d) for d in await guard(cursor.to_list(length=None))]

    @staticmethod
    async def _delete(collection: Any, project_id: str, rid: str) -> bool:
        result = await guard(collection.delete_one({"_id": rid, "project_id": project_id}))
        return bool(result.deleted_count)

    async def insert_account(self, account: AcmeAccount) -> None:
        await self._insert(self._accounts, {**account_to_doc(account), **account_labels(account)}, "an ACME account")

    async def get_account(self, project_id: str, account_id: str) -> AcmeAccount | None:
        return await self._get(self._accounts, project_id, account_id, account_from_doc)

    async def list_accounts(self, project_id: str) -> list[AcmeAccount]:
        return await self._list(self._accounts, project_id, account_from_doc)

    async def delete_account(self, project_id: str, account_id: str) -> bool:
        return await self._delete(self._accounts, project_id, account_id)

    async def insert_dns_config(self, config: DnsUpdateConfig) -> None:
        await self._insert(
            self._dns, {**dns_config_to_doc(config), **dns_config_labels(config)}, "a DNS update configuration"
        )

    async def get_dns_config(self, project_id: str, config_id: str) -> DnsUpdateConfig | None:
        return await self._get(self._dns, project_id, config_id, dns_config_from_doc)

    async def list_dns_configs(self, project_id: str) -> list[DnsUpdateConfig]:
        return await self._list(self._dns, project_id, dns_config_from_doc)

    async def delete_dns_config(self, project_id: str, config_id: str) -> bool:
        return await self._delete(self._dns, project_id, config_id)

    async def put_token(self, token: ChallengeToken) -> None:
        doc = token_to_doc(token)
        await guard(self._tokens.replace_one({"_id": doc["_id"]}, doc, upsert=True))

    async def get_token(self, project_id: str, token: str) -> ChallengeToken | None:
        doc = await guard(self._tokens.find_one({"_id": f"{project_id}|{token}"}))
        return None if doc is None else token_from_doc(doc)

    async def delete_token(self, project_id: str, token: str) -> None:
        await guard(self._tokens.delete_one({"_id": f"{project_id}|{token}"}))

    async def delete_expired_tokens(self, before: datetime) -> int:
        result = await guard(self._tokens.delete_many({"expire_time": {"$lt": before}}))
        return int(result.deleted_count)
