"""Delivering activities to a bot's messaging endpoint, and what came of it.

One pooled aiohttp session for every bot; each delivery is bounded by the bot
timeout. Bot failures are outcomes, not exceptions: the caller decides what a
failure means for its client.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from openline import __version__
from openline.logs import printable, redact_text
from openline.protocol.errors import ErrorKind

log = logging.getLogger("openline.delivery")
_encode = msgspec.json.Encoder().encode
_HEADERS = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"openline/{__version__}"}


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the bot did with one activity. `error` is None when it accepted it (2xx)."""

    status: int | None  # the bot's HTTP status; None when it never answered
    duration: float  # seconds
    error: ErrorKind | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


class BotClient:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, endpoint: str, activity: dict[str, Any]) -> DeliveryResult:
        """POST one activity to the bot and wait for its answer (at most the bot timeout)."""
        assert self._session is not None, "BotClient.start() was not called"
        started = time.perf_counter()
        try:
            async with self._session.post(endpoint, data=_encode(activity), headers=_HEADERS) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            return self._failed(activity, started, None, ErrorKind.BOT_TIMEOUT, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as e:
            detail = str(e) or type(e).__name__
            return self._failed(activity, started, None, ErrorKind.BOT_UNREACHABLE, detail)
        duration = time.perf_counter() - started
        if 200 <= status < 300:
            return DeliveryResult(status, duration)
        snippet = body[:200].decode("utf-8", "replace")
        return self._failed(activity, started, status, ErrorKind.BOT_REJECTED, f"HTTP {status} {snippet}".strip())

    @staticmethod
    def _failed(
        activity: dict[str, Any], started: float, status: int | None, kind: ErrorKind, detail: str
    ) -> DeliveryResult:
        duration = time.perf_counter() - started
        conversation = activity.get("conversation") or {}
        log.warning(
            "bot did not accept %s %s in conversation %s: %s",
            printable(str(activity.get("type"))),
            activity.get("id"),
            conversation.get("id"),
            printable(redact_text(detail)),  # the bot's own words may quote file links, or anything a client sent
        )
        return DeliveryResult(status, duration, kind, detail)
