"""MongoAcmeStore: every ACME record in one collection (`_id` = kind/id), FerretDB-compatible.

Changes claim the next revision first (store/mongo/claims.py: a unique insert, atomic everywhere), then
replace; uniqueness (a key thumbprint per CA, a used nonce, a replaced certificate) is an insert's `_id`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.acme import Account, AcmeCertificate, AcmeOrder, AcmePolicy, Authorization, EabKey
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError, NotFoundError
from gatewaycerts.store import acme_codec as c
from gatewaycerts.store.mongo.claims import RevisionClaims, guard
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes


def _doc(row: c.Row) -> dict[str, Any]:
    label = c.kek_label(row)
    return ({} if label is None else {"kek_id": label}) | {
        "_id": f"{row.kind}/{row.id}",
        "kind": row.kind,
        "ca_id": row.ca_id,
        "project_id": row.ca_id,  # replace filters name it
        "lookup": row.lookup,
        "status": row.status,
        "claim_until": row.claim_until,
        "sort": row.sort,
        "revision": row.revision,
        "doc": row.doc,
    }


class MongoAcmeStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._records = db["acme_records"]
        self._claims = RevisionClaims(db["acme_revisions"])
        self._nonces = db["acme_nonces"]  # {_id: nonce, expires}: only the _id index on the hot path
        # EAB keys' HMAC keys: the documents of kind 'eab' (`_id` "eab/<kid>"), claimed from their revision
        # like any change; the project is in the record's document, the CA (which the context names) in ca_id.
        self._envelope_collections = (
            EnvelopeCollection(
                EnvelopeKind.ACME_EAB_KEY,
                self._records,
                "doc.encrypted_hmac_key",
                self._claims,
                where={"kind": c.EAB},
                id_prefix=f"{c.EAB}/",
                project_field="doc.project_id",
                scope_field="ca_id",
            ),
        )

    async def ensure_schema(self) -> None:
        await guard(
            self._records.create_index(
                [("kind", ASCENDING), ("ca_id", ASCENDING), ("lookup", ASCENDING), ("sort", ASCENDING)],
                name="acme_lookup",
            )
        )
        await guard(
            self._records.create_index(
                [("kind", ASCENDING), ("status", ASCENDING), ("claim_until", ASCENDING)], name="acme_work"
            )
        )
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    # -- generic ------------------------------------------------------------------------------------

    async def _insert(self, *rows: c.Row) -> None:
        for row in rows:
            try:
                await guard(self._records.insert_one(_doc(row)))
            except DuplicateKeyError:
                raise ConflictError(f"the ACME {row.kind} exists already") from None

    async def _get(self, kind: str, record_id: str, ca_id: str | None = None) -> dict[str, Any] | None:
        found = await guard(self._records.find_one({"_id": f"{kind}/{record_id}"}))
        if found is None or (ca_id is not None and found["ca_id"] != ca_id):
            return None
        return found["doc"]

    async def _replace(self, row: c.Row, expected_revision: int) -> None:
        doc = _doc(row)
        record_id = doc["_id"]
        await self._claims.claim(record_id, expected_revision)
        try:
            result = await guard(self._records.replace_one({"_id": record_id, "revision": expected_revision}, doc))
            if result.matched_count == 0:
                exists = await guard(self._records.find_one({"_id": record_id}, {"_id": 1}))
                if exists is None:
                    raise NotFoundError(f"the ACME {row.kind} does not exist")
                raise ConflictError("the record was changed concurrently; retry")
        except Exception:
            await self._claims.give_back(record_id, expected_revision)
            raise
        await self._claims.release(record_id, expected_revision)

    async def _delete(self, kind: str, record_id: str) -> None:
        await guard(self._records.delete_one({"_id": f"{kind}/{record_id}"}))

    async def _find(
        self, kind: str, ca_id: str, lookup: str, after: str = "", limit: int = 1000
    ) -> list[dict[str, Any]]:
        q = {"kind": kind, "ca_id": ca_id, "lookup": lookup, "sort": {"$gt": after}}
        cursor = self._records.find(q).sort([("sort", ASCENDING)]).limit(limit)
        return [d["doc"] for d in await guard(cursor.to_list(length=limit))]

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
        await self._insert(c.account_key_row(account.ca_id, account.thumbprint, account.id))
        await self._insert(c.account_row(account))

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
        await self._insert(*(c.authz_row(a) for a in authorizations))
        await self._insert(c.order_row(order))

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
        q = {"kind": c.AUTHZ, "status": "processing", "$or": [{"claim_until": None}, {"claim_until": {"$lt": now}}]}
        cursor = self._records.find(q).sort([("sort", ASCENDING)]).limit(limit)
        return [c.authz_from(d["doc"]) for d in await guard(cursor.to_list(length=limit))]

    async def claimable_finalizations(self, now: datetime, limit: int) -> list[AcmeOrder]:
        q = {"kind": c.ORDER, "status": "processing", "$or": [{"claim_until": None}, {"claim_until": {"$lt": now}}]}
        cursor = self._records.find(q).sort([("sort", ASCENDING)]).limit(limit)
        return [c.order_from(d["doc"]) for d in await guard(cursor.to_list(length=limit))]

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

    async def use_nonce(self, nonce: bytes) -> bool:
        # One insert whose unique _id is the nonce (its body); `expires` (its first 8 bytes) for the purge.
        expires = datetime.fromtimestamp(int.from_bytes(nonce[:8], "big"), UTC)
        try:
            await guard(self._nonces.insert_one({"_id": nonce, "expires": expires}))
        except DuplicateKeyError:
            return False
        return True

    async def purge_nonces(self, before: datetime) -> int:
        result = await guard(self._nonces.delete_many({"expires": {"$lt": before}}))
        return int(result.deleted_count)

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
