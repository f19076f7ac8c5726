"""MongoCertificateStore: one document per certificate, domain bindings embedded.

Embedding the bindings makes attach/detach/delete single-document operations, so the store needs no
transactions (FerretDB v1 has none) to keep "never delete a bound certificate" true under races.

Every change from revision r is first *claimed* by inserting `{_id: "<cert id>@<r+1>"}` into
`certificate_revisions`: a unique `_id` insert is the one compare-and-swap that every MongoDB-compatible
server makes atomic (FerretDB v1 evaluates an update's filter and writes in separate steps, so two
`replace_one({revision: r})` calls can both match). Only the claimant writes; the others get
ConflictError and re-read. A claim left by a crashed writer is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import replace as dc_replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Int64
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import (
    CertificateNotFoundError,
    ConflictError,
    DuplicateNameError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import Certificate, CertificateFilter, DeleteOutcome, Page
from gatewaycerts.store.codec import (
    HEAVY_FIELDS,
    certificate_from_doc,
    certificate_to_doc,
    exact_filters,
    fold_name,
    name_grams,
    utc,
)
from gatewaycerts.store.mongo.claims import RevisionClaims
from gatewaycerts.store.mongo.delivery import ChangeLog
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes
from gatewaycerts.store.mongo.expiry import count_expiring

_DUPLICATE = "a certificate named {name!r} already exists in this project and scope"
_SUMMARY_PROJECTION = {f: 0 for f in HEAVY_FIELDS}
# The equality filters of the list, each with the index that serves it newest first (the first present wins).
_FACET_INDEXES = (
    ("common_name", "certificates_by_common_name"),
    ("instance_id", "certificates_by_instance"),
    ("type", "certificates_by_type"),
    ("signature_algorithm", "certificates_by_signature_algorithm"),
    ("algorithm_type", "certificates_by_algorithm_type"),
)
# A name filter first collects its matches from the name index; up to this many they are sorted here (a rare
# name), beyond it the recency index finds the page (a common name matches early).
NAME_MATCHES_SORTED_HERE = 1000


def _to_doc(cert: Certificate) -> dict[str, Any]:
    # name_grams: the name's three-character pieces; a name filter reads the candidates of its rarest piece
    folded = fold_name(cert.name)
    return {**certificate_to_doc(cert), "name_lower": folded, "name_grams": name_grams(folded)}


CLAIM_TIMEOUT = timedelta(seconds=30)
log = logging.getLogger("gatewaycerts.store")


class MongoCertificateStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = True) -> None:
        self._client = client
        self._owns_client = owns_client
        self._coll = client[database]["certificates"]
        self._claims = client[database]["certificate_revisions"]
        self._canaries = client[database]["kek_canaries"]
        self._changes = ChangeLog(client[database])
        self._envelope_collections = (
            EnvelopeCollection(EnvelopeKind.APIC_CERTIFICATE, self._coll, "private_key", RevisionClaims(self._claims)),
        )

    @property
    def client(self) -> AsyncMongoClient:
        return self._client

    @property
    def database_name(self) -> str:
        return self._coll.database.name

    async def _guard(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (DuplicateKeyError, OperationFailure):
            raise
        except PyMongoError as exc:
            raise StoreUnavailableError("the database is unavailable") from exc

    async def ensure_schema(self) -> None:
        # Every list query is served by one of these (tests/contract/test_query_plans.py): newest first within
        # a project, alone or after one equality filter; the lower-cased name rides along in the recency index
        # so a name filter is evaluated on index keys, and has its own index for counting.
        indexes = [
            (
                [("project_id", ASCENDING), ("type", ASCENDING), ("instance_id", ASCENDING), ("name", ASCENDING)],
                {"unique": True, "name": "certificates_name"},
            ),
            (
                [
                    ("project_id", ASCENDING),
                    ("create_time", DESCENDING),
                    ("_id", DESCENDING),
                    ("name_lower", ASCENDING),
                ],
                {"name": "certificates_newest"},
            ),
            ([("project_id", ASCENDING), ("name_lower", ASCENDING)], {"name": "certificates_names"}),
            ([("project_id", ASCENDING), ("name_grams", ASCENDING)], {"name": "certificates_name_grams"}),
            *(
                (
                    [("project_id", ASCENDING), (field, ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
                    {"name": index},
                )
                for field, index in _FACET_INDEXES
            ),
            ([("not_after", ASCENDING)], {"name": "certificates_expiry"}),
            (
                [("project_id", ASCENDING), ("not_after", ASCENDING), ("_id", ASCENDING)],
                {"name": "certificates_by_expiry"},
            ),
        ]
        for keys, options in indexes:
            await self._guard(self._coll.create_index(keys, **options))
        if "certificates_recent" in await self._guard(self._coll.index_information()):
            await self._guard(self._coll.drop_index("certificates_recent"))  # superseded by certificates_newest
        # Documents from before the indexed name filter.
        # Documents from before the indexed name filter (only if unchanged since read: a writer that raced
        # this wrote both fields itself).
        async for doc in self._coll.find({"name_grams": {"$exists": False}}, {"name": 1, "revision": 1}):
            folded = fold_name(doc["name"])
            await self._guard(
                self._coll.update_one(
                    {"_id": doc["_id"], "revision": doc.get("revision"), "name_grams": {"$exists": False}},
                    {"$set": {"name_lower": folded, "name_grams": name_grams(folded)}},
                )
            )
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def ping(self) -> None:
        await self._guard(self._client.admin.command("ping"))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def insert(self, cert: Certificate) -> None:
        try:
            await self._guard(self._coll.insert_one(_to_doc(cert)))
        except DuplicateKeyError:
            raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None
        if cert.bindings:
            await self._announce(cert.project_id, cert.id)

    async def _announce(self, project_id: str, cert_id: str) -> None:
        """Tell delivery watchers (every replica's) that the project's bound certificates changed. The write
        has happened: a failure here is logged, not raised (the next change of the project announces both)."""
        try:
            await self._changes.record(project_id, cert_id)
        except StoreUnavailableError:
            log.warning("delivery change of project %s not announced: the database is unavailable", project_id)

    async def get(self, project_id: str, cert_id: str) -> Certificate | None:
        # By _id alone (the one filter FerretDB v1 pushes down to its storage), then the project is checked here:
        # a certificate of another project is just as absent.
        doc = await self._guard(self._coll.find_one({"_id": cert_id}))
        return None if doc is None or doc.get("project_id") != project_id else certificate_from_doc(doc)

    async def get_summary(self, project_id: str, cert_id: str) -> Certificate | None:
        doc = await self._guard(self._coll.find_one({"_id": cert_id}, _SUMMARY_PROJECTION))
        return None if doc is None or doc.get("project_id") != project_id else certificate_from_doc(doc)

    def change_stamp(self) -> None:
        """MongoDB offers no cheap "nothing changed" (a change stream is a cursor per replica): read every time."""
        return None

    @staticmethod
    def _query(project_id: str, flt: CertificateFilter) -> dict[str, Any]:
        query: dict[str, Any] = {"project_id": project_id}
        if flt.name_contains:
            query["name_lower"] = {"$regex": re.escape(fold_name(flt.name_contains))}
        query.update(exact_filters(flt))
        return query

    @staticmethod
    def _order_index(flt: CertificateFilter) -> str:
        exact = exact_filters(flt)
        return next((index for field, index in _FACET_INDEXES if field in exact), "certificates_newest")

    async def list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> Page[Certificate]:
        query, index = self._query(project_id, flt), self._order_index(flt)
        bound = NAME_MATCHES_SORTED_HERE
        pieces = name_grams(fold_name(flt.name_contains)) if flt.name_contains else []
        if pieces:
            counts = {
                g: await self._guard(
                    self._coll.count_documents(
                        {"project_id": project_id, "name_grams": g}, limit=bound + 1, hint="certificates_name_grams"
                    )
                )
                for g in pieces
            }
            rarest = min(counts, key=counts.__getitem__)
            if counts[rarest] <= bound:
                matches = await self._guard(
                    self._coll.find({**query, "name_grams": rarest}, {"create_time": 1})
                    .hint("certificates_name_grams")
                    .to_list(length=bound + 1)
                )
                return await self._sorted_here(matches, offset, limit)
        if flt.name_contains and index == "certificates_newest":
            matches = await self._guard(
                self._coll.find(query, {"create_time": 1})
                .hint("certificates_names")
                .limit(NAME_MATCHES_SORTED_HERE + 1)
                .to_list(length=NAME_MATCHES_SORTED_HERE + 1)
            )
            if len(matches) <= bound:
                return await self._sorted_here(matches, offset, limit)
            total = await self._guard(self._coll.count_documents(query, hint="certificates_names"))
        else:
            total = await self._guard(self._coll.count_documents(query, hint=index))
        cursor = (
            self._coll.find(query, _SUMMARY_PROJECTION)
            .hint(index)
            .sort([("create_time", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        docs = await self._guard(cursor.to_list(length=limit))
        return Page(items=tuple(certificate_from_doc(d) for d in docs), total=total)

    async def _sorted_here(self, matches: list[dict[str, Any]], offset: int, limit: int) -> Page[Certificate]:
        """A rare name: every match is known already; sort them and read just the page."""
        matches.sort(key=lambda d: (utc(d["create_time"]), d["_id"]), reverse=True)
        ids = [d["_id"] for d in matches[offset : offset + limit]]
        docs = (
            await self._guard(self._coll.find({"_id": {"$in": ids}}, _SUMMARY_PROJECTION).to_list(length=len(ids)))
            if ids
            else []
        )
        found = {d["_id"]: d for d in docs}
        return Page(items=tuple(certificate_from_doc(found[i]) for i in ids if i in found), total=len(matches))

    async def explain_list(
        self, project_id: str, flt: CertificateFilter, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        """The server's plans of the commands list() may run, each as {"command", "hint", "explain"}."""
        query, index = self._query(project_id, flt), self._order_index(flt)
        by_name = bool(flt.name_contains) and index == "certificates_newest"
        name = self._coll.name
        sort = {"create_time": -1, "_id": -1}
        commands = [
            {
                "aggregate": name,
                "pipeline": [{"$match": query}, {"$group": {"_id": 1, "n": {"$sum": 1}}}],
                "cursor": {},
                "hint": "certificates_names" if by_name else index,
            },
            {"find": name, "filter": query, "sort": sort, "skip": Int64(offset), "limit": Int64(limit), "hint": index},
        ]
        pieces = name_grams(fold_name(flt.name_contains)) if flt.name_contains else []
        if pieces:
            counted = {"project_id": project_id, "name_grams": pieces[0]}
            commands[:0] = [
                {
                    "aggregate": name,
                    "pipeline": [
                        {"$match": counted},
                        {"$limit": NAME_MATCHES_SORTED_HERE + 1},
                        {"$group": {"_id": 1, "n": {"$sum": 1}}},
                    ],
                    "cursor": {},
                    "hint": "certificates_name_grams",
                },
                {
                    "find": name,
                    "filter": {**query, "name_grams": pieces[0]},
                    "projection": {"create_time": 1},
                    "hint": "certificates_name_grams",
                },
            ]
        if by_name or pieces:  # the rare-name paths then read their page by _id
            commands.append({"find": name, "filter": {"_id": {"$in": ["?"]}}, "hint": "_id_"})
        if by_name:
            commands.insert(
                len(commands) - 3,
                {
                    "find": name,
                    "filter": query,
                    "projection": {"create_time": 1},
                    "limit": Int64(NAME_MATCHES_SORTED_HERE + 1),
                    "hint": "certificates_names",
                },
            )
        database = self._coll.database
        return [
            {"command": c, "hint": c["hint"], "explain": await self._guard(database.command("explain", c))}
            for c in commands
        ]

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        return await count_expiring(self._coll, {}, boundaries)

    async def list_expiring(
        self, project_id: str, after: datetime, before: datetime, limit: int
    ) -> tuple[Certificate, ...]:
        cursor = (
            self._coll.find(
                {"project_id": project_id, "not_after": {"$gte": after, "$lt": before}}, _SUMMARY_PROJECTION
            )
            .sort([("not_after", ASCENDING), ("_id", ASCENDING)])
            .hint("certificates_by_expiry")
            .limit(limit)
        )
        docs = await self._guard(cursor.to_list(length=limit))
        return tuple(certificate_from_doc(d) for d in docs)

    async def _name_taken(self, cert: Certificate) -> bool:
        other = await self._guard(
            self._coll.find_one(
                {
                    "project_id": cert.project_id,
                    "type": cert.scope.value,
                    "instance_id": cert.instance_id,
                    "name": cert.name,
                    "_id": {"$ne": cert.id},
                },
                {"_id": 1},
            )
        )
        return other is not None

    async def replace(self, cert: Certificate, *, expected_revision: int) -> Certificate:
        # FerretDB reports a unique-index violation on update as a generic error, so check first and
        # still translate a duplicate-key failure for servers that report it.
        if await self._name_taken(cert):
            raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name")
        stored = dc_replace(cert, revision=expected_revision + 1)
        await self._claim(cert.project_id, cert.id, expected_revision)
        try:
            result = await self._guard(
                self._coll.replace_one(
                    {"_id": cert.id, "project_id": cert.project_id, "revision": expected_revision},
                    _to_doc(stored),
                )
            )
            if result.matched_count == 0:
                exists = await self._guard(
                    self._coll.find_one({"_id": cert.id, "project_id": cert.project_id}, {"_id": 1})
                )
                if exists is None:
                    raise CertificateNotFoundError("the SSL certificate does not exist")
                raise ConflictError("the certificate was changed concurrently; retry")
        except Exception as exc:
            # Give the claim back, or the record would stay locked until the claim goes stale.
            await self._guard(self._claims.delete_one({"_id": self._claim_id(cert.id, expected_revision + 1)}))
            if isinstance(exc, DuplicateKeyError) or (
                isinstance(exc, OperationFailure) and "duplicate" in str(exc).lower()
            ):
                raise DuplicateNameError(_DUPLICATE.format(name=cert.name), field="name") from None
            raise
        await self._release(cert.id, expected_revision)
        await self._announce(cert.project_id, cert.id)
        return stored

    @staticmethod
    def _claim_id(cert_id: str, revision: int) -> str:
        return f"{cert_id}@{revision}"

    async def _claim(self, project_id: str, cert_id: str, current_revision: int) -> None:
        """Win the right to move `cert_id` from `current_revision` to the next, or raise ConflictError."""
        claim = {"_id": self._claim_id(cert_id, current_revision + 1), "project_id": project_id}
        for _ in range(2):
            try:
                await self._guard(self._claims.insert_one({**claim, "at": datetime.now(UTC)}))
                return
            except DuplicateKeyError:
                stale = await self._guard(
                    self._claims.delete_one({"_id": claim["_id"], "at": {"$lt": datetime.now(UTC) - CLAIM_TIMEOUT}})
                )
                if not stale.deleted_count:
                    break
        raise ConflictError("the certificate was changed concurrently; retry")

    async def _release(self, cert_id: str, previous_revision: int) -> None:
        # The claim that produced `previous_revision` is no longer needed once the next one is written.
        await self._guard(self._claims.delete_one({"_id": self._claim_id(cert_id, previous_revision)}))

    async def delete_unbound(self, project_id: str, cert_id: str) -> DeleteOutcome:
        current = await self._guard(
            self._coll.find_one({"_id": cert_id, "project_id": project_id}, {"revision": 1, "binding_count": 1})
        )
        if current is None:
            return DeleteOutcome.NOT_FOUND
        if current["binding_count"]:
            return DeleteOutcome.IN_USE
        await self._claim(project_id, cert_id, current["revision"])
        result = await self._guard(
            self._coll.delete_one(
                {"_id": cert_id, "project_id": project_id, "revision": current["revision"], "binding_count": 0}
            )
        )
        await self._guard(self._claims.delete_many({"_id": {"$regex": f"^{re.escape(cert_id)}@"}}))
        if result.deleted_count:
            return DeleteOutcome.DELETED
        raise ConflictError("the certificate was changed concurrently; retry")

    # -- KEK canaries -----------------------------------------------------------------------------

    async def kek_canaries(self) -> dict[str, bytes]:
        docs = await self._guard(self._canaries.find({}).to_list(length=None))
        return {d["_id"]: bytes(d["envelope"]) for d in docs}

    async def add_kek_canary(self, kek_id: str, envelope: bytes) -> bytes:
        with contextlib.suppress(DuplicateKeyError):  # another replica wrote it first: theirs is checked
            await self._guard(self._canaries.insert_one({"_id": kek_id, "envelope": envelope}))
        doc = await self._guard(self._canaries.find_one({"_id": kek_id}))
        return bytes(doc["envelope"])
