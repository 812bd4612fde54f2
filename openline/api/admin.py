"""The admin JSON API (`/admin/...`) the inspector page is built on: status, conversations, a live transcript;
and the deletion of a conversation.

Every route needs the admin credential: `Authorization: Bearer <admin secret>`,
or the session cookie the inspector's sign-in sets. A cookie opens the live
WebSocket and deletes only from a page of this service (its Origin is
checked), so another site cannot use a signed-in browser to watch or delete
conversations.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from openline import __version__
from openline.api._http import json_response
from openline.api._origin import OriginCheck
from openline.api._ws import FeedClosed, deny, run_feed, send_text
from openline.auth.admin import AdminAuth
from openline.protocol import inspect
from openline.protocol.connector import parse_count
from openline.protocol.errors import ErrorKind, ServiceError
from openline.service.inspector import Inspector
from openline.service.publish import conversation_not_found
from openline.storage.base import StoreUnavailable, Subscription

_encode = msgspec.json.Encoder().encode
DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS = 50, 1000
DEFAULT_ENTRIES, MAX_ENTRIES = 500, 5000
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _limit(connection: HTTPConnection, default: int, most: int) -> int:
    return parse_count(connection.query_params.get("limit"), default, most, "limit")


class AdminApi:
    """The admin routes; `check_every` is how often an idle live feed checks that its conversation still exists."""

    def __init__(
        self,
        admin: AdminAuth,
        inspector: Inspector,
        bots: list[dict[str, Any]],
        origins: OriginCheck,
        check_every: float = 30.0,
    ) -> None:
        self.admin = admin
        self.inspector = inspector
        self.bots = bots  # [{id, name, endpoint}] as the status shows them
        self.origins = origins
        self.check_every = check_every

    def routes(self) -> list[BaseRoute]:
        conversation = "/admin/conversations/{conversation_id}"
        return [
            Route("/admin/status", self.status, methods=["GET"]),
            Route("/admin/conversations", self.conversations, methods=["GET"]),
            Route(conversation, self.conversation, methods=["GET"]),
            Route(conversation, self.delete, methods=["DELETE"]),
            WebSocketRoute(conversation + "/live", self.live),
        ]

    def _require(self, connection: HTTPConnection) -> None:
        allowed, by_cookie = self.admin.allows(connection.headers.get("authorization"), connection.cookies)
        if not allowed:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "this needs the admin secret (Authorization: Bearer <secret>)")
        changes = connection.scope["type"] == "websocket" or connection.scope.get("method") not in ("GET", "HEAD")
        if by_cookie and changes and not self.origins.own(connection):
            raise ServiceError(ErrorKind.FORBIDDEN, "the admin session cookie is only valid on this service's pages")

    async def status(self, request: Request) -> Response:
        self._require(request)
        return json_response({"service": "openline", "version": __version__, "bots": self.bots}, headers=_NO_STORE)

    async def conversations(self, request: Request) -> Response:
        self._require(request)
        limit = _limit(request, DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS)
        return json_response({"conversations": await self.inspector.conversations(limit)}, headers=_NO_STORE)

    async def conversation(self, request: Request) -> Response:
        self._require(request)
        limit = _limit(request, DEFAULT_ENTRIES, MAX_ENTRIES)
        answer = await self.inspector.conversation(request.path_params["conversation_id"], limit)
        return json_response(answer, headers=_NO_STORE)

    async def delete(self, request: Request) -> Response:
        """Delete the conversation and everything of it (`removal.delete_conversation`): 204, or 404."""
        self._require(request)
        conversation_id = request.path_params["conversation_id"]
        if not await self.inspector.delete(conversation_id):
            raise conversation_not_found(conversation_id)
        return Response(status_code=204, headers=_NO_STORE)

    async def live(self, websocket: WebSocket) -> None:
        """A snapshot (`{"op": "snapshot", ...}`), then one change per event; a new snapshot after a lag."""
        conversation_id = websocket.path_params["conversation_id"]
        try:
            self._require(websocket)
            limit = _limit(websocket, DEFAULT_ENTRIES, MAX_ENTRIES)
            await self.inspector.require(conversation_id)  # NOT_FOUND before the upgrade
        except (ServiceError, StoreUnavailable) as e:
            await deny(websocket, e)
            return
        await websocket.accept()
        subscription = self.inspector.subscribe(conversation_id)
        try:
            await run_feed(websocket, self._feed(websocket, conversation_id, limit, subscription))
        finally:
            subscription.close()

    async def _feed(self, websocket: WebSocket, conversation_id: str, limit: int, subscription: Subscription) -> None:
        await subscription.ready()
        await self._snapshot(websocket, conversation_id, limit)
        while True:
            event = await subscription.get(self.check_every)
            if subscription.lagged:
                subscription.lagged = False
                await self._snapshot(websocket, conversation_id, limit)
                continue
            if event is not None and event.gone:
                await _gone(websocket, conversation_not_found(conversation_id))
            if event is None:  # quiet: make sure the conversation has not expired meanwhile
                try:
                    await self.inspector.require(conversation_id)
                except ServiceError as e:
                    await _gone(websocket, e)
                continue
            change = inspect.change(conversation_id, event)
            if change is not None:
                await send_text(websocket, _encode(change).decode())

    async def _snapshot(self, websocket: WebSocket, conversation_id: str, limit: int) -> None:
        try:
            snapshot = await self.inspector.conversation(conversation_id, limit)
        except ServiceError as e:  # expired meanwhile
            await _gone(websocket, e)
        await send_text(websocket, _encode({"op": "snapshot", **snapshot}).decode())


async def _gone(websocket: WebSocket, error: ServiceError) -> NoReturn:
    """Tell the page the conversation is gone (retention, or deleted), and end the feed."""
    await send_text(websocket, _encode({"op": "gone", "message": error.message}).decode())
    raise FeedClosed(error.message)
