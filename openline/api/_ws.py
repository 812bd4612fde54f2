"""WebSocket helpers shared by the 3.0 stream and the inspector's live feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from openline.api.errors import STORE_UNAVAILABLE, error_response
from openline.protocol.errors import ErrorKind, ServiceError
from openline.storage.base import StoreUnavailable

log = logging.getLogger("openline.api")
TRY_AGAIN_LATER = 1013  # RFC 6455 close code (IANA registry): the store is away, the client reconnects
INTERNAL_ERROR = 1011  # RFC 6455: the server met an unexpected condition


class FeedClosed(Exception):
    """The client went away, or what it watched did: the feed ends."""


async def send_text(websocket: WebSocket, text: str) -> None:
    try:
        await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError) as e:
        raise FeedClosed(str(e)) from None


async def run_feed(websocket: WebSocket, feed: Coroutine[Any, Any, None]) -> None:
    """Run `feed` (the server's frames) while reading the client's, until either ends; then close the socket
    (with 1013, try again later, when the store could not be reached).

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
    code = 1000
    try:
        await feed
    except asyncio.CancelledError:
        if not gone or current.uncancel() > 0:
            raise  # cancelled from outside (the server stopping), not only by the client's leaving
    except (FeedClosed, WebSocketDisconnect):
        pass
    except StoreUnavailable as e:
        log.warning("%s: %s; the socket is closed with %d", websocket.url.path, e, TRY_AGAIN_LATER)
        code = TRY_AGAIN_LATER
    except Exception:
        code = INTERNAL_ERROR  # and the error goes on to be logged
        raise
    finally:
        feeding = False
        feed.close()  # when it never started (cancelled before its first step)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await receiver
        with contextlib.suppress(Exception):
            await websocket.close(code)


async def ignore_client_frames(websocket: WebSocket) -> None:
    """Read (and drop) the client's frames, its empty keep-alives among them, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def deny(websocket: WebSocket, error: ServiceError | StoreUnavailable) -> None:
    """Refuse the upgrade with an HTTP error in the API's error shape (a bare 403 close where the server cannot);
    a store that cannot be reached is refused 503, as HTTP requests are."""
    if isinstance(error, StoreUnavailable):
        error = ServiceError(ErrorKind.OVERLOADED, STORE_UNAVAILABLE)
    response = error_response(websocket.url.path, error.kind, error.message)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=1008)
