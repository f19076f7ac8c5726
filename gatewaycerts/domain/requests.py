"""Vocabulary of the certificate request (CSR) review lifecycle: statuses and the request record."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gatewaycerts.domain.pca import RevocationReason


class RequestStatus(enum.StrEnum):
    """Notary's spelling. Outstanding -> Active (signed here or chain uploaded) | Rejected; Active -> Revoked."""

    OUTSTANDING = "Outstanding"
    ACTIVE = "Active"
    REJECTED = "Rejected"
    REVOKED = "Revoked"


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """One submitted CSR and, once fulfilled, its certificate chain.

    The record is the single source of truth for a certificate signed here: its serial, expiry and
    revocation live in it, and the CA's CRL lists it from here (also after the request is deleted).
    """

    id: str
    project_id: str
    csr_pem: str  # normalised (re-encoded from the DER that was checked)
    csr_fingerprint: str  # SHA-256 of the CSR's DER: two outstanding requests may not share it
    common_name: str  # the CSR subject's CN ("" when it has none)
    status: RequestStatus
    requested_by: str  # subject of the token that submitted it
    create_time: datetime
    update_time: datetime
    certificate_chain_pem: str = ""  # leaf first, then its issuers
    issuer_id: str | None = None  # the CA of this service that signed it; None for a chain signed elsewhere
    serial_number: str | None = None  # the leaf's, decimal
    not_after: datetime | None = None  # the leaf's
    signing_until: datetime | None = None  # a sign call holds the request until then (see core.requests)
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    delete_time: datetime | None = None  # deleted: hidden from reads; a revoked serial stays on the CRL
    revision: int = 0

    @property
    def signed_here(self) -> bool:
        return self.issuer_id is not None and self.status in (RequestStatus.ACTIVE, RequestStatus.REVOKED)
