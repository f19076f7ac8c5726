"""MongoManagedCertificateStore: managed certificates and the chain history (FerretDB-compatible).

No transactions: a change is a revision claim (a unique `_id` insert, see claims.py) and then one
`replace_one` on the claimed revision. The due query is hinted onto `managed_by_due` (due_at, _id).
"""

from __future__ import annotations

from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.errors import CertificateNotFoundError, DuplicateNameError
from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate
from gatewaycerts.domain.models import Page
from gatewaycerts.store.managed_codec import (
    chain_revision_from_doc,
    chain_revision_to_doc,
    managed_from_doc,
    managed_to_doc,
)
from gatewaycerts.store.mongo.claims import RevisionClaims, guard, replace_claimed

_DUPLICATE = "a managed certificate named {name!r} already exists in this project and scope"
DUE_INDEX = "managed_by_due"


def due_query(now: datetime) -> dict[str, Any]:
    return {"due_at": {"$lte": now}, "$or": [{"claim_until": None}, {"claim_until": {"$lt": now}}]}


class MongoManagedCertificateStore:
    def __init__(self, client: AsyncMongoClient, database: str) -> None:
        db = client[database]
        self._coll = db["managed_certificates"]
        self._history = db["certificate_chain_revisions"]
        self._claims = RevisionClaims(db["managed_certificate_claims"])

    async def ensure_schema(self) -> None:
        indexes = [
            (
                [("project_id", ASCENDING), ("type", ASCENDING), ("instance_id", ASCENDING), ("name", ASCENDING)],
                {"unique": True, "name": "managed_names"},
            ),
            ([("project_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)], {"name": "managed_recent"}),
            ([("due_at", ASCENDING), ("_id", ASCENDING)], {"name": DUE_INDEX}),
        ]
        for keys, options in indexes:
            await guard(self._coll.create_index(keys, **options))
        await guard(
            self._history.create_index(
                [("project_id", ASCENDING), ("certificate_id", ASCENDING), ("revision", DESCENDING)],
                name="chain_revisions_by_certificate",
            )
        )

    async def close(self) -> None:
        return None  # the certificate store owns the client

    async def insert_managed(self, managed: ManagedCertificate) -> None:
        try:
            await guard(self._coll.insert_one(managed_to_doc(managed)))
        except DuplicateKeyError:
            raise DuplicateNameError(_DUPLICATE.format(name=managed.name), field="name") from None

    async def get_managed(self, project_id: str, cert_id: str) -> ManagedCertificate | None:
        doc = await guard(self._coll.find_one({"_id": cert_id, "project_id": project_id}))
        return None if doc is None else managed_from_doc(doc)

    async def list_managed(self, project_id: str, offset: int, limit: int) -> Page[ManagedCertificate]:
        q = {"project_id": project_id}
        total = await guard(self._coll.count_documents(q))
        cursor = (
            self._coll.find(q)
            .sort([("create_time", DESCENDING), ("_id", DESCENDING)])
            .hint("managed_recent")
            .skip(offset)
            .limit(limit)
        )
        docs = await guard(cursor.to_list(length=limit))
        return Page(items=tuple(managed_from_doc(d) for d in docs), total=total)

    async def replace_managed(self, managed: ManagedCertificate, *, expected_revision: int) -> ManagedCertificate:
        stored = dc_replace(managed, revision=expected_revision + 1)
        missing = CertificateNotFoundError("the managed certificate does not exist")
        try:
            await replace_claimed(self._coll, self._claims, managed_to_doc(stored), expected_revision, missing)
        except DuplicateKeyError:
            raise DuplicateNameError(_DUPLICATE.format(name=managed.name), field="name") from None
        return stored

    async def delete_managed(self, project_id: str, cert_id: str) -> bool:
        result = await guard(self._coll.delete_one({"_id": cert_id, "project_id": project_id}))
        if result.deleted_count:
            await self._claims.forget(cert_id)
        return bool(result.deleted_count)

    def due_spec(self, now: datetime) -> tuple[dict[str, Any], list[tuple[str, int]], str]:
        """The due query: (filter, sort, hinted index); the index's keys are the range field then the sort."""
        return due_query(now), [("due_at", ASCENDING), ("_id", ASCENDING)], DUE_INDEX

    def due_cursor(self, now: datetime, limit: int) -> Any:
        query, sort, hint = self.due_spec(now)
        return self._coll.find(query).sort(sort).hint(hint).limit(limit)

    async def due_managed(self, now: datetime, limit: int) -> list[ManagedCertificate]:
        docs = await guard(self.due_cursor(now, limit).to_list(length=limit))
        return [managed_from_doc(d) for d in docs]

    async def index_keys(self, name: str) -> list[str]:
        info = await guard(self._coll.index_information())
        return [field for field, _ in info[name]["key"]]

    async def add_chain_revision(self, entry: ChainRevision) -> None:
        try:
            await guard(self._history.insert_one(chain_revision_to_doc(entry)))
        except DuplicateKeyError:
            return  # recorded already (a retried or taken-over renewal)

    async def chain_revisions(self, project_id: str, cert_id: str, limit: int) -> list[ChainRevision]:
        cursor = (
            self._history.find({"project_id": project_id, "certificate_id": cert_id})
            .sort([("revision", DESCENDING)])
            .limit(limit)
        )
        return [chain_revision_from_doc(d) for d in await guard(cursor.to_list(length=limit))]

    async def delete_chain_revisions(self, project_id: str, cert_id: str) -> None:
        await guard(self._history.delete_many({"project_id": project_id, "certificate_id": cert_id}))
