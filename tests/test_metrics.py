"""openline.metrics: the request series as Prometheus reads them (buckets by `le`, counts by status)."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from openline.metrics import Metrics

ROUTE = "/v3/directline/conversations/{conversation_id}/activities"


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = asyncio.run(metrics.exposition()).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_by_status_and_timed_by_route() -> None:
    metrics = Metrics()
    for seconds, status in ((0.005, 200), (0.0051, 200), (45.0, 504), (0.0, 403)):
        metrics.request(ROUTE, "POST", status, seconds)
    samples = _samples(metrics)

    def count(status: str) -> float:
        return samples[
            ("openline_http_requests_total", frozenset({("route", ROUTE), ("method", "POST"), ("status", status)}))
        ]

    assert (count("200"), count("504"), count("403")) == (2, 1, 1)

    def bucket(le: str) -> float:
        labels = frozenset({("route", ROUTE), ("method", "POST"), ("le", le)})
        return samples[("openline_http_request_duration_seconds_bucket", labels)]

    # `le` is "less than or equal": 0.005 itself is in the 0.005 bucket; 45 s only in +Inf
    assert (bucket("0.001"), bucket("0.005"), bucket("0.01"), bucket("30.0"), bucket("+Inf")) == (1, 2, 3, 3, 4)
    timed = frozenset({("route", ROUTE), ("method", "POST")})
    assert samples[("openline_http_request_duration_seconds_count", timed)] == 4
    assert samples[("openline_http_request_duration_seconds_sum", timed)] == 0.005 + 0.0051 + 45.0


def test_unusual_methods_share_a_label_and_deliveries_have_outcomes() -> None:
    metrics = Metrics()
    metrics.request("other", "PROPFIND", 404, 0.001)
    metrics.request("other", "BREW", 404, 0.001)
    metrics.delivery(None, 0.2)
    samples = _samples(metrics)
    other = frozenset({("route", "other"), ("method", "other"), ("status", "404")})
    assert samples[("openline_http_requests_total", other)] == 2
    assert samples[("openline_bot_deliveries_total", frozenset({("outcome", "delivered")}))] == 1
    assert samples[("openline_stored_conversations", frozenset())] == 0  # nothing to count them with
