"""`GET /metrics`: the Prometheus text format after real traffic, bounded labels, and its credential."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api._v3 import V3, stream
from tests.api.conftest import ADMIN_SECRET, BOT_TIMEOUT, DOWN_SECRET, Service, serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ACTIVITIES = "/v3/directline/conversations/{conversation_id}/activities"
STREAM = "/v3/directline/conversations/{conversation_id}/stream"
TOKEN = "metrics-token-0123456789"


def _scrape(service: Service, credential: str = ADMIN_SECRET) -> Samples:
    r = service.http.get("/metrics", headers=service.auth(credential))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _eventually(holds: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_requests_are_counted_by_route_template_and_status(service: Service) -> None:
    before = _scrape(service)
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    v3.say(conv, "hello")
    v3.activities(conv)
    assert v3.get(f"/conversations/{conv}/activities", credential="wrong-secret").status_code == 403
    after = _scrape(service)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("openline_http_requests_total", route=ACTIVITIES, method="POST", status="200") == 1
    assert delta("openline_http_requests_total", route=ACTIVITIES, method="GET", status="200") == 1
    assert delta("openline_http_requests_total", route=ACTIVITIES, method="GET", status="403") == 1
    assert delta("openline_http_request_duration_seconds_count", route=ACTIVITIES, method="POST") == 1
    assert delta("openline_http_request_duration_seconds_sum", route=ACTIVITIES, method="POST") > 0
    # the bot's reply reached the connector API: counted under its own template
    connector = "/v3/conversations/{conversation_id}/activities/{activity_id}"
    assert delta("openline_http_requests_total", route=connector, method="POST", status="200") >= 1
    assert delta("openline_bot_deliveries_total", outcome="delivered") >= 2  # the join and the message
    assert delta("openline_bot_delivery_duration_seconds_count", outcome="delivered") >= 2
    assert _value(after, "openline_bot_deliveries_in_flight") == 0
    assert not any(conv in value for _, labels in after for _, value in labels), "no id in a label"


def test_stored_conversations_are_counted_at_most_every_few_seconds(tmp_path: Path) -> None:
    with serve(tmp_path) as service:
        assert _value(_scrape(service), "openline_stored_conversations") == 0
        V3(service).start()
        assert _value(_scrape(service), "openline_stored_conversations") == 0, "counted again within count_every"
        service.services.metrics.count_every = 0
        assert _value(_scrape(service), "openline_stored_conversations") == 1
        V3(service).start()
        assert _value(_scrape(service), "openline_stored_conversations") == 2


def test_paths_no_route_takes_share_one_label(service: Service) -> None:
    before = _scrape(service)
    for i in range(5):
        assert service.http.get(f"/no/such/path/{i}").status_code == 404
        assert service.http.post(f"/v3/directline/conversations/c{i}/nothing-here").status_code == 404
    after = _scrape(service)
    other = _value(after, "openline_http_requests_total", route="other", method="GET", status="404")
    assert other - _value(before, "openline_http_requests_total", route="other", method="GET", status="404") == 5
    routes = {dict(labels).get("route") for name, labels in after if name == "openline_http_requests_total"}
    assert not any("no/such" in r or "nothing-here" in r for r in routes if r), routes


def test_odd_methods_share_one_label(service: Service) -> None:
    service.http.request("PROPFIND", "/healthz")
    samples = _scrape(service)
    methods = {dict(labels)["method"] for name, labels in samples if name == "openline_http_requests_total"}
    assert "PROPFIND" not in methods and "other" in methods


def test_failed_deliveries_are_counted_by_outcome(service: Service) -> None:
    before = _scrape(service)
    V3(service, DOWN_SECRET).start()  # the join cannot reach the bot
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    for text, status in (("fail", 502), ("slow", 504)):  # the bot answers 500; it answers past the bot timeout
        r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": text})
        assert r.status_code == status, r.text
    after = _scrape(service)
    for outcome in ("unreachable", "rejected", "timeout"):
        for name in ("openline_bot_deliveries_total", "openline_bot_delivery_duration_seconds_count"):
            assert _value(after, name, outcome=outcome) - _value(before, name, outcome=outcome) == 1, (name, outcome)
    timed_out = _value(after, "openline_bot_delivery_duration_seconds_sum", outcome="timeout")
    assert timed_out - _value(before, "openline_bot_delivery_duration_seconds_sum", outcome="timeout") >= BOT_TIMEOUT


def test_open_websockets_are_a_gauge(service: Service) -> None:
    v3 = V3(service)
    started = v3.start()

    def open_streams() -> float:
        return _value(_scrape(service), "openline_open_websockets", route=STREAM)

    base = open_streams()
    with stream(started["streamUrl"]):
        assert open_streams() == base + 1  # accepted before connect returned
    assert _eventually(lambda: open_streams() == base)
    accepted = (
        "openline_http_requests_total",
        frozenset({("route", STREAM), ("method", "WEBSOCKET"), ("status", "101")}),
    )
    assert _scrape(service)[accepted] >= 1


@pytest.mark.parametrize("credential", [None, "Bearer wrong-secret-0123456789", "Basic abc", "Bearer"])
def test_metrics_need_the_admin_secret(service: Service, credential: str | None) -> None:
    headers = {"Authorization": credential} if credential is not None else {}
    r = service.http.get("/metrics", headers=headers)
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "message"}


def test_metrics_are_not_for_other_origins(service: Service) -> None:
    headers = {**service.auth(ADMIN_SECRET), "Origin": "https://elsewhere.example"}
    r = service.http.get("/metrics", headers=headers)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_a_metrics_token_works_beside_the_admin_secret(tmp_path: Path) -> None:
    with serve(tmp_path, metrics_token=TOKEN) as service:
        assert "openline_stored_conversations" in {name for name, _ in _scrape(service, TOKEN)}
        _scrape(service, ADMIN_SECRET)
        assert service.http.get("/metrics", headers=service.auth(TOKEN + "x")).status_code == 401
        assert service.http.get("/metrics").status_code == 401


def test_metrics_can_be_open(tmp_path: Path) -> None:
    with serve(tmp_path, metrics_token="off") as service:
        r = service.http.get("/metrics")
        assert r.status_code == 200 and "openline_stored_conversations" in r.text


def test_each_app_has_its_own_registry(tmp_path: Path, service: Service) -> None:
    with serve(tmp_path) as other:
        V3(other).start()
        V3(other).start()
        assert (
            _value(
                _scrape(other),
                "openline_http_requests_total",
                route="/v3/directline/conversations",
                method="POST",
                status="201",
            )
            == 2
        )


def test_instances_on_one_redis_count_their_own_requests_and_the_same_conversations(
    tmp_path: Path, redis_url: str
) -> None:
    store = f"{redis_url}?prefix=metrics-{uuid.uuid4().hex[:8]}"
    with serve(tmp_path / "a", store=store) as a, serve(tmp_path / "b", store=store) as b:
        for service in (a, b):
            service.services.metrics.count_every = 0
        for _ in range(3):
            V3(a).start()
        V3(b).start()
        started = ("openline_http_requests_total", "/v3/directline/conversations", "POST", "201")
        a_samples, b_samples = _scrape(a), _scrape(b)
        labels = dict(zip(("route", "method", "status"), started[1:], strict=True))
        assert _value(a_samples, started[0], **labels) == 3
        assert _value(b_samples, started[0], **labels) == 1
        assert _value(a_samples, "openline_stored_conversations") == 4
        assert _value(b_samples, "openline_stored_conversations") == 4
