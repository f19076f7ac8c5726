"""Key envelopes in MongoDB collections (EnvelopeStore), shared by the three Mongo stores.

Each document carries `kek_id`, the KEK id its envelope names ("" without one), indexed with `_id`; documents
written before the field existed lack it and are found by `{kek_id: {$exists: false}}` until a rewrap sets it.

A rewrap must not interleave with another write of the same document: FerretDB v1 evaluates an update's
filter and writes the whole document by `_id` in separate steps, so a filtered `update_one` alone could write
the old document back over a concurrent change. A revisioned record is therefore claimed like any change from
its revision (`RevisionClaims.claim`), but the claim is given back instead of moving the revision: writers
that read the record before keep their compare-and-swap, and the rewrap changes only the envelope and its
label. A secret has no revision: it is locked, and `put_secret` takes the same lock. While it holds the
record the rewrap compares what is stored with what it read, then updates by `_id`; updates never upsert,
so a record deleted meanwhile stays deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.domain.errors import ConflictError
from gatewaycerts.store.mongo.claims import RevisionClaims, guard

_CONCURRENCY = 8  # rewraps of one batch in flight at once


def _at(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a document (None when any step is missing)."""
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


@dataclass(frozen=True, slots=True)
class EnvelopeCollection:
    """Where a collection keeps one kind's envelopes. A collection shared by several kinds of record names this
    kind's documents (`where`) and the `_id` prefix they carry (`id_prefix`, not part of the record id); paths
    may be dotted (`field`, `project_field`); `scope_field` holds the parent id the envelope's context names
    beside the record's own (StoredEnvelope.scope)."""

    kind: EnvelopeKind
    coll: AsyncCollection
    field: str  # the document field that holds the envelope
    claims: RevisionClaims
    revisioned: bool = True  # False: the record has no revision and is locked instead (secrets)
    label: str = "kek_id"  # the field of the KEK id (a document holding two envelopes labels the second apart)
    where: dict[str, Any] = dc_field(default_factory=dict)
    id_prefix: str = ""
    project_field: str = "project_id"
    scope_field: str | None = None

    async def ensure_index(self) -> None:
        name = f"{self.coll.name}_kek" if self.label == "kek_id" else f"{self.coll.name}_{self.label}"
        await guard(self.coll.create_index([(self.label, ASCENDING), ("_id", ASCENDING)], name=name))

    def _label(self, kek_id: str | None) -> dict[str, Any]:
        if kek_id is None:
            return {self.label: {"$exists": False}, self.field: {"$ne": None}, **self.where}
        return {self.label: kek_id, **self.where}

    def _projection(self) -> dict[str, int]:
        paths = [self.project_field, self.field, self.label, "revision"]
        if self.scope_field is not None:
            paths.append(self.scope_field)
        return {path.split(".")[0]: 1 for path in paths}

    def _envelope(self, doc: dict[str, Any]) -> StoredEnvelope | None:
        blob = _at(doc, self.field)
        if not blob:
            return None
        revision = doc.get("revision") if self.revisioned else None
        return StoredEnvelope(
            self.kind,
            _at(doc, self.project_field),
            doc["_id"].removeprefix(self.id_prefix),
            bytes(blob),
            doc.get(self.label),
            None if revision is None else int(revision),
            None if self.scope_field is None else _at(doc, self.scope_field),
        )

    async def envelopes(self, kek_id: str | None, after: str, limit: int) -> list[StoredEnvelope]:
        q = {**self._label(kek_id), "_id": {"$gt": self.id_prefix + after}}
        cursor = self.coll.find(q, self._projection()).sort([("_id", ASCENDING)]).limit(limit)
        docs = await guard(cursor.to_list(length=limit))
        return [env for env in map(self._envelope, docs) if env is not None]

    async def samples(self) -> list[StoredEnvelope]:
        out: list[StoredEnvelope] = []
        # The labels in use from the kek_id index (strings above "", the label of records without one), then
        # one record of each, and one record written before labels existed, if any is left.
        labels = await guard(self.coll.distinct(self.label, {self.label: {"$gt": ""}, **self.where}))
        queries = [self._label(label) for label in sorted(labels)] + [self._label(None)]
        for q in queries:
            doc = await guard(self.coll.find_one(q, self._projection()))
            if doc is not None and (env := self._envelope(doc)) is not None:
                out.append(env)
        return out

    async def count(self, kek_id: str | None) -> int:
        return int(await guard(self.coll.count_documents(self._label(kek_id))))

    async def rewrap(self, current: StoredEnvelope, envelope: bytes, kek_id: str) -> RewrapOutcome:
        record_id = self.id_prefix + current.record_id  # the document's `_id`, which claims are keyed by
        try:
            if not self.revisioned:
                await self.claims.lock(record_id)
            elif current.revision is None:
                return RewrapOutcome.CHANGED
            else:
                await self.claims.claim(record_id, current.revision)
        except ConflictError:
            return RewrapOutcome.CHANGED  # a writer holds the record right now
        try:
            # Held, the record cannot change under us: compare here, then write by `_id` alone (the one filter
            # FerretDB serves without scanning the collection). A delete needs no claim, but an update never
            # upserts: a record deleted in between stays deleted.
            doc = await guard(self.coll.find_one({"_id": record_id}, self._projection()))
            if doc is None or _at(doc, self.project_field) != current.project_id:
                return RewrapOutcome.GONE
            stored = _at(doc, self.field)
            if (
                stored is None
                or bytes(stored) != current.envelope
                or (self.revisioned and doc.get("revision") != current.revision)
            ):
                return RewrapOutcome.CHANGED
            result = await guard(
                self.coll.update_one({"_id": record_id}, {"$set": {self.field: envelope, self.label: kek_id}})
            )
            return RewrapOutcome.REWRAPPED if result.matched_count else RewrapOutcome.GONE
        finally:
            if self.revisioned:
                await self.claims.give_back(record_id, current.revision)  # type: ignore[arg-type]
            else:
                await self.claims.unlock(record_id)


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

    async def rewrap_envelopes(self, items: Sequence[tuple[StoredEnvelope, bytes]], kek_id: str) -> list[RewrapOutcome]:
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def one(current: StoredEnvelope, envelope: bytes) -> RewrapOutcome:
            async with gate:
                return await self.rewrap_envelope(current, envelope, kek_id)

        return list(await asyncio.gather(*(one(current, envelope) for current, envelope in items)))
