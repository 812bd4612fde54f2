"""Delivering activities to a bot's messaging endpoint, and what came of it.

One pooled aiohttp session for every bot; each delivery is bounded by the bot
timeout. Bot failures are outcomes, not exceptions: the caller decides what a
failure means for its client. The bot's answer is its status: redirects are not
followed, and at most `MAX_ANSWER_BYTES` of its body are read (for the log).
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import msgspec

from openline import __version__, request_id
from openline.logs import printable, redact_text
from openline.metrics import Metrics
from openline.protocol.errors import ErrorKind

log = logging.getLogger("openline.delivery")
_encode = msgspec.json.Encoder().encode
# the most of a bot's answer body read (only its first 200 bytes are logged): a longer one, or one that does not end
# within the bot timeout, is dropped with its connection, so a bot cannot fill openline's memory
MAX_ANSWER_BYTES = 64 * 1024
_HEADERS = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"openline/{__version__}"}


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the bot did with one activity. `error` is None when it accepted it (2xx)."""

    status: int | None  # the bot's HTTP status; None when it never answered
    duration: float  # seconds
    error: ErrorKind | None = None
    detail: str = ""  # what went wrong, with the bot's own words: logged and recorded, never shown to clients
    explanation: str = ""  # openline's own words on why (bot authentication): safe to show to the client

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def described(self) -> str:
        """The detail and the explanation, as logged and recorded."""
        return f"{self.detail} ({self.explanation})" if self.explanation else self.detail

    def explained(self, explanation: str) -> DeliveryResult:
        """The same result with another explanation (one openline knows better than the status tells)."""
        return replace(self, explanation=explanation)


def log_failure(activity: dict[str, Any], result: DeliveryResult) -> None:
    """One warning for a delivery the bot did not accept, with what is known of why."""
    conversation = activity.get("conversation") or {}
    log.warning(
        "bot did not accept %s %s in conversation %s: %s",
        printable(str(activity.get("type"))),
        activity.get("id"),
        conversation.get("id"),
        printable(redact_text(result.described)),  # the bot's own words may quote file links, or what a client sent
    )


def _auth_explanation(status: int, signed: bool) -> str:
    """Why a bot answered 401/403, as far as openline can tell."""
    if signed:
        return (
            f"the bot refused openline's credentials (HTTP {status}): its app id, or the issuer and"
            " OpenID metadata URL it trusts, do not match this service's (see the README, Bot authentication)"
        )
    return (
        f"the bot asks for authentication (HTTP {status}): give it in openline's configuration the app id"
        " and password it is configured with"
    )


def _redirect_explanation(status: int) -> str:
    """Why a bot's redirect is a failure (its Location is logged, not shown: it names the bot's hosts)."""
    return (
        f"the bot's endpoint redirects (HTTP {status}): configure the URL it redirects to as its endpoint;"
        " openline does not follow redirects, which could send the activity and its token elsewhere"
    )


async def _head(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The first `limit` bytes of a body (all of it when shorter)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class BotClient:
    def __init__(
        self,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        own: tuple[str, ssl.SSLContext] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.timeout = timeout
        self.metrics = metrics
        self._tls = tls  # None: aiohttp's default verification
        self._own = own  # (the service's own URL, the context pinning its certificate): for the echo bot
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, keepalive_timeout=30, ssl=self._tls if self._tls is not None else True
            ),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            skip_auto_headers=("User-Agent",),
            # a bot's cookies are never sent back (the hosted service keeps none): none kept, none mixed between bots
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(
        self, endpoint: str, activity: dict[str, Any], authorization: str | None = None
    ) -> DeliveryResult:
        """POST one activity to the bot and wait for its answer (at most the bot timeout).

        `authorization` is the whole Authorization header (`Bearer <channel token>`),
        sent only to bots with an app id: bots without one refuse any (bot-connector.md §3c).
        The status decides: a 2xx is taken, whatever its body says (the channel reads nothing
        from it for the activities clients send), even one whose body does not end in time;
        a 3xx is refused (`_redirect_explanation`); no answer in time is BOT_TIMEOUT; a
        refused or broken connection, or an answer that is not HTTP, is BOT_UNREACHABLE.

        `X-Request-Id` carries the id of the request that led to the delivery (openline.request_id).
        """
        if self.metrics is None:
            return await self._deliver(endpoint, activity, authorization)
        self.metrics.deliveries_in_flight.inc()
        try:
            result = await self._deliver(endpoint, activity, authorization)
        finally:
            self.metrics.deliveries_in_flight.dec()
        self.metrics.delivery(result.error, result.duration)
        return result

    async def _deliver(self, endpoint: str, activity: dict[str, Any], authorization: str | None) -> DeliveryResult:
        assert self._session is not None, "BotClient.start() was not called"
        started = time.perf_counter()
        headers = dict(_HEADERS)
        if authorization is not None:
            headers["Authorization"] = authorization
        rid = request_id.current.get()
        if rid is not None:
            headers["X-Request-Id"] = rid
        tls: ssl.SSLContext | bool = self._tls if self._tls is not None else True
        if self._own is not None and endpoint.startswith(self._own[0] + "/"):
            tls = self._own[1]
        try:
            async with self._session.post(
                endpoint, data=_encode(activity), headers=headers, ssl=tls, allow_redirects=False
            ) as response:
                status = response.status
                try:
                    body = await _head(response.content, MAX_ANSWER_BYTES)
                except (TimeoutError, aiohttp.ClientError):
                    body = b""  # the status came: it is the bot's answer, whatever became of its body
        except TimeoutError:
            return self._failed(started, None, ErrorKind.BOT_TIMEOUT, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as e:
            detail = str(e) or type(e).__name__
            return self._failed(started, None, ErrorKind.BOT_UNREACHABLE, detail)
        duration = time.perf_counter() - started
        if 200 <= status < 300:
            return DeliveryResult(status, duration)
        snippet = body[:200].decode("utf-8", "replace")
        failed = self._failed(started, status, ErrorKind.BOT_REJECTED, f"HTTP {status} {snippet}".strip())
        if status in (401, 403):
            return failed.explained(_auth_explanation(status, authorization is not None))
        if 300 <= status < 400:
            location = printable(response.headers.get("Location", "")[:200])
            return replace(failed, detail=f"HTTP {status} to {location}").explained(_redirect_explanation(status))
        return failed

    @staticmethod
    def _failed(started: float, status: int | None, kind: ErrorKind, detail: str) -> DeliveryResult:
        """A failure (not logged here: the caller logs it once it knows all it can of why, `log_failure`)."""
        return DeliveryResult(status, time.perf_counter() - started, kind, detail)
