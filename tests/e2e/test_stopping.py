"""SIGTERM stops `openline serve` gracefully: streams closed with 1001 at once, a POST waiting on the bot answered
(the bot's reply served meanwhile), exit 0 within the bound, nothing acknowledged lost after a restart."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api._servers import LoopThread, RecordingBot, bound_socket
from tests.e2e._js import JS_DIR, node_with_packages
from tests.e2e.harness import BOT_ID, SECRET, Openline, Processes
from tests.e2e.test_directlinejs import DRIVER, EXPIRED_TOKEN, FAILED_TO_CONNECT, exchange, scenario, welcome

V3 = "/v3/directline"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with tests/js/node_modules installed."""
    return node_with_packages("the directlinejs reconnection test")


@pytest.fixture
def bot() -> Iterator[tuple[RecordingBot, str]]:
    """The recording bot (its "pause" turns wait `pause_seconds`, then reply), served in this process."""
    loop = LoopThread()
    recording = RecordingBot(pause_seconds=3.0)
    url = loop.serve(recording.app(), bound_socket())
    try:
        yield recording, url + "/api/messages"
    finally:
        loop.run(recording.release())
        loop.stop()


def _serve(procs: Processes, data: Path, endpoint: str | None, *args: str, port: int | None = None) -> Openline:
    bot = ["--bot", endpoint] if endpoint else []
    return procs.openline(*bot, "--secret", SECRET, "--data-dir", str(data), *args, port=port)


def _start(http: httpx.Client) -> dict[str, Any]:
    r = http.post(V3 + "/conversations", headers=AUTH)
    assert r.status_code == 201, r.text
    started: dict[str, Any] = r.json()
    return started


def _say(http: httpx.Client, conv: str, text: str) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "text": text}
    return http.post(f"{V3}/conversations/{conv}/activities", json=activity, headers=AUTH)


def _texts(http: httpx.Client, conv: str) -> list[str]:
    r = http.get(f"{V3}/conversations/{conv}/activities", headers=AUTH)
    assert r.status_code == 200, r.text
    return [a.get("text", "") for a in r.json()["activities"]]


def _until(holds: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.02)


def _stopping(service: Openline) -> bool:
    try:
        return httpx.get(service.url + "/healthz", timeout=2).json() == {"status": "stopping"}
    except httpx.HTTPError:
        return False


def test_sigterm_closes_open_streams_with_1001_at_once(procs: Processes) -> None:
    service = _serve(procs, procs.tmp_path / "data", None)
    with httpx.Client(base_url=service.url, timeout=20) as http:
        started = _start(http)
    with connect(started["streamUrl"], open_timeout=10, close_timeout=5) as ws:
        signalled = time.monotonic()
        service.popen.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=20)
        took = time.monotonic() - signalled
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert closed.value.rcvd.reason == "the service is stopping"
    assert took < 5, f"closed {took:.1f} s after SIGTERM: not at once"
    assert service.popen.wait(20) == 0, service.describe()


def test_sigterm_lets_a_post_waiting_on_the_bot_finish(procs: Processes, bot: tuple[RecordingBot, str]) -> None:
    recording, endpoint = bot
    data = procs.tmp_path / "data"
    service = _serve(procs, data, endpoint, "--shutdown-timeout", "30")
    with httpx.Client(base_url=service.url, timeout=30) as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
        conv = _start(http)["conversationId"]
        answer = pool.submit(_say, http, conv, "pause, then reply")
        _until(lambda: bool(recording.of(conv, "message")), "delivery to the bot")
        signalled = time.monotonic()
        service.popen.send_signal(signal.SIGTERM)
        _until(lambda: _stopping(service), "/healthz saying stopping")
        refused = _say(http, conv, "too late")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text
        assert answer.result(30).status_code == 200, answer.result().text
        code = service.popen.wait(30)
        took = time.monotonic() - signalled
    assert code == 0, service.describe()
    assert took < 30, f"stopped {took:.1f} s after SIGTERM"
    assert recording.reply_statuses[-1] == 200, "the bot's reply during the drain was served"
    assert "Application shutdown complete" in service.stderr

    again = _serve(procs, data, endpoint, port=service.port)
    with httpx.Client(base_url=again.url, timeout=30) as http:
        assert _texts(http, conv) == ["pause, then reply", "welcome u1", "echo: pause, then reply"]


@pytest.mark.parametrize("how", ["bound", "second signal"])
def test_a_drain_ends_at_its_bound_or_on_a_second_signal(
    procs: Processes, bot: tuple[RecordingBot, str], how: str
) -> None:
    recording, endpoint = bot
    recording.pause_seconds = 120.0  # a bot that never answers in time
    data = procs.tmp_path / "data"
    bound = "1" if how == "bound" else "120"
    service = _serve(procs, data, endpoint, "--shutdown-timeout", bound, "--bot-timeout", "120")
    with httpx.Client(base_url=service.url, timeout=30) as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
        conv = _start(http)["conversationId"]
        answer = pool.submit(_say, http, conv, "pause forever")
        _until(lambda: bool(recording.of(conv, "message")), "delivery to the bot")
        signalled = time.monotonic()
        service.popen.send_signal(signal.SIGTERM)
        if how == "second signal":
            _until(lambda: _stopping(service), "/healthz saying stopping")
            service.popen.send_signal(signal.SIGTERM)
        code = service.popen.wait(30)
        took = time.monotonic() - signalled
        # ended at the bound: a 503 in the error shape, as for a new request, never the server's bare 500
        ended = answer.result(30)
        assert ended.status_code == 503 and ended.headers["retry-after"] == "1", ended.text
        assert set(ended.json()["error"]) == {"code", "message"}
    assert code == 0, service.describe()
    assert took < 15, f"stopped {took:.1f} s after SIGTERM"
    errors = [line for line in service.stderr.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "a stop at its bound is not an error: " + "\n".join(errors)
    again = _serve(procs, data, endpoint, port=service.port)
    with httpx.Client(base_url=again.url, timeout=30) as http:
        texts = _texts(http, conv)
        assert texts == ["pause forever", "welcome u1"], "stored before the bot was called: kept"


def test_directlinejs_reconnects_after_a_stop_and_misses_nothing(node: str, procs: Processes) -> None:
    """The real client: its stream closed with 1001, it reconnects (here to the same service restarted on the same
    port and data directory: another instance, in production) and gets what was sent while it was away."""
    bot = procs.bot(wait=False)
    data = procs.tmp_path / "data"
    args = ["--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(data), "--stream-keepalive", "1"]
    first = procs.openline(*args, wait=False)
    bot.wait_ready()
    first.wait_ready()
    after = {"op": "wait", "activities": [{"text": "sent while the client was away"}], "timeoutMs": 60_000}
    steps = [welcome("user1"), *exchange("user1", "one", "c-1"), after, *exchange("user1", "two", "c-2")]
    plan = {**scenario(first, web_socket=True, secret=SECRET, userId="user1", steps=steps)}
    plan.update(timeoutMs=20_000, totalTimeoutMs=100_000)
    out = procs.tmp_path / "driver.out"
    with out.open("w") as stdout:
        driver = subprocess.Popen(
            [node, str(DRIVER), json.dumps(plan)], stdout=stdout, stderr=subprocess.STDOUT, cwd=JS_DIR
        )
    try:

        def events() -> list[dict[str, Any]]:
            return [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]

        _until(lambda: any(e["event"] == "step" and e["index"] == 3 for e in events()), "the first exchange", 40)
        (conv,) = {m.group(1) for e in events() if (m := re.search(r"/conversations/([^/?]+)/", e.get("url", "")))}
        first.popen.send_signal(signal.SIGTERM)
        assert first.popen.wait(30) == 0, first.describe()
        closed = [e for e in events() if e["event"] == "ws" and e["state"] == "close"]
        assert closed and closed[0]["code"] == 1001, events()
        second = procs.openline(*args, port=first.port)
        with httpx.Client(base_url=second.url, timeout=20) as http:
            reply = {"type": "message", "from": {"id": BOT_ID}, "text": "sent while the client was away"}
            assert http.post(f"/v3/conversations/{conv}/activities", json=reply).status_code == 200
        assert driver.wait(100) == 0, out.read_text()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    run = events()
    statuses = [e["status"] for e in run if e["event"] == "status"]
    assert FAILED_TO_CONNECT not in statuses and EXPIRED_TOKEN not in statuses, run
    assert len([e for e in run if e["event"] == "ws" and e["state"] == "open"]) >= 2, "it opened a new stream"
    texts = [e["activity"].get("text") for e in run if e["event"] == "activity"]
    for text in ("one", "echo: one", "sent while the client was away", "two", "echo: two"):
        assert texts.count(text) == 1, (text, texts)
