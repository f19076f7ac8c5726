"""RenewalService: create managed certificates and read their renewal state (the API's side).

A managed certificate is created `pending`: it has a managed record (name, domains, source, key algorithm,
the source's settings) and no certificate record yet; the renewal loop (worker.py) issues it, inserting the
APIC certificate under the managed record's id. From then on the certificate is an ordinary APIC
certificate (listed, shown, bound, delivered) whose chain and key the loop replaces under the same id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.certificates import CertificateService, check_instance_id, check_name
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.pagination import coerce_page
from gatewaycerts.core.renewal.sources import CertificateSource, SourceKind
from gatewaycerts.domain.errors import (
    CertificateNotFoundError,
    ConflictError,
    DuplicateNameError,
    InvalidInputError,
    MissingParameterError,
    NotManagedError,
    QuotaExceededError,
    RenewalInProgressError,
    SourceUnavailableError,
    UnsupportedAlgorithmError,
)
from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate, RenewalState
from gatewaycerts.domain.models import (
    GLOBAL_INSTANCE_ID,
    Action,
    Certificate,
    CertificateFilter,
    CertificateScope,
    Page,
    Principal,
)
from gatewaycerts.domain.pca import KeyAlgorithm
from gatewaycerts.pki.hostnames import normalise_domain
from gatewaycerts.store.interfaces import CertificateStore, ManagedCertificateStore

MAX_MANAGED_DOMAINS = 100
DEFAULT_KEY_ALGORITHM = KeyAlgorithm.EC256
MAX_REVISIONS_LISTED = 100


@dataclass(frozen=True, slots=True)
class ManagedDraft:
    """The create body, as typed by the facade; rules are checked here."""

    name: str | None
    domains: tuple[str, ...] | None
    source: str | None
    key_algorithm: str | None = None
    type: str | None = None
    instance_id: str | None = None
    settings: dict[str, object] | None = None  # the chosen source's own object (private_ca: {...}, acme: {...})


@dataclass(frozen=True, slots=True)
class RenewalView:
    managed: ManagedCertificate
    certificate: Certificate | None  # None while pending
    now: datetime


@dataclass(frozen=True, slots=True)
class RevisionsView:
    certificate: Certificate
    revisions: tuple[ChainRevision, ...]


class SettingsChecker:
    """What a source may offer to check its settings at creation (ACME: the account exists, ...)."""

    async def check_settings(self, project_id: str, settings: dict[str, object]) -> dict[str, object]: ...


def _not_found(cert_id: str) -> CertificateNotFoundError:
    shown = f", id:{cert_id}" if cert_id.replace("-", "").replace("_", "").isalnum() and len(cert_id) <= 64 else ""
    return CertificateNotFoundError(f"the SSL certificate does not exist{shown}")


def check_domains(raw: tuple[str, ...] | None) -> tuple[str, ...]:
    if not raw:
        raise MissingParameterError("the parameter must be specified, parameterName:domains", field="domains")
    if len(raw) > MAX_MANAGED_DOMAINS:
        raise QuotaExceededError(
            f"the number of domain names exceeds the maximum allowed limit of {MAX_MANAGED_DOMAINS} per managed "
            "certificate",
            field="domains",
        )
    out: list[str] = []
    for value in raw:
        domain = normalise_domain(value, allow_wildcard=True) if isinstance(value, str) and len(value) <= 253 else None
        is_ip = False
        if domain is not None:
            try:
                ipaddress.ip_address(domain)
                is_ip = True
            except ValueError:
                pass
        if domain is None or is_ip:
            shown = value[:253] if isinstance(value, str) else ""
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:domains. {shown!r} is not a DNS name (IP addresses are "
                "not issued to managed certificates)",
                field="domains",
            )
        if domain not in out:
            out.append(domain)
    return tuple(out)


class RenewalService:
    def __init__(
        self,
        store: ManagedCertificateStore,
        certificates: CertificateStore,
        certificate_service: CertificateService,
        sources: dict[str, CertificateSource],
        *,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_id,
    ) -> None:
        self._store = store
        self._certs = certificates
        self._certificate_service = certificate_service
        # Keyed by SourceKind value; app.py registers private_ca, the ACME client registers acme.
        self.sources = sources
        self._audit = audit or AuditLog(None)
        self._clock = clock
        self._new_id = new_id
        self.on_due: Callable[[], None] = lambda: None  # wakes this process's renewal worker
        self.on_forget: Callable[[str], None] = lambda cert_id: None  # metrics: drop its per-certificate gauges

    # -- creation ---------------------------------------------------------------------------------

    async def _check_settings(
        self, project_id: str, source: str, settings: dict[str, object] | None
    ) -> dict[str, object]:
        impl = self.sources.get(source)
        if impl is None:
            raise SourceUnavailableError(
                f"the {source} source is not configured on this service; use one of: "
                + ", ".join(sorted(self.sources) or ["(none)"]),
                field="source",
            )
        if settings is None:
            raise MissingParameterError(f"the parameter must be specified, parameterName:{source}", field=source)
        check = getattr(impl, "check_settings", None)
        if check is None:
            return dict(settings)
        return dict(await check(project_id, dict(settings)))

    async def create(self, principal: Principal, project_id: str, draft: ManagedDraft) -> ManagedCertificate:
        authorize(principal, project_id, Action.WRITE)
        name = check_name(draft.name)
        scope_raw = draft.type or CertificateScope.GLOBAL.value
        try:
            scope = CertificateScope(scope_raw)
        except ValueError:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:type. Use global or instance", field="type"
            ) from None
        if scope is CertificateScope.INSTANCE:
            if not draft.instance_id:
                raise MissingParameterError(
                    "the parameter must be specified, parameterName:instance_id", field="instance_id"
                )
            instance_id = check_instance_id(draft.instance_id)
        else:
            instance_id = GLOBAL_INSTANCE_ID
        domains = check_domains(draft.domains)
        if not draft.source:
            raise MissingParameterError("the parameter must be specified, parameterName:source", field="source")
        if draft.source == SourceKind.UPLOAD.value:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:source. An uploaded certificate is created with "
                "POST /v2/{project_id}/apic/certificates; a managed one has the source private_ca or acme",
                field="source",
            )
        if draft.source not in (SourceKind.PRIVATE_CA.value, SourceKind.ACME.value):
            raise InvalidInputError(
                "Invalid parameter value, parameterName:source. Use private_ca or acme", field="source"
            )
        try:
            alg = KeyAlgorithm(draft.key_algorithm or DEFAULT_KEY_ALGORITHM.value)
        except ValueError:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:key_algorithm. Use RSA2048, RSA4096, EC256 or EC384",
                field="key_algorithm",
            ) from None
        if alg is KeyAlgorithm.SM2:
            raise UnsupportedAlgorithmError("SM2 keys are not issued to managed certificates", field="key_algorithm")
        settings = await self._check_settings(project_id, draft.source, draft.settings)
        if draft.source == SourceKind.ACME.value and settings.get("challenge", "http-01") == "http-01":
            wild = [d for d in domains if d.startswith("*.")]
            if wild:
                raise InvalidInputError(
                    f"Invalid parameter value, parameterName:acme.challenge. The wildcard {wild[0]} can only be "
                    "validated with dns-01",
                    field="acme.challenge",
                )
        await self._name_free(project_id, scope, instance_id, name)
        now = self._clock()
        managed = ManagedCertificate(
            id=self._new_id(),
            project_id=project_id,
            name=name,
            scope=scope,
            instance_id=instance_id,
            domains=domains,
            source=draft.source,
            key_algorithm=alg.value,
            settings=settings,
            state=RenewalState.PENDING,
            due_at=now,
            create_time=now,
            update_time=now,
        )
        await self._store.insert_managed(managed)
        await self._audit.record(
            principal,
            project_id,
            "apic.managed_certificate.create",
            "ssl_certificate",
            managed.id,
            object_name=name,
            source=managed.source,
            domains=list(domains),
            key_algorithm=managed.key_algorithm,
        )
        self.on_due()
        return managed

    async def _name_free(self, project_id: str, scope: CertificateScope, instance_id: str, name: str) -> None:
        """The first issuance inserts the certificate under this name: refuse one an upload holds already."""
        page = await self._certs.list(
            project_id, CertificateFilter(name_contains=name, scope=scope, instance_id=instance_id), 0, 500
        )
        if any(c.name == name for c in page.items):
            raise DuplicateNameError(
                f"a certificate named {name!r} already exists in this project and scope", field="name"
            )

    # -- reads ------------------------------------------------------------------------------------

    async def _managed(self, project_id: str, cert_id: str) -> ManagedCertificate:
        managed = await self._store.get_managed(project_id, cert_id) if len(cert_id) <= 64 else None
        if managed is None:
            if len(cert_id) <= 64 and await self._certs.get(project_id, cert_id) is not None:
                raise NotManagedError(
                    "the SSL certificate is an upload: it has no renewal state (managed certificates are created "
                    "with POST /v2/{project_id}/apic/managed-certificates)"
                )
            raise _not_found(cert_id)
        return managed

    async def get(self, principal: Principal, project_id: str, cert_id: str) -> RenewalView:
        authorize(principal, project_id, Action.READ)
        managed = await self._managed(project_id, cert_id)
        cert = await self._certs.get(project_id, cert_id)
        return RenewalView(managed=managed, certificate=cert, now=self._clock())

    async def list(
        self, principal: Principal, project_id: str, offset: int | None, limit: int | None
    ) -> tuple[Page[ManagedCertificate], datetime]:
        authorize(principal, project_id, Action.READ)
        off, lim = coerce_page(offset, limit)
        return await self._store.list_managed(project_id, off, lim), self._clock()

    async def revisions(self, principal: Principal, project_id: str, cert_id: str, limit: int | None) -> RevisionsView:
        """The chains the certificate held (recorded at each renewal), newest first; the current one included."""
        authorize(principal, project_id, Action.READ)
        cert = await self._certs.get(project_id, cert_id) if len(cert_id) <= 64 else None
        if cert is None:
            raise _not_found(cert_id)
        _, lim = coerce_page(0, limit)
        recorded = await self._store.chain_revisions(project_id, cert_id, min(lim, MAX_REVISIONS_LISTED))
        if not recorded or recorded[0].fingerprint_sha256 != cert.info.fingerprint_sha256:
            recorded.insert(0, chain_revision_of(cert, self._clock()))
        return RevisionsView(certificate=cert, revisions=tuple(recorded[:lim]))

    # -- actions ----------------------------------------------------------------------------------

    async def renew_now(self, principal: Principal, project_id: str, cert_id: str) -> RenewalView:
        """Make the certificate due now (also after the loop stopped on a non-retryable failure)."""
        authorize(principal, project_id, Action.WRITE)
        for _ in range(5):
            managed = await self._managed(project_id, cert_id)
            now = self._clock()
            if managed.shown_state(now) is RenewalState.RENEWING:
                raise RenewalInProgressError(
                    "the certificate is being renewed right now; read its renewal state again in a moment"
                )
            if managed.installed_attempt is None:
                state = RenewalState.PENDING if managed.consecutive_failures == 0 else RenewalState.FAILING
            else:
                state = RenewalState.ACTIVE if managed.consecutive_failures == 0 else RenewalState.FAILING
            try:
                stored = await self._store.replace_managed(
                    # now, whatever the CA's window says: the window is cleared until the next issuance sets it
                    replace(managed, due_at=now, state=state, window_start=None, window_end=None, update_time=now),
                    expected_revision=managed.revision,
                )
            except ConflictError:
                continue
            break
        else:
            raise ConflictError("the managed certificate kept changing; retry")
        await self._audit.record(
            principal, project_id, "apic.managed_certificate.renew", "ssl_certificate", cert_id, object_name=stored.name
        )
        self.on_due()
        return RenewalView(managed=stored, certificate=await self._certs.get(project_id, cert_id), now=now)

    async def delete(self, principal: Principal, project_id: str, cert_id: str) -> None:
        """DELETE of an APIC certificate: an upload as before; a managed one stops being managed too (a pending
        one, which has no certificate record yet, is just forgotten)."""
        authorize(principal, project_id, Action.WRITE)
        managed = await self._store.get_managed(project_id, cert_id) if len(cert_id) <= 64 else None
        if managed is not None and await self._certs.get(project_id, cert_id) is None:
            if managed.shown_state(self._clock()) is RenewalState.RENEWING:
                raise RenewalInProgressError("the certificate is being issued right now; delete it after that")
            await self._store.delete_managed(project_id, cert_id)
            self.on_forget(cert_id)
            await self._audit.record(principal, project_id, "apic.certificate.delete", "ssl_certificate", cert_id)
            return
        await self._certificate_service.delete(principal, project_id, cert_id)
        if managed is not None:
            await self._store.delete_managed(project_id, cert_id)
            await self._store.delete_chain_revisions(project_id, cert_id)
            self.on_forget(cert_id)


def chain_revision_of(cert: Certificate, at: datetime) -> ChainRevision:
    return ChainRevision(
        project_id=cert.project_id,
        certificate_id=cert.id,
        revision=cert.revision,
        chain_pem=cert.chain_pem,
        fingerprint_sha256=cert.info.fingerprint_sha256,
        serial_number=cert.info.serial_number,
        not_before=cert.info.not_before,
        not_after=cert.info.not_after,
        recorded_at=at,
        extra={"source": cert.source},
    )
