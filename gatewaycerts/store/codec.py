"""The one mapping between Certificate objects and stored documents, shared by both adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from gatewaycerts.domain.models import (
    AlgorithmType,
    Certificate,
    CertificateFilter,
    CertificateInfo,
    CertificateScope,
    DomainBinding,
)
from gatewaycerts.keyvault import envelope_kek_id

# Fields not needed to present a list item; adapters leave them out of list queries.
HEAVY_FIELDS = ("chain_pem", "private_key", "trusted_root_ca_pem", "bindings")

_INFO_LISTS = (
    "san",
    "dns_names",
    "ip_addresses",
    "organization",
    "organizational_unit",
    "locality",
    "state",
    "country",
    "issuer",
)


@overload
def utc(value: datetime) -> datetime: ...


@overload
def utc(value: None) -> None: ...


def utc(value: datetime | None) -> datetime | None:
    """Drivers may hand back naive datetimes (stored as UTC): make them aware."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def binding_to_doc(b: DomainBinding) -> dict[str, Any]:
    return {
        "id": b.id,
        "url_domain": b.url_domain,
        "instance_ids": list(b.instance_ids),
        "verified_client_certificate_enabled": b.verified_client_certificate_enabled,
        "create_time": b.create_time,
        "status": b.status,
        "min_ssl_version": b.min_ssl_version,
        "is_http_redirect_to_https": b.is_http_redirect_to_https,
    }


def binding_from_doc(d: dict[str, Any]) -> DomainBinding:
    return DomainBinding(
        id=d["id"],
        url_domain=d["url_domain"],
        instance_ids=tuple(d.get("instance_ids", ())),
        verified_client_certificate_enabled=bool(d["verified_client_certificate_enabled"]),
        create_time=utc(d["create_time"]),
        status=int(d.get("status", 3)),
        min_ssl_version=d.get("min_ssl_version", "TLSv1.2"),
        is_http_redirect_to_https=bool(d.get("is_http_redirect_to_https", False)),
    )


def certificate_to_doc(c: Certificate) -> dict[str, Any]:
    i = c.info
    doc: dict[str, Any] = {
        "_id": c.id,
        "project_id": c.project_id,
        "name": c.name,
        "type": c.scope.value,
        "instance_id": c.instance_id,
        "common_name": i.common_name,
        "serial_number": i.serial_number,
        "x509_version": i.version,
        "not_before": i.not_before,
        "not_after": i.not_after,
        "signature_algorithm": i.signature_algorithm,
        "algorithm_type": i.algorithm_type.value,
        "key_size": i.key_size,
        "fingerprint_sha256": i.fingerprint_sha256,
        "chain_pem": c.chain_pem,
        "private_key": c.encrypted_private_key,
        "kek_id": envelope_kek_id(c.encrypted_private_key),
        "trusted_root_ca_pem": c.trusted_root_ca_pem,
        "has_trusted_root_ca": c.has_trusted_root_ca,
        "create_time": c.create_time,
        "update_time": c.update_time,
        "revision": c.revision,
        "binding_count": len(c.bindings),
        "bindings": [binding_to_doc(b) for b in c.bindings],
        "source": c.source,
        "renewal_attempt": c.renewal_attempt,
    }
    for name in _INFO_LISTS:
        doc[name] = list(getattr(i, name))
    return doc


def certificate_from_doc(d: dict[str, Any]) -> Certificate:
    info = CertificateInfo(
        common_name=d["common_name"],
        serial_number=d["serial_number"],
        version=int(d["x509_version"]),
        not_before=utc(d["not_before"]),
        not_after=utc(d["not_after"]),
        signature_algorithm=d["signature_algorithm"],
        algorithm_type=AlgorithmType(d["algorithm_type"]),
        key_size=int(d["key_size"]),
        fingerprint_sha256=d["fingerprint_sha256"],
        **{name: tuple(d.get(name) or ()) for name in _INFO_LISTS},
    )
    return Certificate(
        id=d["_id"],
        project_id=d["project_id"],
        name=d["name"],
        scope=CertificateScope(d["type"]),
        instance_id=d["instance_id"],
        info=info,
        chain_pem=d.get("chain_pem") or "",
        encrypted_private_key=bytes(d.get("private_key") or b""),
        trusted_root_ca_pem=d.get("trusted_root_ca_pem"),
        has_trusted_root_ca=bool(d["has_trusted_root_ca"]),
        create_time=utc(d["create_time"]),
        update_time=utc(d["update_time"]),
        revision=int(d["revision"]),
        bindings=tuple(binding_from_doc(b) for b in d.get("bindings") or ()),
        source=d.get("source") or "upload",
        renewal_attempt=d.get("renewal_attempt"),
    )


def fold_name(name: str) -> str:
    """The form names are compared in by the name filter (case-insensitive, Unicode lower case)."""
    return name.lower()


def name_grams(name: str) -> list[str]:
    """The distinct three-character pieces of a folded name: a substring of three or more characters can only
    occur in names that hold every one of its pieces, so the rarest piece bounds the candidates."""
    return sorted({name[i : i + 3] for i in range(len(name) - 2)})


def exact_filters(flt: CertificateFilter) -> dict[str, str]:
    """The stored fields a list filter compares for equality (the name filter is a substring match)."""
    candidates = {
        "common_name": flt.common_name,
        "signature_algorithm": flt.signature_algorithm,
        "type": flt.scope.value if flt.scope else None,
        "instance_id": flt.instance_id,
        "algorithm_type": flt.algorithm_type.value if flt.algorithm_type else None,
    }
    return {field: value for field, value in candidates.items() if value is not None}
