"""Every way a bot can fail, against every way a client sends: the answer, one stored copy, the retry, health.

The faulty bot is a raw TCP server speaking (or not) HTTP/1.1, one bot id per fault, so it can do what no
framework lets a bot do: close without answering, answer something that is not HTTP, send a body that never
ends or is huge, redirect. Each fault is tried with the four client posts that reach a bot (1.1 message and
upload, 3.0 activity and upload), each with a `clientActivityID`, then once more with the same one (README,
"Retries and delivery"). Conversation updates get a plain 200, so every conversation starts cleanly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openline.config import BotConfig
from tests.api._servers import LoopThread, closed_port
from tests.api._v3 import BASE
from tests.api.conftest import ECHO_SECRET, Service, serve

BOT_TIMEOUT = 1.5  # the time faults take this long per post; the bots that answer do so at once
ENDLESS_FOR = 30.0  # seconds a never-ending body is sent at most (the service hangs up long before)
HUGE = 32 * 1024 * 1024  # bytes of the huge answer body


@dataclass(frozen=True)
class Fault:
    """What the client is told when the bot does `mode`: 3.0 status and code (1.1: 204 or 500 ServiceError)."""

    status: int  # the 3.0 status: 200 when the bot took it
    code: str | None = None  # the 3.0 error code
    inner: int | None = None  # innerHttpError.statusCode: the bot's own status
    reached: bool = True  # the bot received the activity
    says: str = ""  # in the error message


FAULTS: dict[str, Fault] = {
    "down": Fault(502, "BotUnavailable", reached=False, says="could not be reached"),
    "reset": Fault(502, "BotUnavailable", says="could not be reached"),  # closed without an answer
    "not-http": Fault(502, "BotUnavailable", says="could not be reached"),
    "slow": Fault(504, "BotTimeout", says="did not answer in time"),
    "http-500": Fault(502, "BotRejectedActivity", 500, says="rejected"),
    "html-500": Fault(502, "BotRejectedActivity", 500, says="rejected"),
    "endless-500": Fault(502, "BotRejectedActivity", 500, says="rejected"),  # the status is the answer
    "http-401": Fault(502, "BotRejectedActivity", 401, says="asks for authentication"),
    "http-403": Fault(502, "BotRejectedActivity", 403, says="asks for authentication"),
    "redirect-307": Fault(502, "BotRejectedActivity", 307, says="redirects"),
    "redirect-301": Fault(502, "BotRejectedActivity", 301, says="redirects"),
    # a 2xx is the bot taking the activity, whatever its body (the channel reads nothing from it)
    "junk-200": Fault(200),
    "text-200": Fault(200),
    "endless-200": Fault(200),
    "huge-200": Fault(200),
}
HIDDEN = "stack-trace-of-the-bot"  # in the bots' error bodies: logged, never shown to clients


def _secret(mode: str) -> str:
    return f"{mode}-secret-0123456789"


def _http(status: str, body: bytes = b"", content_type: str = "application/json", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


class FaultyBot:
    """A TCP server whose path names the fault; it records the messages it received, as (mode, activity)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def of(self, mode: str, key: str) -> list[dict[str, Any]]:
        return [
            a for m, a in self.received if m == mode and (a.get("channelData") or {}).get("clientActivityID") == key
        ]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; False when the connection is to end."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        mode = head[0].split(" ")[1].strip("/")
        fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        length = next((int(v) for k, v in fields.items() if k.strip().lower() == "content-length"), 0)
        activity = json.loads(await reader.readexactly(length))
        if activity.get("type") != "message" or mode == "target":
            if mode == "target":
                self.received.append((mode, activity))
            writer.write(_http("200 OK"))
            await writer.drain()
            return True
        self.received.append((mode, activity))
        return await self._fault(mode, writer)

    async def _fault(self, mode: str, writer: asyncio.StreamWriter) -> bool:
        error = json.dumps({"error": HIDDEN}).encode()
        answers = {
            "http-500": _http("500 Internal Server Error", error),
            "html-500": _http("500 Internal Server Error", f"<html><h1>{HIDDEN}</h1></html>".encode(), "text/html"),
            "http-401": _http("401 Unauthorized", error, extra='WWW-Authenticate: Bearer realm="bot"\r\n'),
            "http-403": _http("403 Forbidden", error),
            "redirect-307": _http("307 Temporary Redirect", extra=f"Location: {self.url}/target\r\n"),
            "redirect-301": _http("301 Moved Permanently", extra=f"Location: {self.url}/target\r\n"),
            "junk-200": _http("200 OK", b"}{ not json at all \x00\xff"),
            "text-200": _http("200 OK", b"OK", "text/plain"),
        }
        if mode in answers:
            writer.write(answers[mode])
            await writer.drain()
            return True
        if mode == "reset":
            return False
        if mode == "not-http":
            writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n")
            await writer.drain()
            return False
        if mode == "slow":
            await asyncio.sleep(BOT_TIMEOUT * 4)
            return False
        if mode in ("endless-200", "endless-500"):
            status = "200 OK" if mode == "endless-200" else "500 Internal Server Error"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ENDLESS_FOR
            while loop.time() < deadline and not writer.is_closing():
                writer.write(b"1\r\n \r\n")
                await writer.drain()
                await asyncio.sleep(0.1)
            return False
        if mode == "huge-200":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n".encode())
            chunk = b" " * 65536
            for _ in range(HUGE // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            return True
        raise AssertionError(f"no fault {mode!r}")


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyBot]:
    loop = LoopThread()
    bot = FaultyBot()
    loop.run(bot.start())
    try:
        yield bot
    finally:
        loop.run(bot.stop())
        loop.stop()


@pytest.fixture(scope="module")
def service(faulty: FaultyBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    down = f"http://127.0.0.1:{closed_port()}/api/messages"

    def bots(_: str) -> tuple[BotConfig, ...]:
        return tuple(
            BotConfig(mode, mode, down if mode == "down" else f"{faulty.url}/{mode}", (_secret(mode),))
            for mode in FAULTS
        )

    with serve(Path(tmp_path_factory.mktemp("data")), bots, bot_timeout=BOT_TIMEOUT) as running:
        yield running


# -- the four posts that reach a bot ------------------------------------------------------------------------

Post = Callable[[Service, str, str, str], httpx.Response]  # (service, mode, conversation, client activity id)


def _auth(mode: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_secret(mode)}"}


def _v3_activity(service: Service, mode: str, conv: str, key: str) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "text": key, "channelData": {"clientActivityID": key}}
    return service.http.post(f"{BASE}/conversations/{conv}/activities", headers=_auth(mode), json=activity)


def _v3_upload(service: Service, mode: str, conv: str, key: str) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "text": key, "channelData": {"clientActivityID": key}}
    files = [
        ("activity", ("blob", json.dumps(activity), "application/vnd.microsoft.activity")),
        ("file", ("cat.png", b"\x89PNG a cat", "image/png")),
    ]
    return service.http.post(f"{BASE}/conversations/{conv}/upload?userId=u1", headers=_auth(mode), files=files)


def _v1_message(service: Service, mode: str, conv: str, key: str) -> httpx.Response:
    message = {"from": "u1", "text": key, "channelData": {"clientActivityID": key}}
    return service.http.post(f"/api/conversations/{conv}/messages", headers=_auth(mode), json=message)


def _v1_upload(service: Service, mode: str, conv: str, key: str) -> httpx.Response:
    message = json.dumps({"from": "u1", "text": key, "channelData": {"clientActivityID": key}}).encode()
    files = [
        ("file", ("cat.png", b"\x89PNG a cat", "image/png")),
        ("message", ("", message, "application/vnd.microsoft.bot.message")),
    ]
    return service.http.post(f"/api/conversations/{conv}/upload", headers=_auth(mode), files=files)


POSTS: dict[str, Post] = {
    "v3-activity": _v3_activity,
    "v3-upload": _v3_upload,
    "v1-message": _v1_message,
    "v1-upload": _v1_upload,
}


def _check_answer(r: httpx.Response, fault: Fault, api: str) -> None:
    """The documented answer: 3.0's status and ErrorResponse, or 1.1's 204 / 500 ServiceError (Swagger)."""
    if fault.status == 200:
        assert r.status_code == (200 if api.startswith("v3") else 204), r.text
        return
    body = r.json()
    assert set(body) == {"error"}, r.text
    error = body["error"]
    if api.startswith("v3"):
        assert r.status_code == fault.status and error["code"] == fault.code, r.text
        assert error.get("innerHttpError") == ({"statusCode": fault.inner} if fault.inner else None), r.text
    else:
        assert r.status_code == 500 and error == {**error, "code": "ServiceError", "statusCode": 500}, r.text
    assert fault.says in error["message"], r.text
    assert HIDDEN not in r.text and "127.0.0.1" not in r.text, "the bot's words and address are not shown"


def _stored(service: Service, conv: str, key: str) -> list[dict[str, Any]]:
    return [a for a in service.stored(conv) if (a.get("channelData") or {}).get("clientActivityID") == key]


def _healthy(service: Service) -> None:
    """/healthz, and a turn with the echo bot."""
    assert service.http.get("/healthz").json() == {"status": "ok"}
    auth = {"Authorization": f"Bearer {ECHO_SECRET}"}
    conv = service.http.post(f"{BASE}/conversations", headers=auth).json()["conversationId"]
    activity = {"type": "message", "from": {"id": "u1"}, "text": "still there?"}
    assert service.http.post(f"{BASE}/conversations/{conv}/activities", headers=auth, json=activity).status_code == 200


@pytest.mark.parametrize("api", list(POSTS))
@pytest.mark.parametrize("mode", list(FAULTS))
def test_a_bot_fault_is_answered_stored_once_and_retried_as_documented(
    service: Service, faulty: FaultyBot, mode: str, api: str
) -> None:
    fault = FAULTS[mode]
    path = "/api/conversations" if api.startswith("v1") else f"{BASE}/conversations"
    started = service.http.post(path, headers=_auth(mode))
    assert started.status_code in (200, 201), started.text
    conv = started.json()["conversationId"]
    key = f"{mode}-{api}"

    _check_answer(POSTS[api](service, mode, conv, key), fault, api)
    (stored,) = _stored(service, conv, key)
    assert bool(stored.get("attachments")) == api.endswith("upload")
    delivered = faulty.of(mode, key)
    assert [a["id"] for a in delivered] == ([stored["id"]] if fault.reached else [])

    retry = POSTS[api](service, mode, conv, key)
    if fault.status == 200:
        # taken: the retry answers at once with the first's id, and the bot is not called again
        _check_answer(retry, fault, api)
        if api.startswith("v3"):
            assert retry.json() == {"id": stored["id"]}
        assert len(faulty.of(mode, key)) == 1
    else:
        # not taken: the same activity (id, timestamp, files) is delivered again, and fails the same way
        _check_answer(retry, fault, api)
        again = faulty.of(mode, key)
        assert [a["id"] for a in again] == ([stored["id"]] * 2 if fault.reached else [])
        if fault.reached:
            assert again[0]["timestamp"] == again[1]["timestamp"]
            assert again[0].get("attachments") == again[1].get("attachments")
    assert _stored(service, conv, key) == [stored], "stored once, unchanged"
    assert faulty.of("target", key) == [], "a redirect is not followed"
    _healthy(service)
