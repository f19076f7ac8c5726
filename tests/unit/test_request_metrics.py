"""The request tallies (web/request_metrics.py) expose exactly what prometheus_client's Counter and Histogram
exposed for the same requests: the same text, line for line, in both exposition formats."""

from __future__ import annotations

import time

import prometheus_client.metrics as prometheus_metrics
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gatewaycerts.web.metrics import _LATENCY_BUCKETS, Metrics
from gatewaycerts.web.request_metrics import LATENCY, REQUESTS, RequestTallies

# (method, route, status, seconds): several label sets, first seen in a mixed order, values on bucket bounds,
# between them, past the last one, zero, and sums whose float additions depend on their order
OBSERVED = [
    ("GET", "/gateway/v1/{project_id}/instances/{instance_id}/caddy", 200, 0.0004),
    ("GET", "/v2/{project_id}/apic/certificates/{certificate_id}", 200, 0.001),
    ("GET", "/gateway/v1/{project_id}/instances/{instance_id}/caddy", 404, 0.0025),
    ("POST", "/v2/{project_id}/apic/certificates", 201, 0.1),
    ("GET", "/gateway/v1/{project_id}/instances/{instance_id}/caddy", 200, 0.1 + 0.2),
    ("GET", "unmatched", 404, 0.0),
    ("GET", "/v2/{project_id}/apic/certificates/{certificate_id}", 304, 12.5),
    ("GET", "/v2/{project_id}/apic/certificates/{certificate_id}", 200, 10.0),
    ("POST", "/v2/{project_id}/apic/certificates", 400, 0.0123456789),
    ("GET", "/gateway/v1/{project_id}/instances/{instance_id}/caddy", 200, 1e-9),
    ("DELETE", 'a "quoted" \\ route\n', 500, 2.5),
]


def _library(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    counter = Counter(*REQUESTS, ["method", "route", "status"], registry=registry)
    histogram = Histogram(*LATENCY, ["method", "route"], buckets=_LATENCY_BUCKETS, registry=registry)
    return counter, histogram


@pytest.mark.parametrize("created", [True, False])
def test_the_tallies_expose_what_the_counter_and_histogram_exposed(monkeypatch, created) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])  # both sides read their _created from it
    monkeypatch.setattr(prometheus_metrics, "_use_created", created)
    expected, ours = CollectorRegistry(), CollectorRegistry()
    counter, histogram = _library(expected)
    tallies = RequestTallies(_LATENCY_BUCKETS)
    ours.register(tallies)
    for i, (method, route, status, seconds) in enumerate(OBSERVED * 3):
        now[0] = 1_000.0 + i  # a label set's _created is the time of its first request, on both sides
        # the old Metrics made the two children in this order on a label set's first request
        c, h = counter.labels(method, route, str(status)), histogram.labels(method, route)
        c.inc()
        h.observe(seconds)
        tallies.observe(method, route, status, seconds)
    assert generate_latest(ours) == generate_latest(expected)
    assert generate_openmetrics(ours) == generate_openmetrics(expected)
    assert b"gatewaycerts_http_request_duration_seconds_bucket" in generate_latest(ours)
    assert (b"_created" in generate_latest(ours)) is created
    sample = {"method": "GET", "route": "/gateway/v1/{project_id}/instances/{instance_id}/caddy", "status": "200"}
    assert ours.get_sample_value("gatewaycerts_http_requests_total", sample) == 9
    assert ours.get_sample_value(
        "gatewaycerts_http_request_duration_seconds_bucket",
        {"method": "GET", "route": "unmatched", "le": "0.001"},
    ) == expected.get_sample_value(
        "gatewaycerts_http_request_duration_seconds_bucket",
        {"method": "GET", "route": "unmatched", "le": "0.001"},
    )


def test_an_empty_tally_exposes_the_families_as_the_library_did() -> None:
    expected, ours = CollectorRegistry(), CollectorRegistry()
    _library(expected)
    ours.register(RequestTallies(_LATENCY_BUCKETS))
    assert generate_latest(ours) == generate_latest(expected)


def test_the_service_metrics_count_requests_through_the_tallies_in_one_process() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/x", 200, 0.003)
    metrics.observe_request("GET", "/x", 200, 0.02)
    assert (
        metrics.registry.get_sample_value(
            "gatewaycerts_http_requests_total", {"method": "GET", "route": "/x", "status": "200"}
        )
        == 2
    )
    bucket = {"method": "GET", "route": "/x", "le": "0.005"}
    assert metrics.registry.get_sample_value("gatewaycerts_http_request_duration_seconds_bucket", bucket) == 1
    text = metrics.exposition().decode()
    assert 'gatewaycerts_http_request_duration_seconds_count{method="GET",route="/x"} 2.0' in text
    # the families keep their place among the others: the in-flight gauge still follows them
    assert text.index("gatewaycerts_http_request_duration_seconds_count") < text.index(
        "gatewaycerts_http_requests_in_flight"
    )
    with pytest.raises(ValueError, match="Duplicated timeseries"):  # describe() names them to the registry
        Counter(*REQUESTS, ["method"], registry=metrics.registry)
