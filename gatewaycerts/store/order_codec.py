"""The one mapping between orders, secrets, containers and stored documents."""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain.orders import Container, ContainerType, Order, OrderStatus, OrderType, Secret, SecretType
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.codec import utc


def order_to_doc(o: Order) -> dict[str, Any]:
    return {
        "_id": o.id,
        "project_id": o.project_id,
        "type": o.type.value,
        "meta": dict(o.meta),
        "status": o.status.value,
        "creator_id": o.creator_id,
        "create_time": o.create_time,
        "update_time": o.update_time,
        "sub_status": o.sub_status,
        "sub_status_message": o.sub_status_message,
        "secret_id": o.secret_id,
        "container_id": o.container_id,
        "error_status_code": o.error_status_code,
        "error_reason": o.error_reason,
        "encrypted_params": o.encrypted_params,
        "kek_id": envelope_kek_id(o.encrypted_params),
        "attempts": o.attempts,
        "claimed_by": o.claimed_by,
        "claim_until": o.claim_until,
        "revision": o.revision,
    }


def order_from_doc(d: dict[str, Any]) -> Order:
    params = d.get("encrypted_params")
    return Order(
        id=d["_id"],
        project_id=d["project_id"],
        type=OrderType(d["type"]),
        meta=d.get("meta") or {},
        status=OrderStatus(d["status"]),
        creator_id=d.get("creator_id") or "",
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        update_time=utc(d["update_time"]),  # type: ignore[arg-type]
        sub_status=d.get("sub_status") or "Unknown",
        sub_status_message=d.get("sub_status_message") or "Unknown",
        secret_id=d.get("secret_id"),
        container_id=d.get("container_id"),
        error_status_code=d.get("error_status_code"),
        error_reason=d.get("error_reason"),
        encrypted_params=None if params is None else bytes(params),
        attempts=int(d.get("attempts", 0)),
        claimed_by=d.get("claimed_by"),
        claim_until=utc(d.get("claim_until")),
        revision=int(d.get("revision", 0)),
    )


def secret_to_doc(s: Secret) -> dict[str, Any]:
    return {
        "_id": s.id,
        "project_id": s.project_id,
        "name": s.name,
        "secret_type": s.secret_type.value,
        "content_type": s.content_type,
        "encrypted_payload": s.encrypted_payload,
        "kek_id": envelope_kek_id(s.encrypted_payload),
        "creator_id": s.creator_id,
        "create_time": s.create_time,
        "algorithm": s.algorithm,
        "bit_length": s.bit_length,
        "mode": s.mode,
        "expiration": s.expiration,
    }


def secret_from_doc(d: dict[str, Any]) -> Secret:
    return Secret(
        id=d["_id"],
        project_id=d["project_id"],
        name=d.get("name"),
        secret_type=SecretType(d["secret_type"]),
        content_type=d["content_type"],
        encrypted_payload=bytes(d["encrypted_payload"]),
        creator_id=d.get("creator_id") or "",
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        algorithm=d.get("algorithm"),
        bit_length=d.get("bit_length"),
        mode=d.get("mode"),
        expiration=utc(d.get("expiration")),
    )


def container_to_doc(c: Container) -> dict[str, Any]:
    return {
        "_id": c.id,
        "project_id": c.project_id,
        "name": c.name,
        "type": c.type.value,
        "creator_id": c.creator_id,
        "create_time": c.create_time,
        "secret_refs": [{"name": n, "secret_id": i} for n, i in c.secret_refs],
    }


def container_from_doc(d: dict[str, Any]) -> Container:
    return Container(
        id=d["_id"],
        project_id=d["project_id"],
        name=d.get("name"),
        type=ContainerType(d["type"]),
        creator_id=d.get("creator_id") or "",
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        secret_refs=tuple((r["name"], r["secret_id"]) for r in d.get("secret_refs", ())),
    )
