"""The HTTP request metrics of one process, tallied in plain numbers and read by prometheus at collect time.

`gatewaycerts_http_requests` (a counter by method, route template and status) and
`gatewaycerts_http_request_duration_seconds` (a histogram by method and route template) were a prometheus_client
Counter and Histogram: three locked increments per request (the counter, the histogram's sum, its bucket).
`RequestTallies` is a registry collector (`prometheus_client.registry.Collector`) that keeps the same values in
plain floats and yields them from `collect()` as the two families, sample for sample as the Counter and the
Histogram would (the same names, label sets in first-seen order, cumulative buckets with the same `le`
texts, `_count`, `_sum`, `_created`, the float additions in the same order): every reader of the registry
(the `/metrics` exposition, `registry.get_sample_value`) sees the same numbers as before, with no fold step.

Only the request middleware observes, on its process's event loop thread; the collector is not for several
writer threads (the library's locks are what it saves). A scrape on another thread reads a consistent value of
each number; `collect` copies the tables before it walks them.

Under `serve --workers N` (multiprocess mode) the values must live in prometheus_client's per-process files,
which only its own metric classes write: web/metrics.Metrics keeps the Counter and Histogram there.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

import prometheus_client.metrics as _prometheus_metrics
from prometheus_client.core import Metric
from prometheus_client.utils import INF, floatToGoString

REQUESTS = ("gatewaycerts_http_requests", "HTTP requests answered")
LATENCY = ("gatewaycerts_http_request_duration_seconds", "Time from request start to response, by route template")


class _Latency:
    """One (method, route)'s histogram: the count in each bucket (not cumulative), the sum, when it was made."""

    __slots__ = ("buckets", "created", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0.0] * size
        self.sum = 0.0
        self.created = time.time()


class _Count:
    """One (method, route, status)'s count, when it was made, and its route's histogram."""

    __slots__ = ("created", "latency", "value")

    def __init__(self, latency: _Latency) -> None:
        self.value = 0.0
        self.created = time.time()
        self.latency = latency


class RequestTallies:
    """See the module's docstring. `buckets`: the histogram's upper bounds, as Histogram takes them."""

    def __init__(self, buckets: Sequence[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds[-1] != INF:
            bounds.append(INF)
        self._bounds = tuple(bounds)
        self._le = tuple(floatToGoString(b) for b in bounds)
        self._counts: dict[tuple[str, str, int], _Count] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        count = self._counts.get((method, route, status))
        if count is None:
            count = self._new_count(method, route, status)
        count.value += 1.0
        latency = count.latency
        latency.sum += seconds
        # Histogram.observe: the first bucket whose bound is >= the value (a NaN is counted in no bucket)
        if seconds == seconds:
            latency.buckets[bisect_left(self._bounds, seconds)] += 1.0

    def _new_count(self, method: str, route: str, status: int) -> _Count:
        latency = self._latency.get((method, route))
        if latency is None:  # made when the histogram's label set is first used, as Histogram.labels makes it
            latency = self._latency[(method, route)] = _Latency(len(self._bounds))
        count = self._counts[(method, route, status)] = _Count(latency)
        return count

    def describe(self) -> Iterable[Metric]:
        return [Metric(*REQUESTS, "counter"), Metric(*LATENCY, "histogram")]

    def collect(self) -> Iterator[Metric]:
        created = _prometheus_metrics._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, as the library reads it
        requests = Metric(*REQUESTS, "counter")
        name = REQUESTS[0]
        for (method, route, status), count in list(self._counts.items()):
            labels = {"method": method, "route": route, "status": str(status)}
            requests.add_sample(name + "_total", labels, count.value)
            if created:
                requests.add_sample(name + "_created", dict(labels), count.created)
        yield requests
        latency = Metric(*LATENCY, "histogram")
        name = LATENCY[0]
        for (method, route), tally in list(self._latency.items()):
            buckets, total = list(tally.buckets), tally.sum
            acc = 0.0
            for le, n in zip(self._le, buckets, strict=True):
                acc += n
                latency.add_sample(name + "_bucket", {"method": method, "route": route, "le": le}, acc)
            latency.add_sample(name + "_count", {"method": method, "route": route}, acc)
            latency.add_sample(name + "_sum", {"method": method, "route": route}, total)
            if created:
                latency.add_sample(name + "_created", {"method": method, "route": route}, tally.created)
        yield latency
