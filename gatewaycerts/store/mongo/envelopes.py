"""Key envelopes in MongoDB collections (EnvelopeStore), shared by the three Mongo stores.

Each document carries `kek_id`, the KEK id its envelope names ("" without one), indexed with `_id`; documents
written before the field existed lack it and are found by `{kek_id: {$exists: false}}` until a rewrap sets it.

A rewrap must not interleave with another write of the same document: FerretDB v1 evaluates an update's
filter and writes the whole document by `_id` in separate steps, so a filtered `update_one` alone could write
the old document back over a concurrent change. A revisioned record is therefore claimed like any change from
its revision (`RevisionClaims.claim`), but the claim is given back instead of moving the revision: writers
that read the record before keep their compare-and-swap, and the rewrap changes only the envelope and its
label. A secret has no revision: it is locked, and `put_secret` takes the same lock. Updates never upsert
and FerretDB writes them by `_id`, so a record deleted meanwhile stays deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.mongo.claims import RevisionClaims, guard


@dataclass(frozen=True, slots=True)
class EnvelopeCollection:
    kind: EnvelopeKind
    coll: AsyncCollection
    field: str  # the document field that holds the envelope
    claims: RevisionClaims
    revisioned: bool = True  # False: the record has no revision and is locked instead (secrets)

    async def ensure_index(self) -> None:
        await guard(self.coll.create_index([("kek_id", ASCENDING), ("_id", ASCENDING)], name=f"{self.coll.name}_kek"))

    def _label(self, kek_id: str | None) -> dict[str, Any]:
        if kek_id is None:
            return {"kek_id": {"$exists": False}, self.field: {"$ne": None}}
        return {"kek_id": kek_id}

    def _projection(self) -> dict[str, int]:
        return {"project_id": 1, self.field: 1, "kek_id": 1, "revision": 1}

    def _envelope(self, doc: dict[str, Any]) -> StoredEnvelope | None:
        blob = doc.get(self.field)
        if not blob:
            return None
        revision = doc.get("revision") if self.revisioned else None
        return StoredEnvelope(
            self.kind,
            doc["project_id"],
            doc["_id"],
            bytes(blob),
            doc.get("kek_id"),
            None if revision is None else int(revision),
        )

    async def envelopes(self, kek_id: str | None, after: str, limit: int) -> list[StoredEnvelope]:
        q = {**self._label(kek_id), "_id": {"$gt": after}}
        cursor = self.coll.find(q, self._projection()).sort([("_id", ASCENDING)]).limit(limit)
        docs = await guard(cursor.to_list(length=limit))
        return [env for env in map(self._envelope, docs) if env is not None]

    async def samples(self) -> list[StoredEnvelope]:
        out: list[StoredEnvelope] = []
        label = ""
        # One index seek per KEK id in use: the next label above the last one seen ("" = no envelope).
        while True:
            doc = await guard(
                self.coll.find_one(
                    {"kek_id": {"$gt": label}}, self._projection(), sort=[("kek_id", ASCENDING), ("_id", ASCENDING)]
                )
            )
            if doc is None:
                break
            label = doc["kek_id"]
            if (env := self._envelope(doc)) is not None:
                out.append(env)
        doc = await guard(self.coll.find_one(self._label(None), self._projection()))
        if doc is not None and (env := self._envelope(doc)) is not None:
            out.append(env)
        return out

    async def count(self, kek_id: str | None) -> int:
        return int(await guard(self.coll.count_documents(self._label(kek_id))))

    async def rewrap(self, current: StoredEnvelope, envelope: bytes, kek_id: str) -> RewrapOutcome:
        record_id = current.record_id
        q: dict[str, Any] = {"_id": record_id, "project_id": current.project_id, self.field: current.envelope}
        try:
            if self.revisioned:
                if current.revision is None:
                    return RewrapOutcome.CHANGED
                q["revision"] = current.revision
                await self.claims.claim(record_id, current.revision)
            else:
                await self.claims.lock(record_id)
        except ConflictError:
            return RewrapOutcome.CHANGED  # a writer holds the record right now
        try:
            result = await guard(self.coll.update_one(q, {"$set": {self.field: envelope, "kek_id": kek_id}}))
        finally:
            if self.revisioned:
                await self.claims.give_back(record_id, current.revision)  # type: ignore[arg-type]
            else:
                await self.claims.unlock(record_id)
        if result.matched_count:
            return RewrapOutcome.REWRAPPED
        exists = await guard(self.coll.find_one({"_id": record_id, "project_id": current.project_id}, {"_id": 1}))
        return RewrapOutcome.CHANGED if exists is not None else RewrapOutcome.GONE


class MongoEnvelopes:
    """The EnvelopeStore methods of a Mongo store, over its EnvelopeCollections."""

    _envelope_collections: tuple[EnvelopeCollection, ...] = ()

    def _envelope_collection(self, kind: EnvelopeKind) -> EnvelopeCollection:
        for spec in self._envelope_collections:
            if spec.kind is kind:
                return spec
        raise ValueError(f"{type(self).__name__} holds no {kind.value} envelopes")

    async def envelopes(self, kind: EnvelopeKind, kek_id: str | None, after: str, limit: int) -> list[StoredEnvelope]:
        return await self._envelope_collection(kind).envelopes(kek_id, after, limit)

    async def envelope_samples(self, kind: EnvelopeKind) -> list[StoredEnvelope]:
        return await self._envelope_collection(kind).samples()

    async def count_envelopes(self, kind: EnvelopeKind, kek_id: str | None) -> int:
        return await self._envelope_collection(kind).count(kek_id)

    async def rewrap_envelope(self, current: StoredEnvelope, envelope: bytes, kek_id: str) -> RewrapOutcome:
        return await self._envelope_collection(current.kind).rewrap(current, envelope, kek_id)
