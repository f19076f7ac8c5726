"""PrivateCaSource: managed certificates issued by one of the project's own CAs (no ACME).

Issuance goes through PrivateCertificateService.issue_from_csr, the path CCM's "issue from a CSR" takes:
the CA must be able to issue now (enabled, not expired or revoked), the validity must fit inside the CA's
and the TLS server profile (at most 825 days with serverAuth), the subject and names come from the CSR
the loop built, a serial is reserved under the CA, and the issued certificate is registered (listed under
the CA, revocable, audited) like any other.

Settings: {"ca_id": "<the CA's id>", "validity_days": 1..825 (default 90)}.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.core.issuance import CsrIssueDraft, PrivateCertificateService
from gatewaycerts.core.renewal.sources import Issued, IssueFailed, IssueRequest, SourceKind
from gatewaycerts.core.validity import ValidityRequest
from gatewaycerts.domain.errors import (
    DomainError,
    InvalidInputError,
    MissingParameterError,
    NotFoundError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import Principal, Role

DEFAULT_VALIDITY_DAYS = 90
MAX_VALIDITY_DAYS = 825  # the TLS server profile's limit (pki/profiles.py)
ACTOR = "renewal-loop"


def _principal(project_id: str) -> Principal:
    """The loop acts for the project with an editor's rights (issue from a CSR), nothing more."""
    return Principal(subject=ACTOR, projects=frozenset({project_id}), roles=frozenset({Role.EDITOR}))


class PrivateCaSource:
    kind = SourceKind.PRIVATE_CA

    def __init__(self, issuance: PrivateCertificateService) -> None:
        self._issuance = issuance

    async def check_settings(self, project_id: str, settings: dict[str, object]) -> dict[str, object]:
        """The settings to store, or an InvalidInputError naming the field (the CA must exist and issue now)."""
        unknown = sorted(set(settings) - {"ca_id", "validity_days"})
        if unknown:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:private_ca.{unknown[0]}. private_ca takes ca_id and "
                "validity_days",
                field=f"private_ca.{unknown[0]}",
            )
        ca_id = settings.get("ca_id")
        if not isinstance(ca_id, str) or not ca_id:
            raise MissingParameterError(
                "the parameter must be specified, parameterName:private_ca.ca_id", field="private_ca.ca_id"
            )
        days = settings.get("validity_days", DEFAULT_VALIDITY_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_VALIDITY_DAYS:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:private_ca.validity_days. Use a whole number of days from 1 "
                f"to {MAX_VALIDITY_DAYS} (the TLS server profile's limit)",
                field="private_ca.validity_days",
            )
        try:
            await self._issuance.issuer(project_id, ca_id, field="private_ca.ca_id")  # exists and can issue now
        except NotFoundError:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:private_ca.ca_id. The project has no such CA",
                field="private_ca.ca_id",
            ) from None
        return {"ca_id": ca_id, "validity_days": days}

    async def issue(self, request: IssueRequest) -> Issued:
        csr_pem = x509.load_der_x509_csr(request.csr_der).public_bytes(serialization.Encoding.PEM).decode()
        days = request.settings.get("validity_days", DEFAULT_VALIDITY_DAYS)
        draft = CsrIssueDraft(
            issuer_id=str(request.settings.get("ca_id") or ""),
            csr=csr_pem,
            validity=ValidityRequest(type="DAY", value=int(days) if isinstance(days, int) else DEFAULT_VALIDITY_DAYS),
        )
        try:
            issued = await self._issuance.issue_from_csr(_principal(request.project_id), request.project_id, draft)
        except StoreUnavailableError as exc:
            raise IssueFailed(f"the private CA's store is unavailable: {exc}", retryable=True) from None
        except NotFoundError as exc:
            raise IssueFailed(f"private CA: {exc}", retryable=False) from None
        except DomainError as exc:  # the CA cannot issue (disabled, expired), a validity beyond the CA's, ...
            raise IssueFailed(f"private CA: {exc}", retryable=False) from None
        return Issued(chain_pem=issued.certificate_pem + (issued.chain_pem or ""))

    async def renewal_window(
        self, project_id: str, settings: dict[str, object], chain_pem: str
    ) -> tuple[datetime, datetime] | None:
        return None  # the project's own CA has no ARI: a third of the lifetime left
