"""The finalize worker: resumes ACME orders left in `processing` by a finalizer that died (a crashed process
or replica, a store outage mid-finalize), in every replica, each order once.

The request that finalizes holds the order's lease (`claim_until`) while it signs; when the lease lapses
without the order turning valid or invalid, this loop claims the order (a compare-and-swap on its revision
that sets a new lease) and finishes it with OrderIssuer.complete, which attaches a certificate stored before
the crash rather than issuing a second one."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from gatewaycerts.core.acme.issuing import FINALIZE_LEASE_SECONDS, OrderIssuer
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.loops import BackgroundLoop
from gatewaycerts.domain.acme import AcmeOrder
from gatewaycerts.domain.errors import ConflictError, NotFoundError, StoreUnavailableError
from gatewaycerts.store.interfaces import AcmeStore

log = logging.getLogger("gatewaycerts.acme")

BATCH = 8
POLL_SECONDS = 10.0  # an order is due only once its lease (60 s) lapsed: no need to look more often


class AcmeFinalizeWorker(BackgroundLoop):
    loop_name = "ACME finalize worker"

    def __init__(
        self,
        store: AcmeStore,
        issuer: OrderIssuer,
        *,
        clock: Clock = system_clock,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._init_loop()
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._poll = poll_seconds

    def poll_seconds(self) -> float:
        return self._poll

    async def run_once(self) -> int:
        """Finish the orders whose finalizer's lease lapsed; the number this worker finished."""
        finished = 0
        for order in await self._store.claimable_finalizations(self._clock(), BATCH):
            claimed = await self._claim(order)
            if claimed is None:
                continue
            log.warning("ACME order %s was left processing by a finalizer that stopped; resuming it", order.id)
            try:
                await self._issuer.complete(claimed, resumed=True)
            except StoreUnavailableError:
                raise  # the store is down: the order stays processing and is resumed when its lease lapses again
            except Exception:
                # Anything else would fail the same way on every resume, once a lease, forever: the order ends
                # invalid (serverInternal) and its client orders again. The trace goes to the log, not the client.
                log.exception("ACME order %s could not be resumed; it is now invalid", order.id)
                await self._issuer.fail(claimed, "the order could not be finished; create a new order")
            finished += 1
        return finished

    async def _claim(self, order: AcmeOrder) -> AcmeOrder | None:
        lease = self._clock() + timedelta(seconds=FINALIZE_LEASE_SECONDS)
        try:
            return await self._store.replace_order(replace(order, claim_until=lease), expected_revision=order.revision)
        except (ConflictError, NotFoundError):
            return None  # another worker has it, or it is gone
