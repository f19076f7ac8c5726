"""Domain objects -> Notary JSON (CertificateRequest, CertificateAuthority); times are RFC 3339 UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gatewaycerts.domain.pca import Authority, CaStatus
from gatewaycerts.domain.requests import CertificateRequest


def rfc3339(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_request(req: CertificateRequest) -> dict[str, Any]:
    """Notary's fields (id, csr, certificate_chain, status) and what a reviewer needs besides."""
    return {
        "id": req.id,
        "csr": req.csr_pem,
        "certificate_chain": req.certificate_chain_pem,
        "status": req.status.value,
        "common_name": req.common_name,
        "certificate_authority_id": req.issuer_id,
        "serial_number": req.serial_number,
        "not_valid_after": rfc3339(req.not_after),
        "requested_by": req.requested_by,
        "created_at": rfc3339(req.create_time),
        "updated_at": rfc3339(req.update_time),
    }


def certificate_authority(ca: Authority, status: CaStatus, crl_pem: str | None) -> dict[str, Any]:
    """Notary's fields (id, enabled, certificate = the CA's chain, csr, crl; never the key) and ours."""
    return {
        "id": ca.id,
        "enabled": status is CaStatus.ACTIVED,
        "status": "active" if status is CaStatus.ACTIVED else status.value.lower(),
        "common_name": ca.distinguished_name.common_name,
        "certificate": (ca.certificate_pem or "") + ca.chain_pem if ca.certificate_pem else "",
        "csr": ca.csr_pem or "",
        "crl": crl_pem or "",
        "issuer_id": ca.issuer_id,
        "key_algorithm": ca.key_algorithm.value,
        "not_valid_after": rfc3339(ca.not_after),
    }


def success(**extra: Any) -> dict[str, Any]:
    return {"result": {"message": "success", **extra}}
