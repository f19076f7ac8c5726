"""Domain objects -> Barbican v1 JSON. Field sets are exactly what python-barbicanclient's models take
(an unknown top-level order field would break its constructors); times are naive-UTC ISO 8601."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gatewaycerts.domain.orders import Container, Order, OrderStatus, OrderType, Secret
from gatewaycerts.domain.pca import Authority, CaStatus

KEY_META = ("name", "algorithm", "bit_length", "expiration", "mode", "payload_content_type")


def ts(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S")


def ref(base: str, entity: str, record_id: str) -> str:
    return f"{base}/v1/{entity}/{record_id}"


def order(o: Order, base: str) -> dict[str, Any]:
    meta = dict(o.meta)
    if o.type is not OrderType.CERTIFICATE:
        meta = {k: meta.get(k) for k in KEY_META}
    body: dict[str, Any] = {
        "type": o.type.value,
        "status": o.status.value,
        "created": ts(o.create_time),
        "updated": ts(o.update_time),
        "creator_id": o.creator_id,
        "meta": meta,
        "order_ref": ref(base, "orders", o.id),
        "sub_status": o.sub_status,
        "sub_status_message": o.sub_status_message,
    }
    if o.secret_id:
        body["secret_ref"] = ref(base, "secrets", o.secret_id)
    if o.container_id:
        body["container_ref"] = ref(base, "containers", o.container_id)
    if o.status is OrderStatus.ERROR:
        body["error_status_code"] = o.error_status_code
        body["error_reason"] = o.error_reason
    return body


def secret(s: Secret, base: str) -> dict[str, Any]:
    return {
        "status": "ACTIVE",
        "created": ts(s.create_time),
        "updated": ts(s.create_time),
        "expiration": ts(s.expiration),
        "algorithm": s.algorithm,
        "bit_length": s.bit_length,
        "mode": s.mode,
        "name": s.name,
        "secret_ref": ref(base, "secrets", s.id),
        "secret_type": s.secret_type.value,
        "content_types": {"default": s.content_type},
        "creator_id": s.creator_id,
    }


def container(c: Container, base: str) -> dict[str, Any]:
    return {
        "status": "ACTIVE",
        "created": ts(c.create_time),
        "updated": ts(c.create_time),
        "name": c.name,
        "type": c.type.value,
        "container_ref": ref(base, "containers", c.id),
        "secret_refs": [{"name": name, "secret_ref": ref(base, "secrets", i)} for name, i in c.secret_refs],
        "consumers": [],
        "creator_id": c.creator_id,
    }


def ca(a: Authority, status: CaStatus, base: str) -> dict[str, Any]:
    name = a.distinguished_name.common_name
    return {
        "ca_ref": ref(base, "cas", a.id),
        "ca_id": a.id,
        "meta": [{"name": name}, {"description": f"{a.type.value.lower()} CA {name} ({a.key_algorithm.value})"}],
        "expiration": ts(a.not_after),
        "plugin_name": "gatewaycerts",
        "plugin_ca_id": a.id,
        "status": "ACTIVE" if status is CaStatus.ACTIVED else status.value,
        "created": ts(a.create_time),
        "updated": ts(a.update_time),
        "creator_id": None,
    }


def page_links(base: str, entity: str, offset: int, limit: int, total: int) -> dict[str, str]:
    """Barbican's HATEOAS paging links: `next` while more follow, `previous` after the first page."""
    links = {}
    if offset + limit < total:
        links["next"] = f"{base}/v1/{entity}?limit={limit}&offset={offset + limit}"
    if offset > 0:
        links["previous"] = f"{base}/v1/{entity}?limit={limit}&offset={max(0, offset - limit)}"
    return links
