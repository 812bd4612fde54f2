"""The admin JSON API (`/admin/...`) the inspector page is built on: status, conversations, a live transcript.

Every route needs the admin credential: `Authorization: Bearer <admin secret>`,
or the session cookie the inspector's sign-in sets. A cookie opens the live
WebSocket only from a page of this service (its Origin is checked), so another
site cannot use a signed-in browser to watch conversations.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from openline import __version__
from openline.api._http import json_response
from openline.api._ws import FeedClosed, deny, run_feed, send_text
from openline.auth.admin import AdminAuth
from openline.protocol import inspect
from openline.protocol.errors import ErrorKind, ServiceError
from openline.service.inspector import Inspector
from openline.storage.base import Subscription

_encode = msgspec.json.Encoder().encode
DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS = 50, 1000
DEFAULT_ENTRIES, MAX_ENTRIES = 500, 5000


def own_origin(connection: HTTPConnection) -> bool:
    """Whether the request comes from a page of this service (or from no page at all).

    Browsers send `Origin` on WebSocket handshakes and cross-site POSTs; its host
    must be the one the request was sent to (directly or through a proxy).
    """
    origin = connection.headers.get("origin")
    if origin is None:
        return connection.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    host = urllib.parse.urlsplit(origin).netloc.lower()
    hosts = {connection.headers.get("host", ""), connection.headers.get("x-forwarded-host", "")}
    return bool(host) and host in {h.strip().lower() for h in hosts if h}


def _limit(connection: HTTPConnection, default: int, most: int) -> int:
    value = connection.query_params.get("limit")
    if value is None or value == "":
        return default
    if not (len(value) <= 9 and value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise ServiceError(ErrorKind.MALFORMED, f"limit must be a whole number from 1 to {most}")
    return int(value)


class AdminApi:
    def __init__(self, admin: AdminAuth, inspector: Inspector, bots: list[dict[str, Any]]) -> None:
        self.admin = admin
        self.inspector = inspector
        self.bots = bots  # [{id, name, endpoint}] as the status shows them

    def routes(self) -> list[BaseRoute]:
        conversation = "/admin/conversations/{conversation_id}"
        return [
            Route("/admin/status", self.status, methods=["GET"]),
            Route("/admin/conversations", self.conversations, methods=["GET"]),
            Route(conversation, self.conversation, methods=["GET"]),
            WebSocketRoute(conversation + "/live", self.live),
        ]

    def _require(self, connection: HTTPConnection) -> None:
        allowed, by_cookie = self.admin.allows(connection.headers.get("authorization"), connection.cookies)
        if not allowed:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "this needs the admin secret (Authorization: Bearer <secret>)")
        if by_cookie and connection.scope["type"] == "websocket" and not own_origin(connection):
            raise ServiceError(ErrorKind.FORBIDDEN, "the admin session cookie is only valid on this service's pages")

    async def status(self, request: Request) -> Response:
        self._require(request)
        return json_response({"service": "openline", "version": __version__, "bots": self.bots})

    async def conversations(self, request: Request) -> Response:
        self._require(request)
        limit = _limit(request, DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS)
        return json_response({"conversations": await self.inspector.conversations(limit)})

    async def conversation(self, request: Request) -> Response:
        self._require(request)
        limit = _limit(request, DEFAULT_ENTRIES, MAX_ENTRIES)
        return json_response(await self.inspector.conversation(request.path_params["conversation_id"], limit))

    async def live(self, websocket: WebSocket) -> None:
        """A snapshot (`{"op": "snapshot", ...}`), then one change per event; a new snapshot after a lag."""
        conversation_id = websocket.path_params["conversation_id"]
        try:
            self._require(websocket)
            limit = _limit(websocket, DEFAULT_ENTRIES, MAX_ENTRIES)
            await self.inspector.require(conversation_id)  # NOT_FOUND before the upgrade
        except ServiceError as e:
            await deny(websocket, e)
            return
        await websocket.accept()
        subscription = self.inspector.subscribe(conversation_id)
        try:
            await run_feed(websocket, self._feed(websocket, conversation_id, limit, subscription))
        finally:
            subscription.close()

    async def _feed(self, websocket: WebSocket, conversation_id: str, limit: int, subscription: Subscription) -> None:
        await self._snapshot(websocket, conversation_id, limit)
        while True:
            event = await subscription.get()
            if subscription.lagged:
                subscription.lagged = False
                await self._snapshot(websocket, conversation_id, limit)
                continue
            change = inspect.change(conversation_id, event)
            if change is not None:
                await send_text(websocket, _encode(change).decode())

    async def _snapshot(self, websocket: WebSocket, conversation_id: str, limit: int) -> None:
        try:
            snapshot = await self.inspector.conversation(conversation_id, limit)
        except ServiceError as e:  # expired meanwhile
            await send_text(websocket, _encode({"op": "gone", "message": e.message}).decode())
            raise FeedClosed(e.message) from None
        await send_text(websocket, _encode({"op": "snapshot", **snapshot}).decode())
