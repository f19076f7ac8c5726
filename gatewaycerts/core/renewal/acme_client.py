"""The ACME client's records: per-project ACME accounts, DNS update configurations, and the http-01 tokens the
gateways answer; and the Protocols of the outbound adapters (connectors/acme_client.py, connectors/dns_update.py,
the address guard) that app.py wires in.

An account is registered with its CA when it is created (eagerly: a wrong directory, an unreachable CA or a
refused External Account Binding is the create call's error, and nothing is stored). Its key (EC P-256) is
generated here and stored only as a KeyVault envelope, as is the EAB HMAC key; neither is ever returned.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.certificates import check_instance_id
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.delivery.rules import authorize_delivery
from gatewaycerts.core.ids import new_id
from gatewaycerts.domain.acme_client import (
    AccountCredentials,
    AcmeAccount,
    AcmeAccountNotFoundError,
    AcmeDirectoryError,
    AcmeOrder,
    AcmeProblem,
    AcmeRegistrationError,
    ChallengeToken,
    ChallengeTokenNotFoundError,
    ChallengeType,
    DnsUpdateConfig,
    DnsUpdateConfigNotFoundError,
    DnsUpdateTarget,
    TsigKey,
)
from gatewaycerts.domain.errors import InvalidInputError, MissingParameterError, QuotaExceededError
from gatewaycerts.domain.models import Action, Principal
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.store.interfaces import AcmeClientStore

MAX_ACCOUNTS = 20
MAX_DNS_CONFIGS = 20
MAX_URL = 1024
TOKEN_LIFETIME = timedelta(hours=1)
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_ID = re.compile(r"[0-9a-zA-Z]{1,64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_EMAIL = re.compile(r"mailto:[^@\s,]+@[^@\s,]+\.[^@\s,]+")
# Problems the tenant must fix before a retry can succeed; anything else is retried with backoff.
PERMANENT_PROBLEMS = frozenset(
    {
        "rejectedIdentifier",
        "unsupportedIdentifier",
        "badCSR",
        "caa",
        "externalAccountRequired",
        "accountDoesNotExist",
        "unauthorized",
        "unsupportedChallenge",
        "userActionRequired",
        "malformed",
    }
)


# -- what core needs from the outside (app.py wires the connectors) -----------------------------------------


class AcmeProtocol(Protocol):
    async def register(
        self, creds: AccountCredentials, contact: tuple[str, ...], terms_agreed: bool, eab: tuple[str, bytes] | None
    ) -> str: ...

    async def new_order(
        self,
        creds: AccountCredentials,
        domains: tuple[str, ...],
        *,
        challenge: ChallengeType,
        profile: str | None = None,
        replaces: str | None = None,
    ) -> AcmeOrder: ...

    async def answer_and_finalize(self, creds: AccountCredentials, order: AcmeOrder, csr_der: bytes) -> str: ...

    async def renewal_window(self, directory_url: str, chain_pem: str) -> tuple[datetime, datetime] | None: ...

    def replaces_id(self, chain_pem: str) -> str: ...


class DnsUpdateProtocol(Protocol):
    async def add_txt(self, target: DnsUpdateTarget, domain: str, value: str) -> None: ...

    async def delete_txt(self, target: DnsUpdateTarget, domain: str, value: str) -> None: ...


class AddressResolver(Protocol):
    """The outbound address guard (connectors.addresses.AddressPolicy)."""

    async def resolve(self, host: str, port: int) -> Sequence[Any]: ...


# -- input --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountInput:
    directory_url: str | None
    contact: Sequence[str] = ()
    terms_agreed: bool | None = None
    eab_kid: str | None = None
    eab_hmac_key: str | None = None  # base64url, as CAs hand it out


@dataclass(frozen=True, slots=True)
class DnsConfigInput:
    server: str | None
    zone: str | None
    tsig_key_name: str | None
    tsig_secret: str | None  # base64, as BIND's tsig-keygen prints it
    port: int = 53
    tsig_algorithm: str = "hmac-sha256"


def _b64(value: str, field: str) -> bytes:
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        raise InvalidInputError(f"Invalid parameter value, parameterName:{field}. Use base64", field=field)
    return raw


def _dns_name(value: str, field: str) -> str:
    name = value.strip().rstrip(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidInputError(f"Invalid parameter value, parameterName:{field}. Use a DNS name", field=field)
    return name + "."


def _check_directory_url(url: str | None) -> str:
    if not url:
        raise MissingParameterError("Missing parameter: directory_url", field="directory_url")
    if len(url) > MAX_URL or not url.startswith("https://") or any(c.isspace() for c in url):
        raise InvalidInputError(
            "Invalid parameter value, parameterName:directory_url. Use the CA's https:// directory URL",
            field="directory_url",
        )
    return url


def key_context(project_id: str, account_id: str) -> str:
    return f"acme-account:{project_id}:{account_id}"


def eab_context(project_id: str, account_id: str) -> str:
    return f"acme-account-eab:{project_id}:{account_id}"


def tsig_context(project_id: str, config_id: str) -> str:
    return f"dns-update-tsig:{project_id}:{config_id}"


class AcmeClientService:
    def __init__(
        self,
        store: AcmeClientStore,
        vault: KeyVault,
        acme: AcmeProtocol,
        resolver: AddressResolver,
        *,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._store = store
        self._vault = vault
        self.acme = acme
        self._resolver = resolver
        self._audit = audit or AuditLog(None)
        self._clock = clock

    def authorize_manage(self, principal: Principal, project_id: str) -> None:
        """Before the body is read: a caller who may not manage accounts is refused (403), whatever it sent."""
        authorize(principal, project_id, Action.MANAGE_CA)

    # -- accounts ---------------------------------------------------------------------------------------

    async def create_account(self, principal: Principal, project_id: str, body: AccountInput) -> AcmeAccount:
        authorize(principal, project_id, Action.MANAGE_CA)
        url = _check_directory_url(body.directory_url)
        if body.terms_agreed is not True:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:terms_agreed. The CA's terms of service must be agreed (true)",
                field="terms_agreed",
            )
        contact = tuple(body.contact)
        if len(contact) > 4 or not all(isinstance(c, str) and _EMAIL.fullmatch(c) for c in contact):
            raise InvalidInputError(
                "Invalid parameter value, parameterName:contact. Use up to 4 mailto: addresses", field="contact"
            )
        if (body.eab_kid is None) != (body.eab_hmac_key is None):
            raise InvalidInputError(
                "Invalid parameter value, parameterName:eab_kid. Give eab_kid and eab_hmac_key together",
                field="eab_kid",
            )
        eab: tuple[str, bytes] | None = None
        if body.eab_kid is not None and body.eab_hmac_key is not None:
            if not body.eab_kid or len(body.eab_kid) > 256:
                raise InvalidInputError("Invalid parameter value, parameterName:eab_kid", field="eab_kid")
            eab = (body.eab_kid, _b64(body.eab_hmac_key, "eab_hmac_key"))
        if len(await self._store.list_accounts(project_id)) >= MAX_ACCOUNTS:
            raise QuotaExceededError(f"a project has at most {MAX_ACCOUNTS} ACME accounts", field="directory_url")
        key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            account_url = await self.acme.register(AccountCredentials(url, key_pem, None), contact, True, eab)
        except AcmeProblem as problem:
            if problem.type in ("unreachable", "malformed"):
                raise AcmeDirectoryError(
                    f"The ACME directory cannot be used, parameterName:directory_url. {problem.detail}",
                    field="directory_url",
                ) from None
            raise AcmeRegistrationError(
                f"The ACME CA refused the account: {problem.type}: {problem.detail}", field="directory_url"
            ) from None
        account_id = new_id()
        account = AcmeAccount(
            id=account_id,
            project_id=project_id,
            directory_url=url,
            contact=contact,
            terms_agreed=True,
            eab_kid=None if eab is None else eab[0],
            eab_hmac_envelope=None
            if eab is None
            else self._vault.encrypt(eab[1], context=eab_context(project_id, account_id)),
            key_envelope=self._vault.encrypt(key_pem, context=key_context(project_id, account_id)),
            account_url=account_url,
            create_time=self._clock(),
        )
        await self._store.insert_account(account)
        await self._audit.record(principal, project_id, "acme.account.create", "acme_account", account_id)
        return account

    async def list_accounts(self, principal: Principal, project_id: str) -> list[AcmeAccount]:
        authorize(principal, project_id, Action.READ)
        return await self._store.list_accounts(project_id)

    async def get_account(self, principal: Principal, project_id: str, account_id: str) -> AcmeAccount:
        authorize(principal, project_id, Action.READ)
        return await self.account(project_id, account_id)

    async def account(self, project_id: str, account_id: str) -> AcmeAccount:
        found = await self._store.get_account(project_id, account_id) if _ID.fullmatch(account_id) else None
        if found is None:
            raise AcmeAccountNotFoundError("the ACME account does not exist", field="account_id")
        return found

    async def delete_account(self, principal: Principal, project_id: str, account_id: str) -> None:
        authorize(principal, project_id, Action.MANAGE_CA)
        if not _ID.fullmatch(account_id) or not await self._store.delete_account(project_id, account_id):
            raise AcmeAccountNotFoundError("the ACME account does not exist", field="account_id")
        await self._audit.record(principal, project_id, "acme.account.delete", "acme_account", account_id)

    def credentials(self, account: AcmeAccount) -> AccountCredentials:
        key_pem = self._vault.decrypt(account.key_envelope, context=key_context(account.project_id, account.id))
        return AccountCredentials(account.directory_url, key_pem, account.account_url)

    # -- DNS update configurations ---------------------------------------------------------------------

    async def create_dns_config(self, principal: Principal, project_id: str, body: DnsConfigInput) -> DnsUpdateConfig:
        authorize(principal, project_id, Action.MANAGE_CA)
        if not body.server:
            raise MissingParameterError("Missing parameter: server", field="server")
        server = body.server.strip()
        try:
            server = str(ipaddress.ip_address(server))
        except ValueError:
            server = _dns_name(server, "server").rstrip(".")
        if not isinstance(body.port, int) or not 1 <= body.port <= 65535:
            raise InvalidInputError("Invalid parameter value, parameterName:port. Use 1 to 65535", field="port")
        if not body.zone:
            raise MissingParameterError("Missing parameter: zone", field="zone")
        if not body.tsig_key_name:
            raise MissingParameterError("Missing parameter: tsig_key_name", field="tsig_key_name")
        if body.tsig_algorithm not in TSIG_ALGORITHMS:
            raise InvalidInputError(
                f"Invalid parameter value, parameterName:tsig_algorithm. Use one of {', '.join(TSIG_ALGORITHMS)}",
                field="tsig_algorithm",
            )
        if not body.tsig_secret:
            raise MissingParameterError("Missing parameter: tsig_secret", field="tsig_secret")
        secret = _b64(body.tsig_secret, "tsig_secret")
        if len(await self._store.list_dns_configs(project_id)) >= MAX_DNS_CONFIGS:
            raise QuotaExceededError(f"a project has at most {MAX_DNS_CONFIGS} DNS update configurations")
        config_id = new_id()
        config = DnsUpdateConfig(
            id=config_id,
            project_id=project_id,
            server=server,
            port=body.port,
            zone=_dns_name(body.zone, "zone"),
            tsig_key_name=_dns_name(body.tsig_key_name, "tsig_key_name"),
            tsig_algorithm=body.tsig_algorithm,
            tsig_secret_envelope=self._vault.encrypt(secret, context=tsig_context(project_id, config_id)),
            create_time=self._clock(),
        )
        await self._store.insert_dns_config(config)
        await self._audit.record(principal, project_id, "dns.update_config.create", "dns_update_config", config_id)
        return config

    async def list_dns_configs(self, principal: Principal, project_id: str) -> list[DnsUpdateConfig]:
        authorize(principal, project_id, Action.READ)
        return await self._store.list_dns_configs(project_id)

    async def get_dns_config(self, principal: Principal, project_id: str, config_id: str) -> DnsUpdateConfig:
        authorize(principal, project_id, Action.READ)
        return await self.dns_config(project_id, config_id)

    async def dns_config(self, project_id: str, config_id: str) -> DnsUpdateConfig:
        found = await self._store.get_dns_config(project_id, config_id) if _ID.fullmatch(config_id) else None
        if found is None:
            raise DnsUpdateConfigNotFoundError("the DNS update configuration does not exist", field="dns_config_id")
        return found

    async def delete_dns_config(self, principal: Principal, project_id: str, config_id: str) -> None:
        authorize(principal, project_id, Action.MANAGE_CA)
        if not _ID.fullmatch(config_id) or not await self._store.delete_dns_config(project_id, config_id):
            raise DnsUpdateConfigNotFoundError("the DNS update configuration does not exist", field="dns_config_id")
        await self._audit.record(principal, project_id, "dns.update_config.delete", "dns_update_config", config_id)

    async def dns_target(self, config: DnsUpdateConfig) -> DnsUpdateTarget:
        """The checked address of the server (the address guard) and the TSIG key, opened from its envelope."""
        addresses = await self._resolver.resolve(config.server, config.port)
        secret = self._vault.decrypt(config.tsig_secret_envelope, context=tsig_context(config.project_id, config.id))
        key = TsigKey(config.tsig_key_name, config.tsig_algorithm, secret)
        return DnsUpdateTarget(str(addresses[0]), config.port, config.zone, key)

    # -- http-01 tokens -----------------------------------------------------------------------------------

    async def present_token(self, project_id: str, token: str, key_authorization: str) -> None:
        """Store the answer for any replica; tokens left by an attempt that died mid-way expire and are
        deleted here (one indexed delete) by the next attempt of any certificate."""
        await self._store.delete_expired_tokens(self._clock())
        await self._store.put_token(
            ChallengeToken(project_id, token, key_authorization, self._clock() + TOKEN_LIFETIME)
        )

    async def forget_token(self, project_id: str, token: str) -> None:
        await self._store.delete_token(project_id, token)

    async def challenge_answer(self, principal: Principal, project_id: str, instance_id: str, token: str) -> str:
        """The key authorization of a live token, for a gateway of the project (any of its instances)."""
        check_instance_id(instance_id)
        authorize_delivery(principal, project_id, instance_id)
        found = await self._store.get_token(project_id, token) if _TOKEN.fullmatch(token) else None
        if found is None or found.expire_time <= self._clock():
            raise ChallengeTokenNotFoundError("no ACME challenge with this token")
        return found.key_authorization
