"""The OCSP responder (RFC 6960 in the RFC 5019 profile): one per CA, public like its CRL.

Every answer says the serial's status as the store holds it at that moment (`PcaStore.serial_status`: an index
point read, on SQLite on the calling thread), the very rows the CRL is built from and checked against on every
fetch (`revoked_serials`): so OCSP and the CRL agree at every moment, on every replica. A status read is reused
only while the store's change stamp says nothing at all was committed since it was read (on SQLite the WAL-index
header every process maps: store/sqlite/changes.py; MongoDB has none and is read every time), so no status can
go stale. A serial the CA never signed is answered `unauthorized` (unsigned, RFC 5019 2.2.3), never a
signed `unknown`. What is cached is what does not decide a status:
- the parsed request, by its bytes (requests without a nonce; clients repeat those byte for byte);
- the CA's record (its certificate, issuer hashes, signer, deletion), re-read at most once a second;
- the signed answer, per request bytes, under the status it says (good, or revoked at a time for a reason),
  the CA certificate and the signer: signing happens once per CA, serial, status and signer
  (again when half of the response's validity has passed), never per request; only requests with a nonce
  are signed each time, since the nonce must be echoed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gatewaycerts.core.authorities import AuthorityService, is_uuid
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, retry_on_conflict
from gatewaycerts.core.revocation import authority_key_context
from gatewaycerts.core.stamped import StampedReads
from gatewaycerts.domain.errors import ConflictError, StoreUnavailableError
from gatewaycerts.domain.pca import (
    Authority,
    CaStatus,
    KeyAlgorithm,
    OcspSigner,
    SerialStatus,
    SignatureHash,
)
from gatewaycerts.keyvault import KeyVault, KeyVaultError, envelope_kek_id
from gatewaycerts.pki.authority import new_key_pem
from gatewaycerts.pki.ocsp import (
    CertStatus,
    MalformedOcspRequest,
    OcspQuery,
    certificate_der,
    issue_signer_certificate,
    issuer_hashes,
    parse_request,
    sign_response,
    unsuccessful,
)
from gatewaycerts.store.interfaces import PcaStore

log = logging.getLogger(__name__)

SIGNER_CA, SIGNER_DELEGATED = "ca", "delegated"
SIGNER_LIFETIME = timedelta(days=4)  # a delegated responder certificate lives 4 days ...
SIGNER_RENEW_BEFORE = timedelta(days=2)  # ... and is replaced when fewer than 2 remain
CA_REFRESH_SECONDS = 1.0  # how long a replica trusts what it read about a CA (certificate, signer, deletion)
MAX_CACHED_RESPONSES = 65536
# Requests longer than this are answered but never remembered: a one-certificate request with a nonce is under
# 200 bytes, and the keys of the two request-keyed caches below then stay under ~32 MB each whatever is sent.
MAX_REMEMBERED_REQUEST_BYTES = 512
BACKDATE = timedelta(minutes=1)  # thisUpdate a minute early, for relying parties whose clocks run slow

_UNSUCCESSFUL = {s: unsuccessful(s) for s in ("malformedRequest", "internalError", "tryLater", "unauthorized")}


def signer_key_context(project_id: str, ca_id: str) -> str:
    return f"pca-ocsp-signer:{project_id}:{ca_id}"


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    der: bytes
    status: str  # successful, malformedRequest, internalError, tryLater or unauthorized
    this_update: datetime | None = None
    next_update: datetime | None = None
    cacheable: bool = False  # False for errors and for answers echoing a nonce


@dataclass(slots=True)
class _CaFacts:
    ca: Authority
    hashes: dict[str, tuple[bytes, bytes]]
    loaded_at: float


@dataclass(frozen=True, slots=True)
class _Given:
    """The answer given to one request's bytes, and what it was given under: the serial's status as read from
    the store, the CA certificate and the signer. Reused only while all three are unchanged."""

    found: SerialStatus
    ca_pem: str
    signer: str | None
    answer: OcspAnswer
    until: datetime


def _cert_status(found: SerialStatus) -> CertStatus:
    if found.revoked_at is not None:
        return CertStatus("revoked", found.revoked_at, found.reason)
    return CertStatus("good")


def _refresh_at(answer: OcspAnswer) -> datetime:
    """Re-sign once half of the answer's validity has passed."""
    assert answer.this_update is not None and answer.next_update is not None
    return answer.this_update + (answer.next_update - answer.this_update) / 2


def unsuccessful_answer(status: str) -> OcspAnswer:
    return OcspAnswer(_UNSUCCESSFUL[status], status)


class OcspResponder:
    def __init__(
        self,
        store: PcaStore,
        vault: KeyVault,
        authorities: AuthorityService,
        *,
        signer: str = SIGNER_CA,
        validity: timedelta = timedelta(hours=24),
        executor: Executor | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if signer not in (SIGNER_CA, SIGNER_DELEGATED):
            raise ValueError("the OCSP signer is `ca` or `delegated`")
        self._store = store
        self._vault = vault
        self._authorities = authorities
        self._signer_mode = signer
        self._queries: OrderedDict[bytes, OcspQuery] = OrderedDict()
        self._given: dict[tuple[str, bytes], _Given] = {}
        self._statuses: StampedReads[tuple[str, int], SerialStatus | None] = StampedReads(
            store.change_stamp, limit=MAX_CACHED_RESPONSES
        )
        self._validity = validity
        self._executor = executor
        self._clock = clock
        self._cas: dict[str, _CaFacts] = {}
        self._responses: OrderedDict[tuple[object, ...], OcspAnswer] = OrderedDict()
        self._pending: dict[tuple[object, ...], asyncio.Future[OcspAnswer]] = {}
        self.signatures = 0  # responses signed by this replica (tests and the bench read it)

    # -- the CA, cached briefly ----------------------------------------------------------------------

    async def _load(self, ca_id: str) -> _CaFacts | None:
        loop = asyncio.get_running_loop()
        facts = self._cas.get(ca_id)
        if facts is not None and loop.time() - facts.loaded_at < CA_REFRESH_SECONDS:
            return facts
        ca = await self._store.get_authority(None, ca_id) if is_uuid(ca_id) else None
        if ca is None or ca.certificate_pem is None:
            self._cas.pop(ca_id, None)
            return None
        same = facts is not None and facts.ca.certificate_pem == ca.certificate_pem
        hashes = facts.hashes if same and facts is not None else issuer_hashes(ca.certificate_pem)
        facts = _CaFacts(ca, hashes, loop.time())
        self._cas[ca_id] = facts
        return facts

    def _gone(self, ca: Authority) -> bool:
        return ca.status is CaStatus.DELETED and ca.delete_time is not None and ca.delete_time <= self._clock()

    async def ca_certificate_der(self, ca_id: str) -> bytes | None:
        """The CA's certificate as DER (the id-ad-caIssuers URL); None for no such CA."""
        facts = await self._load(ca_id)
        if facts is None or self._gone(facts.ca):
            return None
        assert facts.ca.certificate_pem is not None
        return certificate_der(facts.ca.certificate_pem)

    # -- answering ----------------------------------------------------------------------------------

    def _parse(self, request_der: bytes) -> OcspQuery:
        """parse_request, remembered for requests without a nonce (clients repeat those byte for byte)."""
        query = self._queries.get(request_der)
        if query is None:
            query = parse_request(request_der)
            if query.nonce is None and len(request_der) <= MAX_REMEMBERED_REQUEST_BYTES:
                self._queries[request_der] = query
                if len(self._queries) > MAX_CACHED_RESPONSES:
                    self._queries.popitem(last=False)
        return query

    async def respond(self, ca_id: str, request_der: bytes) -> OcspAnswer:
        try:
            query = self._parse(request_der)
        except MalformedOcspRequest:
            return unsuccessful_answer("malformedRequest")
        try:
            return await self._respond(ca_id, query, request_der)
        except (StoreUnavailableError, ConflictError, KeyVaultError):
            # KeyVaultError: a key the configured KEKs cannot open (the message names no key material)
            log.warning("OCSP for CA %s: store or key unavailable; answered tryLater", ca_id)
            return unsuccessful_answer("tryLater")

    async def _respond(self, ca_id: str, query: OcspQuery, request_der: bytes) -> OcspAnswer:
        facts = await self._load(ca_id)
        # RFC 6960 2.3 / RFC 5019 2.2.3: a CertID this responder cannot answer for authoritatively (another
        # CA's issuer hashes, a hash algorithm it does not compute, no such CA) is "unauthorized".
        if facts is None or self._gone(facts.ca) or query.hash_name is None:
            return unsuccessful_answer("unauthorized")
        if facts.hashes[query.hash_name] != (query.issuer_name_hash, query.issuer_key_hash):
            return unsuccessful_answer("unauthorized")
        ca = facts.ca
        found = await self._status(ca.id, query.serial_number)
        if found is None:
            # A serial this CA never signed: unauthorized (unsigned, constant), as Let's Encrypt answers, not a
            # signed "unknown": a signature per distinct made-up serial would be anonymous CPU on demand, and
            # such answers would push real ones out of the bounded caches (docs/security.md, "OCSP").
            return unsuccessful_answer("unauthorized")
        if self._signer_mode == SIGNER_DELEGATED:
            ca = await self._with_signer(facts)
        if query.nonce is not None:
            return await self._sign(ca, query, _cert_status(found))
        assert ca.certificate_pem is not None
        signer = ca.ocsp_signer.serial_number if self._signer_mode == SIGNER_DELEGATED and ca.ocsp_signer else None
        now = self._clock()
        given = self._given.get((ca_id, request_der))
        if (
            given is not None
            and given.found == found
            and given.signer == signer
            and given.ca_pem == ca.certificate_pem
            and now < given.until
        ):
            return given.answer
        status = _cert_status(found)
        key = (ca.id, ca.certificate_pem, signer, query.hash_name, query.serial_number, status)
        answer = self._responses.get(key)
        if answer is None or now >= _refresh_at(answer):
            answer = await self._signed_once(key, ca, query, status)
        until = _refresh_at(answer)
        if signer is not None and ca.ocsp_signer is not None:  # and no later than the signer's replacement
            until = min(until, ca.ocsp_signer.not_after - SIGNER_RENEW_BEFORE)
        if len(request_der) <= MAX_REMEMBERED_REQUEST_BYTES:
            if len(self._given) >= MAX_CACHED_RESPONSES:
                self._given.pop(next(iter(self._given)))  # the oldest entry (dicts keep insertion order)
            self._given[(ca_id, request_der)] = _Given(found, ca.certificate_pem, signer, answer, until)
        return answer

    def _status(self, ca_id: str, serial_number: int) -> Awaitable[SerialStatus | None]:
        """The serial's status as the store holds it now: the rows the CRL lists (revoked_serials) say it. Read
        again whenever the store may have changed since it was last read (`PcaStore.change_stamp`: on SQLite, any
        commit to the file by any process); a store that cannot tell is read every time (core/stamped.py)."""
        return self._statuses.read((ca_id, serial_number), lambda: self._store.serial_status(ca_id, serial_number))

    async def _signed_once(
        self, key: tuple[object, ...], ca: Authority, query: OcspQuery, status: CertStatus
    ) -> OcspAnswer:
        """Sign one answer, shared by every request that wants it meanwhile; cached."""
        pending = self._pending.get(key)
        if pending is not None:  # another request is signing this very answer: share it
            return await asyncio.shield(pending)
        future: asyncio.Future[OcspAnswer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await self._sign(ca, query, status)
            future.set_result(answer)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            del self._pending[key]
        self._responses[key] = answer
        if len(self._responses) > MAX_CACHED_RESPONSES:
            self._responses.popitem(last=False)
        return answer

    async def _sign(self, ca: Authority, query: OcspQuery, status: CertStatus) -> OcspAnswer:
        assert ca.certificate_pem is not None
        now = self._clock()
        this_update = now - BACKDATE
        next_update = now + self._validity
        if ca.not_after is not None:
            next_update = min(next_update, ca.not_after)
        signer_pem: str | None = None
        if self._signer_mode == SIGNER_DELEGATED and ca.ocsp_signer is not None:
            signer_pem = ca.ocsp_signer.certificate_pem
            next_update = min(next_update, ca.ocsp_signer.not_after)
            key_pem = self._vault.decrypt(
                ca.ocsp_signer.encrypted_key, context=signer_key_context(ca.project_id, ca.id)
            )
            signature_hash = SignatureHash.SHA256
        else:
            key_pem = self._vault.decrypt(ca.encrypted_key, context=authority_key_context(ca.project_id, ca.id))
            signature_hash = ca.signature_algorithm
        der = await in_executor(
            self._executor,
            sign_response,
            query,
            status,
            issuer_certificate_pem=ca.certificate_pem,
            signer_key_pem=key_pem,
            signer_certificate_pem=signer_pem,
            signature_hash=signature_hash,
            this_update=this_update,
            next_update=next_update,
        )
        self.signatures += 1
        return OcspAnswer(der, "successful", this_update, next_update, cacheable=query.nonce is None)

    # -- the delegated responder certificate -------------------------------------------------------

    def _signer_fresh(self, ca: Authority) -> bool:
        """Days to live left, and the key under the active KEK: after a KEK rotation the responder certificate
        is replaced (a new key under the new KEK) instead of its short-lived key being re-wrapped."""
        signer = ca.ocsp_signer
        return (
            signer is not None
            and signer.not_after - self._clock() > SIGNER_RENEW_BEFORE
            and envelope_kek_id(signer.encrypted_key) == self._vault.active_kek_id
        )

    async def _with_signer(self, facts: _CaFacts) -> Authority:
        """The CA with a delegated responder certificate that has days to live; issues one when not."""
        if self._signer_fresh(facts.ca):
            return facts.ca

        async def attempt() -> Authority:
            ca = await self._store.get_authority(None, facts.ca.id)
            if ca is None or ca.certificate_pem is None:
                raise ConflictError("the CA is gone")
            if self._signer_fresh(ca):
                return ca  # another replica rotated it first
            now = self._clock()
            not_after = now + SIGNER_LIFETIME
            if ca.not_after is not None:
                not_after = min(not_after, ca.not_after)
            serial = await self._authorities.reserve_serial(ca.id)
            key_pem = await in_executor(self._executor, new_key_pem, KeyAlgorithm.EC256)
            cert_pem = await in_executor(
                self._executor,
                issue_signer_certificate,
                issuer_certificate_pem=ca.certificate_pem,
                issuer_key_pem=self._authorities.decrypt_key(ca),
                signature_hash=ca.signature_algorithm,
                signer_key_pem=key_pem,
                serial=serial,
                not_before=now - BACKDATE,
                not_after=not_after,
            )
            signer = OcspSigner(
                certificate_pem=cert_pem,
                encrypted_key=self._vault.encrypt(key_pem, context=signer_key_context(ca.project_id, ca.id)),
                serial_number=str(serial),
                not_after=not_after,
            )
            stored = await self._store.replace_authority(replace(ca, ocsp_signer=signer), expected_revision=ca.revision)
            log.info("issued the delegated OCSP responder certificate %s of CA %s", serial, ca.id)
            return stored

        ca = await retry_on_conflict(attempt, "the CA")
        facts.ca = ca
        return ca
