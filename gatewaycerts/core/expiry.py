"""How many certificates of each project have expired or expire within 1, 7, 30 and 90 days.

Operators alert on these (the metrics endpoint publishes them); the counts come from the stores' expiry
indexes at the time of asking, so they need no background job and are never stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.store.interfaces import CertificateStore, PcaStore

HORIZON_DAYS: tuple[int, ...] = (1, 7, 30, 90)


@dataclass(frozen=True, slots=True)
class ExpiryCounts:
    expired: int
    # days -> certificates still valid whose not_after is within that many days (cumulative: 7 includes 1)
    expiring_within: dict[int, int]


class ExpiryReport:
    """Expiry counts per source (`apic`: uploaded SSL certificates; `private`: issued by our CAs) and project."""

    def __init__(self, certificates: CertificateStore, private: PcaStore, *, clock: Clock = system_clock) -> None:
        self._sources = {"apic": certificates, "private": private}
        self._clock = clock

    async def counts(self) -> dict[str, dict[str, ExpiryCounts]]:
        now = self._clock()
        boundaries = [now, *(now + timedelta(days=d) for d in HORIZON_DAYS)]
        report: dict[str, dict[str, ExpiryCounts]] = {}
        for source, store in self._sources.items():
            per_project = await store.count_expiring(boundaries)
            report[source] = {
                project: ExpiryCounts(
                    expired=before[0],
                    expiring_within={d: before[i + 1] - before[0] for i, d in enumerate(HORIZON_DAYS)},
                )
                for project, before in per_project.items()
            }
        return report
