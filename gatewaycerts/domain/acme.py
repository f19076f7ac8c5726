"""The ACME server's records (RFC 8555): policy, EAB keys, accounts, orders, authorizations, challenges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gatewaycerts.domain.errors import InvalidInputError, NotFoundError

# Object states (RFC 8555 7.1.6).
PENDING, READY, PROCESSING, VALID, INVALID = "pending", "ready", "processing", "valid", "invalid"
DEACTIVATED, REVOKED, EXPIRED = "deactivated", "revoked", "expired"

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")


class AcmeProblem(Exception):
    """An RFC 8555 error: `type` is the name after urn:ietf:params:acme:error:, `status` the HTTP status."""

    def __init__(self, type: str, detail: str, status: int = 400, **extra: Any) -> None:
        super().__init__(detail)
        self.type = type
        self.detail = detail
        self.status = status
        self.extra = extra


@dataclass(frozen=True, slots=True)
class AcmePolicy:
    ca_id: str
    project_id: str
    enabled: bool = False
    eab_required: bool = True
    allowed_domains: tuple[str, ...] = ()  # DNS suffixes; empty: none allowed
    allow_wildcards: bool = False
    allow_ip: bool = False
    challenge_types: tuple[str, ...] = ("http-01", "dns-01", "tls-alpn-01")
    max_validity_days: int = 90
    update_time: datetime | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class EabKey:
    kid: str
    ca_id: str
    project_id: str
    encrypted_hmac_key: bytes  # KeyVault envelope (the server verifies the HMAC, so it needs the key)
    create_time: datetime
    expires: datetime
    status: str = "active"  # active, used, revoked
    account_id: str | None = None
    used_time: datetime | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    ca_id: str
    project_id: str
    jwk: dict[str, Any]  # the public key, as the client sent it (public members only)
    thumbprint: str  # RFC 7638, base64url
    status: str
    contact: tuple[str, ...]
    create_time: datetime
    eab_kid: str | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Identifier:
    type: str  # dns, ip
    value: str


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    type: str
    token: str
    status: str = PENDING
    validated: datetime | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    ca_id: str
    project_id: str
    account_id: str
    order_id: str
    identifier: Identifier
    wildcard: bool
    status: str
    expires: datetime
    challenges: tuple[Challenge, ...]
    create_time: datetime
    claim_until: datetime | None = None  # a validation worker holds it until then
    revision: int = 0


@dataclass(frozen=True, slots=True)
class AcmeOrder:
    id: str
    ca_id: str
    project_id: str
    account_id: str
    status: str
    identifiers: tuple[Identifier, ...]
    authorization_ids: tuple[str, ...]
    expires: datetime
    create_time: datetime
    not_after_days: int
    error: dict[str, Any] | None = None
    # The PrivateCertificate issued for it: chosen when finalize starts (status processing), so a finalizer
    # that resumes a crashed one stores at most this one certificate; shown to clients once the order is valid.
    certificate_id: str | None = None
    replaces: str | None = None  # ARI certID
    csr_pem: str | None = None  # the finalize CSR (public), kept while the order is processing
    claim_until: datetime | None = None  # a finalizer holds the processing order until then
    revision: int = 0


@dataclass(frozen=True, slots=True)
class AcmeCertificate:
    """What the ACME server remembers of a certificate it issued: found by (CA, serial) for revokeCert
    and ARI."""

    ca_id: str
    serial_number: str  # decimal
    certificate_id: str
    account_id: str
    order_id: str
    not_before: datetime
    not_after: datetime
    replaced_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class EabKeyNotFoundError(NotFoundError):
    """No EAB key with this kid on this CA."""


class AcmePolicyError(InvalidInputError):
    """An ACME policy (or EAB key request) the CA cannot take."""
