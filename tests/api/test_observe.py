"""Every request's id (echoed, logged, sent to the bot), and what a stopping service answers (api/_observe.py)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openline import request_id
from openline.logs import JsonFormatter, RequestIds, formatter
from tests.api._v3 import V3
from tests.api.conftest import ADMIN_SECRET, ECHO_SECRET, REC_SECRET, Service, serve

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_each_answer_carries_a_new_request_id(service: Service) -> None:
    first = service.http.get("/healthz").headers["x-request-id"]
    second = service.http.get("/healthz").headers["x-request-id"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second
    error = service.http.get("/no/such/path")
    assert HEX_ID.fullmatch(error.headers["x-request-id"])


@pytest.mark.parametrize("sent", ["abc-123", "0af7651916cd43dd8448eb211c80319c", "a" * 128, "req:1/2=+@_."])
def test_a_sane_client_id_is_kept(service: Service, sent: str) -> None:
    assert service.http.get("/healthz", headers={"X-Request-Id": sent}).headers["x-request-id"] == sent


@pytest.mark.parametrize("sent", ["", "a" * 129, "two words", "semi;colon", 'quote"', "caf\u00e9"])
def test_an_odd_client_id_is_replaced(service: Service, sent: str) -> None:
    headers = [("X-Request-Id", sent.encode("utf-8"))]
    answered = service.http.get("/healthz", headers=headers).headers["x-request-id"]
    assert HEX_ID.fullmatch(answered)


def test_websockets_carry_the_request_id_too(service: Service) -> None:
    started = V3(service).start()
    with connect(started["streamUrl"], open_timeout=5, additional_headers={"X-Request-Id": "ws-1"}) as ws:
        assert ws.response is not None and ws.response.headers["X-Request-Id"] == "ws-1"
    bad = started["streamUrl"].replace("t=", "t=x")
    with pytest.raises(InvalidStatus) as refused, connect(bad, open_timeout=5):
        pass
    assert HEX_ID.fullmatch(refused.value.response.headers["X-Request-Id"])


@pytest.mark.parametrize("api", ["v3", "v1"])
def test_the_bot_gets_the_id_of_the_request_that_delivered(service: Service, api: str) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    text = f"hello over {api}"
    if api == "v3":
        r = v3.post(
            f"/conversations/{conv}/activities",
            json={"type": "message", "from": {"id": "u1"}, "text": text},
            headers={"X-Request-Id": f"turn-{api}"},
        )
        assert r.status_code == 200
    else:
        r = service.http.post(
            f"/api/conversations/{conv}/messages",
            json={"from": "u1", "text": text},
            headers={**service.auth(REC_SECRET), "X-Request-Id": f"turn-{api}"},
        )
        assert r.status_code == 204
    (i,) = [i for i, a in enumerate(service.bot.received) if a.get("text") == text]
    assert service.bot.headers[i]["x-request-id"] == f"turn-{api}"


def test_a_redelivery_carries_the_id_of_the_retry(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    activity = {"type": "message", "from": {"id": "u1"}, "text": "again", "channelData": {"clientActivityID": "k1"}}
    service.bot.fail_messages = 1
    try:
        first = v3.post(f"/conversations/{conv}/activities", json=activity, headers={"X-Request-Id": "first-try"})
        assert first.status_code == 502
        retry = v3.post(f"/conversations/{conv}/activities", json=activity, headers={"X-Request-Id": "the-retry"})
        assert retry.status_code == 200
    finally:
        service.bot.fail_messages = 0
    ids = [
        service.bot.headers[i]["x-request-id"] for i, a in enumerate(service.bot.received) if a.get("text") == "again"
    ]
    assert ids == ["first-try", "the-retry"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_unexpected_error_is_logged_and_answered_with_the_id(tmp_path: Path) -> None:
    with serve(tmp_path) as service:

        async def broken(limit: int) -> None:
            raise RuntimeError("a bug")

        service.services.inspector.conversations = broken  # type: ignore[method-assign,assignment]
        # a handler as `openline serve` has: its filter runs where the record is made, in the request's context
        handler = _Records()
        handler.addFilter(RequestIds())
        logging.getLogger("openline.api").addHandler(handler)
        try:
            headers = {**service.auth(ADMIN_SECRET), "X-Request-Id": "bug-1"}
            r = service.http.get("/admin/conversations", headers=headers)
        finally:
            logging.getLogger("openline.api").removeHandler(handler)
        assert r.status_code == 500 and r.headers["x-request-id"] == "bug-1"
        (error,) = [rec for rec in handler.records if rec.levelno == logging.ERROR]
        assert error.request_id == "bug-1"  # type: ignore[attr-defined]
        assert "RuntimeError: a bug" in JsonFormatter().format(error)


def test_access_lines_carry_the_id_as_a_field(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    service.http.get("/healthz", headers={"X-Request-Id": "logged-1"})

    def lines() -> list[logging.LogRecord]:  # written once the answer is sent: maybe after the client read it
        return [r for r in caplog.records if r.name == "openline.access" and "/healthz" in r.getMessage()]

    deadline = time.monotonic() + 5
    while not lines() and time.monotonic() < deadline:
        time.sleep(0.01)
    access = lines()
    assert access and access[-1].fields["request_id"] == "logged-1"  # type: ignore[attr-defined]
    assert access[-1].fields["path"] == "/healthz" and access[-1].fields["status"] == 200  # type: ignore[attr-defined]


def test_the_json_format_is_one_object_per_line_with_the_id() -> None:
    logger = logging.getLogger("openline.test-json")
    handler_filter = RequestIds()
    token = request_id.current.set("rid-42")
    try:
        record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "bot said %s", ("a\nb",), None)
        handler_filter.filter(record)
    finally:
        request_id.current.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "bot said a\nb" and document["level"] == "WARNING"
    assert document["logger"] == "openline.test-json" and document["request_id"] == "rid-42"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["time"])


def test_the_json_format_gives_tracebacks_as_a_field() -> None:
    logger = logging.getLogger("openline.test-json")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RequestIds().filter(record)
    document = json.loads(formatter("json").format(record))
    assert "request_id" not in document  # none was being served
    assert "ValueError: boom" in document["exception"] and document["message"] == "failed"


def test_the_text_format_shows_the_id() -> None:
    record = logging.LogRecord("openline", logging.INFO, __file__, 1, "hello", (), None)
    token = request_id.current.set("rid-7")
    try:
        RequestIds().filter(record)
    finally:
        request_id.current.reset(token)
    assert formatter("text").format(record).endswith("INFO openline [rid-7]: hello")


# -- a stopping service -------------------------------------------------------------------------------------


def test_a_stopping_service_refuses_new_client_work_and_serves_bots(tmp_path: Path) -> None:
    with serve(tmp_path) as service:
        v3 = V3(service)
        started = v3.start()
        conv = started["conversationId"]
        service.services.drain.stopping = True
        try:
            health = service.http.get("/healthz")
            assert (health.status_code, health.json()) == (503, {"status": "stopping"})
            r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "text": "late"})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert set(r.json()["error"]) == {"code", "message"}
            r1 = service.http.post("/api/conversations", headers=service.auth(ECHO_SECRET))
            assert r1.status_code == 503 and r1.json()["error"]["statusCode"] == 503  # the 1.1 error shape
            # the paths the router collapses are client paths too (they would get in, uncounted, mid-stop)
            for doubled in ("//v3/directline/conversations", "/v3//directline/conversations/", "//api/conversations"):
                url = str(service.http.base_url).rstrip("/") + doubled  # whole: httpx reads "//v3" as a host
                r = service.http.post(url, headers=service.auth(ECHO_SECRET))
                assert r.status_code == 503, (doubled, r.status_code)
            with pytest.raises(InvalidStatus) as refused, connect(started["streamUrl"], open_timeout=5):
                pass
            assert refused.value.response.status_code == 503
            # the bot's calls are served: a reply through the connector API
            reply = {"type": "message", "from": {"id": "rec"}, "text": "late reply"}
            r = service.http.post(f"/v3/conversations/{conv}/activities", json=reply)
            assert r.status_code == 200, r.text
        finally:
            service.services.drain.stopping = False
        assert v3.activities(conv)["activities"][-1]["text"] == "late reply"
