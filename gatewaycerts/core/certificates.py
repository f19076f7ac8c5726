"""CertificateService: upload, read, replace, delete SSL certificates and bind them to domains."""

from __future__ import annotations

import asyncio
import itertools
import re
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import retry_on_conflict
from gatewaycerts.core.delivery.uniqueness import BindingUniqueness, binding_keys
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.pagination import coerce_page
from gatewaycerts.core.stamped import StampedReads
from gatewaycerts.domain.errors import (
    AlgorithmTypeMismatchError,
    CertificateNotFoundError,
    DomainNotBoundError,
    DomainNotCoveredError,
    ImmutableFieldError,
    InvalidInputError,
    InvalidNameError,
    MissingParameterError,
    ParameterTooLongError,
    QuotaExceededError,
    ResourceInUseError,
    StaleRevisionError,
    UnsupportedAlgorithmError,
)
from gatewaycerts.domain.models import (
    GLOBAL_INSTANCE_ID,
    Action,
    AlgorithmType,
    Certificate,
    CertificateFilter,
    CertificateInfo,
    CertificateScope,
    DeleteOutcome,
    DomainBinding,
    Page,
    Principal,
)
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.bundle import ValidatedBundle, validate_bundle
from gatewaycerts.pki.hostnames import covers, normalise_domain
from gatewaycerts.store.interfaces import CertificateStore

T = TypeVar("T")

MAX_PEM_FIELD = 64 * 1024
MAX_SIGN_FIELD = 8092
MAX_DOMAINS_PER_CERTIFICATE = 500
MAX_DOMAINS_PER_REQUEST = 100
MAX_INSTANCE_IDS = 50
_NAME = re.compile(r"[^\W\d_]\w{3,49}")
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The show's reused record reads (core/stamped.py), at most this many for one stamp: a few MB of summaries.
SHOWN_RECORDS = 4096
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


OVERVIEW_WEEKS = 53  # a year, in weeks, from now
EXPIRING_DAYS = 30
EXPIRING_LISTED = 200


@dataclass(frozen=True, slots=True)
class ExpiryOverview:
    now: datetime
    total: int
    expired: int  # not_after before now
    weeks: tuple[int, ...]  # OVERVIEW_WEEKS counts: not_after in [now + i weeks, now + i + 1 weeks)
    later: int  # not_after a year or more away
    expiring: tuple[Certificate, ...]  # within EXPIRING_DAYS, soonest first (summaries), at most EXPIRING_LISTED
    more_expiring: bool


@dataclass(frozen=True, slots=True)
class CertificateDraft:
    """The create/update body, as typed by the facade; rules are checked here."""

    name: str | None
    cert_content: str | None
    private_key: str | None
    type: str | None = None
    instance_id: str | None = None
    trusted_root_ca: str | None = None
    algorithm_type: str | None = None
    cert_content_sign: str | None = None
    private_key_sign: str | None = None


@dataclass(frozen=True, slots=True)
class DomainRequest:
    domain: str | None
    instance_ids: tuple[str, ...] | None = None
    verified_client_certificate_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class _Checked:
    name: str
    scope: CertificateScope
    instance_id: str
    bundle: ValidatedBundle


def _not_found(cert_id: str) -> str:
    # Echo the id only when it looks like one of ours: never reflect arbitrary path input.
    shown = f", id:{cert_id}" if _ID.fullmatch(cert_id) else ""
    return f"the SSL certificate does not exist{shown}"


def apic_key_context(project_id: str, cert_id: str) -> str:
    return f"apic-certificate:{project_id}:{cert_id}"


def _require(value: str | None, field: str) -> str:
    if value is None or value == "":
        raise MissingParameterError(f"the parameter must be specified, parameterName:{field}", field=field)
    return value


def _check_size(value: str | None, field: str, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise ParameterTooLongError(
            f"parameterName:{field} is {len(value)} characters; the maximum is {limit}", field=field
        )


def check_name(name: str | None) -> str:
    value = _require(name, "name")
    if not _NAME.fullmatch(value):
        raise InvalidNameError(
            "Invalid parameter value, parameterName:name. The name must be 4 to 50 characters, start with a "
            "letter and contain only letters, digits and underscores (_)",
            field="name",
        )
    return value


def check_instance_id(value: str, field: str = "instance_id") -> str:
    if not _INSTANCE_ID.fullmatch(value):
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:{field}. Use 1 to 64 letters, digits, '-' or '_'",
            field=field,
        )
    return value


class CertificateService:
    def __init__(
        self,
        store: CertificateStore,
        vault: KeyVault,
        *,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_id,
        openssl_rsa_check: bool = False,
        audit: AuditLog | None = None,
        uniqueness: BindingUniqueness | None = None,
    ) -> None:
        self._openssl_rsa_check = openssl_rsa_check
        self._uniqueness = uniqueness
        # Writers of one record in this process take turns, so they never spend store round trips on
        # conflicts among themselves; the revision check still arbitrates between replicas.
        self._record_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._store = store
        self._summaries: StampedReads[tuple[str, str], Certificate | None] = StampedReads(
            store.change_stamp, limit=SHOWN_RECORDS
        )
        self._vault = vault
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self._audit = audit or AuditLog(None)
        # Told of every write that returned (the stored record, or None once deleted): delivery to gateways
        # applies it at once in this process (app.py wires it; other replicas follow the store).
        self.on_change: Callable[[str, str, Certificate | None], None] = _ignore_change

    # -- validation -------------------------------------------------------------------------------

    def _check_scope(self, draft: CertificateDraft) -> tuple[CertificateScope, str]:
        raw = draft.type or CertificateScope.GLOBAL.value
        try:
            scope = CertificateScope(raw)
        except ValueError:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:type. Use global or instance", field="type"
            ) from None
        if scope is CertificateScope.GLOBAL:
            return scope, GLOBAL_INSTANCE_ID
        return scope, check_instance_id(_require(draft.instance_id, "instance_id"))

    async def _check_draft(self, draft: CertificateDraft) -> _Checked:
        name = check_name(draft.name)
        scope, instance_id = self._check_scope(draft)
        cert_content = _require(draft.cert_content, "cert_content")
        private_key = _require(draft.private_key, "private_key")
        for field, value in (
            ("cert_content", cert_content),
            ("private_key", private_key),
            ("trusted_root_ca", draft.trusted_root_ca),
        ):
            _check_size(value, field, MAX_PEM_FIELD)
        for field, value in (
            ("cert_content_sign", draft.cert_content_sign),
            ("private_key_sign", draft.private_key_sign),
        ):
            _check_size(value, field, MAX_SIGN_FIELD)
        declared: AlgorithmType | None = None
        if draft.algorithm_type:
            try:
                declared = AlgorithmType(draft.algorithm_type)
            except ValueError:
                raise InvalidInputError(
                    "Invalid parameter value, parameterName:algorithm_type. Use RSA, ECC or SM2",
                    field="algorithm_type",
                ) from None
        if declared is AlgorithmType.SM2 or draft.cert_content_sign or draft.private_key_sign:
            raise UnsupportedAlgorithmError(
                "SM2 (GM/T) certificates are not supported yet; upload an RSA or ECC certificate",
                field="algorithm_type",
            )
        bundle = await self._in_executor(
            validate_bundle,
            cert_content,
            private_key,
            draft.trusted_root_ca or None,
            now=self._clock(),
            openssl_rsa_check=self._openssl_rsa_check,
        )
        if declared is not None and declared is not bundle.info.algorithm_type:
            raise AlgorithmTypeMismatchError(
                f"Invalid parameter value, parameterName:algorithm_type. It is {declared.value} but the key "
                f"is {bundle.info.algorithm_type.value}",
                field="algorithm_type",
            )
        return _Checked(name=name, scope=scope, instance_id=instance_id, bundle=bundle)

    async def _in_executor(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- reads ------------------------------------------------------------------------------------

    async def _load(self, project_id: str, cert_id: str) -> Certificate:
        cert = await self._store.get(project_id, cert_id) if _ID.fullmatch(cert_id) else None
        if cert is None:
            raise CertificateNotFoundError(_not_found(cert_id))
        return cert

    async def get(self, principal: Principal, project_id: str, cert_id: str) -> Certificate:
        authorize(principal, project_id, Action.READ)
        return await self._load(project_id, cert_id)

    async def get_summary(self, principal: Principal, project_id: str, cert_id: str) -> Certificate:
        """As get, without chain, key, trusted root or bindings (what a list item carries): for readers that
        present only the record's metadata, which then decode less and never hold the key's envelope."""
        authorize(principal, project_id, Action.READ)
        if not _ID.fullmatch(cert_id):
            raise CertificateNotFoundError(_not_found(cert_id))
        # reused while nothing at all was committed since it was read (core/stamped.py): the show's hot path
        cert = await self._summaries.read((project_id, cert_id), lambda: self._store.get_summary(project_id, cert_id))
        if cert is None:
            raise CertificateNotFoundError(_not_found(cert_id))
        return cert

    async def list(
        self, principal: Principal, project_id: str, flt: CertificateFilter, offset: int | None, limit: int | None
    ) -> Page[Certificate]:
        authorize(principal, project_id, Action.READ)
        off, lim = coerce_page(offset, limit)
        return await self._store.list(project_id, flt, off, lim)

    async def expiry_overview(self, principal: Principal, project_id: str) -> ExpiryOverview:
        """The project's certificates by week of expiry over the coming year, and the ones that expire
        within EXPIRING_DAYS (soonest first): what the console's overview draws, in two store reads instead of
        paging through every certificate."""
        authorize(principal, project_id, Action.READ)
        now = self._clock()
        boundaries = [now + timedelta(weeks=w) for w in range(OVERVIEW_WEEKS + 1)]
        before = (await self._store.count_expiring(boundaries)).get(project_id, (0,) * len(boundaries))
        total = (await self._store.list(project_id, CertificateFilter(), 0, 1)).total
        soon = await self._store.list_expiring(
            project_id, now, now + timedelta(days=EXPIRING_DAYS), EXPIRING_LISTED + 1
        )
        return ExpiryOverview(
            now=now,
            total=total,
            expired=before[0],
            weeks=tuple(b - a for a, b in itertools.pairwise(before)),
            later=total - before[-1],
            expiring=soon[:EXPIRING_LISTED],
            more_expiring=len(soon) > EXPIRING_LISTED,
        )

    # -- writes -----------------------------------------------------------------------------------

    async def create(self, principal: Principal, project_id: str, draft: CertificateDraft) -> Certificate:
        authorize(principal, project_id, Action.WRITE)
        checked = await self._check_draft(draft)
        cert_id = self._new_id()
        now = self._clock()
        bundle = checked.bundle
        cert = Certificate(
            id=cert_id,
            project_id=project_id,
            name=checked.name,
            scope=checked.scope,
            instance_id=checked.instance_id,
            info=bundle.info,
            chain_pem=bundle.chain_pem,
            encrypted_private_key=self._vault.encrypt(
                bundle.private_key_pem, context=apic_key_context(project_id, cert_id)
            ),
            trusted_root_ca_pem=bundle.trusted_root_ca_pem,
            has_trusted_root_ca=bundle.trusted_root_ca_pem is not None,
            create_time=now,
            update_time=now,
        )
        await self._store.insert(cert)
        await self._record(principal, "create", cert, **_facts(cert))
        return cert

    async def update(
        self,
        principal: Principal,
        project_id: str,
        cert_id: str,
        draft: CertificateDraft,
        *,
        if_match: frozenset[int] | None = None,
    ) -> Certificate:
        """Full replacement. With `if_match` (the revisions the client read), a record changed since is
        refused with StaleRevisionError instead of being overwritten."""
        authorize(principal, project_id, Action.WRITE)
        current = await self._load(project_id, cert_id)
        _check_revision(current, if_match)
        if draft.type and draft.type != current.scope.value:
            raise ImmutableFieldError("the resource cannot be changed: type cannot be modified", field="type")
        if (
            current.scope is CertificateScope.INSTANCE
            and draft.instance_id
            and draft.instance_id != current.instance_id
        ):
            raise ImmutableFieldError(
                "the resource cannot be changed: instance_id cannot be modified", field="instance_id"
            )
        checked = await self._check_draft(replace(draft, type=current.scope.value, instance_id=current.instance_id))
        bundle = checked.bundle
        encrypted = self._vault.encrypt(bundle.private_key_pem, context=apic_key_context(project_id, cert_id))

        def apply(cur: Certificate) -> Certificate:
            uncovered = [b.url_domain for b in cur.bindings if not _covers(bundle.info, b.url_domain)]
            if uncovered:
                raise DomainNotCoveredError(
                    "the certificate common name does not match the domain name: the new certificate does not "
                    f"cover the bound domain(s) {', '.join(uncovered)}; detach them first",
                    field="cert_content",
                )
            if bundle.trusted_root_ca_pem is None and any(b.verified_client_certificate_enabled for b in cur.bindings):
                raise InvalidInputError(
                    "Invalid parameter value, parameterName:trusted_root_ca. Bound domains verify client "
                    "certificates with it; keep a trusted_root_ca or disable verification on those domains first",
                    field="trusted_root_ca",
                )
            return replace(
                cur,
                name=checked.name,
                info=bundle.info,
                chain_pem=bundle.chain_pem,
                encrypted_private_key=encrypted,
                trusted_root_ca_pem=bundle.trusted_root_ca_pem,
                has_trusted_root_ca=bundle.trusted_root_ca_pem is not None,
                update_time=self._clock(),
            )

        updated = await self._modify(project_id, cert_id, apply, current=current, if_match=if_match)
        await self._changed(project_id, cert_id, updated)
        await self._record(principal, "update", updated, **_facts(updated))
        return updated

    async def _changed(self, project_id: str, cert_id: str, cert: Certificate | None) -> None:
        """Tell delivery of a stored change, then give the long polls it woke their turn of the event loop
        before this writer goes on to its audit record and answer: the polls are waiting for the change, the
        writer's client already knows of it. (A point write may commit on the event loop without yielding,
        see store/sqlite/base.py, so without this turn the polls would wait for the audit write too.)"""
        self.on_change(project_id, cert_id, cert)
        await asyncio.sleep(0)

    async def _record(self, principal: Principal, verb: str, cert: Certificate, **details: object) -> None:
        await self._audit.record(
            principal,
            cert.project_id,
            f"apic.certificate.{verb}",
            "ssl_certificate",
            cert.id,
            object_name=cert.name,
            **details,
        )

    async def delete(self, principal: Principal, project_id: str, cert_id: str) -> None:
        authorize(principal, project_id, Action.WRITE)
        outcome = await self._retry_on_conflict(lambda: self._store.delete_unbound(project_id, cert_id))
        if outcome is DeleteOutcome.NOT_FOUND:
            raise CertificateNotFoundError(_not_found(cert_id))
        if outcome is DeleteOutcome.IN_USE:
            raise ResourceInUseError(
                "the SSL certificate is bound to domain names and cannot be deleted; detach them first"
            )
        await self._changed(project_id, cert_id, None)
        await self._audit.record(principal, project_id, "apic.certificate.delete", "ssl_certificate", cert_id)

    async def _modify(
        self,
        project_id: str,
        cert_id: str,
        apply: Callable[[Certificate], Certificate],
        *,
        current: Certificate | None = None,
        if_match: frozenset[int] | None = None,
    ) -> Certificate:
        """Optimistic read-modify-write: re-read and re-apply when a concurrent change won, unless the client
        pinned the revision it read (`if_match`): then a concurrent change is its conflict to resolve."""
        known = current

        async def attempt() -> Certificate:
            nonlocal known
            cur = known or await self._load(project_id, cert_id)
            known = None  # a retry re-reads
            _check_revision(cur, if_match)
            new = apply(cur)
            if self._uniqueness is None:
                return await self._store.replace(new, expected_revision=cur.revision)
            # The bindings' keys: claimed before the bindings are stored, released after their removal is.
            claimed = await self._uniqueness.claim(cur, new)
            try:
                stored = await self._store.replace(new, expected_revision=cur.revision)
            except BaseException:
                await self._uniqueness.release(new, claimed)
                raise
            await self._uniqueness.release(cur, binding_keys(cur) - binding_keys(stored))
            return stored

        lock = self._record_locks.get(cert_id)
        if lock is None:
            lock = self._record_locks[cert_id] = asyncio.Lock()
        async with lock:
            return await self._retry_on_conflict(attempt)

    @staticmethod
    async def _retry_on_conflict(attempt: Callable[[], Awaitable[T]]) -> T:
        return await retry_on_conflict(attempt, "the certificate")

    # -- domain bindings --------------------------------------------------------------------------

    def _normalise_requests(self, requests: list[DomainRequest]) -> list[tuple[str, DomainRequest]]:
        if not requests:
            raise MissingParameterError("the parameter must be specified, parameterName:domains", field="domains")
        if len(requests) > MAX_DOMAINS_PER_REQUEST:
            raise QuotaExceededError(
                f"the number of domain names exceeds the maximum allowed limit of {MAX_DOMAINS_PER_REQUEST} "
                "per request",
                field="domains",
            )
        out: list[tuple[str, DomainRequest]] = []
        for req in requests:
            raw = _require(req.domain, "domain")
            domain = normalise_domain(raw, allow_wildcard=True) if len(raw) <= 255 else None
            if domain is None:
                raise InvalidInputError(
                    f"Invalid parameter value, parameterName:domain. {raw[:255]!r} is not a valid domain name",
                    field="domain",
                )
            if req.instance_ids is not None:
                if len(req.instance_ids) > MAX_INSTANCE_IDS:
                    raise QuotaExceededError(
                        f"at most {MAX_INSTANCE_IDS} instance_ids per domain", field="instance_ids"
                    )
                for iid in req.instance_ids:
                    check_instance_id(iid, "instance_ids")
            out.append((domain, req))
        return out

    async def attach_domains(
        self,
        principal: Principal,
        project_id: str,
        cert_id: str,
        requests: list[DomainRequest],
        *,
        if_match: frozenset[int] | None = None,
    ) -> None:
        authorize(principal, project_id, Action.WRITE)
        wanted = self._normalise_requests(requests)

        def apply(cur: Certificate) -> Certificate:
            bindings = {b.url_domain: b for b in cur.bindings}
            for domain, req in wanted:
                if not _covers(cur.info, domain):
                    raise DomainNotCoveredError(
                        f"the certificate common name does not match the domain name {domain}: neither the "
                        "subject alternative names nor the common name cover it",
                        field="domain",
                    )
                verified = req.verified_client_certificate_enabled
                if verified and not cur.has_trusted_root_ca:
                    raise InvalidInputError(
                        "Invalid parameter value, parameterName:verified_client_certificate_enabled. Client "
                        "certificate verification needs a certificate uploaded with trusted_root_ca",
                        field="verified_client_certificate_enabled",
                    )
                instance_ids = self._binding_instances(cur, req.instance_ids)
                existing = bindings.get(domain)
                if existing is not None:
                    bindings[domain] = replace(
                        existing,
                        instance_ids=instance_ids if req.instance_ids is not None else existing.instance_ids,
                        verified_client_certificate_enabled=(
                            verified if verified is not None else existing.verified_client_certificate_enabled
                        ),
                    )
                else:
                    bindings[domain] = DomainBinding(
                        id=self._new_id(),
                        url_domain=domain,
                        instance_ids=instance_ids,
                        verified_client_certificate_enabled=(
                            verified if verified is not None else cur.has_trusted_root_ca
                        ),
                        create_time=self._clock(),
                    )
            if len(bindings) > MAX_DOMAINS_PER_CERTIFICATE:
                raise QuotaExceededError(
                    "the number of domain names exceeds the maximum allowed limit of "
                    f"{MAX_DOMAINS_PER_CERTIFICATE} per certificate",
                    field="domains",
                )
            return replace(cur, bindings=tuple(bindings.values()), update_time=self._clock())

        cert = await self._modify(project_id, cert_id, apply, if_match=if_match)
        await self._changed(project_id, cert_id, cert)
        await self._record(principal, "attach_domains", cert, domains=[domain for domain, _ in wanted])

    @staticmethod
    def _binding_instances(cert: Certificate, requested: tuple[str, ...] | None) -> tuple[str, ...]:
        if cert.scope is CertificateScope.INSTANCE:
            if requested and set(requested) != {cert.instance_id}:
                raise InvalidInputError(
                    "Invalid parameter value, parameterName:instance_ids. An instance-scoped certificate can "
                    f"only be bound on its own instance {cert.instance_id}",
                    field="instance_ids",
                )
            return (cert.instance_id,)
        return tuple(dict.fromkeys(requested or ()))

    async def detach_domains(
        self,
        principal: Principal,
        project_id: str,
        cert_id: str,
        requests: list[DomainRequest],
        *,
        if_match: frozenset[int] | None = None,
    ) -> None:
        authorize(principal, project_id, Action.WRITE)
        wanted = {domain for domain, _ in self._normalise_requests(requests)}

        def apply(cur: Certificate) -> Certificate:
            bound = {b.url_domain for b in cur.bindings}
            missing = sorted(wanted - bound)
            if missing:
                raise DomainNotBoundError(
                    f"the URL domain does not exist on this certificate: {', '.join(missing)} is not bound",
                    field="domain",
                )
            kept = tuple(b for b in cur.bindings if b.url_domain not in wanted)
            return replace(cur, bindings=kept, update_time=self._clock())

        cert = await self._modify(project_id, cert_id, apply, if_match=if_match)
        await self._changed(project_id, cert_id, cert)
        await self._record(principal, "detach_domains", cert, domains=sorted(wanted))

    async def list_attached_domains(
        self,
        principal: Principal,
        project_id: str,
        cert_id: str,
        url_domain: str | None,
        offset: int | None,
        limit: int | None,
    ) -> tuple[Certificate, Page[DomainBinding]]:
        authorize(principal, project_id, Action.READ)
        cert = await self._load(project_id, cert_id)
        off, lim = coerce_page(offset, limit)
        needle = (url_domain or "").lower()
        matching = sorted(
            (b for b in cert.bindings if needle in b.url_domain), key=lambda b: (b.create_time, b.url_domain)
        )
        return cert, Page(items=tuple(matching[off : off + lim]), total=len(matching))


def _ignore_change(project_id: str, cert_id: str, cert: Certificate | None) -> None:
    return None


def _check_revision(cert: Certificate, if_match: frozenset[int] | None) -> None:
    if if_match is not None and cert.revision not in if_match:
        raise StaleRevisionError(
            f"the SSL certificate was changed since it was read: its revision is {cert.revision}, the request "
            "expected " + ", ".join(str(r) for r in sorted(if_match)) + "; read it again and retry"
        )


def _facts(cert: Certificate) -> dict[str, object]:
    """What an audit event says about an uploaded certificate: public facts, never the PEM or the key."""
    return {
        "type": cert.scope.value,
        "instance_id": cert.instance_id,
        "common_name": cert.info.common_name,
        "serial_number": cert.info.serial_number,
        "not_after": cert.info.not_after,
        "fingerprint_sha256": cert.info.fingerprint_sha256,
    }


def _covers(info: CertificateInfo, domain: str) -> bool:
    return covers(domain, common_name=info.common_name, dns_names=info.dns_names, ip_addresses=info.ip_addresses)
