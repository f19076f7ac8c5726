"""Prometheus metrics: HTTP requests by route and status, store latency, issuance and revocation counters,
audit events that could not be written, and certificate expiry gauges per project, served at `GET /metrics`.

Each application owns its registry (no process globals), so tests and several apps in one process do not
share counters. Expiry gauges are computed from the stores when scraped; every replica reports the same
store-wide values, so aggregate them with `max by (source, project_id, within_days)`.

Under `serve --workers N` (PROMETHEUS_MULTIPROC_DIR set by the supervisor) counters, histograms and the
in-flight gauge live in prometheus_client's per-process files, and a scrape, answered by whichever worker
the kernel picks, sums every worker's files: the pod reports one set of values, as a single process does.
In one process the HTTP request counter and latency histogram are plain tallies read at scrape time
(web/request_metrics.py: the same exposition, no lock per request). The store-wide gauges are not per-process
values at all: the answering worker counts them afresh, through
a collector of its own (multiprocess mode can neither clear nor remove label sets of a Gauge).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from gatewaycerts.appkeys import EXPIRY_REPORT, METRICS
from gatewaycerts.core.expiry import ExpiryCounts
from gatewaycerts.domain.errors import StoreUnavailableError
from gatewaycerts.web.request_metrics import LATENCY, REQUESTS, RequestTallies

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
EXPIRY_QUERY_TIMEOUT = 10.0


class StoreWideGauges:
    """Expiry and outstanding-request gauges, from the last count of the stores (a scrape makes a new one)."""

    def __init__(self) -> None:
        self.report: dict[str, dict[str, ExpiryCounts]] = {}
        self.outstanding: dict[str, int] = {}
        self.up = 0.0

    def collect(self) -> Iterator[Metric]:
        expiring = GaugeMetricFamily(
            "gatewaycerts_certificates_expiring",
            "Valid certificates whose not_after is within `within_days` days (cumulative: 7 includes 1)",
            labels=["source", "project_id", "within_days"],
        )
        expired = GaugeMetricFamily(
            "gatewaycerts_certificates_expired",
            "Certificates past their not_after that are still stored (source apic: uploaded; private: issued; "
            "notary: of certificate requests)",
            labels=["source", "project_id"],
        )
        for source, projects in self.report.items():
            for project, counts in projects.items():
                expired.add_metric([source, project], counts.expired)
                for days, n in counts.expiring_within.items():
                    expiring.add_metric([source, project, str(days)], n)
        outstanding = GaugeMetricFamily(
            "gatewaycerts_certificate_requests_outstanding",
            "Certificate requests waiting for review (Outstanding)",
            labels=["project_id"],
        )
        for project, n in self.outstanding.items():
            outstanding.add_metric([project], n)
        up = GaugeMetricFamily(
            "gatewaycerts_expiry_query_success", "1 when the last expiry count came back from the stores"
        )
        up.add_metric([], self.up)
        yield from (expiring, expired, outstanding, up)


class Metrics:
    """`multiprocess_dir`: prometheus_client's PROMETHEUS_MULTIPROC_DIR when it is set (then the library keeps
    every value in that directory, and a scrape must read all processes' files from there)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        r = self.registry = CollectorRegistry()
        # One process: the request counter and latency histogram are plain tallies read at collect time (web/
        # request_metrics.py). Multiprocess mode: the library's own classes, whose values live in its files.
        self._tallies: RequestTallies | None = None
        if multiprocess_dir is None:
            self._tallies = RequestTallies(_LATENCY_BUCKETS)
            r.register(self._tallies)
        else:
            self.requests = Counter(REQUESTS[0], REQUESTS[1], ["method", "route", "status"], registry=r)
            self.latency = Histogram(LATENCY[0], LATENCY[1], ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(
            "gatewaycerts_http_requests_in_flight",
            "Requests being handled",
            registry=r,
            multiprocess_mode="livesum",  # the workers' counts added up; a stopped worker's drops out
        )
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
        self.delivery_stale = Gauge(
            "gatewaycerts_delivery_stale_seconds",
            "Seconds since gateway delivery last confirmed its in-memory state against the store (0 while the "
            "watch keeps up; grows while the store is unreachable and deliveries are answered from memory)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.renewals = Counter(
            "gatewaycerts_certificate_renewals",
            "Renewal attempts of managed certificates by result (renewed, resumed, failed, stopped, gone)",
            ["result"],
            registry=r,
        )
        # Per certificate, labelled by id only (never a name: names are the tenant's text). Set by the replica
        # that processed the certificate last; take the latest over instances.
        self.next_renewal = Gauge(
            "gatewaycerts_certificate_next_renewal_timestamp_seconds",
            "When the renewal loop takes the managed certificate next (Unix time; 0 while stopped)",
            ["certificate_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.renewal_failures = Gauge(
            "gatewaycerts_certificate_renewal_consecutive_failures",
            "Consecutive failed renewal attempts of the managed certificate (0 after a success)",
            ["certificate_id"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.webhook_deliveries = Counter(
            "gatewaycerts_webhook_deliveries",
            "Webhook delivery attempts by result (delivered: a 2xx; retry: failed, another attempt is scheduled; "
            "failed: the last attempt failed, or the webhook is gone)",
            ["result"],
            registry=r,
        )
        self.webhook_pending = Gauge(
            "gatewaycerts_webhook_deliveries_pending",
            "Webhook deliveries of every project waiting for an attempt (store-wide, as last counted by this "
            "process's worker)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.store_wide = StoreWideGauges()
        r.register(self.store_wide)
        # Multiprocess mode: (method, route, status) -> the counter's and the histogram's children: `labels()`
        # takes a lock and builds a key on every call; the label sets are few (route templates, never raw paths).
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.tracks_in_flight = True

    def count_in_flight_from(self, count: Callable[[], float]) -> None:
        """In one process, the in-flight gauge reads the service's own count of requests in flight (the
        request middleware's InFlight, entered and left for exactly the requests it counted) when scraped,
        instead of two locked updates per request. Under multiprocess mode (`serve --workers N`) the gauge
        stays a per-worker value in the shared files, updated per request: prometheus_client has no callback
        gauges there."""
        if self._multiprocess_dir is None:
            self.in_flight.set_function(count)
            self.tracks_in_flight = False

    def forget_certificate(self, cert_id: str) -> None:
        """A managed certificate was deleted: its per-certificate gauges go."""
        for gauge in (self.next_renewal, self.renewal_failures):
            with contextlib.suppress(KeyError):
                gauge.remove(cert_id)

    def set_expiry(self, report: dict[str, dict[str, ExpiryCounts]], outstanding: dict[str, int]) -> None:
        self.store_wide.report, self.store_wide.outstanding, self.store_wide.up = report, outstanding, 1.0

    def expiry_failed(self) -> None:
        """The stores did not answer: keep the last values, and say that they are old."""
        self.store_wide.up = 0.0

    def request_started(self) -> None:
        if self.tracks_in_flight:
            self.in_flight.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if self.tracks_in_flight:
            self.in_flight.dec()
        if self._tallies is not None:
            self._tallies.observe(method, route, status, seconds)
            return
        children = self._request_children.get((method, route, status))
        if children is None:
            children = self.requests.labels(method, route, str(status)), self.latency.labels(method, route)
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._multiprocess_dir)
        registry.register(self.store_wide)
        return generate_latest(registry)


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
        metrics.expiry_failed()
    else:
        metrics.set_expiry(report, outstanding)
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
