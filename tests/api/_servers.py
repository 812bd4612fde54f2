"""Real servers on loopback for the API tests: openline and a recording bot, in one background event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.config import Config
from openline.server import server_config


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Clock:
    """Real time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class LoopThread:
    """An event loop in a daemon thread that runs ASGI servers until stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[tuple[uvicorn.Server, concurrent.futures.Future[Any]]] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: Any, sock: socket.socket, config: Config | None = None) -> str:
        """Serve `app` on `sock`; with an openline `config`, as `openline serve` does (its server and limits)."""
        if config is not None:
            uvicorn_config = server_config(app, config, log_level="warning")
        else:
            uvicorn_config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        server = uvicorn.Server(uvicorn_config)
        self.servers.append((server, asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), self.loop)))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _tasks(self) -> str:
        """What the loop is still running, with where each task waits (for a stop that does not end)."""

        async def dump() -> str:
            import io

            out = io.StringIO()
            for task in asyncio.all_tasks():
                if task is asyncio.current_task():
                    continue
                out.write(f"{task!r}\n")
                awaited: Any = task.get_coro()
                while awaited is not None:  # the chain of awaits, down to the one it waits on
                    frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
                    if frame is not None:
                        out.write(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}\n")
                    awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
            return out.getvalue()

        return str(asyncio.run_coroutine_threadsafe(dump(), self.loop).result(5))

    def stop(self) -> None:
        """Shut the servers down gracefully (lifespan shutdown runs), then the loop."""
        for server, _ in reversed(self.servers):
            server.should_exit = True
        for _, done in self.servers:
            try:
                done.result(15)
            except TimeoutError:
                raise TimeoutError(f"a server took over 15 s to stop; its loop's tasks:\n{self._tasks()}") from None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class RecordingBot:
    """A bot that records what it receives and acts on the message text.

    "fail" → 500; "slow" → answers after `slow_seconds`; "pause" → waits `pause_seconds` (less than
    the bot timeout), then acts like any other text; "silent" → 201 without
    replying; "typing" → sends a typing activity and an event, then the echo;
    "card" → a hero card reply; "deny" → 401, as a bot refusing the channel's
    credentials; anything else → replies `echo: <text>` through
    the connector reply route, then answers 201 (like the SDKs, after replying).
    A conversationUpdate adding someone other than the bot gets `welcome <id>`.
    For a bot id in `credentials` (app id, password), every turn first gets a
    token from the service's token endpoint, as the SDKs do, and its replies carry
    it; a refused token request fails the turn with 500 (as the Agents SDK does).
    """

    slow_seconds: float = 3.0
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    reply_statuses: list[int] = field(default_factory=list)
    fail_updates: int = 0  # how many conversationUpdates to answer with 500 next
    fail_messages: int = 0  # how many other activities to answer with 500 next (after any pause)
    pause_seconds: float = 0.5
    fail_body: bytes | None = None  # what a failing answer says (a default error when None)
    update_delay: float = 0.0  # seconds to wait before answering a conversationUpdate
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # bot id -> (app id, password)
    token_answers: list[int] = field(default_factory=list)  # the token endpoint's statuses, in order
    _session: aiohttp.ClientSession | None = None
    _released: asyncio.Event | None = None

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self._session = aiohttp.ClientSession()
            self._released = asyncio.Event()
            yield
            await self._session.close()

        return Starlette(routes=[Route("/api/messages", self.messages, methods=["POST"])], lifespan=lifespan)

    async def release(self) -> None:
        """End every pause now (and the pauses still to come)."""
        assert self._released is not None
        self._released.set()

    def of(self, conversation_id: str, type_: str | None = None, text: str | None = None) -> list[dict[str, Any]]:
        return [
            a
            for a in self.received
            if a.get("conversation", {}).get("id") == conversation_id
            and (type_ is None or a.get("type") == type_)
            and (text is None or a.get("text") == text)
        ]

    async def _token(self, activity: dict[str, Any]) -> str | None:
        """The access token of this turn (None for a bot without credentials); raises when refused."""
        credentials = self.credentials.get(activity["recipient"]["id"])
        if credentials is None:
            return None
        assert self._session is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": credentials[0],
            "client_secret": credentials[1],
            "scope": "https://api.botframework.com/.default",
        }
        async with self._session.post(f"{activity['serviceUrl']}adfs/oauth2/token", data=form) as response:
            self.token_answers.append(response.status)
            body = await response.json()
        if response.status != 200:
            raise PermissionError(body.get("error_description"))
        return str(body["access_token"])

    async def _post(self, activity: dict[str, Any], body: dict[str, Any], reply: bool = True) -> None:
        assert self._session is not None
        conv = urllib.parse.quote(activity["conversation"]["id"], safe="")
        url = f"{activity['serviceUrl']}/v3/conversations/{conv}/activities"
        if reply:
            url += "/" + urllib.parse.quote(activity["id"], safe="")
        message = {"from": activity["recipient"], "recipient": activity["from"], **body}
        token = activity.get("_token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session.post(url, json=message, headers=headers) as response:
            await response.read()
            self.reply_statuses.append(response.status)

    async def messages(self, request: Request) -> Response:
        activity = msgspec.json.decode(await request.body())
        self.received.append(activity)
        self.headers.append(dict(request.headers))
        try:
            token = await self._token(activity)
        except PermissionError:
            return Response(b'{"error":"could not get a token"}', status_code=500)
        activity = {**activity, "_token": token}  # a copy: `received` keeps what the service sent
        if activity.get("text") == "deny":
            return Response(b'{"error":"Unauthorized"}', status_code=401)
        if activity.get("type") == "conversationUpdate":
            await asyncio.sleep(self.update_delay)
            if self.fail_updates > 0:
                self.fail_updates -= 1
                return Response(status_code=500)
            for member in activity.get("membersAdded", []):
                if member["id"] != activity["recipient"]["id"]:
                    await self._post(activity, {"type": "message", "text": f"welcome {member['id']}"}, reply=False)
            return Response(status_code=201)
        text = activity.get("text") or ""
        if text.startswith("pause"):
            assert self._released is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.pause_seconds)
        if self.fail_messages > 0:
            self.fail_messages -= 1
            return Response(self.fail_body or b'{"error":"bot crashed for now"}', status_code=500)
        if text == "fail":
            return Response(b'{"error":"bot crashed"}', status_code=500)
        if text == "slow":
            await asyncio.sleep(self.slow_seconds)
        if text == "silent":
            return Response(status_code=201)
        if text == "typing":
            await self._post(activity, {"type": "typing"})
            await self._post(activity, {"type": "event", "name": "hidden"})
        if text == "card":
            card = {"contentType": "application/vnd.microsoft.card.hero", "content": {"title": "A card", "text": "x"}}
            await self._post(activity, {"type": "message", "attachments": [card]})
            return Response(status_code=201)
        await self._post(activity, {"type": "message", "text": f"echo: {text}", "replyToId": activity["id"]})
        return Response(status_code=201)
