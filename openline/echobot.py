"""The built-in echo bot: a real Bot Framework bot, served by this process, reached over HTTP.

It is what `openline serve` talks to when no `--bot` is given. Like any bot, it
receives activities at its messaging endpoint and replies through the connector
API at the activity's `serviceUrl` before answering: it greets members who join
and echoes messages (text and attachments).
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from typing import Any

import aiohttp
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import read_body

log = logging.getLogger("openline.echobot")
PATH = "/echobot/api/messages"
WELCOME = "Welcome to openline! I am the built-in echo bot: send me a message and I will send it back."


class EchoBot:
    def __init__(
        self,
        service_url: str,
        tls: ssl.SSLContext | None = None,
        max_body: int = 4 * 1024 * 1024,
        body_timeout: float = 30.0,
    ) -> None:
        # the only serviceUrl it replies to: its endpoint is public, and must not post anywhere a caller names
        self.service_url = service_url.rstrip("/")
        self.max_body = max_body  # bytes of an activity it is sent (413 past it), and the pauses allowed
        self.body_timeout = body_timeout
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> list[Route]:
        return [Route(PATH, self.messages, methods=["POST"])]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=self._tls if self._tls is not None else True),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def messages(self, request: Request) -> Response:
        try:
            activity = msgspec.json.decode(await read_body(request, self.max_body, self.body_timeout))
        except (msgspec.DecodeError, UnicodeDecodeError):
            return Response(status_code=400)
        if not isinstance(activity, dict) or not isinstance(activity.get("conversation"), dict):
            return Response(status_code=400)
        if str(activity.get("serviceUrl", "")).rstrip("/") != self.service_url:
            return Response(status_code=403)
        kind = activity.get("type")
        try:
            if kind == "conversationUpdate":
                await self._welcome(activity)
            elif kind == "message":
                await self._echo(activity)
        except (aiohttp.ClientError, TimeoutError) as e:
            # a bot's turn error does not change its answer to the channel (as in the Bot Framework SDKs)
            log.warning("echo bot could not reply: %s", e)
        return Response(status_code=200)

    def _reply(self, activity: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "type": "message",
            "from": activity.get("recipient"),
            "recipient": activity.get("from"),
            "conversation": activity["conversation"],
            "locale": activity.get("locale"),
            **fields,
        }

    async def _send(self, activity: dict[str, Any], reply: dict[str, Any], reply_to: str | None) -> None:
        assert self._session is not None
        conversation = urllib.parse.quote(activity["conversation"]["id"], safe="")
        url = f"{self.service_url}/v3/conversations/{conversation}/activities"
        if reply_to:
            url += "/" + urllib.parse.quote(reply_to, safe="")
        reply = {k: v for k, v in reply.items() if v is not None}
        async with self._session.post(url, json=reply) as response:
            await response.read()
            response.raise_for_status()

    async def _welcome(self, activity: dict[str, Any]) -> None:
        recipient = activity.get("recipient")
        bot_id = recipient.get("id") if isinstance(recipient, dict) else None
        added = activity.get("membersAdded")
        members = [m for m in added if isinstance(m, dict) and m.get("id") != bot_id] if isinstance(added, list) else []
        if members:  # one welcome for the update, however many joined
            await self._send(activity, self._reply(activity, text=WELCOME), None)

    async def _echo(self, activity: dict[str, Any]) -> None:
        text = activity.get("text") or ""
        attachments = [a for a in activity.get("attachments") or [] if isinstance(a, dict)]
        if not text and attachments:
            text = f"{len(attachments)} attachment(s)"
        reply = self._reply(
            activity, text=f"echo: {text}", attachments=attachments or None, replyToId=activity.get("id")
        )
        await self._send(activity, reply, activity.get("id"))
