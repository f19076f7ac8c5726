"""How many certificates of each project have expired or expire within 1, 7, 30 and 90 days.

Operators alert on these (the metrics endpoint publishes them); the counts come from the stores' expiry
indexes at the time of asking, so they need no background job and are never stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.store.interfaces import CertificateStore, PcaStore

HORIZON_DAYS: tuple[int, ...] = (1, 7, 30, 90)


@dataclass(frozen=True, slots=True)
class ExpiryCounts:
    expired: int
    # days -> certificates still valid whose not_after is within that many days (cumulative: 7 includes 1)
    expiring_within: dict[int, int]


CountExpiring = Callable[[Sequence[datetime]], Awaitable[dict[str, tuple[int, ...]]]]


class ExpiryReport:
    """Expiry counts per source and project (`apic`: uploaded SSL certificates; `private`: issued by our CAs
    through the CCM API; `notary`: signed or attached for certificate requests), and outstanding requests."""

    def __init__(self, certificates: CertificateStore, private: PcaStore, *, clock: Clock = system_clock) -> None:
        self._sources: dict[str, CountExpiring] = {
            "apic": certificates.count_expiring,
            "private": private.count_expiring,
            "notary": private.count_expiring_requests,
        }
        self._private = private
        self._clock = clock

    async def outstanding_requests(self) -> dict[str, int]:
        """Per project, the certificate requests waiting for review."""
        return await self._private.count_outstanding_requests()

    async def counts(self) -> dict[str, dict[str, ExpiryCounts]]:
        now = self._clock()
        boundaries = [now, *(now + timedelta(days=d) for d in HORIZON_DAYS)]
        report: dict[str, dict[str, ExpiryCounts]] = {}
        for source, count_expiring in self._sources.items():
            per_project = await count_expiring(boundaries)
            report[source] = {
                project: ExpiryCounts(
                    expired=before[0],
                    expiring_within={d: before[i + 1] - before[0] for i, d in enumerate(HORIZON_DAYS)},
                )
                for project, before in per_project.items()
            }
        return report
