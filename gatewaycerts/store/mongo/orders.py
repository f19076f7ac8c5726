"""MongoOrderStore: orders, secrets, containers (one collection each) and each project's preferred CA."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace as dc_replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import ConflictError, OrderNotFoundError
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.orders import Container, Order, Secret
from gatewaycerts.store.mongo.claims import RevisionClaims, guard, replace_claimed
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes
from gatewaycerts.store.order_codec import (
    container_from_doc,
    container_to_doc,
    order_from_doc,
    order_to_doc,
    secret_from_doc,
    secret_to_doc,
)

_LOCK_ATTEMPTS = 16


class MongoOrderStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._orders = db["orders"]
        self._secrets = db["secrets"]
        self._containers = db["containers"]
        self._settings = db["project_settings"]
        self._claims = RevisionClaims(db["order_revisions"])
        self._envelope_collections = (
            EnvelopeCollection(EnvelopeKind.ORDER, self._orders, "encrypted_params", self._claims),
            EnvelopeCollection(EnvelopeKind.SECRET, self._secrets, "encrypted_payload", self._claims, revisioned=False),
        )

    async def ensure_schema(self) -> None:
        await guard(
            self._orders.create_index(
                [("project_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)], name="orders_recent"
            )
        )
        await guard(
            self._orders.create_index([("status", ASCENDING), ("create_time", ASCENDING)], name="orders_pending")
        )
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    # -- orders -------------------------------------------------------------------------------------

    async def insert_order(self, order: Order) -> None:
        try:
            await guard(self._orders.insert_one(order_to_doc(order)))
        except DuplicateKeyError:
            raise ConflictError("an order with this id exists already") from None

    async def get_order(self, project_id: str, order_id: str) -> Order | None:
        doc = await guard(self._orders.find_one({"_id": order_id, "project_id": project_id}))
        return None if doc is None else order_from_doc(doc)

    async def list_orders(self, project_id: str, offset: int, limit: int) -> Page[Order]:
        q = {"project_id": project_id}
        total = await guard(self._orders.count_documents(q))
        cursor = self._orders.find(q).sort([("create_time", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(limit)
        docs = await guard(cursor.to_list(length=limit))
        return Page(items=tuple(order_from_doc(d) for d in docs), total=total)

    async def replace_order(self, order: Order, *, expected_revision: int) -> Order:
        stored = dc_replace(order, revision=expected_revision + 1)
        missing = OrderNotFoundError("the order does not exist")
        await replace_claimed(self._orders, self._claims, order_to_doc(stored), expected_revision, missing)
        return stored

    async def delete_order(self, project_id: str, order_id: str) -> bool:
        result = await guard(self._orders.delete_one({"_id": order_id, "project_id": project_id}))
        if result.deleted_count:
            await self._claims.forget(order_id)
        return bool(result.deleted_count)

    async def claimable_orders(self, now: datetime, limit: int) -> list[Order]:
        q = {"status": "PENDING", "$or": [{"claim_until": None}, {"claim_until": {"$lt": now}}]}
        cursor = self._orders.find(q).sort([("create_time", ASCENDING)]).limit(limit)
        return [order_from_doc(d) for d in await guard(cursor.to_list(length=limit))]

    # -- secrets and containers -----------------------------------------------------------------------

    async def _put(self, coll: Any, doc: dict[str, Any]) -> None:
        await guard(coll.replace_one({"_id": doc["_id"]}, doc, upsert=True))

    async def _get(self, coll: Any, project_id: str, record_id: str) -> dict[str, Any] | None:
        return await guard(coll.find_one({"_id": record_id, "project_id": project_id}))

    async def _delete(self, coll: Any, project_id: str, record_id: str) -> bool:
        result = await guard(coll.delete_one({"_id": record_id, "project_id": project_id}))
        return bool(result.deleted_count)

    async def put_secret(self, secret: Secret) -> None:
        # The lock a rewrap takes too: otherwise FerretDB could write a rewrap's stale copy over this one.
        for n in range(_LOCK_ATTEMPTS):
            try:
                await self._claims.lock(secret.id)
                break
            except ConflictError:
                await asyncio.sleep(random.uniform(0, 0.002 * (n + 1)))  # noqa: S311 - jitter, not secrets
        else:
            raise ConflictError("the secret is being changed concurrently; retry")
        try:
            await self._put(self._secrets, secret_to_doc(secret))
        finally:
            await self._claims.unlock(secret.id)

    async def get_secret(self, project_id: str, secret_id: str) -> Secret | None:
        doc = await self._get(self._secrets, project_id, secret_id)
        return None if doc is None else secret_from_doc(doc)

    async def delete_secret(self, project_id: str, secret_id: str) -> bool:
        return await self._delete(self._secrets, project_id, secret_id)

    async def put_container(self, container: Container) -> None:
        await self._put(self._containers, container_to_doc(container))

    async def get_container(self, project_id: str, container_id: str) -> Container | None:
        doc = await self._get(self._containers, project_id, container_id)
        return None if doc is None else container_from_doc(doc)

    async def delete_container(self, project_id: str, container_id: str) -> bool:
        return await self._delete(self._containers, project_id, container_id)

    # -- preferred CA -----------------------------------------------------------------------------

    async def set_preferred_ca(self, project_id: str, ca_id: str) -> None:
        await self._put(self._settings, {"_id": project_id, "preferred_ca_id": ca_id})

    async def preferred_ca(self, project_id: str) -> str | None:
        doc = await guard(self._settings.find_one({"_id": project_id}))
        return None if doc is None else doc.get("preferred_ca_id")
