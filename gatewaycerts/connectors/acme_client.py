"""The ACME client connector: certbot's `acme` package (ClientV2, synchronous: requests + time.sleep) run in
the thread pool, one ClientNetwork per call (the account key and the account URL come from the store).

What the library does not do, done here:
- ``replaces`` (RFC 9773 §5): the library's ``new_order`` has no parameter for it, so the newOrder body is a
  subclass of ``messages.NewOrder`` with a ``replaces`` field, POSTed through the library's own JWS/nonce
  machinery (``ClientNetwork.post``), and the order resource is built the way ``ClientV2.new_order`` does.
- ARI: the certID path is computed here (the library's helper is private) and the window read with a plain
  GET of ``{renewalInfo}/{certID}``; ``ClientV2.renewal_time`` picks a random time but hides the window.
- ``badNonce``: the library retries once; a second spurious badNonce (Pebble rejects 5 % of nonces) is
  retried here up to three times per request.
- The outbound address guard: every host of the directory (and the URLs it names) is resolved and checked
  by AddressPolicy before the library connects. The library (requests) resolves the name again when it
  connects, so a name whose DNS answer changes between the two lookups is not caught (documented gap).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewaycerts.connectors.addresses import AddressPolicy, AddressRefused
from gatewaycerts.domain.acme_client import (
    AccountCredentials,
    AcmeOrder,
    AcmeProblem,
    ChallengeType,
    PendingChallenge,
)

T = TypeVar("T")
USER_AGENT = "gatewaycerts-acme"
_BAD_NONCE_RETRIES = 3


class _NewOrder(messages.NewOrder):
    """newOrder with the ARI ``replaces`` field (RFC 9773 §5)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


def ari_cert_id(chain_pem: str | bytes) -> str:
    """RFC 9773 §4.1 certID of the leaf: base64url(AKI keyIdentifier) "." base64url(DER serial), no padding."""
    data = chain_pem.encode() if isinstance(chain_pem, str) else chain_pem
    leaf = x509.load_pem_x509_certificate(data)
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    if aki is None:
        raise ValueError("the certificate has no authority key identifier")
    serial = leaf.serial_number
    serial_der = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # room for the sign bit, as DER does

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    return f"{b64(aki)}.{b64(serial_der)}"


def _problem(exc: BaseException) -> AcmeProblem:
    """One AcmeProblem for whatever the library raised."""
    if isinstance(exc, AcmeProblem):
        return exc
    if isinstance(exc, messages.Error):
        return AcmeProblem(exc.code or "serverInternal", exc.detail or exc.description or "")
    if isinstance(exc, errors.ValidationError):
        for authzr in exc.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    ident = authzr.body.identifier.value
                    return AcmeProblem(chall.error.code or "unauthorized", f"{ident}: {chall.error.detail or ''}")
        return AcmeProblem("unauthorized", "an authorization failed")
    if isinstance(exc, errors.IssuanceError):
        return _problem(exc.error)
    if isinstance(exc, errors.TimeoutError):
        return AcmeProblem("timeout", "the CA did not finish the order in time")
    if isinstance(exc, AddressRefused):
        return AcmeProblem("unreachable", str(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        return AcmeProblem("unreachable", "TLS handshake with the CA failed (untrusted or invalid certificate)")
    if isinstance(exc, requests.exceptions.RequestException):
        return AcmeProblem("unreachable", f"the CA cannot be reached: {type(exc).__name__} {exc}")
    if isinstance(exc, errors.ConflictError):
        return AcmeProblem("conflict", "the CA answered 409 Conflict", status=409)
    if isinstance(exc, errors.ClientError | errors.Error):
        return AcmeProblem("malformed", f"unexpected answer from the CA: {exc}")
    if isinstance(exc, ValueError | KeyError | json.JSONDecodeError | jose.DeserializationError):
        return AcmeProblem("malformed", "the CA's answer is not valid ACME")
    raise exc


def _retry_bad_nonce(op: Callable[[], T]) -> T:
    for attempt in range(_BAD_NONCE_RETRIES):
        try:
            return op()
        except messages.Error as exc:
            if exc.code != "badNonce" or attempt == _BAD_NONCE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


class AcmeClient:
    """Implements core.renewal.acme_source.AcmeProtocol."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        poll_seconds: float = 90.0,
    ) -> None:
        self._policy = policy
        self._verify: bool | str = ca_bundle or True
        self._timeout = timeout
        self._poll_seconds = poll_seconds

    # -- plumbing -------------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, partial(fn, *args))
        except AcmeProblem:
            raise
        except Exception as exc:  # noqa: BLE001 - every library error becomes one AcmeProblem
            raise _problem(exc) from None

    async def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise AcmeProblem("malformed", "an ACME directory URL must be https://host/...")
        try:
            await self._policy.resolve(parts.hostname, parts.port or 443)
        except AddressRefused as exc:
            raise AcmeProblem("unreachable", str(exc)) from None

    def _net(self, key_pem: bytes | None, account_url: str | None) -> client.ClientNetwork:
        key = None
        if key_pem is not None:
            key = jose.JWKEC(key=serialization.load_pem_private_key(key_pem, password=None))
        net = client.ClientNetwork(key, alg=jose.ES256, user_agent=USER_AGENT, timeout=int(self._timeout))
        net.verify_ssl = self._verify  # type: ignore[assignment] - requests takes a CA bundle path too
        if account_url is not None:
            net.account = messages.RegistrationResource(body=messages.Registration(), uri=account_url)
        return net

    def _client(self, directory_url: str, net: client.ClientNetwork) -> client.ClientV2:
        response = net.get(directory_url)
        try:
            directory = messages.Directory.from_json(response.json())
            for needed in ("newNonce", "newAccount", "newOrder"):
                directory[needed]
        except (ValueError, KeyError, jose.DeserializationError):
            raise AcmeProblem("malformed", "the URL does not serve an ACME directory") from None
        return client.ClientV2(directory, net)

    async def _open(self, creds: AccountCredentials) -> client.ClientV2:
        await self._check_url(creds.directory_url)
        net = self._net(creds.key_pem, creds.account_url)
        acme = await self._run(self._client, creds.directory_url, net)
        for name in ("newNonce", "newAccount", "newOrder"):
            url = acme.directory[name]
            if urlsplit(url).hostname != urlsplit(creds.directory_url).hostname:
                await self._check_url(url)
        return acme

    # -- the protocol -----------------------------------------------------------------------------------

    async def directory(self, directory_url: str) -> dict[str, Any]:
        """The directory document (AcmeProblem when the URL does not serve one)."""
        await self._check_url(directory_url)
        acme = await self._run(self._client, directory_url, self._net(None, None))
        return acme.directory.to_partial_json()

    async def register(
        self,
        creds: AccountCredentials,
        contact: tuple[str, ...],
        terms_agreed: bool,
        eab: tuple[str, bytes] | None,
    ) -> str:
        """Create (or find, same key) the account; its URL."""
        acme = await self._open(creds)

        def op() -> str:
            extra: dict[str, Any] = {}
            if eab is not None:
                kid, hmac_key = eab
                extra["external_account_binding"] = messages.ExternalAccountBinding.from_data(
                    account_public_key=acme.net.key.public_key(),
                    kid=kid,
                    hmac_key=jose.b64.b64encode(hmac_key).decode("ascii"),
                    directory=acme.directory,
                )
            reg = messages.NewRegistration.from_data(email=None, terms_of_service_agreed=terms_agreed, **extra)
            if contact:
                reg = reg.update(contact=contact)
            try:
                regr = _retry_bad_nonce(lambda: acme.new_account(reg))
            except errors.ConflictError as exc:  # the key has an account already: the library gives its URL
                return str(exc.location)
            return regr.uri

        return await self._run(op)

    async def new_order(
        self,
        creds: AccountCredentials,
        domains: tuple[str, ...],
        *,
        challenge: ChallengeType,
        profile: str | None = None,
        replaces: str | None = None,
    ) -> AcmeOrder:
        acme = await self._open(creds)

        def op() -> AcmeOrder:
            identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=d) for d in domains]
            order = _NewOrder(identifiers=identifiers, profile=profile or None, replaces=replaces)
            try:
                response = _retry_bad_nonce(lambda: acme._post(acme.directory["newOrder"], order))
            except errors.ConflictError:
                # The library turns every 409 into ConflictError before reading the problem document; on
                # newOrder a 409 is RFC 9773's alreadyReplaced.
                raise AcmeProblem(
                    "alreadyReplaced", "the certificate named by replaces has a replacement order already", status=409
                ) from None
            body = messages.Order.from_json(response.json())
            authzrs = []
            for url in body.authorizations:
                authz = _retry_bad_nonce(lambda u=url: acme._post_as_get(u))
                authzrs.append(
                    messages.AuthorizationResource(body=messages.Authorization.from_json(authz.json()), uri=url)
                )
            orderr = messages.OrderResource(body=body, uri=response.headers.get("Location"), authorizations=authzrs)
            pending: list[PendingChallenge] = []
            for authzr in authzrs:
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # reused authorization
                chosen = None
                for challb in authzr.body.challenges:
                    if challb.chall.typ == challenge.value:
                        chosen = challb
                if chosen is None:
                    raise AcmeProblem(
                        "unsupportedChallenge",
                        f"the CA offers no {challenge.value} challenge for {authzr.body.identifier.value}",
                    )
                response_, validation = chosen.chall.response_and_validation(acme.net.key)
                key_authz = response_.key_authorization
                pending.append(
                    PendingChallenge(
                        domain=authzr.body.identifier.value,
                        wildcard=bool(authzr.body.wildcard),
                        type=challenge,
                        token=chosen.chall.encode("token"),
                        key_authorization=key_authz,
                        dns_value=validation if challenge is ChallengeType.DNS_01 else "",
                    )
                )
            return AcmeOrder(url=orderr.uri or "", challenges=pending, handle=(orderr, authzrs))

        return await self._run(op)

    async def answer_and_finalize(self, creds: AccountCredentials, order: AcmeOrder, csr_der: bytes) -> str:
        """Tell the CA the challenges are ready, wait for the authorizations, finalize with the CSR, and
        return the chain (PEM, leaf first)."""
        acme = await self._open(creds)
        orderr, authzrs = order.handle  # type: ignore[misc]
        csr_pem = x509.load_der_x509_csr(csr_der).public_bytes(serialization.Encoding.PEM)
        orderr = orderr.update(csr_pem=csr_pem)

        def op() -> str:
            for authzr in authzrs:
                if authzr.body.status == messages.STATUS_VALID:
                    continue
                for challb in authzr.body.challenges:
                    if challb.chall.typ in {c.type.value for c in order.challenges}:
                        resp = challb.chall.response(acme.net.key)
                        _retry_bad_nonce(lambda cb=challb, r=resp: acme.answer_challenge(cb, r))
            deadline = datetime.now() + timedelta(seconds=self._poll_seconds)
            done = _retry_bad_nonce(lambda: acme.poll_authorizations(orderr, deadline))
            for authzr in done.authorizations:
                if authzr.body.status != messages.STATUS_VALID:
                    raise AcmeProblem("unauthorized", f"{authzr.body.identifier.value}: authorization not valid")
            final = _retry_bad_nonce(lambda: acme.finalize_order(done, deadline))
            return final.fullchain_pem

        return await self._run(op)

    async def renewal_window(self, directory_url: str, chain_pem: str) -> tuple[datetime, datetime] | None:
        """The CA's suggested window (RFC 9773), None when its directory has no renewalInfo."""
        await self._check_url(directory_url)

        def op() -> tuple[datetime, datetime] | None:
            net = self._net(None, None)
            acme = self._client(directory_url, net)
            try:
                base = acme.directory["renewalInfo"]
            except KeyError:
                return None
            response = net.get(f"{base.rstrip('/')}/{ari_cert_id(chain_pem)}", content_type="application/json")
            info = messages.RenewalInfo.from_json(response.json())
            return info.suggested_window.start, info.suggested_window.end

        return await self._run(op)

    def replaces_id(self, chain_pem: str) -> str:
        """The certID to send as ``replaces`` when renewing `chain_pem`."""
        return ari_cert_id(chain_pem)
