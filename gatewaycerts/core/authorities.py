"""AuthorityService: private root and subordinate CAs, their lifecycle, and their CRLs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from gatewaycerts.core import pagination
from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, require, retry_on_conflict
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.revocation import CrlPublisher, authority_key_context
from gatewaycerts.core.validity import ROOT_CAP_YEARS, SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.errors import (
    AlreadyRevokedError,
    AuthorityCannotIssueError,
    AuthorityNotFoundError,
    ConflictError,
    CrlNotPublishedError,
    InvalidInputError,
    InvalidStateError,
    UnsupportedAlgorithmError,
)
from gatewaycerts.domain.models import Action, Page, Principal
from gatewaycerts.domain.pca import (
    Authority,
    CaStatus,
    CaType,
    CrlConfiguration,
    DistinguishedName,
    GenMode,
    KeyAlgorithm,
    KeyUsage,
    PcaQuery,
    RevocationReason,
    SignatureHash,
    SortKey,
)
from gatewaycerts.keyvault import KeyVault, parse_envelope
from gatewaycerts.pki.authority import (
    Profile,
    der_crl_to_pem,
    issue,
    key_usages_for,
    make_csr,
    new_key_pem,
    public_key_pem,
)
from gatewaycerts.pki.ca_import import check_imported_ca
from gatewaycerts.pki.keygen import new_serial
from gatewaycerts.pki.profiles import validate_distinguished_name
from gatewaycerts.store.interfaces import PcaStore

E = TypeVar("E", bound=StrEnum)

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MIN_PENDING_DAYS, MAX_PENDING_DAYS, DEFAULT_PENDING_DAYS = 7, 30, 7
MIN_CRL_DAYS, MAX_CRL_DAYS = 1, 30
OCSP_PATH = "/pki/ocsp"  # public, like the CRL: {OCSP_PATH}/{ca_id} (POST) and {OCSP_PATH}/{ca_id}/{base64} (GET)
CA_ISSUERS_PATH = "/pki/ca"  # public: {CA_ISSUERS_PATH}/{ca_id}.cer is the CA's certificate, DER
MAX_PATH_LENGTH = 6
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CRL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def new_uuid() -> str:
    """CCM ids: 36-character UUIDs, time-ordered like every id of this service."""
    return str(uuid.UUID(new_id()))


def is_uuid(value: str) -> bool:
    return bool(_UUID.fullmatch(value))


def parse_enum(kind: type[E], value: str | None, field: str, *, default: E | None = None) -> E:
    if value is None or value == "":
        if default is not None:
            return default
        require(None, field)
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(m.value for m in kind)
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:{field}. Use one of {options}", field=field
        ) from None


def check_supported(alg: KeyAlgorithm, sig: SignatureHash) -> None:
    if alg is KeyAlgorithm.SM2 or sig is SignatureHash.SM3:
        raise UnsupportedAlgorithmError(
            "SM2/SM3 (Chinese national standard) keys and signatures are not supported yet; "
            "use RSA2048, RSA4096, EC256 or EC384 with SHA256, SHA384 or SHA512",
            field="key_algorithm" if alg is KeyAlgorithm.SM2 else "signature_algorithm",
        )


def page_bounds(offset: int | None, limit: int | None) -> tuple[int, int]:
    return pagination.page_bounds(offset, limit, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)


def parse_query(
    name: str | None,
    status: str | None,
    type_: str | None,
    sort_key: str | None,
    sort_dir: str | None,
    *,
    statuses: type[StrEnum],
    authority: bool,
) -> PcaQuery:
    if status:
        allowed = {s.value for s in statuses} | {"EXPIRED"}
        if status not in allowed:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:status. Use one of {', '.join(sorted(allowed))}",
                field="status",
            )
    if type_:
        parse_enum(CaType, type_, "type")
    keys = {"create_time", "common_name", "not_after"} | ({"type"} if authority else {"issuer_name"})
    if sort_key and sort_key not in keys:
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:sort_key. Use one of {', '.join(sorted(keys))}", field="sort_key"
        )
    if sort_dir and sort_dir not in ("ASC", "DESC"):
        raise InvalidInputError("Invalid parameter value, parameterName:sort_dir. Use ASC or DESC", field="sort_dir")
    return PcaQuery(
        name_contains=name or None,
        status=status or None,
        type=type_ or None,
        sort_key=SortKey(sort_key) if sort_key else SortKey.CREATE_TIME,
        descending=sort_dir != "ASC",
    )


@dataclass(frozen=True, slots=True)
class CrlConfigRequest:
    enabled: bool | None = None
    crl_name: str | None = None
    valid_days: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorityDraft:
    type: str | None
    distinguished_name: DistinguishedName | None
    key_algorithm: str | None
    signature_algorithm: str | None
    validity: ValidityRequest | None
    issuer_id: str | None = None
    path_length: int | None = None
    key_usages: tuple[str, ...] | None = None
    crl_configuration: CrlConfigRequest | None = None


@dataclass(frozen=True, slots=True)
class ActivateDraft:
    issuer_id: str | None
    signature_algorithm: str | None
    validity: ValidityRequest | None
    path_length: int | None = None
    crl_configuration: CrlConfigRequest | None = None


def effective_status(ca: Authority, now: datetime) -> CaStatus:
    """What a client sees: a live CA past its not_after is EXPIRED."""
    if ca.status in (CaStatus.ACTIVED, CaStatus.DISABLED) and ca.not_after is not None and ca.not_after < now:
        return CaStatus.EXPIRED
    return ca.status


def check_can_issue(ca: Authority, now: datetime) -> None:
    status = effective_status(ca, now)
    if status is not CaStatus.ACTIVED:
        reasons = {
            CaStatus.DISABLED: "it is disabled; enable it first",
            CaStatus.PENDING: "it has no certificate yet; import or activate it first",
            CaStatus.DELETED: "it is scheduled for deletion; restore it first",
            CaStatus.EXPIRED: "it has expired",
            CaStatus.REVOKED: "it has been revoked",
        }
        raise AuthorityCannotIssueError(f"the CA cannot issue certificates: {reasons[status]}", field="issuer_id")


def _crl_configuration(req: CrlConfigRequest | None, current: CrlConfiguration | None = None) -> CrlConfiguration:
    base = current or CrlConfiguration()
    if req is None:
        return base
    days = base.valid_days if req.valid_days is None else req.valid_days
    if isinstance(days, bool) or not MIN_CRL_DAYS <= days <= MAX_CRL_DAYS:
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:crl_configuration.valid_days. Use {MIN_CRL_DAYS} to "
            f"{MAX_CRL_DAYS}",
            field="crl_configuration",
        )
    name = req.crl_name if req.crl_name is not None else base.crl_name
    if name is not None and not _CRL_NAME.fullmatch(name):
        raise InvalidInputError(
            "Invalid parameter value, parameterName:crl_configuration.crl_name. Use 1 to 64 letters, digits, '_', "
            "'-' or '.'",
            field="crl_configuration",
        )
    enabled = base.enabled if req.enabled is None else bool(req.enabled)
    return CrlConfiguration(enabled=enabled, crl_name=name, valid_days=days)


def path_length_under(parent: Authority | None, value: int | None, *, default: int | None) -> int | None:
    """The path length of a CA certificate signed by `parent`: within the parent's own constraint."""
    if value is not None and (isinstance(value, bool) or not 0 <= value <= MAX_PATH_LENGTH):
        raise InvalidInputError(
            f"Invalid parameter value, parameterName:path_length. Use 0 to {MAX_PATH_LENGTH}", field="path_length"
        )
    if parent is not None and parent.path_length is not None:
        if parent.path_length == 0:
            raise InvalidStateError(
                "the issuing CA has path length 0: it may issue end-entity certificates only", field="issuer_id"
            )
        limit = parent.path_length - 1
        if value is None:
            return min(limit, default) if default is not None else limit
        if value > limit:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:path_length. The issuing CA allows at most {limit}",
                field="path_length",
            )
    return default if value is None else value


class AuthorityService:
    def __init__(
        self,
        store: PcaStore,
        vault: KeyVault,
        crls: CrlPublisher,
        *,
        public_url: str,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_uuid,
        on_issued: Callable[[str], None] | None = None,
        on_revoked: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._crls = crls
        self._public_url = public_url.rstrip("/")
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self._on_issued = on_issued or (lambda kind: None)
        self._on_revoked = on_revoked or (lambda kind: None)
        self._audit = audit or AuditLog(None)

    async def _audited(self, principal: Principal, verb: str, ca: Authority, **details: object) -> None:
        await self._audit.record(
            principal,
            ca.project_id,
            f"ccm.authority.{verb}",
            "private_ca",
            ca.id,
            object_name=ca.distinguished_name.common_name,
            status=effective_status(ca, self._clock()),
            **details,
        )

    # -- helpers shared with the issuance service ---------------------------------------------------

    def crl_url(self, ca_id: str) -> str:
        return f"{self._public_url}/v1/private-certificate-authorities/{ca_id}/crl"

    def crl_url_for(self, ca: Authority) -> str | None:
        """Certificates issued while the CA publishes a CRL point at it."""
        return self.crl_url(ca.id) if ca.crl_configuration.enabled else None

    def ocsp_url(self, ca_id: str) -> str:
        return f"{self._public_url}{OCSP_PATH}/{ca_id}"

    def ca_issuers_url(self, ca_id: str) -> str:
        return f"{self._public_url}{CA_ISSUERS_PATH}/{ca_id}.cer"

    def ocsp_url_for(self, ca: Authority | None) -> str | None:
        """Every certificate a CA signs names its OCSP responder (a self-signed root has none)."""
        return None if ca is None else self.ocsp_url(ca.id)

    def ca_issuers_url_for(self, ca: Authority | None) -> str | None:
        return None if ca is None else self.ca_issuers_url(ca.id)

    def decrypt_key(self, ca: Authority) -> bytes:
        # The envelope's parse is reused (keyvault.parse_envelope), its opening is not: once per signature.
        return self._vault.open(parse_envelope(ca.encrypted_key), context=authority_key_context(ca.project_id, ca.id))

    async def load(self, project_id: str, ca_id: str, *, field: str | None = None) -> Authority:
        ca = await self._store.get_authority(project_id, ca_id) if is_uuid(ca_id) else None
        if ca is not None and ca.status is CaStatus.DELETED and ca.delete_time and ca.delete_time <= self._clock():
            ca = None  # past its pending days: gone for good
        if ca is None:
            shown = f", id:{ca_id}" if is_uuid(ca_id) else ""
            raise AuthorityNotFoundError(f"the CA does not exist{shown}", field=field)
        return ca

    async def reserve_serial(self, issuer_key: str) -> int:
        for _ in range(4):
            serial = new_serial()
            try:
                await self._store.reserve_serial(issuer_key, str(serial))
                return serial
            except ConflictError:
                continue
        raise ConflictError("could not allocate a unique serial number; retry")

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        authorize(principal, project_id, Action.READ)
        return await self.load(project_id, ca_id)

    async def list(
        self, principal: Principal, project_id: str, query: PcaQuery, offset: int | None, limit: int | None
    ) -> Page[Authority]:
        authorize(principal, project_id, Action.READ)
        off, lim = page_bounds(offset, limit)
        return await self._store.list_authorities(project_id, query, self._clock(), off, lim)

    async def issuing_authorities(self, project_id: str, limit: int) -> tuple[Authority, ...]:
        """Up to `limit` CAs of the project that can issue now, as list summaries (no key, no certificate; no
        authorization: callers have decided)."""
        query = PcaQuery(status=CaStatus.ACTIVED.value)
        return (await self._store.list_authorities(project_id, query, self._clock(), 0, limit)).items

    def status_of(self, ca: Authority) -> CaStatus:
        return effective_status(ca, self._clock())

    # -- create -----------------------------------------------------------------------------------

    def _checked_common(self, draft: AuthorityDraft) -> tuple[CaType, DistinguishedName, KeyAlgorithm, SignatureHash]:
        ca_type = parse_enum(CaType, draft.type, "type")
        if draft.distinguished_name is None:
            require(None, "distinguished_name")
        assert draft.distinguished_name is not None
        alg = parse_enum(KeyAlgorithm, draft.key_algorithm, "key_algorithm")
        sig = parse_enum(SignatureHash, draft.signature_algorithm, "signature_algorithm", default=SignatureHash.SHA256)
        check_supported(alg, sig)
        return ca_type, draft.distinguished_name, alg, sig

    @staticmethod
    def _key_usages(raw: tuple[str, ...] | None, alg: KeyAlgorithm) -> tuple[KeyUsage, ...]:
        usages = tuple(dict.fromkeys(parse_enum(KeyUsage, u, "key_usages") for u in raw or ()))
        return key_usages_for(usages, is_ca=True, algorithm=alg)

    async def create(self, principal: Principal, project_id: str, draft: AuthorityDraft) -> Authority:
        authorize(principal, project_id, Action.MANAGE_CA)
        ca_type, dn, alg, sig = self._checked_common(draft)
        usages = self._key_usages(draft.key_usages, alg)
        crl_conf = _crl_configuration(draft.crl_configuration)
        now = self._clock()
        ca_id = self._new_id()
        parent: Authority | None = None
        if ca_type is CaType.ROOT:
            if draft.issuer_id:
                raise InvalidInputError("a ROOT CA has no issuer_id; omit it", field="issuer_id")
            validate_distinguished_name(dn)
            not_before, not_after = resolve_validity(draft.validity, now, cap_years=ROOT_CAP_YEARS)
            path_length = path_length_under(None, draft.path_length, default=None)
        elif draft.issuer_id:
            parent = await self.load(project_id, draft.issuer_id, field="issuer_id")
            check_can_issue(parent, now)
            dn = dn.inherit(parent.distinguished_name)
            validate_distinguished_name(dn)
            not_before, not_after = resolve_validity(
                draft.validity,
                now,
                cap_years=SUBORDINATE_CAP_YEARS,
                issuer_not_before=parent.not_before,
                issuer_not_after=parent.not_after,
            )
            path_length = path_length_under(parent, draft.path_length, default=0)
        else:
            # A subordinate CA for an outside CA to sign: PENDING until its certificate is imported.
            validate_distinguished_name(dn)
            key_pem = await in_executor(self._executor, new_key_pem, alg)
            csr_pem = await in_executor(self._executor, make_csr, dn, key_pem, sig)
            ca = self._record(
                ca_id,
                project_id,
                ca_type,
                CaStatus.PENDING,
                dn,
                alg,
                sig,
                None,
                path_length_under(None, draft.path_length, default=0),
                usages,
                crl_conf,
                key_pem,
                now,
                csr_pem=csr_pem,
            )
            await self._store.insert_authority(ca)
            await self._audited(principal, "create", ca, type=ca_type, key_algorithm=alg)
            return ca

        key_pem = await in_executor(self._executor, new_key_pem, alg)
        profile = Profile(
            subject=dn,
            not_before=not_before,
            not_after=not_after,
            hash=sig,
            is_ca=True,
            path_length=path_length,
            key_usages=usages,
            crl_distribution_url=self.crl_url_for(parent) if parent else None,
            ocsp_url=self.ocsp_url_for(parent),
            ca_issuers_url=self.ca_issuers_url_for(parent),
        )
        cert_pem, serial = await self._sign(profile, key_pem, parent, own_id=ca_id)
        ca = self._record(
            ca_id,
            project_id,
            ca_type,
            CaStatus.ACTIVED,
            dn,
            alg,
            sig,
            parent.id if parent else None,
            path_length,
            usages,
            crl_conf,
            key_pem,
            now,
            certificate_pem=cert_pem,
            chain_pem=_chain_of(parent),
            serial=serial,
            not_before=not_before,
            not_after=not_after,
        )
        ca = replace(ca, issuer_name=(parent.distinguished_name if parent else dn).common_name)
        await self._store.insert_authority(ca)
        await self._audited(
            principal,
            "create",
            ca,
            type=ca_type,
            key_algorithm=alg,
            issuer_id=ca.issuer_id,
            serial_number=ca.serial_number,
            not_after=ca.not_after,
        )
        self._on_issued("authority")
        if crl_conf.enabled:
            ca = await self._crls.rebuild(project_id, ca_id)
        return ca

    async def _sign(
        self,
        profile: Profile,
        subject_key_pem: bytes | None,
        parent: Authority | None,
        *,
        own_id: str,
        subject_public_key_pem: bytes | None = None,
    ) -> tuple[str, int]:
        serial = await self.reserve_serial(parent.id if parent else own_id)
        cert_pem = await in_executor(
            self._executor,
            issue,
            profile,
            serial,
            subject_key_pem=subject_key_pem,
            subject_public_key_pem=subject_public_key_pem,
            issuer_certificate_pem=parent.certificate_pem if parent else None,
            issuer_key_pem=self.decrypt_key(parent) if parent else None,
        )
        return cert_pem, serial

    def _record(
        self,
        ca_id: str,
        project_id: str,
        ca_type: CaType,
        status: CaStatus,
        dn: DistinguishedName,
        alg: KeyAlgorithm,
        sig: SignatureHash,
        issuer_id: str | None,
        path_length: int | None,
        usages: tuple[KeyUsage, ...],
        crl_conf: CrlConfiguration,
        key_pem: bytes,
        now: datetime,
        *,
        certificate_pem: str | None = None,
        chain_pem: str = "",
        csr_pem: str | None = None,
        serial: int | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Authority:
        return Authority(
            id=ca_id,
            project_id=project_id,
            type=ca_type,
            status=status,
            distinguished_name=dn,
            key_algorithm=alg,
            signature_algorithm=sig,
            issuer_id=issuer_id,
            path_length=path_length,
            key_usages=usages,
            crl_configuration=crl_conf,
            encrypted_key=self._vault.encrypt(key_pem, context=authority_key_context(project_id, ca_id)),
            certificate_pem=certificate_pem,
            chain_pem=chain_pem,
            csr_pem=csr_pem,
            serial_number=None if serial is None else str(serial),
            not_before=not_before,
            not_after=not_after,
            gen_mode=GenMode.GENERATE,
            create_time=now,
            update_time=now,
        )

    # -- state changes ----------------------------------------------------------------------------

    async def _change(
        self, principal: Principal, project_id: str, ca_id: str, change: Callable[[Authority, datetime], Authority]
    ) -> Authority:
        authorize(principal, project_id, Action.MANAGE_CA)

        async def attempt() -> Authority:
            ca = await self.load(project_id, ca_id)
            now = self._clock()
            updated = replace(change(ca, now), update_time=now)
            return await self._store.replace_authority(updated, expected_revision=ca.revision)

        return await retry_on_conflict(attempt, "the CA")

    async def enable(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        def change(ca: Authority, now: datetime) -> Authority:
            status = effective_status(ca, now)
            if status is CaStatus.ACTIVED:
                return ca
            if status is not CaStatus.DISABLED:
                raise InvalidStateError(f"a CA in status {status.value} cannot be enabled")
            return replace(ca, status=CaStatus.ACTIVED)

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(principal, "enable", ca)
        return ca

    async def disable(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        def change(ca: Authority, now: datetime) -> Authority:
            status = effective_status(ca, now)
            if status is CaStatus.DISABLED:
                return ca
            if status is not CaStatus.ACTIVED:
                raise InvalidStateError(f"a CA in status {status.value} cannot be disabled")
            return replace(ca, status=CaStatus.DISABLED)

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(principal, "disable", ca)
        return ca

    async def schedule_delete(
        self, principal: Principal, project_id: str, ca_id: str, pending_days: int | None
    ) -> Authority:
        days = DEFAULT_PENDING_DAYS if pending_days is None else pending_days
        if not MIN_PENDING_DAYS <= days <= MAX_PENDING_DAYS:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:pending_days. Use {MIN_PENDING_DAYS} to {MAX_PENDING_DAYS}",
                field="pending_days",
            )

        def change(ca: Authority, now: datetime) -> Authority:
            status = effective_status(ca, now)
            if status is CaStatus.ACTIVED:
                raise InvalidStateError("the CA is active; disable it before deleting it")
            if status is CaStatus.DELETED:
                raise InvalidStateError("the CA is scheduled for deletion already")
            return replace(
                ca, status=CaStatus.DELETED, status_before_delete=ca.status, delete_time=now + timedelta(days=days)
            )

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(principal, "delete", ca, pending_days=days, delete_time=ca.delete_time)
        return ca

    async def restore(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        def change(ca: Authority, now: datetime) -> Authority:
            if ca.status is not CaStatus.DELETED:
                raise InvalidStateError("only a CA scheduled for deletion can be restored")
            # A restored CA comes back disabled (or pending): issuing again needs an explicit enable.
            previous = ca.status_before_delete or CaStatus.DISABLED
            status = CaStatus.DISABLED if previous is CaStatus.ACTIVED else previous
            return replace(ca, status=status, status_before_delete=None, delete_time=None)

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(principal, "restore", ca)
        return ca

    async def configure_crl(
        self, principal: Principal, project_id: str, ca_id: str, req: CrlConfigRequest | None, *, enabled: bool
    ) -> Authority:
        def change(ca: Authority, now: datetime) -> Authority:
            if ca.status is CaStatus.DELETED:
                raise InvalidStateError("the CA is scheduled for deletion; restore it first")
            conf = _crl_configuration(replace(req or CrlConfigRequest(), enabled=enabled), ca.crl_configuration)
            return replace(ca, crl_configuration=conf)

        ca = await self._change(principal, project_id, ca_id, change)
        conf = ca.crl_configuration
        verb = "enable_crl" if enabled else "disable_crl"
        await self._audited(principal, verb, ca, crl_name=conf.crl_name, valid_days=conf.valid_days)
        if enabled and ca.certificate_pem is not None:
            ca = await self._crls.rebuild(project_id, ca_id)
        return ca

    async def revoke(self, principal: Principal, project_id: str, ca_id: str, reason: str | None) -> Authority:
        why = parse_enum(RevocationReason, reason, "reason", default=RevocationReason.UNSPECIFIED)

        def change(ca: Authority, now: datetime) -> Authority:
            if ca.status is CaStatus.REVOKED:
                raise AlreadyRevokedError("the CA is revoked already")
            if ca.type is CaType.ROOT:
                raise InvalidStateError("a root CA cannot be revoked; disable and delete it instead")
            if ca.issuer_id is None:
                raise InvalidStateError("this CA was signed by an outside CA; revoke it there", field="ca_id")
            return replace(ca, status=CaStatus.REVOKED, revoked_at=now, revocation_reason=why)

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(principal, "revoke", ca, reason=why, serial_number=ca.serial_number, issuer_id=ca.issuer_id)
        assert ca.issuer_id is not None
        await self._crls.rebuild(project_id, ca.issuer_id)
        self._on_revoked("authority")
        return ca

    # -- outside signing: csr -> import; internal signing of a pending CA: activate ------------------

    async def export_csr(self, principal: Principal, project_id: str, ca_id: str) -> str:
        authorize(principal, project_id, Action.READ)
        ca = await self.load(project_id, ca_id)
        if ca.csr_pem is None or ca.status is not CaStatus.PENDING:
            raise InvalidStateError("only a PENDING subordinate CA has a CSR to export")
        return ca.csr_pem

    async def import_certificate(
        self, principal: Principal, project_id: str, ca_id: str, certificate: str | None, chain: str | None
    ) -> Authority:
        authorize(principal, project_id, Action.MANAGE_CA)
        cert_text = require(certificate, "certificate")
        chain_text = require(chain, "certificate_chain")
        ca = await self.load(project_id, ca_id)
        if ca.status is not CaStatus.PENDING:
            raise InvalidStateError("a certificate can be imported only into a PENDING CA")
        public_pem = await in_executor(self._executor, public_key_pem, self.decrypt_key(ca))
        facts, cert_pem, chain_pem = await in_executor(
            self._executor, check_imported_ca, cert_text, chain_text, public_pem, self._clock()
        )

        def change(current: Authority, now: datetime) -> Authority:
            if current.status is not CaStatus.PENDING:
                raise InvalidStateError("a certificate can be imported only into a PENDING CA")
            return replace(
                current,
                status=CaStatus.ACTIVED,
                certificate_pem=cert_pem,
                chain_pem=chain_pem,
                csr_pem=None,
                serial_number=str(facts.serial_number),
                not_before=facts.not_before,
                not_after=facts.not_after,
                path_length=facts.path_length,
                distinguished_name=facts.subject,
                issuer_name=facts.issuer_common_name,
                gen_mode=GenMode.IMPORT,
            )

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(
            principal, "import", ca, serial_number=ca.serial_number, issuer_name=ca.issuer_name, not_after=ca.not_after
        )
        if ca.crl_configuration.enabled:
            ca = await self._crls.rebuild(project_id, ca_id)
        return ca

    async def activate(self, principal: Principal, project_id: str, ca_id: str, draft: ActivateDraft) -> Authority:
        authorize(principal, project_id, Action.MANAGE_CA)
        ca = await self.load(project_id, ca_id)
        if ca.status is not CaStatus.PENDING:
            raise InvalidStateError("only a PENDING CA can be activated")
        parent = await self.load(project_id, require(draft.issuer_id, "issuer_id"), field="issuer_id")
        if parent.id == ca.id:
            raise InvalidInputError("a CA cannot sign itself; use another CA as issuer_id", field="issuer_id")
        now = self._clock()
        check_can_issue(parent, now)
        sig = parse_enum(
            SignatureHash, draft.signature_algorithm, "signature_algorithm", default=ca.signature_algorithm
        )
        check_supported(ca.key_algorithm, sig)
        not_before, not_after = resolve_validity(
            draft.validity,
            now,
            cap_years=SUBORDINATE_CAP_YEARS,
            issuer_not_before=parent.not_before,
            issuer_not_after=parent.not_after,
        )
        path_length = path_length_under(
            parent, draft.path_length if draft.path_length is not None else ca.path_length, default=0
        )
        crl_conf = _crl_configuration(draft.crl_configuration, ca.crl_configuration)
        dn = ca.distinguished_name.inherit(parent.distinguished_name)
        profile = Profile(
            subject=dn,
            not_before=not_before,
            not_after=not_after,
            hash=sig,
            is_ca=True,
            path_length=path_length,
            key_usages=ca.key_usages,
            crl_distribution_url=self.crl_url_for(parent),
            ocsp_url=self.ocsp_url_for(parent),
            ca_issuers_url=self.ca_issuers_url_for(parent),
        )
        cert_pem, serial = await self._sign(profile, self.decrypt_key(ca), parent, own_id=ca.id)

        def change(current: Authority, now: datetime) -> Authority:
            if current.status is not CaStatus.PENDING:
                raise InvalidStateError("only a PENDING CA can be activated")
            return replace(
                current,
                status=CaStatus.ACTIVED,
                issuer_id=parent.id,
                issuer_name=parent.distinguished_name.common_name,
                signature_algorithm=sig,
                certificate_pem=cert_pem,
                chain_pem=_chain_of(parent),
                csr_pem=None,
                serial_number=str(serial),
                not_before=not_before,
                not_after=not_after,
                path_length=path_length,
                distinguished_name=dn,
                crl_configuration=crl_conf,
            )

        ca = await self._change(principal, project_id, ca_id, change)
        await self._audited(
            principal, "activate", ca, issuer_id=ca.issuer_id, serial_number=ca.serial_number, not_after=ca.not_after
        )
        self._on_issued("authority")
        if ca.crl_configuration.enabled:
            ca = await self._crls.rebuild(project_id, ca_id)
        return ca

    # -- export and CRL -----------------------------------------------------------------------------

    async def export(self, principal: Principal, project_id: str, ca_id: str) -> tuple[str, str]:
        authorize(principal, project_id, Action.READ)
        ca = await self.load(project_id, ca_id)
        if ca.certificate_pem is None:
            raise InvalidStateError("the CA has no certificate yet; import or activate it first")
        return ca.certificate_pem, ca.chain_pem

    async def current_crl_pem(self, ca: Authority) -> str | None:
        """The CA's CRL as PEM, fresh (rebuilt when stale); None when the CA publishes none."""
        if ca.certificate_pem is None or not ca.crl_configuration.enabled:
            return None
        ca = await self._crls.current(ca)
        assert ca.crl is not None
        return der_crl_to_pem(ca.crl.der)

    async def public_crl(self, ca_id: str, *, pem: bool = False) -> bytes:
        """The CA's current CRL, DER (or PEM); public, like every CRL distribution point."""
        ca = await self._store.get_authority(None, ca_id) if is_uuid(ca_id) else None
        if (
            ca is None
            or ca.certificate_pem is None
            or (ca.status is CaStatus.DELETED and ca.delete_time is not None and ca.delete_time <= self._clock())
        ):
            raise AuthorityNotFoundError("the CA does not exist")
        if not ca.crl_configuration.enabled:
            raise CrlNotPublishedError("the CA does not publish a CRL; enable it with crl/enable")
        ca = await self._crls.current(ca)
        assert ca.crl is not None
        return der_crl_to_pem(ca.crl.der).encode() if pem else ca.crl.der


def _chain_of(parent: Authority | None) -> str:
    """The chain above a certificate issued by `parent`: parent first, then parent's own chain."""
    if parent is None or parent.certificate_pem is None:
        return ""
    return parent.certificate_pem + parent.chain_pem
