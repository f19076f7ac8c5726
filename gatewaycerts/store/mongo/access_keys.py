"""MongoAccessKeyStore: access keys in `access_keys` (`_id` = the access id); changes are claimed revisions,
so a status change and a KEK rewrap never write over each other on FerretDB (see store/mongo/envelopes.py)."""

from __future__ import annotations

from dataclasses import replace as dc_replace

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.access_keys import AccessKey, AccessKeyNotFoundError
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.access_key_codec import key_from_doc, key_to_doc
from gatewaycerts.store.mongo.claims import RevisionClaims, guard
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes

_ORDER = [("create_time", ASCENDING), ("_id", ASCENDING)]


class MongoAccessKeyStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._keys = db["access_keys"]
        self._claims = RevisionClaims(db["access_key_revisions"])
        self._envelope_collections = (EnvelopeCollection(EnvelopeKind.ACCESS_KEY, self._keys, "secret", self._claims),)

    async def ensure_schema(self) -> None:
        await guard(self._keys.create_index([("project_id", ASCENDING), *_ORDER], name="access_keys_project"))
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def insert(self, key: AccessKey) -> None:
        try:
            await guard(self._keys.insert_one(key_to_doc(key)))
        except DuplicateKeyError:
            raise ConflictError("an access key with this id exists already") from None

    async def get(self, access: str) -> AccessKey | None:
        doc = await guard(self._keys.find_one({"_id": access}))  # `_id` alone: FerretDB serves it from its index
        return None if doc is None else key_from_doc(doc)

    async def list(self, project_id: str) -> list[AccessKey]:
        cursor = self._keys.find({"project_id": project_id}).sort(_ORDER)
        return [key_from_doc(d) for d in await guard(cursor.to_list(length=None))]

    async def replace(self, key: AccessKey, *, expected_revision: int) -> AccessKey:
        await self._claims.claim(key.access, expected_revision)
        try:
            result = await guard(
                self._keys.update_one(
                    {"_id": key.access, "project_id": key.project_id, "revision": expected_revision},
                    {
                        "$set": {
                            "status": key.status.value,
                            "description": key.description,
                            "revision": expected_revision + 1,
                        }
                    },
                )
            )
            if result.matched_count == 0:
                exists = await guard(self._keys.find_one({"_id": key.access, "project_id": key.project_id}, {"_id": 1}))
                if exists is None:
                    raise AccessKeyNotFoundError("the access key does not exist")
                raise ConflictError("the access key was changed concurrently; retry")
        except Exception:
            await self._claims.give_back(key.access, expected_revision)
            raise
        await self._claims.release(key.access, expected_revision)
        return dc_replace(key, revision=expected_revision + 1)

    async def delete(self, project_id: str, access: str) -> bool:
        result = await guard(self._keys.delete_one({"_id": access, "project_id": project_id}))
        if result.deleted_count:
            await self._claims.forget(access)
        return bool(result.deleted_count)
