"""The background loops app.py runs beside the requests (orders, renewals, webhook deliveries, the expiry
watch): each does ``run_once`` until stopped, then waits for ``wake()`` or its poll interval. A store outage or
a bug in one round is logged and the loop goes on; the work it claimed comes due again (claims have leases)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gatewaycerts.domain.errors import StoreUnavailableError

log = logging.getLogger(__name__)


class BackgroundLoop:
    loop_name = "background loop"  # for log lines
    _wake: asyncio.Event
    _stopping: bool

    def _init_loop(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False

    def poll_seconds(self) -> float:
        raise NotImplementedError

    async def run_once(self) -> int:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
            except StoreUnavailableError as exc:
                log.warning("%s: store unavailable: %s", self.loop_name, exc)
            except Exception:
                log.exception("%s: unexpected error", self.loop_name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds())
