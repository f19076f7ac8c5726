"""PrivateCertificateService: issue certificates from the project's CAs (server-side key or CSR),
read, export, revoke and delete them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import (
    AuthorityService,
    check_can_issue,
    check_supported,
    is_uuid,
    new_uuid,
    page_bounds,
    parse_enum,
    path_length_under,
)
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, require, retry_on_conflict
from gatewaycerts.core.revocation import CrlPublisher
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.audit import AuditEvent
from gatewaycerts.domain.errors import (
    AlreadyRevokedError,
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    PrivateCertificateNotFoundError,
    ValidityError,
)
from gatewaycerts.domain.models import Action, Page, Principal
from gatewaycerts.domain.pca import (
    Authority,
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    GenMode,
    IssuedCertificate,
    IssuedKind,
    IssuedStatus,
    KeyAlgorithm,
    KeyUsage,
    PcaQuery,
    RevocationReason,
    SanType,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.domain.pca_errors import InvalidSanError
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.authority import (
    CsrFacts,
    Profile,
    check_and_issue,
    inspect_csr,
    issue,
    issue_with_new_key,
    key_usages_for,
)
from gatewaycerts.pki.export import export_files, export_pem_bundle, zip_files
from gatewaycerts.pki.keygen import new_serial
from gatewaycerts.pki.profiles import (
    ATTRIBUTE_TYPES,
    MAX_SANS,
    end_entity_extended_key_usage,
    name_problem,
    san_problem,
    shown,
    tls_server_validity_problem,
    validate_custom_extension,
    validate_distinguished_name,
    validate_sans,
)
from gatewaycerts.store.interfaces import PcaStore

EXPORT_TYPES = ("APACHE", "NGINX", "IIS", "TOMCAT", "OTHER")
# What an end-entity certificate signed for a CSR or a stored key carries when nothing asks for usages.
SERVER_AND_CLIENT = ExtendedKeyUsage(server_auth=True, client_auth=True)
_KEYSTORE_TYPES = ("IIS", "TOMCAT")
SERIAL_ATTEMPTS = 4  # as AuthorityService.reserve_serial


@dataclass(frozen=True, slots=True)
class SanRequest:
    type: str | None
    value: str | None


@dataclass(frozen=True, slots=True)
class IssueDraft:
    issuer_id: str | None
    key_algorithm: str | None
    signature_algorithm: str | None
    distinguished_name: DistinguishedName | None
    validity: ValidityRequest | None
    key_usages: tuple[str, ...] | None = None
    subject_alternative_names: tuple[SanRequest, ...] | None = None
    extended_key_usage: ExtendedKeyUsage | None = None
    customized_extension: CustomExtension | None = None


@dataclass(frozen=True, slots=True)
class CsrIssueDraft:
    issuer_id: str | None
    csr: str | None
    validity: ValidityRequest | None
    type: str | None = None
    path_length: int | None = None
    subject_alternative_names: tuple[SanRequest, ...] | None = None


@dataclass(frozen=True, slots=True)
class ExportRequest:
    type: str | None
    is_compressed: bool = False
    password: str | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Either JSON fields (PEM types, not compressed) or one file (zip or PKCS#12) to download."""

    fields: dict[str, str | None] | None = None
    filename: str | None = None
    content_type: str | None = None
    content: bytes | None = None


def certificate_key_context(project_id: str, cert_id: str) -> str:
    return f"pca-certificate:{project_id}:{cert_id}"


def effective_certificate_status(cert: IssuedCertificate, now: datetime) -> IssuedStatus:
    if cert.status is IssuedStatus.ISSUED and cert.not_after < now:
        return IssuedStatus.EXPIRED
    return cert.status


def _sans(raw: tuple[SanRequest, ...] | None) -> tuple[SubjectAltName, ...]:
    out = []
    for item in raw or ():
        kind = parse_enum(SanType, item.type, "subject_alternative_names.type")
        out.append(SubjectAltName(kind, require(item.value, "subject_alternative_names.value")))
    sans = tuple(dict.fromkeys(out))
    validate_sans(sans)
    return sans


def csr_subject(facts: CsrFacts, sans: tuple[SubjectAltName, ...], *, names_suffice: bool = False) -> DistinguishedName:
    """The subject a CA will certify for a CSR; its names must pass the profile rules of every issuance.

    It needs a common name, unless `names_suffice`: then subject alternative names alone identify the
    subject (which may be empty; the SAN extension is then critical, RFC 5280 4.2.1.6)."""
    if len(sans) > MAX_SANS:
        raise InvalidSanError(f"the CSR names {len(sans)} subject alternative names; at most {MAX_SANS}", field="csr")
    for san in sans:
        if (why := san_problem(san)) is not None:
            raise InvalidSanError(
                f"the CSR's subject alternative name {san.type.value} {shown(san.value)!r}: {why}", field="csr"
            )
    if facts.subject is None:
        if not names_suffice:
            raise InvalidInputError("the CSR's subject has no common name (CN)", field="csr")
        if not sans:
            raise InvalidInputError(
                "the CSR names nothing to certify: its subject has no common name (CN) and it has no subject "
                "alternative name (DNS, IP, e-mail or URI)",
                field="csr",
            )
    problem = name_problem(facts.name, require_common_name=not names_suffice)
    if problem is not None:
        attr, rule, issue = problem
        raise InvalidInputError(f"the CSR's subject {ATTRIBUTE_TYPES[attr]} must be {rule}; {issue}", field="csr")
    return facts.name


def end_entity_usage(
    requested: ExtendedKeyUsage | None,
    sans: tuple[SubjectAltName, ...],
    not_before: datetime,
    not_after: datetime,
    *,
    default: ExtendedKeyUsage | None = None,
) -> ExtendedKeyUsage | None:
    """The TLS server profile of every end-entity issuance (pki/profiles.py): the extended key usage to certify,
    or a ValidityError when it includes serverAuth and the validity is longer than 825 days. Called before a
    serial is reserved or anything is stored."""
    eku = end_entity_extended_key_usage(requested, sans, default=default)
    problem = tls_server_validity_problem(eku, not_after - not_before)
    if problem is not None:
        raise ValidityError(problem, field="validity")
    return eku


def csr_extended_key_usage(facts: CsrFacts) -> ExtendedKeyUsage | None:
    """The extended key usage a CSR asks for (None: none), or an error when it asks for one not issued here
    (it gets exactly what it asks for, or nothing)."""
    if facts.unissued_extended_key_usages:
        oids = ", ".join(facts.unissued_extended_key_usages[:3])
        raise InvalidInputError(
            f"the CSR asks for extended key usage {oids}, which this service does not issue; ask for serverAuth, "
            "clientAuth, codeSigning, emailProtection, timeStamping or smartcardLogon, or for none",
            field="csr",
        )
    return facts.extended_key_usage


def _issued_facts(cert: IssuedCertificate) -> dict[str, object]:
    """What an issuance's audit event records beside the certificate's id and name."""
    return {
        "type": cert.kind,
        "issuer_id": cert.issuer_id,
        "serial_number": cert.serial_number,
        "not_after": cert.not_after,
        "subject_alternative_names": [san.value for san in cert.sans],
    }


class PrivateCertificateService:
    def __init__(
        self,
        store: PcaStore,
        vault: KeyVault,
        authorities: AuthorityService,
        crls: CrlPublisher,
        *,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_uuid,
        on_issued: Callable[[str], None] | None = None,
        on_revoked: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
        audit_with_certificates: bool = False,
    ) -> None:
        """`audit_with_certificates`: the store writes the issue paths' audit events in the transaction of the
        certificate (store.joins_audit, on the audit log's own database; see core/audit.py); else after it."""
        self._store = store
        self._vault = vault
        self._authorities = authorities
        self._crls = crls
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self._on_issued = on_issued or (lambda kind: None)
        self._on_revoked = on_revoked or (lambda kind: None)
        self._audit = audit or AuditLog(None)
        self._audit_joined = audit_with_certificates and store.joins_audit

    def _event(self, principal: Principal, verb: str, cert: IssuedCertificate, **details: object) -> AuditEvent | None:
        return self._audit.event(
            principal,
            cert.project_id,
            f"ccm.certificate.{verb}",
            "private_certificate",
            cert.id,
            object_name=cert.distinguished_name.common_name,
            **details,
        )

    async def _audited(self, principal: Principal, verb: str, cert: IssuedCertificate, **details: object) -> None:
        event = self._event(principal, verb, cert, **details)
        if event is not None:
            await self._audit.write(event)

    async def _insert_with_new_serial(
        self,
        ca_id: str,
        signed: Callable[[int], Awaitable[IssuedCertificate]],
        principal: Principal,
        verb: str,
    ) -> IssuedCertificate:
        """Draw a serial, have `signed` sign the certificate with it, and store the certificate reserving the
        serial in the same write, with its audit event where the store joins them (else the event is recorded
        after the write, as every other change's). A serial some other certificate of this CA holds already
        (159 random bits: practically never) is refused by that write and nothing is stored; the certificate
        is then signed again with another, at most SERIAL_ATTEMPTS times."""
        for _ in range(SERIAL_ATTEMPTS):
            cert = await signed(new_serial())
            facts = _issued_facts(cert)
            event = self._event(principal, verb, cert, **facts) if self._audit_joined else None
            if await self._store.insert_certificate_reserving_serial(ca_id, cert, audit=event):
                if event is None:
                    await self._audited(principal, verb, cert, **facts)
                return cert
        raise ConflictError("could not allocate a unique serial number; retry")

    # -- reads ------------------------------------------------------------------------------------

    async def _load(self, project_id: str, cert_id: str) -> IssuedCertificate:
        cert = await self._store.get_certificate(project_id, cert_id) if is_uuid(cert_id) else None
        if cert is None:
            shown = f", id:{cert_id}" if is_uuid(cert_id) else ""
            raise PrivateCertificateNotFoundError(f"the private certificate does not exist{shown}")
        return cert

    async def get(self, principal: Principal, project_id: str, cert_id: str) -> IssuedCertificate:
        authorize(principal, project_id, Action.READ)
        return await self._load(project_id, cert_id)

    async def list(
        self, principal: Principal, project_id: str, query: PcaQuery, offset: int | None, limit: int | None
    ) -> Page[IssuedCertificate]:
        authorize(principal, project_id, Action.READ)
        off, lim = page_bounds(offset, limit)
        return await self._store.list_certificates(project_id, query, self._clock(), off, lim)

    def status_of(self, cert: IssuedCertificate) -> IssuedStatus:
        return effective_certificate_status(cert, self._clock())

    async def parse_csr(self, principal: Principal, project_id: str, csr: str | None) -> CsrFacts:
        authorize(principal, project_id, Action.READ)
        return await in_executor(self._executor, inspect_csr, require(csr, "csr"))

    # -- issue ------------------------------------------------------------------------------------

    async def issuer(self, project_id: str, issuer_id: str | None, *, field: str = "issuer_id") -> Authority:
        """The project's CA `issuer_id`, if it can issue now."""
        ca = await self._authorities.load(project_id, require(issuer_id, field), field=field)
        check_can_issue(ca, self._clock())
        return ca

    async def issue(self, principal: Principal, project_id: str, draft: IssueDraft) -> IssuedCertificate:
        authorize(principal, project_id, Action.WRITE)
        if draft.distinguished_name is None:
            require(None, "distinguished_name")
        assert draft.distinguished_name is not None
        sans = _sans(draft.subject_alternative_names)
        if draft.customized_extension is not None:
            validate_custom_extension(draft.customized_extension)
        raw_usages = tuple(dict.fromkeys(parse_enum(KeyUsage, u, "key_usages") for u in draft.key_usages or ()))
        ca = await self.issuer(project_id, draft.issuer_id)
        alg = parse_enum(KeyAlgorithm, draft.key_algorithm, "key_algorithm", default=ca.key_algorithm)
        sig = parse_enum(SignatureHash, draft.signature_algorithm, "signature_algorithm", default=SignatureHash.SHA256)
        check_supported(alg, sig)
        usages = key_usages_for(raw_usages, is_ca=False, algorithm=alg)
        dn = draft.distinguished_name.inherit(ca.distinguished_name)
        validate_distinguished_name(dn)
        not_before, not_after = resolve_validity(
            draft.validity,
            self._clock(),
            cap_years=SUBORDINATE_CAP_YEARS,
            issuer_not_before=ca.not_before,
            issuer_not_after=ca.not_after,
        )
        eku = end_entity_usage(draft.extended_key_usage, sans, not_before, not_after)
        profile = Profile(
            subject=dn,
            not_before=not_before,
            not_after=not_after,
            hash=sig,
            is_ca=False,
            path_length=None,
            key_usages=usages,
            extended_key_usage=eku,
            sans=sans,
            crl_distribution_url=self._authorities.crl_url_for(ca),
            ocsp_url=self._authorities.ocsp_url_for(ca),
            ca_issuers_url=self._authorities.ca_issuers_url_for(ca),
            custom_extension=draft.customized_extension,
        )
        cert_id = self._new_id()
        key_context = certificate_key_context(project_id, cert_id)

        def make(serial: int) -> tuple[str, bytes]:
            # One trip to the thread pool: the new key is made, certified and wrapped there, and leaves it
            # only encrypted.
            cert_pem, key_pem = issue_with_new_key(
                alg,
                profile,
                serial,
                issuer_certificate_pem=ca.certificate_pem,
                issuer_key_pem=lambda: self._authorities.decrypt_key(ca),
            )
            return cert_pem, self._vault.encrypt(key_pem, context=key_context)

        async def signed(serial: int) -> IssuedCertificate:
            cert_pem, encrypted_key = await in_executor(self._executor, make, serial)
            return IssuedCertificate(
                id=cert_id,
                project_id=project_id,
                issuer_id=ca.id,
                issuer_name=ca.distinguished_name.common_name,
                kind=IssuedKind.ENTITY_CERT,
                status=IssuedStatus.ISSUED,
                distinguished_name=dn,
                key_algorithm=alg,
                signature_algorithm=sig,
                serial_number=str(serial),
                not_before=not_before,
                not_after=not_after,
                gen_mode=GenMode.GENERATE,
                certificate_pem=cert_pem,
                chain_pem=(ca.certificate_pem or "") + ca.chain_pem,
                encrypted_key=encrypted_key,
                create_time=self._clock(),
                sans=sans,
            )

        cert = await self._insert_with_new_serial(ca.id, signed, principal, "issue")
        self._on_issued("private-certificate")
        return cert

    async def sign(
        self, ca: Authority, profile: Profile, *, key_pem: bytes | None = None, public_key_pem: bytes | None = None
    ) -> tuple[str, int]:
        """Reserve a serial under `ca` and sign `profile` for the key (PEM certificate, serial)."""
        serial = await self._authorities.reserve_serial(ca.id)
        cert_pem = await in_executor(
            self._executor,
            issue,
            profile,
            serial,
            subject_key_pem=key_pem,
            subject_public_key_pem=public_key_pem,
            issuer_certificate_pem=ca.certificate_pem,
            issuer_key_pem=self._authorities.decrypt_key(ca),
        )
        return cert_pem, serial

    def csr_profile(
        self,
        ca: Authority,
        facts: CsrFacts,
        subject: DistinguishedName,
        sans: tuple[SubjectAltName, ...],
        not_before: datetime,
        not_after: datetime,
        *,
        is_ca: bool = False,
        path_length: int | None = None,
    ) -> Profile:
        """What `ca` puts into a certificate for a checked CSR (see key_profile); an end entity gets the
        extended key usage the CSR asks for."""
        return self.key_profile(
            ca,
            facts.public_key_pem,
            subject,
            sans,
            not_before,
            not_after,
            key_algorithm=facts.key_algorithm,
            key_kind=facts.key_type,
            is_ca=is_ca,
            path_length=path_length,
            extended_key_usage=None if is_ca else csr_extended_key_usage(facts),
        )

    def key_profile(
        self,
        ca: Authority,
        public_key_pem: bytes,
        subject: DistinguishedName,
        sans: tuple[SubjectAltName, ...],
        not_before: datetime,
        not_after: datetime,
        *,
        key_algorithm: KeyAlgorithm | None = None,
        key_kind: str | None = None,
        is_ca: bool = False,
        path_length: int | None = None,
        extended_key_usage: ExtendedKeyUsage | None = None,
    ) -> Profile:
        """What `ca` puts into a certificate for a public key: the subject and names, default key usages for
        the key, for an end entity `extended_key_usage` (default serverAuth + clientAuth) held to the TLS server
        profile (see end_entity_usage), the CA's CRL distribution point."""
        if not is_ca:
            extended_key_usage = end_entity_usage(
                extended_key_usage, sans, not_before, not_after, default=SERVER_AND_CLIENT
            )
        return Profile(
            subject=subject,
            not_before=not_before,
            not_after=not_after,
            hash=ca.signature_algorithm,
            is_ca=is_ca,
            path_length=path_length,
            key_usages=key_usages_for(
                (), is_ca=is_ca, algorithm=key_algorithm, public_key_pem=public_key_pem, key_kind=key_kind
            ),
            extended_key_usage=None if is_ca else extended_key_usage,
            sans=sans,
            crl_distribution_url=self._authorities.crl_url_for(ca),
            ocsp_url=self._authorities.ocsp_url_for(ca),
            ca_issuers_url=self._authorities.ca_issuers_url_for(ca),
        )

    async def issue_from_csr(self, principal: Principal, project_id: str, draft: CsrIssueDraft) -> IssuedCertificate:
        authorize(principal, project_id, Action.WRITE)
        kind = parse_enum(IssuedKind, draft.type, "type", default=IssuedKind.ENTITY_CERT)
        if kind is IssuedKind.INTERMEDIATE_CA:
            # Creating a CA is a CA-management decision, not an everyday issuance.
            authorize(principal, project_id, Action.MANAGE_CA)
        csr = require(draft.csr, "csr")
        ca = await self.issuer(project_id, draft.issuer_id)

        def plan(facts: CsrFacts) -> Profile:
            # Runs in the executor, between the CSR's check and the signature (pki.authority.check_and_issue).
            sans = _sans(draft.subject_alternative_names) if draft.subject_alternative_names else facts.sans
            subject = csr_subject(facts, sans)
            not_before, not_after = resolve_validity(
                draft.validity,
                self._clock(),
                cap_years=SUBORDINATE_CAP_YEARS,
                issuer_not_before=ca.not_before,
                issuer_not_after=ca.not_after,
            )
            is_ca, path_length = kind is IssuedKind.INTERMEDIATE_CA, None
            if is_ca:
                path_length = path_length_under(ca, draft.path_length, default=0)
            elif draft.path_length is not None:
                raise InvalidInputError("path_length applies to INTERMEDIATE_CA certificates only", field="path_length")
            return self.csr_profile(
                ca, facts, subject, sans, not_before, not_after, is_ca=is_ca, path_length=path_length
            )

        cert_id = self._new_id()

        async def signed(serial: int) -> IssuedCertificate:
            facts, profile, cert_pem = await in_executor(
                self._executor,
                check_and_issue,
                csr,
                plan,
                serial,
                issuer_certificate_pem=ca.certificate_pem,
                issuer_key_pem=lambda: self._authorities.decrypt_key(ca),
            )
            return IssuedCertificate(
                id=cert_id,
                project_id=project_id,
                issuer_id=ca.id,
                issuer_name=ca.distinguished_name.common_name,
                kind=kind,
                status=IssuedStatus.ISSUED,
                distinguished_name=profile.subject,
                key_algorithm=facts.key_algorithm,
                signature_algorithm=ca.signature_algorithm,
                serial_number=str(serial),
                not_before=profile.not_before,
                not_after=profile.not_after,
                gen_mode=GenMode.CSR,
                certificate_pem=cert_pem,
                chain_pem=(ca.certificate_pem or "") + ca.chain_pem,
                encrypted_key=None,
                create_time=self._clock(),
                sans=profile.sans,
            )

        cert = await self._insert_with_new_serial(ca.id, signed, principal, "issue_from_csr")
        self._on_issued("private-certificate")
        return cert

    # -- changes ----------------------------------------------------------------------------------

    async def _change(
        self,
        project_id: str,
        cert_id: str,
        change: Callable[[IssuedCertificate, datetime], IssuedCertificate],
    ) -> IssuedCertificate:
        async def attempt() -> IssuedCertificate:
            cert = await self._load(project_id, cert_id)
            updated = change(cert, self._clock())
            return await self._store.replace_certificate(updated, expected_revision=cert.revision)

        return await retry_on_conflict(attempt, "the certificate")

    async def revoke(
        self, principal: Principal, project_id: str, cert_id: str, reason: str | None
    ) -> IssuedCertificate:
        authorize(principal, project_id, Action.WRITE)
        why = parse_enum(RevocationReason, reason, "reason", default=RevocationReason.UNSPECIFIED)

        def change(cert: IssuedCertificate, now: datetime) -> IssuedCertificate:
            if cert.status is IssuedStatus.REVOKED:
                raise AlreadyRevokedError("the certificate is revoked already")
            # Expired certificates may be revoked too (a compromised key should be on the CRL regardless).
            return replace(cert, status=IssuedStatus.REVOKED, revoked_at=now, revocation_reason=why)

        cert = await self._change(project_id, cert_id, change)
        await self._audited(principal, "revoke", cert, reason=why, serial_number=cert.serial_number)
        await self._crls.rebuild(project_id, cert.issuer_id)
        self._on_revoked("private-certificate")
        return cert

    async def delete(self, principal: Principal, project_id: str, cert_id: str) -> None:
        authorize(principal, project_id, Action.WRITE)

        def change(cert: IssuedCertificate, now: datetime) -> IssuedCertificate:
            if effective_certificate_status(cert, now) is IssuedStatus.ISSUED:
                raise InvalidStateError(
                    "the certificate is still valid; revoke it before deleting it so relying parties stop trusting it"
                )
            # Kept hidden: the serial stays reserved and, if revoked, on the CRL until it expires.
            return replace(cert, delete_time=now)

        cert = await self._change(project_id, cert_id, change)
        await self._audited(principal, "delete", cert, serial_number=cert.serial_number)

    # -- export -----------------------------------------------------------------------------------

    async def _exported(
        self, principal: Principal, cert: IssuedCertificate, req: ExportRequest, *, with_key: bool
    ) -> None:
        # A read, but one that hands out the private key: the trail says who took it, in which form.
        await self._audited(
            principal,
            "export",
            cert,
            format=req.type,
            compressed=req.is_compressed,
            private_key_included=with_key,
            password_protected=bool(req.password) and req.type in _KEYSTORE_TYPES,
        )

    async def material_for_gateway(self, principal: Principal, project_id: str, cert_id: str) -> tuple[str, str, bytes]:
        """(certificate PEM, chain PEM, private key PEM) of a certificate whose key was generated here."""
        authorize(principal, project_id, Action.WRITE)
        cert = await self._load(project_id, cert_id)
        if cert.encrypted_key is None:
            raise InvalidStateError(
                "this certificate was issued from a CSR: its private key is not held here; upload it to the APIC "
                "API together with your key instead"
            )
        if effective_certificate_status(cert, self._clock()) is not IssuedStatus.ISSUED:
            raise InvalidStateError("only a valid (not revoked, not expired) certificate can be served by a gateway")
        key_pem = self._vault.decrypt(cert.encrypted_key, context=certificate_key_context(project_id, cert.id))
        return cert.certificate_pem, cert.chain_pem, key_pem

    async def export(self, principal: Principal, project_id: str, cert_id: str, req: ExportRequest) -> ExportResult:
        # Exporting hands out the private key: a write-level permission, never a viewer's.
        authorize(principal, project_id, Action.WRITE)
        kind = require(req.type, "type")
        if kind not in EXPORT_TYPES:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:type. Use one of {', '.join(EXPORT_TYPES)}", field="type"
            )
        cert = await self._load(project_id, cert_id)
        key_pem = (
            None
            if cert.encrypted_key is None
            else self._vault.decrypt(cert.encrypted_key, context=certificate_key_context(project_id, cert.id))
        )
        if kind in _KEYSTORE_TYPES and key_pem is None:
            raise InvalidStateError(
                "this certificate was issued from a CSR: its private key is not held here, so no keystore can be made"
            )
        if kind in _KEYSTORE_TYPES and not req.password:
            require(None, "password")
        name = cert.distinguished_name.common_name
        if not req.is_compressed and kind not in _KEYSTORE_TYPES:
            result = ExportResult(fields=export_pem_bundle(cert.certificate_pem, cert.chain_pem, key_pem))
            await self._exported(principal, cert, req, with_key=key_pem is not None)
            return result
        files = await in_executor(
            self._executor, export_files, kind, name, cert.certificate_pem, cert.chain_pem, key_pem, req.password
        )
        await self._exported(principal, cert, req, with_key=key_pem is not None)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:64] or "certificate"
        if req.is_compressed:
            return ExportResult(
                filename=f"{safe}_{kind.lower()}.zip", content_type="application/zip", content=zip_files(files)
            )
        ((filename, content),) = files.items()
        return ExportResult(filename=filename, content_type="application/x-pkcs12", content=content)
