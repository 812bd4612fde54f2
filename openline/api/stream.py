"""The Direct Line 3.0 WebSocket stream: `/v3/directline/conversations/{id}/stream?watermark=&t=`.

The stream token `t` (short-lived, for this conversation only) is the whole
credential; it carries the trusted origins of the token it was issued to, and
the handshake's `Origin` is checked against them and the bot's (`auth.access`).
On connect the stream subscribes to the conversation's events, replays the
store after the URL's watermark, then forwards live events
(`protocol.stream.StreamCursor` decides what to send, skip or re-read). Text
frames only: ActivitySets and empty keep-alives; frames from the client are
read and ignored.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from openline.api._keepalive import KeepAlive
from openline.api._ws import FeedClosed, deny, run_feed, send_text
from openline.auth.access import AccessRules
from openline.auth.tokens import STREAM_AUDIENCE, TokenAuthority
from openline.protocol import v3
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import InvalidWatermark, parse_watermark
from openline.protocol.stream import Step, StreamCursor
from openline.service.channel import Channel
from openline.storage.base import Broker, Conversation, StoreUnavailable, Subscription

log = logging.getLogger("openline.stream")
_encode = msgspec.json.Encoder().encode


class StreamApi:
    def __init__(
        self,
        tokens: TokenAuthority,
        channel: Channel,
        broker: Broker,
        keepalive: float,
        page_size: int,
        access: AccessRules | None = None,
    ) -> None:
        self.tokens = tokens
        self.access = access or AccessRules()
        self.channel = channel
        self.broker = broker
        self.keepalive = KeepAlive(keepalive)
        self.page_size = page_size

    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute("/v3/directline/conversations/{conversation_id}/stream", self.stream)]

    async def stream(self, websocket: WebSocket) -> None:
        try:
            conversation, after = await self._admit(websocket)
        except (ServiceError, StoreUnavailable) as e:
            await deny(websocket, e)
            return
        await websocket.accept()
        subscription = self.broker.subscribe(conversation.id)
        self.keepalive.open(websocket)
        try:
            await run_feed(websocket, self._send_events(websocket, conversation, after, subscription))
        finally:
            self.keepalive.close(websocket)
            subscription.close()

    async def _admit(self, websocket: WebSocket) -> tuple[Conversation, int]:
        """The conversation and the watermark to replay from, if the stream token allows it."""
        conversation_id = websocket.path_params["conversation_id"]
        token = websocket.query_params.get("t")
        if not token:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "the stream URL has no token: get one from the conversation")
        claims = self.tokens.verify(token, STREAM_AUDIENCE)
        if claims.conversation_id != conversation_id:
            raise ServiceError(ErrorKind.FORBIDDEN, "the stream token is not valid for this conversation")
        self.access.check(claims.bot_id, websocket.headers.get("origin"), secret=False, token_origins=claims.origins)
        conversation = await self.channel.find(conversation_id)
        if conversation is None or conversation.bot_id != claims.bot_id:
            raise ServiceError(ErrorKind.NOT_FOUND, f"conversation {conversation_id!r} does not exist or has expired")
        try:
            after = parse_watermark(websocket.query_params.get("watermark"))
        except InvalidWatermark as e:
            raise ServiceError(ErrorKind.BAD_WATERMARK, str(e)) from None
        if after > conversation.last_seq:
            # as reconnect answers: a stream from there would skip every activity up to it, for ever
            raise ServiceError(
                ErrorKind.BAD_WATERMARK,
                f"watermark {after} is ahead of the conversation (its last is {conversation.last_seq})",
            )
        return conversation, after

    async def _send_events(
        self, websocket: WebSocket, conversation: Conversation, after: int, subscription: Subscription
    ) -> None:
        cursor = StreamCursor(after)
        await subscription.ready()
        await self._replay(websocket, conversation, cursor)
        while True:
            if subscription.lagged:
                subscription.lagged = False
                await self._replay(websocket, conversation, cursor)
            event = await subscription.get()
            if event is None:  # woken lagged: replay above
                continue
            if event.gone:  # deleted by an operator
                raise FeedClosed(f"conversation {conversation.id!r} was deleted")
            assert event.activity is not None  # subscribed without delivery reports
            step = cursor.step(event.seq)
            if step is Step.FILL:
                await self._replay(websocket, conversation, cursor)
                step = cursor.step(event.seq)
                if step is Step.FILL:  # the activities before it were removed meanwhile
                    step = Step.SEND
            if step is Step.SKIP:
                continue
            if step is Step.SEND_UNNUMBERED:
                if v3.shown_on_stream(event.activity):
                    await self._send_set(websocket, [event.activity], None)
                continue
            assert event.seq is not None
            cursor.advance(event.seq)
            if v3.shown_on_stream(event.activity):
                await self._send_set(websocket, [event.activity], event.seq)

    async def _replay(self, websocket: WebSocket, conversation: Conversation, cursor: StreamCursor) -> None:
        """Send what the store holds after the cursor, a page per frame."""
        while True:
            try:
                page = await self.channel.read(conversation, cursor.sent, self.page_size)
            except ServiceError as e:  # the conversation is gone (retention): end the stream
                raise FeedClosed(e.message) from None
            if not page:
                return
            shown = [s.activity for s in page if v3.shown_on_stream(s.activity)]
            cursor.advance(page[-1].seq)
            if shown:
                await self._send_set(websocket, shown, page[-1].seq)
            if len(page) < self.page_size:
                return

    async def _send_set(self, websocket: WebSocket, activities: list[dict[str, Any]], watermark: int | None) -> None:
        await send_text(websocket, _encode(v3.activity_set(activities, watermark)).decode())
        self.keepalive.sent(websocket)
