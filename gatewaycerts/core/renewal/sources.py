"""What the renewal loop asks of a certificate source (the project's private CA, or an ACME CA).

The loop generates the key (kept only as a KEK envelope), builds the CSR, asks the source for a chain, checks
the chain against the key, and replaces chain and key under the same certificate id. A source never sees the
private key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class SourceKind(enum.StrEnum):
    UPLOAD = "upload"
    PRIVATE_CA = "private_ca"
    ACME = "acme"


@dataclass(frozen=True, slots=True)
class IssueRequest:
    project_id: str
    certificate_id: str
    domains: tuple[str, ...]  # DNS names (a wildcard needs dns-01 with ACME)
    csr_der: bytes
    settings: dict[str, object]  # the source's own settings of this managed certificate (ca_id, account_id, ...)
    previous_chain_pem: str | None  # the chain being renewed (ACME sends ``replaces`` for it), None at first issue


@dataclass(frozen=True, slots=True)
class Issued:
    chain_pem: str  # leaf first, then intermediates


class IssueFailed(Exception):
    """``error`` is what the CA said (e.g. an ACME problem type and detail); ``retryable`` False stops the
    backoff until the tenant changes something (e.g. rejectedIdentifier), True retries with backoff."""

    def __init__(self, error: str, *, retryable: bool = True) -> None:
        super().__init__(error)
        self.error = error
        self.retryable = retryable


class CertificateSource(Protocol):
    kind: SourceKind

    async def issue(self, request: IssueRequest) -> Issued: ...

    async def renewal_window(
        self, project_id: str, settings: dict[str, object], chain_pem: str
    ) -> tuple[datetime, datetime] | None:
        """The CA's suggested renewal window (ACME ARI), or None to renew when a third of the lifetime remains."""
        ...
