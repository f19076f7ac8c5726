"""The validation worker: claims authorizations whose challenge is `processing` (any replica, each once),
asks the ChallengeValidator, records the outcome.

A claim is a compare-and-swap that sets `claim_until`; a worker that dies leaves a claim that lapses, and
the next worker takes the authorization again (validation is idempotent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import timedelta

from gatewaycerts.core.acme.service import AcmeService, key_authorization
from gatewaycerts.core.acme.validation import (
    ChallengeToValidate,
    ChallengeType,
    ChallengeValidator,
    IdentifierType,
    ValidationFailed,
)
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.domain.acme import PROCESSING, Authorization
from gatewaycerts.domain.errors import ConflictError, DomainError
from gatewaycerts.store.interfaces import AcmeStore

log = logging.getLogger("gatewaycerts.acme")

LEASE_SECONDS = 90
VALIDATION_SECONDS = 60
BATCH = 8
NONCE_PURGE_SECONDS = 600


class AcmeValidationWorker:
    def __init__(
        self,
        store: AcmeStore,
        service: AcmeService,
        validator: ChallengeValidator | None,
        *,
        clock: Clock = system_clock,
        poll_seconds: float = 1.0,
    ) -> None:
        self._store = store
        self._service = service
        self._validator = validator
        self._clock = clock
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_purge = 0.0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                done = await self.run_once()
                if loop.time() - self._last_purge > NONCE_PURGE_SECONDS:
                    self._last_purge = loop.time()
                    await self._store.purge_nonces(self._clock())
            except Exception:  # the store may be down: keep going
                log.exception("ACME validation round failed")
                done = 0
            if done:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def run_once(self) -> int:
        """Validate what is claimable now; the number of authorizations handled."""
        claimed = []
        for authz in await self._store.claimable_authorizations(self._clock(), BATCH):
            mine = await self._claim(authz)
            if mine is not None:
                claimed.append(mine)
        # The probes of a batch run side by side: one slow target (up to VALIDATION_SECONDS) does not hold
        # up the others, and concurrent clients' challenges are not validated one after another.
        outcomes = await asyncio.gather(*(self._validate(a) for a in claimed), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.error("ACME validation failed unexpectedly", exc_info=outcome)
        return len(claimed)

    async def _claim(self, authz: Authorization) -> Authorization | None:
        until = self._clock() + timedelta(seconds=LEASE_SECONDS)
        try:
            return await self._store.replace_authorization(
                replace(authz, claim_until=until), expected_revision=authz.revision
            )
        except (ConflictError, DomainError):
            return None  # another worker has it

    async def _validate(self, authz: Authorization) -> None:
        challenge = next((c for c in authz.challenges if c.status == PROCESSING), None)
        if challenge is None:
            return
        problem: tuple[str, str] | None
        account = await self._store.get_account(authz.ca_id, authz.account_id)
        if account is None:
            problem = ("unauthorized", "the account is gone")
        elif self._validator is None:
            problem = ("serverInternal", "no challenge validator is configured on this server")
        else:
            job = ChallengeToValidate(
                type=ChallengeType(challenge.type),
                identifier_type=IdentifierType(authz.identifier.type),
                identifier_value=authz.identifier.value,
                token=challenge.token,
                key_authorization=key_authorization(challenge.token, account.thumbprint),
            )
            try:
                await asyncio.wait_for(self._validator.validate(job), VALIDATION_SECONDS)
                problem = None
            except ValidationFailed as exc:
                problem = (exc.problem, exc.detail)
            except TimeoutError:
                problem = ("connection", f"validation did not finish in {VALIDATION_SECONDS}s")
        try:
            await self._service.record_validation(authz, challenge.id, problem)
        except ConflictError:
            log.warning("an ACME authorization changed while it was validated; it is validated again")
