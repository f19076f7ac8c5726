"""The in-flight gauge of one process reads the request middleware's own count (web/metrics.py)."""

from __future__ import annotations

from gatewaycerts.web.metrics import Metrics


def test_the_in_flight_gauge_reads_the_services_own_count_in_one_process():
    def gauge(metrics: Metrics) -> float:
        text = metrics.exposition().decode()
        return float(
            next(x for x in text.splitlines() if x.startswith("gatewaycerts_http_requests_in_flight ")).split()[1]
        )

    in_flight = [3]
    metrics = Metrics()
    metrics.count_in_flight_from(lambda: in_flight[0])
    metrics.request_started()  # no longer an update of its own: the count above is the value
    assert gauge(metrics) == 3
    in_flight[0] = 0
    metrics.observe_request("GET", "/x", 200, 0.001)
    assert gauge(metrics) == 0
    counted = Metrics()  # without a count to follow, the gauge is updated per request as before
    counted.request_started()
    assert gauge(counted) == 1
