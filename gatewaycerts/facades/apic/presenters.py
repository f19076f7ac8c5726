"""Domain objects -> APIC JSON (CertBase, CertDetail, UrlDomainRefInfo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gatewaycerts.domain.models import Certificate, DomainBinding


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


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
