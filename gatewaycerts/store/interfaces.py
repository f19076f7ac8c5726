"""The store Protocols the core depends on; adapters take and return domain objects only."""

from __future__ import annotations

from typing import Protocol

from gatewaycerts.domain.models import Certificate, CertificateFilter, DeleteOutcome, Page


class CertificateStore(Protocol):
    async def ensure_schema(self) -> None:
        """Create tables/collections and indexes; idempotent."""

    async def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot serve requests."""

    async def close(self) -> None: ...

    async def insert(self, cert: Certificate) -> None:
        """Raise DuplicateNameError when (project, scope, instance, name) is taken."""

    async def get(self, project_id: str, cert_id: str) -> Certificate | None: ...

    async def list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> Page[Certificate]:
        """Newest first (create_time, then id, descending); items are summaries."""

    async def replace(self, cert: Certificate, *, expected_revision: int) -> Certificate:
        """Store `cert` with revision expected_revision + 1 if the stored revision is expected_revision.

        Raises ConflictError on a revision mismatch, CertificateNotFoundError when the record is gone,
        DuplicateNameError when the new name is taken.
        """

    async def delete_unbound(self, project_id: str, cert_id: str) -> DeleteOutcome:
        """Delete atomically, only while no domain is bound."""
