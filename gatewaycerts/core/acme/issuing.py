"""Issuing an ACME order's certificate, crash-safe: the second half of finalize, shared by the request that
finalizes and by the finalize worker (core/acme/finalizer.py) that resumes an order whose finalizer died.

Finalize keeps the CSR and a chosen certificate id on the order as it moves it to `processing`, with a lease
(`claim_until`) that its finalizer holds. `complete` then signs, stores the certificate under that id, records
it for revokeCert/ARI, and moves the order to `valid`. Every step is idempotent: a finalizer that resumes
finds the certificate already stored (a crash after the store write) and attaches it rather than issuing
again, and two finalizers racing (one whose lease lapsed while it still ran) store one certificate, since the
id is the store's primary key: the loser's signature is discarded, never stored or returned."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import check_can_issue
from gatewaycerts.core.clock import Clock
from gatewaycerts.core.common import in_executor
from gatewaycerts.core.issuance import PrivateCertificateService
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.acme import INVALID, PROCESSING, VALID, AcmeCertificate, AcmeOrder, AcmeProblem
from gatewaycerts.domain.errors import AuthorityCannotIssueError, ConflictError, DomainError, StoreUnavailableError
from gatewaycerts.domain.models import Principal, Role
from gatewaycerts.domain.pca import (
    Authority,
    DistinguishedName,
    GenMode,
    IssuedCertificate,
    IssuedKind,
    IssuedStatus,
    SanType,
    SubjectAltName,
)
from gatewaycerts.pki.authority import CsrFacts, Profile, inspect_csr
from gatewaycerts.store.interfaces import AcmeStore, PcaStore

log = logging.getLogger("gatewaycerts.acme")

FINALIZE_LEASE_SECONDS = 60  # signing takes milliseconds; a finalizer silent this long is taken to be dead


def account_principal(account_id: str, project_id: str) -> Principal:
    """Who an ACME request acts as on the audit trail and in the CA code: the account, in its CA's project."""
    return Principal(
        subject=f"acme-account:{account_id}", projects=frozenset({project_id}), roles=frozenset({Role.EDITOR})
    )


def check_ca(ca: Authority, now: datetime) -> None:
    try:
        check_can_issue(ca, now)
    except (AuthorityCannotIssueError, DomainError) as exc:
        raise AcmeProblem("serverInternal", f"the CA cannot issue: {exc}", 503) from None


class Plan(NamedTuple):
    subject: DistinguishedName
    sans: tuple[SubjectAltName, ...]
    not_before: datetime
    not_after: datetime
    profile: Profile


class OrderIssuer:
    def __init__(
        self,
        store: AcmeStore,
        pca_store: PcaStore,
        issued: PrivateCertificateService,
        *,
        executor: Executor | None,
        clock: Clock,
        audit: AuditLog,
        on_issued: Callable[[str], None],
    ) -> None:
        self._store = store
        self._pca = pca_store
        self._issued = issued
        self._executor = executor
        self._clock = clock
        self._audit = audit
        self._on_issued = on_issued

    def lease(self) -> datetime:
        return self._clock() + timedelta(seconds=FINALIZE_LEASE_SECONDS)

    async def complete(self, order: AcmeOrder, *, resumed: bool = False, facts: CsrFacts | None = None) -> AcmeOrder:
        """Finish a `processing` order that this caller holds (its revision as read). Returns the order as
        stored afterwards: valid, invalid (the CA cannot issue it), or as another finalizer left it when that
        one took over. Raises what a store outage raises: the order stays processing and is resumed once its
        lease lapses."""
        if order.status != PROCESSING:
            return order
        if order.csr_pem is None or order.certificate_id is None:  # finalized before finalize kept its CSR
            return await self.fail(order, "finalization was interrupted; create a new order")
        cert = await self._pca.get_certificate(order.project_id, order.certificate_id)
        issued_now = False
        if cert is None:
            try:
                cert = await self._sign(order, facts)
            except AcmeProblem as problem:
                return await self.fail(order, problem.detail)
            except StoreUnavailableError:
                raise
            except DomainError as exc:
                return await self.fail(order, f"the CA cannot issue the certificate: {exc}")
            try:
                await self._pca.insert_certificate(cert)
                issued_now = True
            except ConflictError:  # a finalizer whose lease lapsed stored it first: attach that one
                cert = await self._pca.get_certificate(order.project_id, order.certificate_id)
                if cert is None:
                    raise
        with contextlib.suppress(ConflictError):  # recorded before a crash, or by the other finalizer
            await self._store.insert_certificate(
                AcmeCertificate(
                    ca_id=order.ca_id,
                    serial_number=cert.serial_number,
                    certificate_id=cert.id,
                    account_id=order.account_id,
                    order_id=order.id,
                    not_before=cert.not_before,
                    not_after=cert.not_after,
                )
            )
        actor = account_principal(order.account_id, order.project_id)
        if issued_now:
            self._on_issued("private-certificate")
        # The audit events come before the order turns valid: a crash between them repeats them on resume
        # (marked `resumed`) rather than losing them.
        extra: dict[str, Any] = {"resumed": True} if resumed else {}
        await self._audit.record(
            actor,
            order.project_id,
            "acme.order.finalize",
            "acme_order",
            order.id,
            ca_id=order.ca_id,
            certificate_id=cert.id,
            **extra,
        )
        if issued_now or resumed:
            await self._audit.record(
                actor,
                order.project_id,
                "acme.certificate.issue",
                "private_certificate",
                cert.id,
                issuer_id=order.ca_id,
                serial_number=cert.serial_number,
                not_after=cert.not_after,
                subject_alternative_names=[s.value for s in cert.sans],
                order_id=order.id,
                **({"attached": True} if not issued_now else {}),
                **extra,
            )
        try:
            return await self._store.replace_order(
                replace(order, status=VALID, claim_until=None, csr_pem=None), expected_revision=order.revision
            )
        except ConflictError:  # another finalizer took the order over: it attaches the same certificate
            current = await self._store.get_order(order.ca_id, order.id)
            return current if current is not None else order

    def plan(self, ca: Authority, order: AcmeOrder, facts: CsrFacts, max_days: int, now: datetime) -> Plan:
        """What the order's certificate will say (subject and extensions from the CA's profile, the SANs
        from the order, not the CSR). AcmeProblem when it cannot be issued."""
        try:
            not_before, not_after = resolve_validity(
                ValidityRequest("DAY", min(order.not_after_days, max_days)),
                now,
                cap_years=SUBORDINATE_CAP_YEARS,
                issuer_not_before=ca.not_before,
                issuer_not_after=ca.not_after,
            )
        except DomainError as exc:
            raise AcmeProblem("serverInternal", f"the CA cannot issue for this validity: {exc}", 500) from None
        sans = tuple(
            SubjectAltName(SanType.DNS if i.type == "dns" else SanType.IP, i.value.lower()) for i in order.identifiers
        )
        first_dns = next((i.value.lower() for i in order.identifiers if i.type == "dns" and len(i.value) <= 64), "")
        subject = DistinguishedName(common_name=first_dns).inherit(ca.distinguished_name)
        try:
            profile = self._issued.key_profile(
                ca, facts.public_key_pem, subject, sans, not_before, not_after, key_algorithm=facts.key_algorithm
            )
        except DomainError as exc:
            raise AcmeProblem("badCSR", str(exc)) from None
        return Plan(subject, sans, not_before, not_after, profile)

    async def _sign(self, order: AcmeOrder, facts: CsrFacts | None) -> IssuedCertificate:
        assert order.csr_pem is not None and order.certificate_id is not None
        ca = await self._pca.get_authority(order.project_id, order.ca_id)
        if ca is None:
            raise AcmeProblem("serverInternal", "the CA is gone", 500)
        now = self._clock()
        check_ca(ca, now)
        policy = await self._store.get_policy(ca.id)
        max_days = order.not_after_days if policy is None else policy.max_validity_days
        if facts is None:
            facts = await in_executor(self._executor, inspect_csr, order.csr_pem)
        plan = self.plan(ca, order, facts, max_days, now)
        subject, sans, not_before, not_after, profile = plan
        cert_pem, serial = await self._issued.sign(ca, profile, public_key_pem=facts.public_key_pem)
        return IssuedCertificate(
            id=order.certificate_id,
            project_id=ca.project_id,
            issuer_id=ca.id,
            issuer_name=ca.distinguished_name.common_name,
            kind=IssuedKind.ENTITY_CERT,
            status=IssuedStatus.ISSUED,
            distinguished_name=subject,
            key_algorithm=facts.key_algorithm,
            signature_algorithm=ca.signature_algorithm,
            serial_number=str(serial),
            not_before=not_before,
            not_after=not_after,
            gen_mode=GenMode.CSR,
            certificate_pem=cert_pem,
            chain_pem=(ca.certificate_pem or "") + ca.chain_pem,
            encrypted_key=None,
            create_time=now,
            sans=sans,
        )

    async def fail(self, order: AcmeOrder, detail: str) -> AcmeOrder:
        log.warning("ACME order %s could not be issued: %s", order.id, detail)
        error = {"type": "urn:ietf:params:acme:error:serverInternal", "detail": f"issuance failed: {detail}"}
        try:
            return await self._store.replace_order(
                replace(order, status=INVALID, error=error, claim_until=None, csr_pem=None),
                expected_revision=order.revision,
            )
        except ConflictError:
            current = await self._store.get_order(order.ca_id, order.id)
            return current if current is not None else order
