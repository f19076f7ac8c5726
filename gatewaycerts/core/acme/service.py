"""The ACME server's rules (RFC 8555, RFC 9773 ARI) for one CA's directory: accounts, EAB, orders,
authorizations, challenges, finalize, certificates, revocation, and the admin side (policy, EAB keys).

JWS parsing and signature checks on the outer request are the facade's (facades/acme); what a request
may do is decided here. Every refusal is an AcmeProblem (the facade renders problem+json) raised before
anything is written."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gatewaycerts.core.acme.issuing import OrderIssuer, account_principal, check_ca
from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import AuthorityService, is_uuid, new_uuid
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, retry_on_conflict
from gatewaycerts.core.issuance import PrivateCertificateService
from gatewaycerts.domain.acme import (
    CHALLENGE_TYPES,
    DEACTIVATED,
    INVALID,
    PENDING,
    PROCESSING,
    READY,
    VALID,
    Account,
    AcmeCertificate,
    AcmeOrder,
    AcmePolicy,
    AcmePolicyError,
    AcmeProblem,
    Authorization,
    Challenge,
    EabKey,
    EabKeyNotFoundError,
    Identifier,
)
from gatewaycerts.domain.errors import (
    AlreadyRevokedError,
    ConflictError,
    DomainError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import Action, Principal
from gatewaycerts.domain.pca import (
    Authority,
    IssuedStatus,
    RevocationReason,
    SanType,
    SubjectAltName,
)
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.authority import inspect_csr
from gatewaycerts.pki.jws import (
    JoseError,
    PublicKey,
    aki_of_pem,
    b64d,
    b64e,
    certificate_facts,
    csr_asks_for_ca,
    csr_der_to_pem,
    load_jwk,
    random_argument,
    spki_thumbprint_of_pem,
    thumbprint,
    verify,
    verify_hmac,
)
from gatewaycerts.pki.profiles import san_problem
from gatewaycerts.store.interfaces import AcmeStore, PcaStore

ORDER_DAYS = 7
MAX_IDENTIFIERS = 100
MAX_EAB_DAYS = 365
DEFAULT_EAB_DAYS = 7
MAX_VALIDITY_DAYS = 398
ACME_ANSWER_WAIT_SECONDS = 1.0  # at most the Retry-After a client would otherwise sleep
log = logging.getLogger("gatewaycerts.acme")
# RFC 5280 reason codes an ACME client may send (RFC 8555 7.6), as the CCM names.
_REASONS = {
    0: RevocationReason.UNSPECIFIED,
    1: RevocationReason.KEY_COMPROMISE,
    3: RevocationReason.AFFILIATION_CHANGED,
    4: RevocationReason.SUPERSEDED,
    5: RevocationReason.CESSATION_OF_OPERATION,
    9: RevocationReason.PRIVILEGE_WITHDRAWN,
}


def key_authorization(token: str, account_thumbprint: str) -> str:
    return f"{token}.{account_thumbprint}"


def cert_id_of(aki: bytes, serial: int) -> str:
    """RFC 9773 certID: base64url(AKI keyIdentifier) "." base64url(DER INTEGER content of the serial)."""
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # two's complement: a leading 0 when needed
    return f"{b64e(aki)}.{b64e(raw)}"


@dataclass(frozen=True, slots=True)
class Directory:
    """One CA's ACME directory, when ACME is enabled on it."""

    ca: Authority
    policy: AcmePolicy


@dataclass(frozen=True, slots=True)
class PolicyDraft:
    enabled: Any = None
    eab_required: Any = None
    allowed_domains: Any = None
    allow_wildcards: Any = None
    allow_ip: Any = None
    challenge_types: Any = None
    max_validity_days: Any = None


def _bool(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise AcmePolicyError(f"{field} must be true or false", field=field)
    return value


def _suffix(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise AcmePolicyError("allowed_domains must list DNS suffixes", field="allowed_domains")
    name = value.lower().rstrip(".")
    if name.startswith("*.") or san_problem(SubjectAltName(SanType.DNS, name)) is not None:
        raise AcmePolicyError(
            f"allowed_domains: {value[:80]!r} is not a DNS suffix (e.g. example.com)", field="allowed_domains"
        )
    return name


def _problem_of(error: JoseError) -> AcmeProblem:
    return AcmeProblem(error.problem, error.detail, 401 if error.problem == "unauthorized" else 400)


def eab_context(project_id: str, ca_id: str, kid: str) -> str:
    """The AAD context of an EAB key's HMAC key envelope (EnvelopeKind.ACME_EAB_KEY; the CA is its scope)."""
    return f"acme-eab:{project_id}:{ca_id}:{kid}"


class AcmeService:
    def __init__(
        self,
        store: AcmeStore,
        pca_store: PcaStore,
        vault: KeyVault,
        authorities: AuthorityService,
        issued: PrivateCertificateService,
        *,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        audit: AuditLog | None = None,
        new_id: Callable[[], str] = new_uuid,
        on_issued: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._pca = pca_store
        self._vault = vault
        self._authorities = authorities
        self._issued = issued
        self._executor = executor
        self._clock = clock
        self._audit = audit or AuditLog(None)
        self._new_id = new_id
        self._on_issued = on_issued or (lambda kind: None)
        self.on_challenge: Callable[[], None] = lambda: None  # the validation worker's wake-up
        # How long answering a challenge waits for this process's validation worker to record the outcome,
        # so that the answer says valid/invalid and the client need not sleep its Retry-After (1 s) before
        # polling. 0 where no worker runs in this process (app.py sets it).
        self.answer_wait_seconds = 0.0
        self._validated: dict[str, asyncio.Event] = {}
        self.issuer = OrderIssuer(
            store, pca_store, issued, executor=executor, clock=clock, audit=self._audit, on_issued=self._on_issued
        )

    async def _record(
        self, actor: Principal | str, project_id: str, action: str, kind: str, oid: str, **details: object
    ) -> None:
        await self._audit.record(actor, project_id, action, kind, oid, **details)

    # -- admin: policy and EAB keys ------------------------------------------------------------------

    async def _admin_ca(self, principal: Principal, project_id: str, ca_id: str, action: Action) -> Authority:
        authorize(principal, project_id, action)
        return await self._authorities.load(project_id, ca_id)

    async def get_policy(self, principal: Principal, project_id: str, ca_id: str) -> AcmePolicy:
        ca = await self._admin_ca(principal, project_id, ca_id, Action.READ)
        return await self._store.get_policy(ca.id) or AcmePolicy(ca_id=ca.id, project_id=project_id)

    async def put_policy(self, principal: Principal, project_id: str, ca_id: str, draft: PolicyDraft) -> AcmePolicy:
        ca = await self._admin_ca(principal, project_id, ca_id, Action.MANAGE_CA)
        base = AcmePolicy(ca_id=ca.id, project_id=project_id)
        domains = draft.allowed_domains
        if domains is not None and not isinstance(domains, list):
            raise AcmePolicyError("allowed_domains must be a list of DNS suffixes", field="allowed_domains")
        types = draft.challenge_types
        if types is not None and (
            not isinstance(types, list) or not types or any(t not in CHALLENGE_TYPES for t in types)
        ):
            raise AcmePolicyError(
                f"challenge_types must list some of {', '.join(CHALLENGE_TYPES)}", field="challenge_types"
            )
        days = draft.max_validity_days
        if days is not None and (
            not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_VALIDITY_DAYS
        ):
            raise AcmePolicyError(
                f"max_validity_days must be an integer from 1 to {MAX_VALIDITY_DAYS}", field="max_validity_days"
            )
        policy = AcmePolicy(
            ca_id=ca.id,
            project_id=project_id,
            enabled=_bool(draft.enabled, "enabled", base.enabled),
            eab_required=_bool(draft.eab_required, "eab_required", base.eab_required),
            allowed_domains=tuple(dict.fromkeys(_suffix(d) for d in domains or ())),
            allow_wildcards=_bool(draft.allow_wildcards, "allow_wildcards", base.allow_wildcards),
            allow_ip=_bool(draft.allow_ip, "allow_ip", base.allow_ip),
            challenge_types=tuple(dict.fromkeys(types)) if types else base.challenge_types,
            max_validity_days=days if days is not None else base.max_validity_days,
            update_time=self._clock(),
        )
        if policy.enabled and not policy.allowed_domains and not policy.allow_ip:
            raise AcmePolicyError(
                "an enabled ACME directory needs allowed_domains (DNS suffixes) or allow_ip", field="allowed_domains"
            )
        if policy.allow_wildcards and "dns-01" not in policy.challenge_types:
            raise AcmePolicyError("allow_wildcards needs dns-01 in challenge_types", field="allow_wildcards")
        if policy.allow_ip and "http-01" not in policy.challenge_types:
            raise AcmePolicyError("allow_ip needs http-01 in challenge_types", field="allow_ip")

        async def attempt() -> AcmePolicy:
            current = await self._store.get_policy(ca.id)
            return await self._store.put_policy(policy, expected_revision=None if current is None else current.revision)

        stored = await retry_on_conflict(attempt, "the ACME policy")
        await self._record(
            principal,
            project_id,
            "acme.policy.update",
            "private_certificate_authority",
            ca.id,
            enabled=stored.enabled,
            eab_required=stored.eab_required,
            allowed_domains=list(stored.allowed_domains),
            allow_wildcards=stored.allow_wildcards,
            allow_ip=stored.allow_ip,
            challenge_types=list(stored.challenge_types),
            max_validity_days=stored.max_validity_days,
        )
        return stored

    @staticmethod
    def _eab_context(project_id: str, ca_id: str, kid: str) -> str:
        return eab_context(project_id, ca_id, kid)

    async def create_eab_key(
        self, principal: Principal, project_id: str, ca_id: str, valid_days: Any
    ) -> tuple[EabKey, str]:
        """A new EAB key and its HMAC key (base64url), which is shown this once."""
        ca = await self._admin_ca(principal, project_id, ca_id, Action.MANAGE_CA)
        days = DEFAULT_EAB_DAYS if valid_days is None else valid_days
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EAB_DAYS:
            raise AcmePolicyError(f"valid_days must be an integer from 1 to {MAX_EAB_DAYS}", field="valid_days")
        kid = random_argument(16)
        text = random_argument(32)
        secret = b64d(text, "hmac_key")
        now = self._clock()
        key = EabKey(
            kid=kid,
            ca_id=ca.id,
            project_id=project_id,
            encrypted_hmac_key=self._vault.encrypt(secret, context=self._eab_context(project_id, ca.id, kid)),
            create_time=now,
            expires=now + timedelta(days=days),
        )
        await self._store.insert_eab_key(key)
        await self._record(
            principal, project_id, "acme.eab_key.create", "acme_eab_key", kid, ca_id=ca.id, expires=key.expires
        )
        return key, text

    async def list_eab_keys(self, principal: Principal, project_id: str, ca_id: str) -> list[EabKey]:
        ca = await self._admin_ca(principal, project_id, ca_id, Action.MANAGE_CA)
        return await self._store.list_eab_keys(ca.id)

    async def revoke_eab_key(self, principal: Principal, project_id: str, ca_id: str, kid: str) -> None:
        ca = await self._admin_ca(principal, project_id, ca_id, Action.MANAGE_CA)

        async def attempt() -> EabKey:
            key = await self._store.get_eab_key(ca.id, kid)
            if key is None:
                raise EabKeyNotFoundError("the EAB key does not exist on this CA", field="kid")
            if key.status == "revoked":
                return key
            return await self._store.replace_eab_key(replace(key, status="revoked"), expected_revision=key.revision)

        await retry_on_conflict(attempt, "the EAB key")
        await self._record(principal, project_id, "acme.eab_key.revoke", "acme_eab_key", kid, ca_id=ca.id)

    def eab_status(self, key: EabKey) -> str:
        if key.status == "active" and key.expires <= self._clock():
            return "expired"
        return key.status

    # -- the directory and accounts ------------------------------------------------------------------

    async def directory(self, ca_id: str) -> Directory:
        ca = await self._pca.get_authority(None, ca_id) if is_uuid(ca_id) else None
        policy = None if ca is None else await self._store.get_policy(ca.id)
        if ca is None or policy is None or not policy.enabled:
            raise AcmeProblem("malformed", "no ACME directory here: the CA does not exist or ACME is off on it", 404)
        return Directory(ca, policy)

    async def account(self, d: Directory, account_id: str) -> Account:
        account = await self._store.get_account(d.ca.id, account_id) if account_id else None
        if account is None:
            raise AcmeProblem("accountDoesNotExist", "no account with this kid on this directory", 400)
        if account.status != VALID:
            raise AcmeProblem("unauthorized", f"the account is {account.status}", 401)
        return account

    async def new_account(
        self, d: Directory, jwk: dict[str, Any], key: PublicKey, url: str, payload: dict[str, Any]
    ) -> tuple[Account, bool]:
        """(account, created). The same key again returns the existing account (RFC 8555 7.3.1)."""
        print_ = thumbprint(key)
        existing = await self._store.account_by_thumbprint(d.ca.id, print_)
        if existing is not None:
            if existing.status != VALID:
                raise AcmeProblem("unauthorized", f"the account of this key is {existing.status}", 401)
            return existing, False
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account exists with this key")
        if d.policy.eab_required is False and payload.get("externalAccountBinding") is None:
            eab = None
        else:
            eab = await self._check_eab(d, payload.get("externalAccountBinding"), jwk, url)
        if payload.get("termsOfServiceAgreed") is False:
            raise AcmeProblem("malformed", "termsOfServiceAgreed must not be false")
        contact = payload.get("contact") or []
        if not isinstance(contact, list) or not all(isinstance(c, str) and len(c) <= 256 for c in contact):
            raise AcmeProblem("invalidContact", "contact must be a list of URLs")
        if len(contact) > 10 or any(not c.startswith("mailto:") for c in contact):
            raise AcmeProblem("unsupportedContact", "only mailto: contacts are supported (at most 10)")
        account = Account(
            id=self._new_id(),
            ca_id=d.ca.id,
            project_id=d.ca.project_id,
            jwk=load_public(key),
            thumbprint=print_,
            status=VALID,
            contact=tuple(contact),
            create_time=self._clock(),
            eab_kid=None if eab is None else eab.kid,
        )
        if eab is not None:
            # The EAB key is taken first: two accounts racing for one key, only one gets it.
            try:
                await self._store.replace_eab_key(
                    replace(eab, status="used", account_id=account.id, used_time=self._clock()),
                    expected_revision=eab.revision,
                )
            except ConflictError:
                raise AcmeProblem(
                    "unauthorized", "the external account binding key has been used already", 401
                ) from None
        try:
            await self._store.insert_account(account)
        except ConflictError:
            existing = await self._store.account_by_thumbprint(d.ca.id, print_)
            if existing is None:
                raise
            return existing, False
        actor = account_principal(account.id, account.project_id)
        if eab is not None:
            await self._record(
                actor,
                account.project_id,
                "acme.eab_key.use",
                "acme_eab_key",
                eab.kid,
                ca_id=d.ca.id,
                account_id=account.id,
            )
        await self._record(
            actor,
            account.project_id,
            "acme.account.create",
            "acme_account",
            account.id,
            ca_id=d.ca.id,
            eab_kid=account.eab_kid,
        )
        return account, True

    async def _check_eab(self, d: Directory, eab: Any, jwk: dict[str, Any], url: str) -> EabKey:
        """RFC 8555 7.3.4 with step-ca's checks: HS256/384/512, a kid, no nonce, inner url = outer url,
        payload = the outer jwk, an unused, unexpired key of this CA."""
        if eab is None:
            raise AcmeProblem("externalAccountRequired", "this directory requires an external account binding")
        if not isinstance(eab, dict) or set(eab) != {"protected", "payload", "signature"}:
            raise AcmeProblem("malformed", "externalAccountBinding must be a flattened JWS")
        try:
            header = _json(b64d(eab["protected"], "externalAccountBinding.protected"))
            payload = _json(b64d(eab["payload"], "externalAccountBinding.payload"))
            signature = b64d(eab["signature"], "externalAccountBinding.signature")
        except JoseError as exc:
            raise _problem_of(exc) from None
        if not isinstance(header, dict) or not isinstance(header.get("kid"), str):
            raise AcmeProblem("malformed", "the external account binding has no kid")
        if header.get("alg") not in ("HS256", "HS384", "HS512"):
            raise AcmeProblem("badSignatureAlgorithm", "the external account binding must use HS256, HS384 or HS512")
        if "nonce" in header:
            raise AcmeProblem("malformed", "the external account binding must not carry a nonce")
        if header.get("url") != url:
            raise AcmeProblem("unauthorized", "the external account binding's url differs from the request's", 401)
        if not isinstance(payload, dict) or thumbprint_of_jwk(payload) != thumbprint_of_jwk(jwk):
            raise AcmeProblem("malformed", "the external account binding's payload must be the account's jwk")
        key = await self._store.get_eab_key(d.ca.id, header["kid"])
        if key is None:
            raise AcmeProblem("unauthorized", "unknown external account binding key", 401)
        status = self.eab_status(key)
        if status != "active":
            raise AcmeProblem("unauthorized", f"the external account binding key is {status}", 401)
        secret = self._vault.decrypt(
            key.encrypted_hmac_key, context=self._eab_context(key.project_id, key.ca_id, key.kid)
        )
        try:
            verify_hmac(header["alg"], secret, f"{eab['protected']}.{eab['payload']}".encode(), signature)
        except JoseError as exc:
            raise _problem_of(exc) from None
        return key

    async def update_account(self, d: Directory, account: Account, payload: dict[str, Any]) -> Account:
        status = payload.get("status")
        if status is not None and status != DEACTIVATED:
            raise AcmeProblem("malformed", "an account's status can only be set to deactivated")
        contact = payload.get("contact")
        if contact is not None and (
            not isinstance(contact, list)
            or len(contact) > 10
            or any(not isinstance(c, str) or not c.startswith("mailto:") for c in contact)
        ):
            raise AcmeProblem("unsupportedContact", "only mailto: contacts are supported (at most 10)")
        if status is None and contact is None:
            return account
        updated = replace(
            account,
            status=DEACTIVATED if status else account.status,
            contact=tuple(contact) if contact is not None else account.contact,
        )
        try:
            stored = await self._store.replace_account(updated, expected_revision=account.revision)
        except ConflictError:
            raise AcmeProblem("malformed", "the account changed concurrently; retry", 409) from None
        if status:
            await self._record(
                account_principal(account.id, account.project_id),
                account.project_id,
                "acme.account.deactivate",
                "acme_account",
                account.id,
                ca_id=d.ca.id,
            )
        return stored

    async def key_change(self, d: Directory, account: Account, url: str, inner: Any, account_url: str) -> Account:
        """RFC 8555 7.3.5: the inner JWS, signed by the new key (jwk), names the account and the old key."""
        if not isinstance(inner, dict) or set(inner) != {"protected", "payload", "signature"}:
            raise AcmeProblem("malformed", "the keyChange payload must be a flattened JWS")
        try:
            header = _json(b64d(inner["protected"], "inner protected"))
            payload = _json(b64d(inner["payload"], "inner payload"))
            signature = b64d(inner["signature"], "inner signature")
            if not isinstance(header, dict) or "jwk" not in header or "kid" in header:
                raise AcmeProblem("malformed", "the inner JWS must carry jwk and no kid")
            if "nonce" in header:
                raise AcmeProblem("malformed", "the inner JWS must not carry a nonce")
            if header.get("url") != url:
                raise AcmeProblem("unauthorized", "the inner JWS url differs from the request's", 401)
            new_key = load_jwk(header["jwk"])
            verify(header.get("alg"), new_key, f"{inner['protected']}.{inner['payload']}".encode(), signature)
        except JoseError as exc:
            raise _problem_of(exc) from None
        if not isinstance(payload, dict) or payload.get("account") != account_url:
            raise AcmeProblem("malformed", "the inner payload's account is not the requesting account")
        if thumbprint_of_jwk(payload.get("oldKey")) != account.thumbprint:
            raise AcmeProblem("malformed", "the inner payload's oldKey is not the account's key")
        new_print = thumbprint(new_key)
        other = await self._store.account_by_thumbprint(d.ca.id, new_print)
        if other is not None:
            raise AcmeProblem("malformed", "another account uses this key", 409, location=other.id)
        updated = replace(account, jwk=load_public(new_key), thumbprint=new_print)
        try:
            stored = await self._store.replace_account(updated, expected_revision=account.revision)
        except ConflictError:
            raise AcmeProblem("malformed", "the key is in use or the account changed concurrently", 409) from None
        await self._record(
            account_principal(account.id, account.project_id),
            account.project_id,
            "acme.account.key_change",
            "acme_account",
            account.id,
            ca_id=d.ca.id,
            new_thumbprint=new_print,
        )
        return stored

    # -- orders ---------------------------------------------------------------------------------------

    def _identifier(self, d: Directory, raw: Any) -> tuple[Identifier, bool, tuple[str, ...]]:
        """(identifier as requested, wildcard, the challenge types it gets) or rejectedIdentifier."""
        if not isinstance(raw, dict) or not isinstance(raw.get("value"), str) or not isinstance(raw.get("type"), str):
            raise AcmeProblem("malformed", "each identifier needs a type and a value")
        kind, value = raw["type"], raw["value"]
        policy = d.policy
        if kind == "ip":
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                raise AcmeProblem("malformed", f"{value[:64]!r} is not an IP address") from None
            if not policy.allow_ip:
                raise AcmeProblem("rejectedIdentifier", "this directory does not issue for IP addresses")
            if str(address) != value:
                raise AcmeProblem("malformed", "IP identifiers must be in their canonical form (RFC 8738)")
            return Identifier("ip", value), False, tuple(t for t in policy.challenge_types if t == "http-01")
        if kind != "dns":
            raise AcmeProblem("unsupportedIdentifier", f"identifier type {kind[:20]!r} is not supported")
        name = value.lower()
        wildcard = name.startswith("*.")
        base = name[2:] if wildcard else name
        if san_problem(SubjectAltName(SanType.DNS, name)) is not None or "*" in base or name.endswith("."):
            raise AcmeProblem("rejectedIdentifier", f"{value[:80]!r} is not a valid DNS name")
        if wildcard and not policy.allow_wildcards:
            raise AcmeProblem("rejectedIdentifier", "this directory does not issue wildcard names")
        if not any(base == s or base.endswith("." + s) for s in policy.allowed_domains):
            raise AcmeProblem("rejectedIdentifier", f"{value[:80]!r} is outside the names this directory issues for")
        types = tuple(t for t in policy.challenge_types if t == "dns-01") if wildcard else policy.challenge_types
        return Identifier("dns", value), wildcard, types

    async def new_order(self, d: Directory, account: Account, payload: dict[str, Any]) -> AcmeOrder:
        raw = payload.get("identifiers")
        if not isinstance(raw, list) or not raw:
            raise AcmeProblem("malformed", "identifiers must be a non-empty list")
        if len(raw) > MAX_IDENTIFIERS:
            raise AcmeProblem("rejectedIdentifier", f"at most {MAX_IDENTIFIERS} identifiers per order")
        if payload.get("notBefore") is not None or payload.get("notAfter") is not None:
            raise AcmeProblem("malformed", "notBefore and notAfter are not supported; the policy sets the validity")
        checked = [self._identifier(d, item) for item in raw]
        seen: set[tuple[str, str]] = set()
        for ident, _, types in checked:
            key = (ident.type, ident.value.lower())
            if key in seen:
                raise AcmeProblem("malformed", f"identifier {ident.value[:80]!r} is listed twice")
            seen.add(key)
            if not types:
                raise AcmeProblem(
                    "rejectedIdentifier", f"no challenge type of this directory can validate {ident.value[:80]!r}"
                )
        check_ca(d.ca, self._clock())
        now = self._clock()
        expires = now + timedelta(days=ORDER_DAYS)
        order_id = self._new_id()
        replaces = payload.get("replaces")
        if replaces is not None:
            await self._claim_replaced(d, account, replaces, order_id)
        authzs = [
            Authorization(
                id=self._new_id(),
                ca_id=d.ca.id,
                project_id=d.ca.project_id,
                account_id=account.id,
                order_id=order_id,
                identifier=Identifier(ident.type, ident.value[2:] if wildcard else ident.value),
                wildcard=wildcard,
                status=PENDING,
                expires=expires,
                challenges=tuple(Challenge(id=self._new_id(), type=t, token=b64e(os.urandom(32))) for t in types),
                create_time=now,
            )
            for ident, wildcard, types in checked
        ]
        order = AcmeOrder(
            id=order_id,
            ca_id=d.ca.id,
            project_id=d.ca.project_id,
            account_id=account.id,
            status=PENDING,
            identifiers=tuple(ident for ident, _, _ in checked),
            authorization_ids=tuple(a.id for a in authzs),
            expires=expires,
            create_time=now,
            not_after_days=d.policy.max_validity_days,
            replaces=replaces,
        )
        await self._store.insert_order(order, authzs)
        return order

    async def _claim_replaced(self, d: Directory, account: Account, replaces: Any, order_id: str) -> None:
        cert = await self._ari_certificate(d, replaces)
        if cert.account_id != account.id:
            raise AcmeProblem("unauthorized", "the certificate to replace was not issued to this account", 403)
        if not await self._store.mark_replaced(d.ca.id, cert.serial_number, order_id):
            raise AcmeProblem("alreadyReplaced", "an order has replaced this certificate already", 409)

    async def _owned_order(self, d: Directory, account: Account, order_id: str) -> AcmeOrder:
        order = await self._store.get_order(d.ca.id, order_id)
        if order is None or order.account_id != account.id:
            raise AcmeProblem("malformed", "no such order for this account", 404)
        return order

    async def order(self, d: Directory, account: Account, order_id: str) -> AcmeOrder:
        return await self.refresh_order(await self._owned_order(d, account, order_id))

    async def refresh_order(self, order: AcmeOrder) -> AcmeOrder:
        """A pending order becomes ready when all its authorizations are valid, invalid when one is not,
        or expired (invalid) past its expiry."""
        if order.status != PENDING:
            return order
        now = self._clock()
        authzs = [await self._store.get_authorization(order.ca_id, a) for a in order.authorization_ids]
        states = [a.status if a is not None else INVALID for a in authzs]
        if order.expires <= now:
            status, error = INVALID, {"type": "urn:ietf:params:acme:error:malformed", "detail": "the order expired"}
        elif any(s in (INVALID, DEACTIVATED) for s in states):
            status = INVALID
            error = {
                "type": "urn:ietf:params:acme:error:unauthorized",
                "detail": "an authorization of the order failed",
            }
        elif all(s == VALID for s in states):
            status, error = READY, None
        else:
            return order
        try:
            return await self._store.replace_order(
                replace(order, status=status, error=error), expected_revision=order.revision
            )
        except ConflictError:
            current = await self._store.get_order(order.ca_id, order.id)
            return current if current is not None else order

    async def orders(self, d: Directory, account: Account, after: str, limit: int) -> list[AcmeOrder]:
        return await self._store.list_orders(d.ca.id, account.id, after, limit)

    # -- authorizations and challenges ------------------------------------------------------------------

    async def authorization(self, d: Directory, account: Account, authz_id: str) -> Authorization:
        authz = await self._store.get_authorization(d.ca.id, authz_id)
        if authz is None or authz.account_id != account.id:
            raise AcmeProblem("malformed", "no such authorization for this account", 404)
        if authz.status == PENDING and authz.expires <= self._clock():
            return replace(authz, status="expired")
        return authz

    async def deactivate_authorization(self, d: Directory, account: Account, authz_id: str) -> Authorization:
        authz = await self.authorization(d, account, authz_id)
        if authz.status not in (PENDING, VALID):
            raise AcmeProblem("malformed", f"the authorization is {authz.status}")
        try:
            stored = await self._store.replace_authorization(
                replace(authz, status=DEACTIVATED), expected_revision=authz.revision
            )
        except ConflictError:
            raise AcmeProblem("malformed", "the authorization changed concurrently; retry", 409) from None
        order = await self._store.get_order(d.ca.id, authz.order_id)
        if order is not None:
            await self.refresh_order(order)
        return stored

    async def answer_challenge(
        self, d: Directory, account: Account, authz_id: str, challenge_id: str
    ) -> tuple[Authorization, Challenge]:
        """pending -> processing (the validation worker takes it from there); any other state as it is."""
        for _ in range(8):
            authz = await self.authorization(d, account, authz_id)
            challenge = next((c for c in authz.challenges if c.id == challenge_id), None)
            if challenge is None:
                raise AcmeProblem("malformed", "no such challenge", 404)
            if challenge.status != PENDING or authz.status != PENDING:
                return authz, challenge
            if any(c.status == PROCESSING for c in authz.challenges):
                return authz, challenge
            updated = replace(
                authz,
                challenges=tuple(
                    replace(c, status=PROCESSING) if c.id == challenge_id else c for c in authz.challenges
                ),
                claim_until=None,
            )
            try:
                stored = await self._store.replace_authorization(updated, expected_revision=authz.revision)
            except ConflictError:
                continue
            if self.answer_wait_seconds <= 0:
                self.on_challenge()
                return stored, next(c for c in stored.challenges if c.id == challenge_id)
            done = self._validated.setdefault(stored.id, asyncio.Event())
            self.on_challenge()
            try:
                await asyncio.wait_for(done.wait(), self.answer_wait_seconds)
            except TimeoutError:
                pass  # a slow probe, or another replica's worker took it: the answer says processing
            finally:
                if self._validated.get(stored.id) is done:
                    del self._validated[stored.id]
            return await self.challenge(d, account, authz_id, challenge_id)
        raise AcmeProblem("malformed", "the authorization changed concurrently; retry", 409)

    async def challenge(
        self, d: Directory, account: Account, authz_id: str, challenge_id: str
    ) -> tuple[Authorization, Challenge]:
        authz = await self.authorization(d, account, authz_id)
        challenge = next((c for c in authz.challenges if c.id == challenge_id), None)
        if challenge is None:
            raise AcmeProblem("malformed", "no such challenge", 404)
        return authz, challenge

    async def record_validation(
        self, authz: Authorization, challenge_id: str, problem: tuple[str, str] | None
    ) -> Authorization:
        """The validation worker's outcome on its claimed authorization (compare-and-swap on its revision)."""
        now = self._clock()
        challenges = []
        for c in authz.challenges:
            if c.id == challenge_id:
                if problem is None:
                    c = replace(c, status=VALID, validated=now)
                else:
                    c = replace(
                        c,
                        status=INVALID,
                        error={"type": f"urn:ietf:params:acme:error:{problem[0]}", "detail": problem[1], "status": 400},
                    )
            challenges.append(c)
        updated = replace(
            authz, challenges=tuple(challenges), status=VALID if problem is None else INVALID, claim_until=None
        )
        stored = await self._store.replace_authorization(updated, expected_revision=authz.revision)
        order = await self._store.get_order(authz.ca_id, authz.order_id)
        if order is not None:
            await self.refresh_order(order)
        waiting = self._validated.get(authz.id)
        if waiting is not None:  # the answer to the challenge is waiting in this process
            waiting.set()
        return stored

    # -- finalize and certificates ------------------------------------------------------------------------

    async def finalize(self, d: Directory, account: Account, order_id: str, payload: dict[str, Any]) -> AcmeOrder:
        order = await self.order(d, account, order_id)
        if order.status != READY:
            raise AcmeProblem("orderNotReady", f"the order is {order.status}, not ready", 403)
        try:
            der = b64d(payload.get("csr"), "csr")
            pem = csr_der_to_pem(der)
        except JoseError as exc:
            raise AcmeProblem("badCSR", exc.detail) from None
        try:
            facts = await in_executor(self._executor, inspect_csr, pem)
        except DomainError as exc:
            raise AcmeProblem("badCSR", str(exc)) from None
        if csr_asks_for_ca(der):
            raise AcmeProblem("badCSR", "the CSR asks for a CA certificate (basicConstraints CA:true)")
        wanted = {(i.type, i.value.lower()) for i in order.identifiers}
        got: set[tuple[str, str]] = set()
        for san in facts.sans:
            if san.type is SanType.DNS:
                got.add(("dns", san.value.lower()))
            elif san.type is SanType.IP:
                got.add(("ip", str(ipaddress.ip_address(san.value))))
            else:
                raise AcmeProblem("badCSR", "the CSR names something other than DNS names and IP addresses")
        if facts.subject is not None and facts.subject.common_name:
            cn = facts.subject.common_name.lower()
            if ("dns", cn) not in wanted and not any(v == cn for t, v in wanted if t == "ip"):
                raise AcmeProblem("badCSR", "the CSR's common name is not one of the order's identifiers")
        if got != wanted:
            raise AcmeProblem("badCSR", "the CSR's subject alternative names must be exactly the order's identifiers")
        csr_print = spki_thumbprint_of_pem(facts.public_key_pem)
        if csr_print is not None and (
            csr_print == account.thumbprint or await self._store.account_by_thumbprint(d.ca.id, csr_print) is not None
        ):
            raise AcmeProblem("badCSR", "the CSR's key is an ACME account key; use a separate key for the certificate")
        ca = await self._pca.get_authority(d.ca.project_id, d.ca.id)
        if ca is None:
            raise AcmeProblem("serverInternal", "the CA is gone", 500)
        now = self._clock()
        check_ca(ca, now)
        self.issuer.plan(ca, order, facts, d.policy.max_validity_days, now)  # refusals before anything is written
        try:
            processing = await self._store.replace_order(
                replace(
                    order,
                    status=PROCESSING,
                    csr_pem=pem,
                    certificate_id=self._new_id(),
                    claim_until=self.issuer.lease(),
                ),
                expected_revision=order.revision,
            )
        except ConflictError:
            raise AcmeProblem("orderNotReady", "the order is being finalized already", 403) from None
        try:
            return await self.issuer.complete(processing, facts=facts)
        except StoreUnavailableError:
            # The order stays processing under this request's lease; a finalize worker resumes it when the
            # lease lapses. The client polls the order (Retry-After) as RFC 8555 7.4 lets it.
            log.warning("ACME order %s: the store failed mid-finalize; it is resumed later", order.id)
            return processing

    async def certificate_chain(self, d: Directory, account: Account, order_id: str) -> str:
        order = await self._owned_order(d, account, order_id)
        if order.certificate_id is None or order.status != VALID:
            raise AcmeProblem("malformed", "the order has no certificate", 404)
        cert = await self._pca.get_certificate(order.project_id, order.certificate_id)
        if cert is None:
            raise AcmeProblem("malformed", "the certificate is gone", 404)
        return _pem_lines(cert.certificate_pem) + _pem_lines(cert.chain_pem)

    # -- revocation and ARI -------------------------------------------------------------------------------

    async def revoke(
        self, d: Directory, account: Account | None, key: PublicKey | None, payload: dict[str, Any]
    ) -> None:
        """By the account that ordered the certificate, or by a JWS signed with the certificate's own key."""
        try:
            der = b64d(payload.get("certificate"), "certificate")
            serial, _aki, public_pem = certificate_facts(der)
        except JoseError as exc:
            raise _problem_of(exc) from None
        reason_code = payload.get("reason", 0)
        if not isinstance(reason_code, int) or isinstance(reason_code, bool) or reason_code not in _REASONS:
            raise AcmeProblem("badRevocationReason", "reason must be one of 0, 1, 3, 4, 5, 9")
        record = await self._store.get_certificate(d.ca.id, serial)
        issued = None if record is None else await self._pca.get_certificate(d.ca.project_id, record.certificate_id)
        if record is None or issued is None or _der_of(issued.certificate_pem) != der:
            raise AcmeProblem("malformed", "this directory did not issue the certificate", 404)
        if account is not None:
            if record.account_id != account.id:
                raise AcmeProblem("unauthorized", "the certificate was not issued to this account", 403)
            actor = account_principal(account.id, d.ca.project_id)
            how = "account"
        else:
            assert key is not None
            if spki_thumbprint_of_pem(public_pem) != thumbprint(key):
                raise AcmeProblem("unauthorized", "the JWS is not signed with the certificate's key", 403)
            actor = account_principal(f"certificate-key:{record.certificate_id}", d.ca.project_id)
            how = "certificate key"
        try:
            await self._issued.revoke(actor, d.ca.project_id, record.certificate_id, _REASONS[reason_code].value)
        except AlreadyRevokedError:
            raise AcmeProblem("alreadyRevoked", "the certificate is revoked already") from None
        await self._record(
            actor,
            d.ca.project_id,
            "acme.certificate.revoke",
            "private_certificate",
            record.certificate_id,
            serial_number=serial,
            reason=_REASONS[reason_code],
            by=how,
        )

    async def _ari_certificate(self, d: Directory, cert_id: Any) -> AcmeCertificate:
        if not isinstance(cert_id, str) or cert_id.count(".") != 1:
            raise AcmeProblem("malformed", "a certID is base64url(AKI).base64url(serial)")
        aki_text, serial_text = cert_id.split(".")
        try:
            aki, serial_raw = b64d(aki_text, "certID"), b64d(serial_text, "certID")
        except JoseError as exc:
            raise _problem_of(exc) from None
        if not serial_raw or not aki:
            raise AcmeProblem("malformed", "a certID is base64url(AKI).base64url(serial)")
        serial = int.from_bytes(serial_raw, "big")
        record = await self._store.get_certificate(d.ca.id, str(serial))
        if record is None or d.ca.certificate_pem is None or cert_id_of(aki, serial) != cert_id:
            raise AcmeProblem("malformed", "this directory did not issue the certificate", 404)
        issued = await self._pca.get_certificate(d.ca.project_id, record.certificate_id)
        if issued is None or aki_of_pem(issued.certificate_pem) != aki:
            raise AcmeProblem("malformed", "this directory did not issue the certificate", 404)
        return record

    async def renewal_info(self, d: Directory, cert_id: str) -> tuple[datetime, datetime]:
        """The suggested renewal window (RFC 9773): the last third of the lifetime starts it; revoked now."""
        record = await self._ari_certificate(d, cert_id)
        issued = await self._pca.get_certificate(d.ca.project_id, record.certificate_id)
        now = self._clock()
        if issued is not None and issued.status is IssuedStatus.REVOKED:
            return now - timedelta(hours=1), now
        life = record.not_after - record.not_before
        start = record.not_before + life * 2 / 3
        return start, start + life / 6


def load_public(key: PublicKey) -> dict[str, str]:
    from gatewaycerts.pki.jws import public_jwk

    return public_jwk(key)


def thumbprint_of_jwk(jwk: Any) -> str | None:
    try:
        return thumbprint(load_jwk(jwk))
    except JoseError:
        return None


def _json(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        raise JoseError("malformed", "not JSON") from None


def _pem_lines(pem: str) -> str:
    return pem if pem.endswith("\n") or not pem else pem + "\n"


def _der_of(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)
