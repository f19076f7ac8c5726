"""MongoDB adapter of the notification store: webhooks, deliveries, expiry notices.

Deliveries move from revision to revision through revision claims (a unique `_id` insert, see claims.py),
since FerretDB v1 does not make a filtered update atomic; new deliveries and notices are unique inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import NotFoundError
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.notifications import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    ExpiringCertificate,
    Webhook,
)
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.codec import utc
from gatewaycerts.store.mongo.claims import RevisionClaims, guard, replace_claimed
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes


def _webhook_doc(hook: Webhook) -> dict[str, Any]:
    return {
        "_id": hook.id,
        "project_id": hook.project_id,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "secret": Binary(hook.encrypted_secret),
        "kek_id": envelope_kek_id(hook.encrypted_secret),
        "creator_id": hook.creator_id,
        "create_time": hook.create_time,
    }


def _webhook(doc: dict[str, Any]) -> Webhook:
    return Webhook(
        id=doc["_id"],
        project_id=doc["project_id"],
        url=doc["url"],
        events=tuple(doc["events"]),
        description=doc["description"],
        encrypted_secret=bytes(doc["secret"]),
        creator_id=doc["creator_id"],
        create_time=utc(doc["create_time"]),
    )


def _delivery_doc(d: Delivery) -> dict[str, Any]:
    return {
        "_id": d.id,
        "project_id": d.project_id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "body": d.body,
        "state": d.state.value,
        "create_time": d.create_time,
        "next_attempt": d.next_attempt,
        "attempts": [{"time": a.time, "status_code": a.status_code, "error": a.error} for a in d.attempts],
        "claimed_by": d.claimed_by,
        "revision": d.revision,
    }


def _delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        id=doc["_id"],
        project_id=doc["project_id"],
        webhook_id=doc["webhook_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        body=doc["body"],
        state=DeliveryState(doc["state"]),
        create_time=utc(doc["create_time"]),
        next_attempt=utc(doc["next_attempt"]) if doc.get("next_attempt") else None,
        attempts=tuple(
            DeliveryAttempt(time=utc(a["time"]), status_code=a.get("status_code"), error=a.get("error"))
            for a in doc.get("attempts", ())
        ),
        claimed_by=doc.get("claimed_by"),
        revision=int(doc["revision"]),
    )


class MongoNotificationStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._webhooks = db["webhooks"]
        self._deliveries = db["webhook_deliveries"]
        self._claims = RevisionClaims(db["webhook_delivery_claims"])
        self._notices = db["expiry_notices"]
        self._certificates = db["certificates"]
        # A webhook has no revision: a rewrap locks it (nothing else writes a webhook after its insert).
        self._envelope_collections = (
            EnvelopeCollection(
                EnvelopeKind.WEBHOOK_SECRET,
                self._webhooks,
                "secret",
                RevisionClaims(db["webhook_claims"]),
                revisioned=False,
            ),
        )

    async def ensure_schema(self) -> None:
        await guard(self._webhooks.create_index([("project_id", ASCENDING), ("create_time", ASCENDING)]))
        await guard(
            self._deliveries.create_index(
                [("state", ASCENDING), ("next_attempt", ASCENDING)], name="webhook_deliveries_due"
            )
        )
        await guard(
            self._deliveries.create_index(
                [
                    ("project_id", ASCENDING),
                    ("webhook_id", ASCENDING),
                    ("create_time", DESCENDING),
                    ("_id", DESCENDING),
                ],
                name="webhook_deliveries_log",
            )
        )
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    # -- webhooks ---------------------------------------------------------------------------------------

    async def insert_webhook(self, hook: Webhook) -> None:
        await guard(self._webhooks.insert_one(_webhook_doc(hook)))

    async def get_webhook(self, project_id: str, webhook_id: str) -> Webhook | None:
        doc = await guard(self._webhooks.find_one({"_id": webhook_id}))  # by _id alone: FerretDB's fast path
        return _webhook(doc) if doc is not None and doc["project_id"] == project_id else None

    async def list_webhooks(self, project_id: str) -> list[Webhook]:
        cursor = self._webhooks.find({"project_id": project_id}).sort([("create_time", ASCENDING), ("_id", ASCENDING)])
        return [_webhook(d) for d in await guard(cursor.to_list(length=None))]

    async def delete_webhook(self, project_id: str, webhook_id: str) -> bool:
        result = await guard(self._webhooks.delete_one({"_id": webhook_id, "project_id": project_id}))
        if not result.deleted_count:
            return False
        await guard(self._deliveries.delete_many({"project_id": project_id, "webhook_id": webhook_id}))
        return True

    # -- deliveries -------------------------------------------------------------------------------------

    async def insert_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        new = 0
        for d in deliveries:
            try:
                await guard(self._deliveries.insert_one(_delivery_doc(d)))
                new += 1
            except DuplicateKeyError:
                continue  # emitted before (the same event id): kept as it is
        return new

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        cursor = (
            self._deliveries.find({"state": DeliveryState.PENDING.value, "next_attempt": {"$lte": now}})
            .sort([("next_attempt", ASCENDING)])
            .hint("webhook_deliveries_due")
            .limit(limit)
        )
        return [_delivery(d) for d in await guard(cursor.to_list(length=limit))]

    async def replace_delivery(self, delivery: Delivery, *, expected_revision: int) -> Delivery:
        stored = replace(delivery, revision=expected_revision + 1)
        await replace_claimed(
            self._deliveries,
            self._claims,
            _delivery_doc(stored),
            expected_revision,
            NotFoundError("the delivery no longer exists"),
        )
        return stored

    async def get_delivery(self, project_id: str, delivery_id: str) -> Delivery | None:
        doc = await guard(self._deliveries.find_one({"_id": delivery_id}))
        return _delivery(doc) if doc is not None and doc["project_id"] == project_id else None

    async def list_deliveries(self, project_id: str, webhook_id: str, offset: int, limit: int) -> Page[Delivery]:
        query = {"project_id": project_id, "webhook_id": webhook_id}
        cursor = (
            self._deliveries.find(query)
            .sort([("create_time", DESCENDING), ("_id", DESCENDING)])
            .hint("webhook_deliveries_log")
            .skip(offset)
            .limit(limit)
        )
        docs = await guard(cursor.to_list(length=limit))
        total = await guard(self._deliveries.count_documents(query, hint="webhook_deliveries_log"))
        return Page(items=tuple(_delivery(d) for d in docs), total=total)

    async def count_pending(self) -> int:
        return await guard(
            self._deliveries.count_documents({"state": DeliveryState.PENDING.value}, hint="webhook_deliveries_due")
        )

    # -- the expiry watch -------------------------------------------------------------------------------

    async def expiring_certificates(
        self, after: datetime, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[ExpiringCertificate], str | None]:
        query: dict[str, Any] = {"not_after": {"$gte": after, "$lt": before}}
        if cursor:
            last_iso, last_id = cursor.split("|", 1)
            last = datetime.fromisoformat(last_iso)
            query = {
                "$and": [
                    query,
                    {"$or": [{"not_after": {"$gt": last}}, {"not_after": last, "_id": {"$gt": last_id}}]},
                ]
            }
        found = (
            self._certificates.find(query, {"project_id": 1, "name": 1, "not_after": 1})
            .sort([("not_after", ASCENDING), ("_id", ASCENDING)])
            .hint("certificates_expiry")
            .limit(limit)
        )
        docs = await guard(found.to_list(length=limit))
        items = [ExpiringCertificate(d["project_id"], d["_id"], d["name"], utc(d["not_after"])) for d in docs]
        following = f"{items[-1].not_after.isoformat()}|{items[-1].id}" if len(items) == limit else None
        return items, following

    async def seen_notices(self, keys: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(keys))
        seen: set[str] = set()
        for start in range(0, len(wanted), 500):
            docs = await guard(self._notices.find({"_id": {"$in": wanted[start : start + 500]}}, {"_id": 1}).to_list())
            seen.update(d["_id"] for d in docs)
        return seen

    async def record_notice(self, key: str, at: datetime) -> bool:
        try:
            await guard(self._notices.insert_one({"_id": key, "at": at}))
        except DuplicateKeyError:
            return False
        return True
