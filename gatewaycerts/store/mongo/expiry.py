"""Counting certificates by expiry per project, for the expiry gauges; shared by both Mongo stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from gatewaycerts.store.mongo.claims import guard


async def count_expiring(
    coll: AsyncCollection, match: dict[str, Any], boundaries: Sequence[datetime]
) -> dict[str, tuple[int, ...]]:
    """Per project, the documents matching `match` whose not_after lies before each boundary.

    One `$match` + `$group`/`$sum` per boundary (FerretDB v1 has no `$cond` accumulators), each served by
    the collection's not_after index.
    """
    counts: dict[str, list[int]] = {}
    for i, boundary in enumerate(boundaries):
        pipeline = [
            {"$match": {**match, "not_after": {"$lt": boundary}}},
            {"$group": {"_id": "$project_id", "n": {"$sum": 1}}},
        ]
        cursor = await guard(coll.aggregate(pipeline))
        for row in await guard(cursor.to_list()):
            counts.setdefault(row["_id"], [0] * len(boundaries))[i] = int(row["n"])
    return {project: tuple(n) for project, n in counts.items()}
