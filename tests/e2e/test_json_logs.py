"""`openline serve --log-format json`: one JSON object per line, access lines with fields, the request id
carried from the client's header to the log records of its request and to the bot."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api._servers import LoopThread, RecordingBot, bound_socket
from tests.e2e.harness import SECRET, Processes

AUTH = {"Authorization": f"Bearer {SECRET}"}


def test_json_logs_carry_the_request_id(procs: Processes) -> None:
    loop = LoopThread()
    bot = RecordingBot()
    endpoint = loop.serve(bot.app(), bound_socket()) + "/api/messages"
    try:
        service = procs.openline(
            "--bot", endpoint, "--secret", SECRET, "--log-format", "json", "--data-dir", str(procs.tmp_path / "data")
        )
        with httpx.Client(base_url=service.url + "/v3/directline", timeout=20) as http:
            conv = http.post("/conversations", headers=AUTH).json()["conversationId"]
            for text, request in (("hello", "e2e-hello"), ("fail", "e2e-fail")):
                activity = {"type": "message", "from": {"id": "u1"}, "text": text}
                headers = {**AUTH, "X-Request-Id": request}
                r = http.post(f"/conversations/{conv}/activities", json=activity, headers=headers)
                assert r.headers["x-request-id"] == request
        service.stop_gracefully()
    finally:
        loop.stop()

    records: list[dict[str, Any]] = [json.loads(line) for line in service.stderr.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records
    post = [r for r in records if r["logger"] == "openline.access" and r.get("request_id") == "e2e-hello"]
    assert len(post) == 1, records
    assert post[0]["method"] == "POST" and post[0]["status"] == 200
    assert post[0]["path"] == f"/v3/directline/conversations/{conv}/activities"
    assert isinstance(post[0]["duration_ms"], float) and post[0]["client"].startswith("127.0.0.1:")
    failure = [r for r in records if r["logger"] == "openline.delivery" and r["level"] == "WARNING"]
    assert [r.get("request_id") for r in failure] == ["e2e-fail"], records
    sent = {a.get("text"): h.get("x-request-id") for a, h in zip(bot.received, bot.headers, strict=True)}
    assert sent["hello"] == "e2e-hello" and sent["fail"] == "e2e-fail"
    assert any(r["message"] == "Application shutdown complete." for r in records)
