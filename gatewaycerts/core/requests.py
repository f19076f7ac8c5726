"""CertificateRequestService: the CSR review lifecycle (Notary style).

Outstanding -> Active (signed by one of the project's CAs, or a chain signed elsewhere attached) | Rejected;
Active -> Revoked (certificates signed here only: the serial goes onto the CA's CRL). Every transition is a
compare-and-swap on the request's revision. Signing first claims the request (`signing_until`, a lease), so
of several concurrent sign calls exactly one signs and the others are refused: one request, one certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import AuthorityService, is_uuid, new_uuid, parse_enum
from gatewaycerts.core.authz import authorize, authorize_owned
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, require, retry_on_conflict
from gatewaycerts.core.issuance import PrivateCertificateService, csr_extended_key_usage, csr_subject
from gatewaycerts.core.pagination import page_bounds
from gatewaycerts.core.revocation import CrlPublisher
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.errors import (
    AlreadyRevokedError,
    CertificateRequestNotFoundError,
    ConflictError,
    DomainError,
    InvalidInputError,
    InvalidStateError,
    RequestBusyError,
)
from gatewaycerts.domain.models import Action, Page, Principal
from gatewaycerts.domain.pca import Authority, DistinguishedName, RevocationReason
from gatewaycerts.domain.requests import CertificateRequest, RequestStatus
from gatewaycerts.pki.authority import CsrFacts, inspect_csr
from gatewaycerts.pki.request_chain import check_request_chain
from gatewaycerts.store.interfaces import PcaStore

SIGN_LEASE = timedelta(seconds=60)  # far above a signature's cost; a crashed signer blocks the request this long
DEFAULT_VALIDITY_DAYS = 365
DEFAULT_LIMIT = MAX_LIMIT = 1000


def _outstanding(req: CertificateRequest, now: datetime, verb: str) -> None:
    if req.signing_until is not None and req.signing_until > now:
        raise RequestBusyError("the request is being signed by another call; retry when it has finished")
    if req.status is not RequestStatus.OUTSTANDING:
        raise InvalidStateError(f"only an Outstanding request can be {verb}; this one is {req.status.value}")


class CertificateRequestService:
    def __init__(
        self,
        store: PcaStore,
        authorities: AuthorityService,
        issuance: PrivateCertificateService,
        crls: CrlPublisher,
        *,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_uuid,
        sign_lease: timedelta = SIGN_LEASE,
        on_issued: Callable[[str], None] | None = None,
        on_revoked: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self._authorities = authorities
        self._issuance = issuance
        self._crls = crls
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self._lease = sign_lease
        self._on_issued = on_issued or (lambda kind: None)
        self._on_revoked = on_revoked or (lambda kind: None)
        self._audit = audit or AuditLog(None)

    async def _audited(self, principal: Principal, verb: str, req: CertificateRequest, **details: object) -> None:
        await self._audit.record(
            principal,
            req.project_id,
            f"notary.request.{verb}",
            "certificate_request",
            req.id,
            object_name=req.common_name or None,
            status=req.status,
            **details,
        )

    # -- reads ------------------------------------------------------------------------------------

    async def _load(self, project_id: str, request_id: str) -> CertificateRequest:
        req = await self._store.get_request(project_id, request_id) if is_uuid(request_id) else None
        if req is None:
            shown = f", id:{request_id}" if is_uuid(request_id) else ""
            raise CertificateRequestNotFoundError(f"the certificate request does not exist{shown}")
        return req

    async def get(self, principal: Principal, project_id: str, request_id: str) -> CertificateRequest:
        authorize(principal, project_id, Action.READ)
        return await self._load(project_id, request_id)

    async def list(
        self, principal: Principal, project_id: str, status: str | None, offset: int | None, limit: int | None
    ) -> Page[CertificateRequest]:
        authorize(principal, project_id, Action.READ)
        if status:
            parse_enum(RequestStatus, status, "status")
        off, lim = page_bounds(offset, limit, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)
        return await self._store.list_requests(project_id, status or None, off, lim)

    # -- submit and delete (editors: their own requests) ---------------------------------------------

    async def _csr_facts(self, csr_pem: str) -> tuple[CsrFacts, DistinguishedName]:
        """A CSR signable here and the subject to certify: the key rules of every dialect, extended key usages
        that are issued here (if it asks for any), and names that can be certified (a CN, or subject alternative
        names alone)."""
        facts = await in_executor(self._executor, inspect_csr, csr_pem)
        csr_extended_key_usage(facts)
        return facts, csr_subject(facts, facts.sans, names_suffice=True)

    async def submit(self, principal: Principal, project_id: str, csr: str | None) -> CertificateRequest:
        authorize(principal, project_id, Action.WRITE)
        # Refuse now what no sign call could accept, rather than keep an Outstanding request that can never be signed.
        facts, _subject = await self._csr_facts(require(csr, "csr"))
        now = self._clock()
        req = CertificateRequest(
            id=self._new_id(),
            project_id=project_id,
            csr_pem=facts.pem,
            csr_fingerprint=facts.fingerprint,
            common_name=facts.subject.common_name if facts.subject else "",
            status=RequestStatus.OUTSTANDING,
            requested_by=principal.subject,
            create_time=now,
            update_time=now,
        )
        await self._store.insert_request(req)
        await self._audited(principal, "submit", req, csr_fingerprint=req.csr_fingerprint)
        return req

    async def _change(
        self, project_id: str, request_id: str, change: Callable[[CertificateRequest, datetime], CertificateRequest]
    ) -> CertificateRequest:
        async def attempt() -> CertificateRequest:
            req = await self._load(project_id, request_id)
            now = self._clock()
            updated = replace(change(req, now), update_time=now)
            return await self._store.replace_request(updated, expected_revision=req.revision)

        return await retry_on_conflict(attempt, "the certificate request")

    async def delete(self, principal: Principal, project_id: str, request_id: str) -> None:
        def change(req: CertificateRequest, now: datetime) -> CertificateRequest:
            authorize_owned(principal, project_id, req.requested_by, Action.WRITE, Action.REVIEW)
            if req.signing_until is not None and req.signing_until > now:
                raise RequestBusyError("the request is being signed by another call; retry when it has finished")
            if req.status is RequestStatus.ACTIVE and req.signed_here and req.not_after and req.not_after > now:
                raise InvalidStateError(
                    "the certificate signed for this request is still valid; revoke it before deleting the request "
                    "so relying parties stop trusting it"
                )
            # Kept hidden: a revoked serial stays on the CA's CRL.
            return replace(req, delete_time=now)

        authorize(principal, project_id, Action.WRITE)
        deleted = await self._change(project_id, request_id, change)
        await self._audited(principal, "delete", deleted, requested_by=deleted.requested_by)

    # -- review (admins) ------------------------------------------------------------------------------

    async def reject(self, principal: Principal, project_id: str, request_id: str) -> CertificateRequest:
        authorize(principal, project_id, Action.REVIEW)

        def change(req: CertificateRequest, now: datetime) -> CertificateRequest:
            _outstanding(req, now, "rejected")
            return replace(req, status=RequestStatus.REJECTED)

        rejected = await self._change(project_id, request_id, change)
        await self._audited(principal, "reject", rejected)
        return rejected

    def _validity(self, ca: Authority, days: int | None, now: datetime) -> tuple[datetime, datetime]:
        if days is None:
            # The default never outlives the CA; an explicit validity_days that does is refused instead.
            end = now + timedelta(days=DEFAULT_VALIDITY_DAYS)
            return now, min(end, ca.not_after) if ca.not_after else end
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise InvalidInputError("validity_days must be a positive integer", field="validity_days")
        return resolve_validity(
            ValidityRequest("DAY", days),
            now,
            cap_years=SUBORDINATE_CAP_YEARS,
            issuer_not_before=ca.not_before,
            issuer_not_after=ca.not_after,
        )

    async def sign(
        self, principal: Principal, project_id: str, request_id: str, ca_id: str | None, validity_days: int | None
    ) -> CertificateRequest:
        authorize(principal, project_id, Action.REVIEW)
        now = self._clock()
        req = await self._load(project_id, request_id)
        _outstanding(req, now, "signed")
        ca = await self._issuance.issuer(project_id, ca_id, field="certificate_authority_id")
        facts, subject = await self._csr_facts(req.csr_pem)
        not_before, not_after = self._validity(ca, validity_days, now)
        profile = self._issuance.csr_profile(ca, facts, subject, facts.sans, not_before, not_after)

        def claim(current: CertificateRequest, at: datetime) -> CertificateRequest:
            _outstanding(current, at, "signed")
            return replace(current, signing_until=at + self._lease)

        held = await self._change(project_id, request_id, claim)
        try:
            cert_pem, serial = await self._issuance.sign(ca, profile, public_key_pem=facts.public_key_pem)
        except BaseException:
            await asyncio.shield(self._release(held))
            raise
        signed = replace(
            held,
            status=RequestStatus.ACTIVE,
            certificate_chain_pem=cert_pem + (ca.certificate_pem or "") + ca.chain_pem,
            issuer_id=ca.id,
            serial_number=str(serial),
            not_after=not_after,
            signing_until=None,
            update_time=self._clock(),
        )
        try:
            stored = await self._store.replace_request(signed, expected_revision=held.revision)
        except ConflictError:
            raise ConflictError(
                "the request changed while it was being signed (the signing outlasted its lease); "
                "the certificate was discarded; sign the request again"
            ) from None
        await self._audited(
            principal, "sign", stored, ca_id=ca.id, serial_number=stored.serial_number, not_after=stored.not_after
        )
        self._on_issued("certificate-request")
        return stored

    async def _release(self, held: CertificateRequest) -> None:
        """Give a claim back after a failed signature, so the request need not wait for the lease to end."""
        with contextlib.suppress(DomainError):  # else the lease ends by itself
            await self._store.replace_request(replace(held, signing_until=None), expected_revision=held.revision)

    async def upload_certificate(
        self, principal: Principal, project_id: str, request_id: str, chain: str | None
    ) -> CertificateRequest:
        """Fulfil the request with a chain signed elsewhere (leaf first, at least its issuer)."""
        authorize(principal, project_id, Action.REVIEW)
        text = require(chain, "certificate")
        req = await self._load(project_id, request_id)
        _outstanding(req, self._clock(), "given a certificate")
        facts = await in_executor(self._executor, inspect_csr, req.csr_pem)
        uploaded = await in_executor(self._executor, check_request_chain, text, facts.public_key_pem, self._clock())

        def change(current: CertificateRequest, now: datetime) -> CertificateRequest:
            _outstanding(current, now, "given a certificate")
            return replace(
                current,
                status=RequestStatus.ACTIVE,
                certificate_chain_pem=uploaded.chain_pem,
                issuer_id=None,
                serial_number=str(uploaded.serial_number),
                not_after=uploaded.not_after,
            )

        fulfilled = await self._change(project_id, request_id, change)
        await self._audited(
            principal,
            "upload_certificate",
            fulfilled,
            serial_number=fulfilled.serial_number,
            not_after=fulfilled.not_after,
        )
        return fulfilled

    async def delete_certificate(self, principal: Principal, project_id: str, request_id: str) -> CertificateRequest:
        """Detach an uploaded chain: the request is Outstanding again. A certificate signed here stays on
        record (it can only be revoked), or a later revocation could not reach the CRL."""
        authorize(principal, project_id, Action.REVIEW)
        removed: dict[str, str | None] = {}

        def change(req: CertificateRequest, now: datetime) -> CertificateRequest:
            removed["serial_number"] = req.serial_number
            if req.status not in (RequestStatus.ACTIVE, RequestStatus.REVOKED):
                raise InvalidStateError(f"the request has no certificate; it is {req.status.value}")
            if req.issuer_id is not None:
                raise InvalidStateError(
                    "this certificate was signed by a CA of this service and stays on record so that it can be "
                    "revoked; revoke it, and submit a new request for a new certificate"
                )
            return replace(
                req, status=RequestStatus.OUTSTANDING, certificate_chain_pem="", serial_number=None, not_after=None
            )

        detached = await self._change(project_id, request_id, change)
        await self._audited(principal, "delete_certificate", detached, **removed)
        return detached

    async def revoke(
        self, principal: Principal, project_id: str, request_id: str, reason: str | None
    ) -> CertificateRequest:
        authorize(principal, project_id, Action.REVIEW)
        why = parse_enum(RevocationReason, reason, "reason", default=RevocationReason.UNSPECIFIED)
        req = await self._load(project_id, request_id)
        if req.issuer_id is not None:
            # The CA must still exist to publish the revocation; check before anything changes.
            await self._authorities.load(project_id, req.issuer_id)

        def change(current: CertificateRequest, now: datetime) -> CertificateRequest:
            if current.status is RequestStatus.REVOKED:
                raise AlreadyRevokedError("the certificate is revoked already")
            if current.status is not RequestStatus.ACTIVE:
                raise InvalidStateError(
                    f"only the certificate of an Active request can be revoked; this request is {current.status.value}"
                )
            if current.issuer_id is None:
                raise InvalidStateError(
                    "this certificate was signed outside this service; revoke it at the CA that signed it"
                )
            return replace(current, status=RequestStatus.REVOKED, revoked_at=now, revocation_reason=why)

        revoked = await self._change(project_id, request_id, change)
        await self._audited(principal, "revoke", revoked, reason=why, serial_number=revoked.serial_number)
        assert revoked.issuer_id is not None
        await self._crls.rebuild(project_id, revoked.issuer_id)
        self._on_revoked("certificate-request")
        return revoked
