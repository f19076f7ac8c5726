"""The CA registry as the Notary dialect uses it: a CA is self-signed (a root) or an intermediate that waits
for a signature (from another CA of the project, or an uploaded chain). Same CAs, same rules as the CCM
dialect (AuthorityService); this module holds the Notary defaults and the translation of its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import (
    DEFAULT_PENDING_DAYS,
    ActivateDraft,
    AuthorityDraft,
    AuthorityService,
    CrlConfigRequest,
)
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import require
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, add_months
from gatewaycerts.domain.errors import AuthorityNotFoundError, CertificateParseError, InvalidInputError
from gatewaycerts.domain.models import Action, Principal
from gatewaycerts.domain.pca import Authority, CaStatus, CaType, DistinguishedName, KeyAlgorithm, PcaQuery
from gatewaycerts.pki.pem import split_blocks

DEFAULT_KEY_ALGORITHM = KeyAlgorithm.RSA4096  # Notary's own CAs are RSA-4096
DEFAULT_VALIDITY_YEARS = 10  # Notary's default for a self-signed CA
MAX_LISTED = 1000


@dataclass(frozen=True, slots=True)
class NotaryCaDraft:
    self_signed: bool
    common_name: str | None
    sans_dns: str | None = None
    country_name: str | None = None
    state_or_province_name: str | None = None
    locality_name: str | None = None
    organization_name: str | None = None
    organizational_unit_name: str | None = None
    not_valid_after: str | None = None  # RFC 3339
    key_algorithm: str | None = None


def parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{field} must be an RFC 3339 time such as 2035-01-01T00:00:00Z", field=field) from None
    if moment.tzinfo is None:
        raise InvalidInputError(f"{field} must carry a time zone (Z or +hh:mm)", field=field)
    return moment.astimezone(UTC)


def _blank(value: str | None) -> str | None:
    return value if value else None


class NotaryAuthorityService:
    def __init__(
        self, authorities: AuthorityService, *, clock: Clock = system_clock, audit: AuditLog | None = None
    ) -> None:
        """Every change goes through `authorities`, which records it; `audit` names it as Notary's operation."""
        self._authorities = authorities
        self._clock = clock
        self._audit = audit or AuditLog(None)

    async def load_visible(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        """A CA scheduled for deletion no longer exists for Notary clients (the CCM API can restore it)."""
        ca = await self._authorities.get(principal, project_id, ca_id)
        if ca.status is CaStatus.DELETED:
            raise AuthorityNotFoundError("the certificate authority does not exist")
        return ca

    async def list(self, principal: Principal, project_id: str) -> list[Authority]:
        page = await self._authorities.list(principal, project_id, PcaQuery(), 0, MAX_LISTED)
        return [ca for ca in page.items if ca.status is not CaStatus.DELETED]

    async def create(self, principal: Principal, project_id: str, draft: NotaryCaDraft) -> Authority:
        authorize(principal, project_id, Action.MANAGE_CA)
        if draft.sans_dns:
            raise InvalidInputError(
                "sans_dns is not supported: CA certificates here carry no subject alternative names; leave it empty",
                field="sans_dns",
            )
        if draft.not_valid_after and not draft.self_signed:
            raise InvalidInputError(
                "not_valid_after applies to self-signed CAs; an intermediate CA's validity is set when it is "
                "signed (POST .../certificate_authorities/{id}/sign)",
                field="not_valid_after",
            )
        validity = (
            ValidityRequest(None, None, not_after=parse_time(draft.not_valid_after, "not_valid_after"))
            if draft.not_valid_after
            else ValidityRequest("YEAR", DEFAULT_VALIDITY_YEARS)
        )
        name = DistinguishedName(
            common_name=require(draft.common_name, "common_name"),
            country=_blank(draft.country_name),
            state=_blank(draft.state_or_province_name),
            locality=_blank(draft.locality_name),
            organization=_blank(draft.organization_name),
            organizational_unit=_blank(draft.organizational_unit_name),
        )
        with self._audit.renamed("notary.authority.create"):
            return await self._authorities.create(
                principal,
                project_id,
                AuthorityDraft(
                    type=(CaType.ROOT if draft.self_signed else CaType.SUBORDINATE).value,
                    distinguished_name=name,
                    key_algorithm=draft.key_algorithm or DEFAULT_KEY_ALGORITHM.value,
                    signature_algorithm=None,
                    validity=validity if draft.self_signed else None,
                    # Notary CAs always publish a CRL: revoking a request's certificate must reach relying parties.
                    crl_configuration=CrlConfigRequest(enabled=True),
                ),
            )

    async def set_enabled(self, principal: Principal, project_id: str, ca_id: str, enabled: bool | None) -> None:
        if enabled is None:
            require(None, "enabled")
        await self.load_visible(principal, project_id, ca_id)
        if enabled:
            with self._audit.renamed("notary.authority.enable"):
                await self._authorities.enable(principal, project_id, ca_id)
        else:
            with self._audit.renamed("notary.authority.disable"):
                await self._authorities.disable(principal, project_id, ca_id)

    async def delete(self, principal: Principal, project_id: str, ca_id: str) -> None:
        await self.load_visible(principal, project_id, ca_id)
        with self._audit.renamed("notary.authority.delete"):
            await self._authorities.schedule_delete(principal, project_id, ca_id, DEFAULT_PENDING_DAYS)

    async def sign(
        self, principal: Principal, project_id: str, ca_id: str, issuer_id: str | None, not_valid_after: str | None
    ) -> Authority:
        """Sign a pending intermediate CA with another CA of the project; by default it lives as long as its
        issuer (at most the 20 years any subordinate CA may)."""
        await self.load_visible(principal, project_id, ca_id)
        parent_id = require(issuer_id, "certificate_authority_id")
        if not_valid_after:
            end = parse_time(not_valid_after, "not_valid_after")
        else:
            parent = await self._authorities.load(project_id, parent_id, field="certificate_authority_id")
            longest = add_months(self._clock(), 12 * SUBORDINATE_CAP_YEARS)
            end = min(parent.not_after, longest) if parent.not_after else longest
        with self._audit.renamed("notary.authority.sign"):
            return await self._authorities.activate(
                principal,
                project_id,
                ca_id,
                ActivateDraft(
                    issuer_id=parent_id, signature_algorithm=None, validity=ValidityRequest(None, None, None, end)
                ),
            )

    async def upload_certificate(
        self, principal: Principal, project_id: str, ca_id: str, chain: str | None
    ) -> Authority:
        """A pending intermediate CA's certificate signed elsewhere: its certificate first, then its issuers."""
        text = require(chain, "certificate_chain")
        blocks = split_blocks(text, field="certificate_chain")
        if len(blocks) < 2:
            raise CertificateParseError(
                "certificate_chain must hold the CA's certificate followed by the certificates of its issuers",
                field="certificate_chain",
            )
        await self.load_visible(principal, project_id, ca_id)
        with self._audit.renamed("notary.authority.upload_certificate"):
            return await self._authorities.import_certificate(
                principal, project_id, ca_id, blocks[0].to_pem(), "".join(b.to_pem() for b in blocks[1:])
            )

    async def revoke(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        await self.load_visible(principal, project_id, ca_id)
        with self._audit.renamed("notary.authority.revoke"):
            return await self._authorities.revoke(principal, project_id, ca_id, None)

    async def crl_pem(self, ca_id: str) -> str:
        return (await self._authorities.public_crl(ca_id, pem=True)).decode()

    async def current_crl_pem(self, ca: Authority) -> str | None:
        return await self._authorities.current_crl_pem(ca)
