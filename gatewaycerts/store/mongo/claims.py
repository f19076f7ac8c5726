"""Revision claims: the compare-and-swap every MongoDB-compatible server makes atomic.

Moving a record from revision r to r+1 first inserts `{_id: "<id>@<r+1>"}` into a claims collection. A
unique `_id` insert is atomic everywhere (FerretDB v1 evaluates an update's filter and its write in
separate steps, so two `replace_one({revision: r})` calls can both match); only the claimant writes.
A claim left by a crashed writer is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from gatewaycerts.domain.errors import ConflictError, StoreUnavailableError

CLAIM_TIMEOUT = timedelta(seconds=30)


async def guard(awaitable: Any) -> Any:
    """Driver failures other than write errors become StoreUnavailableError."""
    try:
        return await awaitable
    except (DuplicateKeyError, OperationFailure):
        raise
    except PyMongoError as exc:
        raise StoreUnavailableError("the database is unavailable") from exc


class RevisionClaims:
    def __init__(self, collection: AsyncCollection) -> None:
        self._claims = collection

    @staticmethod
    def claim_id(record_id: str, revision: int) -> str:
        return f"{record_id}@{revision}"

    async def claim(self, record_id: str, current_revision: int, **extra: Any) -> None:
        """Win the right to move `record_id` from `current_revision` to the next, or raise ConflictError."""
        await self._take({"_id": self.claim_id(record_id, current_revision + 1), **extra})

    async def lock(self, record_id: str) -> None:
        """Exclusive right to write a record that has no revision (a secret), or ConflictError."""
        await self._take({"_id": f"{record_id}@lock"})

    async def unlock(self, record_id: str) -> None:
        await guard(self._claims.delete_one({"_id": f"{record_id}@lock"}))

    async def _take(self, claim: dict[str, Any]) -> None:
        for _ in range(2):
            try:
                await guard(self._claims.insert_one({**claim, "at": datetime.now(UTC)}))
                return
            except DuplicateKeyError:
                stale = await guard(
                    self._claims.delete_one({"_id": claim["_id"], "at": {"$lt": datetime.now(UTC) - CLAIM_TIMEOUT}})
                )
                if not stale.deleted_count:
                    break
        raise ConflictError("the record was changed concurrently; retry")

    async def give_back(self, record_id: str, current_revision: int) -> None:
        """Undo a claim whose write failed, so the record is not locked until the claim goes stale."""
        await guard(self._claims.delete_one({"_id": self.claim_id(record_id, current_revision + 1)}))

    async def release(self, record_id: str, previous_revision: int) -> None:
        """The claim that produced `previous_revision` is not needed once the next one is written."""
        await guard(self._claims.delete_one({"_id": self.claim_id(record_id, previous_revision)}))

    async def forget(self, record_id: str) -> None:
        await guard(self._claims.delete_many({"_id": {"$regex": f"^{re.escape(record_id)}@"}}))


async def replace_claimed(
    coll: AsyncCollection,
    claims: RevisionClaims,
    doc: dict[str, Any],
    expected_revision: int,
    missing: Exception,
) -> None:
    """Write `doc` (revision expected_revision + 1) if the stored record is at expected_revision."""
    record_id = doc["_id"]
    await claims.claim(record_id, expected_revision)
    try:
        result = await guard(
            coll.replace_one({"_id": record_id, "project_id": doc["project_id"], "revision": expected_revision}, doc)
        )
        if result.matched_count == 0:
            exists = await guard(coll.find_one({"_id": record_id}, {"_id": 1}))
            if exists is None:
                raise missing
            raise ConflictError("the record was changed concurrently; retry")
    except Exception:
        await claims.give_back(record_id, expected_revision)
        raise
    await claims.release(record_id, expected_revision)
