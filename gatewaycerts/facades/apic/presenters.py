"""Domain objects -> APIC JSON (CertBase, CertDetail, UrlDomainRefInfo)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from gatewaycerts.domain.models import Certificate, DomainBinding

# Shown records whose JSON body is kept (bounded; the body ~0.7 KB, its record is the store's).
DETAIL_BODIES_KEPT = 1024


_ISO = "%Y-%m-%dT%H:%M:%SZ"


@lru_cache(maxsize=4096)
def _iso_utc(value: datetime) -> str:
    return value.strftime(_ISO)


def iso(value: datetime) -> str:
    # A record's dates repeat on every read of it (create/update time, validity): one strftime each. Only UTC
    # values are memoized: an aware datetime of another zone equals its UTC instant but prints another time.
    return _iso_utc(value) if value.tzinfo is UTC else value.strftime(_ISO)


def cert_base(c: Certificate) -> dict[str, Any]:
    i = c.info
    return {
        "id": c.id,
        "name": c.name,
        "type": c.scope.value,
        "instance_id": c.instance_id,
        "project_id": c.project_id,
        "common_name": i.common_name,
        "san": list(i.san),
        "not_after": iso(i.not_after),
        "signature_algorithm": i.signature_algorithm,
        "create_time": iso(c.create_time),
        "update_time": iso(c.update_time),
        "algorithm_type": i.algorithm_type.value,
        "is_has_trusted_root_ca": c.has_trusted_root_ca,
    }


def cert_detail(c: Certificate) -> dict[str, Any]:
    i = c.info
    return {
        **cert_base(c),
        "version": i.version,
        "organization": list(i.organization),
        "organizational_unit": list(i.organizational_unit),
        "locality": list(i.locality),
        "state": list(i.state),
        "country": list(i.country),
        "not_before": iso(i.not_before),
        "serial_number": i.serial_number,
        "issuer": list(i.issuer),
    }


def bound_domain(c: Certificate, b: DomainBinding) -> dict[str, Any]:
    return {
        "url_domain": b.url_domain,
        "id": b.id,
        "status": b.status,
        "min_ssl_version": b.min_ssl_version,
        "is_http_redirect_to_https": b.is_http_redirect_to_https,
        "verified_client_certificate_enabled": b.verified_client_certificate_enabled,
        "ssl_id": c.id,
        "ssl_name": c.name,
        "api_group_id": "",
        "api_group_name": "",
        "instance_id": b.instance_ids[0] if b.instance_ids else c.instance_id,
    }


class DetailBodies:
    """The JSON body of cert_detail(c), remembered for the very object c (not for an equal one).

    The body is a pure function of the record, and a Certificate is immutable, so the body of one object
    never changes; the entry holds the object itself, so its id() cannot be reused while the entry is kept.
    This pays when the store hands back the same object for an unchanged row (the SQLite store does: its
    summaries are decoded once per distinct stored text), and costs one dict read when it does not. Only
    summaries are kept: a record that carries its chain or key envelope is presented without being kept."""

    __slots__ = ("_items", "_kept")

    def __init__(self, kept: int = DETAIL_BODIES_KEPT) -> None:
        self._kept = kept
        self._items: dict[int, tuple[Certificate, bytes]] = {}

    def __call__(self, c: Certificate) -> bytes:
        entry = self._items.get(id(c))
        if entry is not None and entry[0] is c:
            return entry[1]
        body = orjson.dumps(cert_detail(c))
        if not (c.chain_pem or c.encrypted_private_key or c.bindings or c.trusted_root_ca_pem):
            while len(self._items) >= self._kept:
                del self._items[next(iter(self._items))]
            # orjson's bytes keep their whole write buffer (8 KB for a 0.6 KB body): keep an exact copy.
            body = bytes(memoryview(body))
            self._items[id(c)] = (c, body)
        return body

    def __len__(self) -> int:
        return len(self._items)
