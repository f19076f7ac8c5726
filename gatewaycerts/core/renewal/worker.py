"""RenewalWorker: the background loop that issues and renews managed certificates.

Every replica runs one; each renewal happens once across them. A worker reads the due records (the due-time
index), claims one with a compare-and-swap on its managed record (`claimed_by`, `claim_until` = now + lease,
a new `attempt_id`), and then:

1. generates the key (key_algorithm) and the CSR in the pki thread pool;
2. asks the source for a chain (`CertificateSource.issue`);
3. checks the chain: its leaf holds the key, its path verifies, it names every domain;
4. swaps: one conditional replace of the certificate record (chain, key envelope, `renewal_attempt`) on the
   revision it read, bindings untouched (first issuance: one insert under the managed record's id); the chain
   being replaced is recorded in the history first;
5. finishes: the managed record gets its next due time, the claim is cleared; events and metrics follow.

A worker killed anywhere before 4 leaves the certificate as it was: the claim runs out and another worker
starts over. Killed between 4 and 5: the certificate record names the attempt that installed its chain
(`renewal_attempt`) and the managed record does not (`installed_attempt`), so the next worker finishes
that attempt instead of issuing again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor
from gatewaycerts.core.events import EventSink, EventType
from gatewaycerts.core.ids import new_id
from gatewaycerts.core.loops import BackgroundLoop
from gatewaycerts.core.renewal.schedule import backoff, lifetime_due, window_due
from gatewaycerts.core.renewal.service import chain_revision_of
from gatewaycerts.core.renewal.sources import CertificateSource, IssueFailed, IssueRequest
from gatewaycerts.domain.errors import (
    CertificateNotFoundError,
    ConflictError,
    DuplicateNameError,
    StoreUnavailableError,
)
from gatewaycerts.domain.managed import ManagedCertificate, RenewalState
from gatewaycerts.domain.models import Certificate
from gatewaycerts.domain.pca import KeyAlgorithm
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.bundle import ValidatedBundle
from gatewaycerts.pki.managed import ChainProblem, check_issued, new_key_and_csr
from gatewaycerts.store.interfaces import CertificateStore, ManagedCertificateStore

log = logging.getLogger("gatewaycerts.renewal")

ACTOR = "renewal-loop"  # the audit trail's actor of what the loop does
MAX_ERROR = 1000


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    lease: timedelta = timedelta(seconds=600)
    poll_seconds: float = 30.0
    batch: int = 32
    concurrency: int = 4
    backoff_base: timedelta = timedelta(seconds=60)
    backoff_cap: timedelta = timedelta(hours=6)
    # The earliest next renewal after a success: a window in the past (clock skew, a backdated not_before)
    # never makes the loop renew the same certificate again and again.
    min_gap: timedelta = timedelta(seconds=30)
    # How often the CA's renewal window (ACME ARI) is asked again while it is in the future: a CA may move it
    # earlier (an incident, a mass revocation), and RFC 9773 clients poll it; ARI's usual Retry-After is 6 h.
    window_recheck: timedelta = timedelta(hours=6)


class Outcome:
    RENEWED = "renewed"  # a chain was installed (first issuance included)
    FAILED = "failed"  # retried later (backoff)
    STOPPED = "stopped"  # not retried until the tenant acts
    WAITING = "waiting"  # the CA's window has not opened: looked at again later, nothing issued
    RESUMED = "resumed"  # an abandoned attempt's swap was found done and finished
    GONE = "gone"  # the certificate was deleted meanwhile


def _noop_result(outcome: str) -> None:
    return None


def _noop_schedule(managed: ManagedCertificate) -> None:
    return None


class RenewalWorker(BackgroundLoop):
    loop_name = "renewal worker"

    def __init__(
        self,
        store: ManagedCertificateStore,
        certificates: CertificateStore,
        vault: KeyVault,
        sources: dict[str, CertificateSource],
        *,
        events: EventSink | None = None,
        audit: AuditLog | None = None,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        settings: RenewalSettings | None = None,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        new_id: Callable[[], str] = new_id,
    ) -> None:
        self._store = store
        self._certs = certificates
        self._vault = vault
        self._sources = sources
        self.events = events
        self._audit = audit or AuditLog(None)
        self._executor = executor
        self._clock = clock
        self._settings = settings or RenewalSettings()
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rng = rng or random.Random()  # noqa: S311 - scheduling jitter, not secrets
        self._new_id = new_id
        self._init_loop()
        # Told of every certificate write (delivery applies it at once in this process; app.py wires it).
        self.on_change: Callable[[str, str, Certificate | None], None] = lambda p, c, cert: None
        self.on_result: Callable[[str], None] = _noop_result  # metrics: renewals by result
        self.on_schedule: Callable[[ManagedCertificate], None] = _noop_schedule  # metrics: per certificate
        self.on_forget: Callable[[str], None] = lambda cert_id: None  # metrics: drop its gauges

    # -- the loop ---------------------------------------------------------------------------------

    async def tick(self) -> int:
        """One look at the due records: claim and process each (a few at a time). How many were processed."""
        due = await self._store.due_managed(self._clock(), self._settings.batch)
        if not due:
            return 0
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def one(m: ManagedCertificate) -> int:
            async with gate:
                claimed = await self._claim(m)
                if claimed is None:
                    return 0
                await self.process(claimed)
                return 1

        return sum(await asyncio.gather(*(one(m) for m in due)))

    async def run_once(self) -> int:
        """Process every record that is due now (until a tick finds nothing it can claim)."""
        done = 0
        while True:
            n = await self.tick()
            if n == 0:
                return done
            done += n

    def poll_seconds(self) -> float:
        return self._settings.poll_seconds

    async def _claim(self, m: ManagedCertificate) -> ManagedCertificate | None:
        now = self._clock()
        held = replace(
            m,
            claimed_by=self.worker_id,
            claim_until=now + self._settings.lease,
            attempt_id=self._new_id(),
            last_attempt_at=now,
            update_time=now,
        )
        try:
            return await self._store.replace_managed(held, expected_revision=m.revision)
        except (ConflictError, CertificateNotFoundError):
            return None  # another worker was faster, or it was deleted

    # -- one renewal ------------------------------------------------------------------------------

    async def process(self, m: ManagedCertificate) -> str:
        """Renew the claimed managed certificate `m`; the outcome (see Outcome)."""
        cert = await self._certs.get(m.project_id, m.id)
        if cert is None and m.installed_attempt is not None:
            await self._forget(m)  # deleted through the API while we were not looking
            return Outcome.GONE
        if cert is not None and cert.renewal_attempt is not None and cert.renewal_attempt != m.installed_attempt:
            log.info("renewal of %s: finishing attempt %s, whose swap was done", m.id, cert.renewal_attempt)
            return await self._finish(m, cert, resumed=True)
        source = self._sources.get(m.source)
        if source is None:
            return await self._failed(m, f"the {m.source} source is not configured on this service", retryable=False)
        if cert is not None and m.window_start is not None and self._clock() < m.window_start:
            # Taken up before the CA's window opens: to ask for the window again (it may have moved earlier);
            # renew only once it has opened. (A tenant's "renew now" clears the window.)
            window = await self._window(m, source, cert)
            if window is not None and self._clock() < window[0]:
                return await self._reschedule(m, window)
        try:
            key_pem, csr_der = await in_executor(
                self._executor, new_key_and_csr, KeyAlgorithm(m.key_algorithm), m.domains
            )
            request = IssueRequest(
                project_id=m.project_id,
                certificate_id=m.id,
                domains=m.domains,
                csr_der=csr_der,
                settings=dict(m.settings),
                previous_chain_pem=cert.chain_pem if cert is not None else None,
            )
            issued = await source.issue(request)
            bundle = await in_executor(
                self._executor, check_issued, issued.chain_pem, key_pem, m.domains, self._clock()
            )
        except IssueFailed as failed:
            return await self._failed(m, failed.error, retryable=failed.retryable)
        except ChainProblem as problem:
            return await self._failed(m, str(problem), retryable=True)
        except StoreUnavailableError:
            raise  # the claim runs out; another attempt starts over
        except Exception:
            log.exception("renewal of %s failed unexpectedly", m.id)
            return await self._failed(
                m, "internal error while renewing; the service log has the details", retryable=True
            )
        encrypted = self._vault.encrypt(bundle.private_key_pem, context=apic_key_context(m.project_id, m.id))
        try:
            stored = await self._install(m, cert, bundle, encrypted)
        except DuplicateNameError:
            return await self._failed(
                m,
                f"another certificate of the project is named {m.name!r}: rename or delete it, then renew",
                retryable=False,
            )
        except CertificateNotFoundError:
            await self._forget(m)
            return Outcome.GONE
        self.on_change(m.project_id, m.id, stored)
        return await self._finish(m, stored, resumed=False)

    async def _install(
        self, m: ManagedCertificate, cert: Certificate | None, bundle: ValidatedBundle, encrypted: bytes
    ) -> Certificate:
        """The swap: one insert (first issuance) or one conditional replace on the revision read."""
        now = self._clock()
        if cert is None:
            new = Certificate(
                id=m.id,
                project_id=m.project_id,
                name=m.name,
                scope=m.scope,
                instance_id=m.instance_id,
                info=bundle.info,
                chain_pem=bundle.chain_pem,
                encrypted_private_key=encrypted,
                trusted_root_ca_pem=None,
                has_trusted_root_ca=False,
                create_time=now,
                update_time=now,
                source=m.source,
                renewal_attempt=m.attempt_id,
            )
            await self._certs.insert(new)
            return new
        current: Certificate | None = cert
        for _ in range(8):
            assert current is not None
            await self._store.add_chain_revision(chain_revision_of(current, now))
            new = replace(
                current,
                info=bundle.info,
                chain_pem=bundle.chain_pem,
                encrypted_private_key=encrypted,
                update_time=now,
                source=m.source,
                renewal_attempt=m.attempt_id,
            )
            try:
                return await self._certs.replace(new, expected_revision=current.revision)
            except ConflictError:
                current = await self._certs.get(m.project_id, m.id)  # a binding changed meanwhile: keep it
                if current is None:
                    raise CertificateNotFoundError("the SSL certificate does not exist") from None
        raise ConflictError("the certificate kept changing during its renewal")

    async def _forget(self, m: ManagedCertificate) -> None:
        await self._store.delete_managed(m.project_id, m.id)
        await self._store.delete_chain_revisions(m.project_id, m.id)
        self.on_result(Outcome.GONE)
        self.on_forget(m.id)

    async def _window(
        self, m: ManagedCertificate, source: CertificateSource, cert: Certificate
    ) -> tuple[datetime, datetime] | None:
        try:
            return await source.renewal_window(m.project_id, dict(m.settings), cert.chain_pem)
        except Exception as exc:  # noqa: BLE001 - the CA's window is advice: without it the lifetime rule applies
            log.warning("renewal window of %s unavailable: %s", m.id, type(exc).__name__)
            return None

    def _next_look(self, due_at: datetime, window: tuple[datetime, datetime] | None, now: datetime) -> datetime:
        """When the loop next takes the certificate up: its renewal time, or sooner to ask the CA's window
        again while that window has not opened."""
        if window is not None and now < window[0]:
            due_at = min(due_at, now + self._settings.window_recheck)
        return max(due_at, now + self._settings.min_gap)

    async def _reschedule(self, m: ManagedCertificate, window: tuple[datetime, datetime]) -> str:
        """The window has not opened: no renewal now; the next look at it is scheduled and the claim let go."""
        now = self._clock()
        due = window_due(window[0], window[1], now, self._rng)
        later = replace(
            m,
            due_at=self._next_look(due.at, window, now),
            window_start=due.window_start,
            window_end=due.window_end,
            claimed_by=None,
            claim_until=None,
            update_time=now,
        )
        try:
            stored = await self._store.replace_managed(later, expected_revision=m.revision)
        except (ConflictError, CertificateNotFoundError):
            return Outcome.GONE
        self.on_schedule(stored)
        return Outcome.WAITING

    async def _finish(self, m: ManagedCertificate, cert: Certificate, *, resumed: bool) -> str:
        now = self._clock()
        source = self._sources.get(m.source)
        window = await self._window(m, source, cert) if source is not None else None
        if window is not None:
            due = window_due(window[0], window[1], now, self._rng)
        else:
            due = lifetime_due(cert.info.not_before, cert.info.not_after, self._rng)
        done = replace(
            m,
            state=RenewalState.ACTIVE,
            due_at=self._next_look(due.at, window, now),
            window_source=due.source,
            window_start=due.window_start,
            window_end=due.window_end,
            consecutive_failures=0,
            last_error=None,
            last_success_at=now,
            claimed_by=None,
            claim_until=None,
            installed_attempt=cert.renewal_attempt,
            renewals=m.renewals + 1,
            update_time=now,
        )
        try:
            stored = await self._store.replace_managed(done, expected_revision=m.revision)
        except (ConflictError, CertificateNotFoundError):
            return Outcome.GONE  # our lease ran out and another worker owns it (it finishes this attempt)
        await self._store.add_chain_revision(chain_revision_of(cert, now))
        self.on_result(Outcome.RESUMED if resumed else Outcome.RENEWED)
        self.on_schedule(stored)
        await self._audit.record(
            ACTOR,
            m.project_id,
            "apic.certificate.renew",
            "ssl_certificate",
            m.id,
            object_name=m.name,
            source=m.source,
            revision=cert.revision,
            serial_number=cert.info.serial_number,
            not_after=cert.info.not_after,
        )
        await self._emit(
            m.project_id,
            EventType.CERTIFICATE_RENEWED,
            {
                "certificate_id": m.id,
                "name": m.name,
                "revision": cert.revision,
                "not_after": cert.info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": m.source,
            },
        )
        return Outcome.RESUMED if resumed else Outcome.RENEWED

    async def _failed(self, m: ManagedCertificate, error: str, *, retryable: bool) -> str:
        now = self._clock()
        failures = m.consecutive_failures + 1
        error = error[:MAX_ERROR]
        if retryable:
            state = RenewalState.FAILING
            due_at: datetime | None = now + backoff(
                failures, self._settings.backoff_base, self._settings.backoff_cap, self._rng
            )
        else:
            state, due_at = RenewalState.STOPPED, None
        failed = replace(
            m,
            state=state,
            due_at=due_at,
            consecutive_failures=failures,
            last_error=error,
            claimed_by=None,
            claim_until=None,
            update_time=now,
        )
        try:
            stored = await self._store.replace_managed(failed, expected_revision=m.revision)
        except (ConflictError, CertificateNotFoundError):
            return Outcome.GONE
        outcome = Outcome.FAILED if retryable else Outcome.STOPPED
        self.on_result(outcome)
        self.on_schedule(stored)
        log.warning("renewal of %s failed (%s, attempt %d): %s", m.id, outcome, failures, error)
        await self._emit(
            m.project_id,
            EventType.CERTIFICATE_RENEWAL_FAILED,
            {"certificate_id": m.id, "name": m.name, "source": m.source, "error": error, "attempt": failures},
        )
        return outcome

    async def _emit(self, project_id: str, event_type: EventType, data: dict[str, object]) -> None:
        if self.events is None:
            return
        try:
            await self.events.emit(project_id, event_type, data)
        except Exception:
            log.exception("renewal: the %s event of project %s could not be recorded", event_type, project_id)
