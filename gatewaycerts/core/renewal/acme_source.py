"""AcmeSource: the CertificateSource of ACME managed certificates.

issue: the project's account -> newOrder (with ``replaces`` = the RFC 9773 certID of the chain being renewed)
-> present each challenge (http-01: the key authorization in the store, answered by any replica through the
gateways' delivery route; dns-01: a TXT record at _acme-challenge.<name> by an RFC 2136 update signed with
TSIG) -> tell the CA -> poll -> finalize with the loop's CSR -> the chain. The challenge records are removed
whatever happens. renewal_window: the CA's ARI window, None when its directory has no renewalInfo.

Settings of an ACME managed certificate (IssueRequest.settings):
    account_id      the project's ACME account (required)
    challenge       "http-01" (default) or "dns-01" (required for a wildcard)
    dns_config_id   the DNS update configuration (required with dns-01)
    profile         the CA's profile name (optional; Pebble picks a random one without it)
"""

from __future__ import annotations

import logging
from datetime import datetime

from gatewaycerts.core.renewal.acme_client import PERMANENT_PROBLEMS, AcmeClientService, DnsUpdateProtocol
from gatewaycerts.core.renewal.sources import Issued, IssueFailed, IssueRequest, SourceKind
from gatewaycerts.domain.acme_client import (
    AcmeAccountNotFoundError,
    AcmeOrder,
    AcmeProblem,
    ChallengeType,
    DnsUpdateConfigNotFoundError,
    DnsUpdateError,
    DnsUpdateTarget,
)
from gatewaycerts.domain.errors import InvalidInputError

log = logging.getLogger("gatewaycerts.renewal.acme")
_MAX_PROFILE = 64


def check_settings(domains: tuple[str, ...], settings: dict[str, object]) -> dict[str, object]:
    """The normalised settings of an ACME managed certificate; InvalidInputError naming the bad one."""
    account_id = settings.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        raise InvalidInputError("Invalid parameter value, parameterName:account_id", field="account_id")
    challenge = settings.get("challenge", ChallengeType.HTTP_01.value)
    if challenge not in {c.value for c in ChallengeType}:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:challenge. Use http-01 or dns-01", field="challenge"
        )
    out: dict[str, object] = {"account_id": account_id, "challenge": challenge}
    if challenge == ChallengeType.HTTP_01 and any(d.startswith("*.") for d in domains):
        raise InvalidInputError(
            "Invalid parameter value, parameterName:challenge. A wildcard name needs dns-01", field="challenge"
        )
    if challenge == ChallengeType.DNS_01:
        config_id = settings.get("dns_config_id")
        if not isinstance(config_id, str) or not config_id:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:dns_config_id. dns-01 needs a DNS update configuration",
                field="dns_config_id",
            )
        out["dns_config_id"] = config_id
    profile = settings.get("profile")
    if profile is not None:
        if not isinstance(profile, str) or not 0 < len(profile) <= _MAX_PROFILE:
            raise InvalidInputError("Invalid parameter value, parameterName:profile", field="profile")
        out["profile"] = profile
    return out


def _failed(problem: AcmeProblem) -> IssueFailed:
    text = f"{problem.type}: {problem.detail}" if problem.detail else problem.type
    return IssueFailed(text, retryable=problem.type not in PERMANENT_PROBLEMS)


class AcmeSource:
    kind = SourceKind.ACME

    def __init__(self, accounts: AcmeClientService, dns: DnsUpdateProtocol) -> None:
        self._accounts = accounts
        self._dns = dns

    async def check_settings(self, project_id: str, settings: dict[str, object]) -> dict[str, object]:
        """At creation (RenewalService): the settings are well formed and name this project's account (and DNS
        update configuration); InvalidInputError otherwise, so nothing is created."""
        out = check_settings((), settings)
        try:
            await self._accounts.account(project_id, str(out["account_id"]))
        except AcmeAccountNotFoundError:
            raise InvalidInputError(
                "Invalid parameter value, parameterName:acme.account_id. The project has no such ACME account",
                field="acme.account_id",
            ) from None
        if "dns_config_id" in out:
            try:
                await self._accounts.dns_config(project_id, str(out["dns_config_id"]))
            except DnsUpdateConfigNotFoundError:
                raise InvalidInputError(
                    "Invalid parameter value, parameterName:acme.dns_config_id. The project has no such DNS update "
                    "configuration",
                    field="acme.dns_config_id",
                ) from None
        return out

    async def issue(self, request: IssueRequest) -> Issued:
        try:
            settings = check_settings(request.domains, request.settings)
            account = await self._accounts.account(request.project_id, str(settings["account_id"]))
            target = None
            if settings["challenge"] == ChallengeType.DNS_01:
                config = await self._accounts.dns_config(request.project_id, str(settings["dns_config_id"]))
                target = await self._accounts.dns_target(config)
        except (InvalidInputError, AcmeAccountNotFoundError, DnsUpdateConfigNotFoundError) as exc:
            raise IssueFailed(exc.message, retryable=False) from None
        except Exception as exc:  # noqa: BLE001 - the address guard refusing the DNS server, or no address
            raise IssueFailed(f"DNS update server: {exc}", retryable=False) from None
        creds = self._accounts.credentials(account)
        challenge = ChallengeType(str(settings["challenge"]))
        profile = settings.get("profile")
        replaces = None
        if request.previous_chain_pem:
            try:
                replaces = self._accounts.acme.replaces_id(request.previous_chain_pem)
            except ValueError:
                replaces = None  # a chain without an AKI (an upload turned managed): nothing to replace
        try:
            try:
                order = await self._accounts.acme.new_order(
                    creds,
                    request.domains,
                    challenge=challenge,
                    profile=str(profile) if profile else None,
                    replaces=replaces,
                )
            except AcmeProblem as problem:
                if replaces is None or problem.type not in ("alreadyReplaced", "malformed"):
                    raise
                # the CA does not know the old certificate (another CA, or issued before ARI): order afresh
                log.info("newOrder refused replaces (%s); ordering without it", problem.type)
                order = await self._accounts.acme.new_order(
                    creds, request.domains, challenge=challenge, profile=str(profile) if profile else None
                )
            try:
                for chall in order.challenges:
                    if chall.type is ChallengeType.HTTP_01:
                        await self._accounts.present_token(request.project_id, chall.token, chall.key_authorization)
                    else:
                        assert target is not None
                        await self._dns.add_txt(target, chall.domain, chall.dns_value)
                chain = await self._accounts.acme.answer_and_finalize(creds, order, request.csr_der)
            finally:
                await self._clean_up(request.project_id, order, target)
        except AcmeProblem as problem:
            raise _failed(problem) from None
        except DnsUpdateError as exc:
            raise IssueFailed(str(exc), retryable=True) from None
        return Issued(chain_pem=chain)

    async def _clean_up(self, project_id: str, order: AcmeOrder, target: DnsUpdateTarget | None) -> None:
        for chall in order.challenges:
            try:
                if chall.type is ChallengeType.HTTP_01:
                    await self._accounts.forget_token(project_id, chall.token)
                elif target is not None:
                    await self._dns.delete_txt(target, chall.domain, chall.dns_value)
            except Exception as exc:  # noqa: BLE001 - a record left behind expires; never hide the real outcome
                log.warning("could not remove the %s record of %s: %s", chall.type.value, chall.domain, exc)

    async def renewal_window(
        self, project_id: str, settings: dict[str, object], chain_pem: str
    ) -> tuple[datetime, datetime] | None:
        try:
            account = await self._accounts.account(project_id, str(settings.get("account_id", "")))
            return await self._accounts.acme.renewal_window(account.directory_url, chain_pem)
        except (AcmeProblem, AcmeAccountNotFoundError) as exc:
            log.info("no ARI window (%s): renewing when a third of the lifetime remains", exc)
            return None
