"""Fixtures for the HTTP-level tests: openline with three bots, served on loopback, and an HTTP client."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openline.app import Services, build_services, create_app
from openline.config import BotConfig, Config
from tests.api._servers import Clock, LoopThread, RecordingBot, bound_socket, closed_port
from tests.redis_servers import RedisServer

ECHO_SECRET = "echo-secret-0123456789"
REC_SECRET = "rec-secret-0123456789"
DOWN_SECRET = "down-secret-0123456789"
ADMIN_SECRET = "admin-secret-0123456789"
MAX_MESSAGE = 4096
MAX_UPLOAD = 64 * 1024
PAGE_SIZE = 5
BOT_TIMEOUT = 2.0  # generous: a loaded CI machine must not turn a normal turn into a timeout
RETENTION = 3600
TOKEN_TTL = 600
KEEPALIVE = 0.3


@dataclass
class Service:
    url: str
    clock: Clock
    bot: RecordingBot
    http: httpx.Client
    services: Services
    loop: LoopThread

    def stored(self, conv: str) -> list[dict[str, Any]]:
        """The activities as stored (read from the store on the server's loop)."""
        page = self.loop.run(self.services.store.read(conv, 0, 1000, self.clock()))
        return [s.activity for s in page]

    def auth(self, credential: str, scheme: str = "Bearer") -> dict[str, str]:
        return {"Authorization": f"{scheme} {credential}"}

    def start(self, secret: str = REC_SECRET) -> dict[str, Any]:
        r = self.http.post("/api/conversations", headers=self.auth(secret))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def send(self, conv: str, body: Any, secret: str = REC_SECRET) -> httpx.Response:
        return self.http.post(f"/api/conversations/{conv}/messages", headers=self.auth(secret), json=body)

    def messages(self, conv: str, watermark: str | None = None, secret: str = REC_SECRET) -> dict[str, Any]:
        params = {"watermark": watermark} if watermark is not None else {}
        r = self.http.get(f"/api/conversations/{conv}/messages", headers=self.auth(secret), params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def all_messages(self, conv: str, secret: str = REC_SECRET) -> list[dict[str, Any]]:
        """Every message, paging by watermark until a page comes back empty."""
        out: list[dict[str, Any]] = []
        watermark: str | None = None
        while True:
            page = self.messages(conv, watermark, secret)
            if not page["messages"]:
                return out
            out += page["messages"]
            watermark = page["watermark"]


_redis: list[RedisServer] = []  # the Redis server of OPENLINE_TEST_STORE=redis, started on first use


def _store_url() -> str:
    """memory://, or with OPENLINE_TEST_STORE=redis (scripts/test runs these tests once more so) a redis-server of
    this test process's own, under a key prefix of this service's own."""
    if os.environ.get("OPENLINE_TEST_STORE") != "redis":
        return "memory://"
    if not _redis:
        directory = Path(tempfile.mkdtemp(prefix="openline-api-redis-"))
        atexit.register(shutil.rmtree, directory, True)
        server = RedisServer(directory)
        server.start()
        atexit.register(server.stop)  # runs first
        _redis.append(server)
    return f"{_redis[0].url}?prefix=api-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def serve(
    data_dir: Path, more_bots: Callable[[str], tuple[BotConfig, ...]] | None = None, **overrides: Any
) -> Iterator[Service]:
    """openline with the three bots on loopback, with the settings of the API tests (`overrides` replace some).

    `more_bots(endpoint)` adds bots of its own, given the recording bot's endpoint.
    """
    loop = LoopThread()
    bot = RecordingBot(slow_seconds=BOT_TIMEOUT * 3)
    bot_url = loop.serve(bot.app(), bound_socket())
    sock = bound_socket()
    port = sock.getsockname()[1]
    settings: dict[str, Any] = {
        "port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "bots": (
            BotConfig("echobot", "Echo Bot", None, (ECHO_SECRET,)),
            BotConfig("rec", "Recording Bot", bot_url + "/api/messages", (REC_SECRET,)),
            BotConfig("down", "Down Bot", f"http://127.0.0.1:{closed_port()}/api/messages", (DOWN_SECRET,)),
            *(more_bots(bot_url + "/api/messages") if more_bots is not None else ()),
        ),
        "data_dir": data_dir,
        "store": _store_url(),
        "token_ttl": TOKEN_TTL,
        "retention": RETENTION,
        "bot_timeout": BOT_TIMEOUT,
        "max_message_bytes": MAX_MESSAGE,
        "max_upload_bytes": MAX_UPLOAD,
        "max_connector_bytes": MAX_UPLOAD,  # what the bot sends: the connector tests use the upload's size
        "page_size": PAGE_SIZE,
        "stream_keepalive": KEEPALIVE,
        "web_page": True,
        "admin_secret": ADMIN_SECRET,
    }
    config = Config(**{**settings, **overrides})
    clock = Clock()
    services = build_services(config, clock)
    url = loop.serve(create_app(config, services), sock, config)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            yield Service(url, clock, bot, http, services, loop)
    finally:
        loop.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serve(Path(tmp_path_factory.mktemp("data"))) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "service" in request.fixturenames:
        request.getfixturevalue("service").clock.offset = 0.0
