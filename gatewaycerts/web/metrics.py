"""Prometheus metrics: HTTP requests by route and status, store latency, issuance and revocation counters,
audit events that could not be written, and certificate expiry gauges per project, served at `GET /metrics`.

Each application owns its registry (no process globals), so tests and several apps in one process do not
share counters. Expiry gauges are computed from the stores when scraped; every replica reports the same
store-wide values, so aggregate them with `max by (source, project_id, within_days)`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gatewaycerts.appkeys import EXPIRY_REPORT, METRICS
from gatewaycerts.core.expiry import ExpiryCounts
from gatewaycerts.domain.errors import StoreUnavailableError

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
EXPIRY_QUERY_TIMEOUT = 10.0


class Metrics:
    def __init__(self, in_flight: Callable[[], int]) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "gatewaycerts_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "gatewaycerts_http_request_duration_seconds",
            "Time from request start to response, by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        Gauge("gatewaycerts_http_requests_in_flight", "Requests being handled", registry=r).set_function(in_flight)
        self.store_latency = Histogram(
            "gatewaycerts_store_operation_duration_seconds",
            "Duration of store operations",
            ["store", "operation"],
            buckets=_STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "gatewaycerts_store_unavailable_errors",
            "Store operations that failed because the store was unavailable",
            ["store", "operation"],
            registry=r,
        )
        self.issued = Counter(
            "gatewaycerts_certificates_issued",
            "Certificates signed by this service's CAs (kind: private-certificate, authority)",
            ["kind"],
            registry=r,
        )
        self.revoked = Counter(
            "gatewaycerts_certificates_revoked", "Certificates revoked (kind as for issued)", ["kind"], registry=r
        )
        self.audit_lost = Counter(
            "gatewaycerts_audit_events_lost",
            "Changes whose audit event could not be written after every attempt (the change stands; the event "
            "is in the ERROR log line)",
            ["action"],
            registry=r,
        )
        self.expiring = Gauge(
            "gatewaycerts_certificates_expiring",
            "Valid certificates whose not_after is within `within_days` days (cumulative: 7 includes 1)",
            ["source", "project_id", "within_days"],
            registry=r,
        )
        self.expired = Gauge(
            "gatewaycerts_certificates_expired",
            "Certificates past their not_after that are still stored (source apic: uploaded; private: issued; "
            "notary: of certificate requests)",
            ["source", "project_id"],
            registry=r,
        )
        self.outstanding = Gauge(
            "gatewaycerts_certificate_requests_outstanding",
            "Certificate requests waiting for review (Outstanding)",
            ["project_id"],
            registry=r,
        )
        self.expiry_up = Gauge(
            "gatewaycerts_expiry_query_success", "1 when the last expiry count came back from the stores", registry=r
        )

    def set_expiry(self, report: dict[str, dict[str, ExpiryCounts]], outstanding: dict[str, int]) -> None:
        self.expiring.clear()
        self.expired.clear()
        self.outstanding.clear()
        for project, n in outstanding.items():
            self.outstanding.labels(project).set(n)
        for source, projects in report.items():
            for project, counts in projects.items():
                self.expired.labels(source, project).set(counts.expired)
                for days, n in counts.expiring_within.items():
                    self.expiring.labels(source, project, str(days)).set(n)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class TimedStore:
    """Wraps a store: every coroutine method is timed into gatewaycerts_store_operation_duration_seconds."""

    def __init__(self, inner: Any, name: str, metrics: Metrics) -> None:
        self._inner = inner
        self._name = name
        self._metrics = metrics

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        latency = self._metrics.store_latency.labels(self._name, attr)
        errors = self._metrics.store_errors.labels(self._name, attr)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await value(*args, **kwargs)
            except StoreUnavailableError:
                errors.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - start)

        setattr(self, attr, timed)  # built once per method
        return timed


def counter_hook(counter: Counter) -> Callable[[str], None]:
    """A core event hook (`on_issued(kind)`) that counts into `counter`."""
    return lambda kind: counter.labels(kind).inc()


async def metrics_handler(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    try:
        async with asyncio.timeout(EXPIRY_QUERY_TIMEOUT):
            report = await request.app[EXPIRY_REPORT].counts()
            outstanding = await request.app[EXPIRY_REPORT].outstanding_requests()
    except (StoreUnavailableError, TimeoutError):
        # Keep serving the other metrics; the last expiry values stay and the success gauge says they are old.
        metrics.expiry_up.set(0)
    else:
        metrics.set_expiry(report, outstanding)
        metrics.expiry_up.set(1)
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
