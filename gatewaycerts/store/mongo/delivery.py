"""MongoDB adapters of delivery to gateways: change counters, binding keys, delivery marks, gateway keys.

No transactions and no change streams (FerretDB v1 has neither): a counter is `$inc`ed after the write it
announces (so a watcher that sees the counter move reads the write), and every uniqueness rule is a unique
`_id` insert, the one compare-and-swap every MongoDB-compatible server makes atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.errors import StoreUnavailableError
from gatewaycerts.domain.models import Certificate
from gatewaycerts.store.codec import certificate_from_doc, utc

CHANGES = "delivery_changes"
_CHUNK = 500


async def _guard(awaitable: Any) -> Any:
    try:
        return await awaitable
    except DuplicateKeyError:
        raise
    except PyMongoError as exc:
        raise StoreUnavailableError("the database is unavailable") from exc


LOG = "delivery_change_log"
KEEP = 1000  # change-log entries kept per project; a reader further behind reloads the whole project


class ChangeLog:
    """The per-project change log: entries `{_id: "<project>|<seq>", cert_id}` with contiguous sequence
    numbers, each claimed by a unique `_id` insert (so concurrent writers of one project never share a
    number and leave no hole), and the counter document `{_id: project, n}` that says the latest number.

    Everything a reader needs is an `_id` lookup, the one query FerretDB v1 answers from its index: a
    watcher walks a project's new entries and reloads only the certificates they name. The counter is
    a hint raised with `$max` after the entry exists, so it never names an entry that is missing.
    """

    def __init__(self, db: Any) -> None:
        self.counters = db[CHANGES]
        self.entries = db[LOG]

    async def record(self, project_id: str, cert_id: str | None) -> None:
        """Announce a change (after the write it announces): of the certificate `cert_id`, or (None) of
        something else delivery depends on, such as the project's gateway keys."""
        doc = await _guard(self.counters.find_one({"_id": project_id}, {"n": 1}))
        seq = int(doc["n"]) if doc else 0
        while True:
            seq += 1
            try:
                await _guard(self.entries.insert_one({"_id": f"{project_id}|{seq}", "cert_id": cert_id}))
                break
            except DuplicateKeyError:
                continue  # another writer took that number: the next one
        for _ in range(3):  # two first upserts of one project race to insert: the loser updates
            try:
                await _guard(self.counters.update_one({"_id": project_id}, {"$max": {"n": seq}}, upsert=True))
                break
            except DuplicateKeyError:
                continue
        if seq > KEEP:
            await _guard(self.entries.delete_one({"_id": f"{project_id}|{seq - KEEP}"}))

    async def since(self, project_id: str, after: int, latest: int) -> list[str | None] | None:
        """What entries after+1..latest (and any written since) name, oldest first; None when one of them is
        gone (trimmed): the reader reloads the project instead."""
        out: list[str | None] = []
        seq = after
        while True:
            doc = await _guard(self.entries.find_one({"_id": f"{project_id}|{seq + 1}"}))
            if doc is None:
                return out if seq >= latest else None
            out.append(doc.get("cert_id"))
            seq += 1


class MongoDeliveryStore:
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._certificates = db["certificates"]
        self._log = ChangeLog(db)
        self._marks = db["delivery_marks"]
        self._keys = db["binding_keys"]

    async def ensure_schema(self) -> None:
        await _guard(self._keys.create_index([("cert_id", ASCENDING)], name="binding_keys_holder"))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def bound_certificates(self, project_id: str) -> list[Certificate]:
        docs = await _guard(
            self._certificates.find({"project_id": project_id, "binding_count": {"$gt": 0}}).to_list(length=None)
        )
        return [certificate_from_doc(d) for d in docs]

    async def change_counters(self, project_ids: Sequence[str]) -> dict[str, int]:
        ids = list(project_ids)
        out: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            docs = await _guard(
                self._log.counters.find({"_id": {"$in": ids[start : start + _CHUNK]}}).to_list(length=None)
            )
            out.update((d["_id"], int(d["n"])) for d in docs)
        return out

    async def changed_certificates(self, project_id: str, after: int, latest: int) -> list[str] | None:
        names = await self._log.since(project_id, after, latest)
        return None if names is None else [n for n in dict.fromkeys(names) if n]

    async def certificates(self, project_id: str, cert_ids: Sequence[str]) -> list[Certificate]:
        docs = [await _guard(self._certificates.find_one({"_id": cert_id})) for cert_id in dict.fromkeys(cert_ids)]
        return [certificate_from_doc(d) for d in docs if d is not None and d.get("project_id") == project_id]

    async def mark_delivered(self, project_id: str, instance_id: str, cert_id: str, revision: int) -> bool:
        try:
            await _guard(self._marks.insert_one({"_id": f"{project_id}|{instance_id}|{cert_id}|{revision}"}))
        except DuplicateKeyError:
            return False
        return True

    @staticmethod
    def _key_id(project_id: str, key: str) -> str:
        return f"{project_id}|{key}"

    async def claim_binding_keys(
        self, project_id: str, cert_id: str, keys: Sequence[str], at: datetime
    ) -> dict[str, str]:
        inserted: list[str] = []
        taken: dict[str, str] = {}
        for key in dict.fromkeys(keys):
            doc_id = self._key_id(project_id, key)
            try:
                await _guard(
                    self._keys.insert_one({"_id": doc_id, "project_id": project_id, "cert_id": cert_id, "at": at})
                )
                inserted.append(doc_id)
            except DuplicateKeyError:
                holder = await _guard(self._keys.find_one({"_id": doc_id}))
                if holder is None:  # released meanwhile: the caller retries
                    taken[key] = ""
                elif holder["cert_id"] != cert_id:
                    taken[key] = holder["cert_id"]
        if taken and inserted:
            await _guard(self._keys.delete_many({"_id": {"$in": inserted}, "cert_id": cert_id}))
        return taken

    async def release_binding_keys(self, project_id: str, cert_id: str, keys: Sequence[str]) -> None:
        ids = [self._key_id(project_id, k) for k in dict.fromkeys(keys)]
        if ids:
            await _guard(self._keys.delete_many({"_id": {"$in": ids}, "cert_id": cert_id}))

    async def take_over_binding_key(
        self, project_id: str, key: str, stale_holder: str, cert_id: str, claimed_before: datetime, at: datetime
    ) -> bool:
        doc_id = self._key_id(project_id, key)
        await _guard(self._keys.delete_one({"_id": doc_id, "cert_id": stale_holder, "at": {"$lt": claimed_before}}))
        try:
            await _guard(self._keys.insert_one({"_id": doc_id, "project_id": project_id, "cert_id": cert_id, "at": at}))
        except DuplicateKeyError:
            return False
        return True


def _key_from_doc(doc: dict[str, Any]) -> GatewayKey:
    return GatewayKey(
        id=doc["_id"],
        project_id=doc["project_id"],
        instance_id=doc["instance_id"],
        secret_sha256=bytes(doc["secret_sha256"]),
        create_time=utc(doc["create_time"]),
    )


class MongoGatewayKeyStore:
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._coll = db["gateway_keys"]
        self._log = ChangeLog(db)

    async def ensure_schema(self) -> None:
        await _guard(
            self._coll.create_index(
                [("project_id", ASCENDING), ("instance_id", ASCENDING), ("create_time", ASCENDING)],
                name="gateway_keys_by_instance",
            )
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def insert_key(self, key: GatewayKey) -> None:
        await _guard(
            self._coll.insert_one(
                {
                    "_id": key.id,
                    "project_id": key.project_id,
                    "instance_id": key.instance_id,
                    "secret_sha256": Binary(key.secret_sha256),
                    "create_time": key.create_time,
                }
            )
        )
        await self._log.record(key.project_id, None)

    async def get_key(self, key_id: str) -> GatewayKey | None:
        doc = await _guard(self._coll.find_one({"_id": key_id}))
        return None if doc is None else _key_from_doc(doc)

    async def list_keys(self, project_id: str, instance_id: str) -> list[GatewayKey]:
        docs = await _guard(
            self._coll.find({"project_id": project_id, "instance_id": instance_id})
            .sort([("create_time", ASCENDING), ("_id", ASCENDING)])
            .to_list(length=None)
        )
        return [_key_from_doc(d) for d in docs]

    async def delete_key(self, project_id: str, instance_id: str, key_id: str) -> bool:
        result = await _guard(
            self._coll.delete_one({"_id": key_id, "project_id": project_id, "instance_id": instance_id})
        )
        if not result.deleted_count:
            return False
        await self._log.record(project_id, None)
        return True
