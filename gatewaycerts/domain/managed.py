"""Managed certificates: an APIC certificate whose chain and key the service obtains and renews itself.

The certificate record (domain.models.Certificate, same id) holds what gateways receive; the managed record
here holds what the renewal loop needs: the source and its settings, the names, the key algorithm, the
schedule (due_at), the claim of the replica renewing it now, and what the last attempt said.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from gatewaycerts.domain.models import CertificateScope


class RenewalState(enum.StrEnum):
    PENDING = "pending"  # created, never issued: no certificate record exists yet (first issuance is due)
    ACTIVE = "active"  # issued; the next renewal is scheduled at due_at
    FAILING = "failing"  # the last attempt failed; retried at due_at (exponential backoff)
    STOPPED = "stopped"  # the source said retrying cannot help (retryable=False); waits for the tenant
    # Shown, never stored: a replica holds a live claim on it right now.
    RENEWING = "renewing"


class WindowSource(enum.StrEnum):
    ARI = "ari"  # the CA's suggested renewal window (ACME Renewal Information)
    LIFETIME = "lifetime"  # a third of the lifetime left


@dataclass(frozen=True, slots=True)
class ManagedCertificate:
    id: str  # the APIC certificate id, before and after every renewal
    project_id: str
    name: str
    scope: CertificateScope
    instance_id: str
    domains: tuple[str, ...]
    source: str  # core.renewal.sources.SourceKind value (private_ca or acme)
    key_algorithm: str  # domain.pca.KeyAlgorithm value
    settings: dict[str, object]  # the source's settings (private_ca: ca_id, validity_days; acme: account_id, ...)
    state: RenewalState
    due_at: datetime | None  # when the loop takes it next; None while stopped
    create_time: datetime
    update_time: datetime
    window_source: WindowSource | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    claimed_by: str | None = None
    claim_until: datetime | None = None
    attempt_id: str | None = None  # the attempt of the current (or last) claim
    installed_attempt: str | None = None  # the attempt whose chain the certificate record is known to hold
    revision: int = 1
    renewals: int = 0  # successful issuances (the first one included)

    def shown_state(self, now: datetime) -> RenewalState:
        if self.claim_until is not None and self.claim_until > now:
            return RenewalState.RENEWING
        return self.state


@dataclass(frozen=True, slots=True)
class ChainRevision:
    """A chain the certificate held at one of its record revisions (public material only: never a key)."""

    project_id: str
    certificate_id: str
    revision: int
    chain_pem: str
    fingerprint_sha256: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    recorded_at: datetime
    extra: dict[str, object] = field(default_factory=dict)
