"""WebSocket helpers shared by the 3.0 stream and the inspector's live feed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from openline.api.errors import error_response
from openline.protocol.errors import ServiceError


class FeedClosed(Exception):
    """The client went away, or what it watched did: the feed ends."""


async def send_text(websocket: WebSocket, text: str) -> None:
    try:
        await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError) as e:
        raise FeedClosed(str(e)) from None


async def run_feed(websocket: WebSocket, feed: Coroutine[Any, Any, None]) -> None:
    """Run `feed` (the server's frames) while reading the client's, until either ends; then close the socket.

    The feed runs in the caller's task, the reading in one task of its own: an idle stream holds two tasks.
    """
    current = asyncio.current_task()
    assert current is not None
    receiver = asyncio.create_task(ignore_client_frames(websocket))
    feeding = True
    gone = False  # set when the client's leaving cancelled the feed (and only then)

    def client_gone(_: asyncio.Task[None]) -> None:
        nonlocal gone
        if feeding:
            gone = True
            current.cancel("the client went away")

    receiver.add_done_callback(client_gone)
    try:
        await feed
    except asyncio.CancelledError:
        if not gone or current.uncancel() > 0:
            raise  # cancelled from outside (the server stopping), not only by the client's leaving
    except (FeedClosed, WebSocketDisconnect):
        pass
    finally:
        feeding = False
        feed.close()  # when it never started (cancelled before its first step)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await receiver
        with contextlib.suppress(Exception):
            await websocket.close()


async def ignore_client_frames(websocket: WebSocket) -> None:
    """Read (and drop) the client's frames, its empty keep-alives among them, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def deny(websocket: WebSocket, error: ServiceError) -> None:
    """Refuse the upgrade with an HTTP error in the API's error shape (a bare 403 close where the server cannot)."""
    response = error_response(websocket.url.path, error.kind, error.message)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=1008)
