"""Keep-alives for the open 3.0 streams: one task sends the empty frame to every stream that has been quiet.

Direct Line sends an empty text frame on a quiet stream (directline-3.0.md §2.2: clients ignore it; it keeps
proxies and NATs from dropping the connection). Rather than a timer per stream, re-armed after every frame,
one task looks every `tick` seconds for the streams whose last frame is `interval` seconds old: an idle stream
costs a dictionary entry, and a keep-alive costs one send. Each send is a short task of its own, so a client
that stops reading (its socket's buffer full, the send waiting) holds up its own keep-alives only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.websockets import WebSocket

from openline.api._ws import FeedClosed, send_text


class KeepAlive:
    """The open streams and when each last sent a frame; `interval` in seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.tick = min(1.0, interval / 4)  # a keep-alive goes out between `interval` and `interval + tick`
        self._last_sent: dict[WebSocket, float] = {}
        self._task: asyncio.Task[None] | None = None
        # keep-alives being written, one task each: a client that stops reading blocks its own send only
        self._sending: dict[WebSocket, asyncio.Task[None]] = {}

    def open(self, websocket: WebSocket) -> None:
        """Start keeping `websocket` alive (its last frame: now)."""
        self._last_sent[websocket] = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="openline stream keep-alives")

    def sent(self, websocket: WebSocket) -> None:
        """`websocket` has just sent a frame: its next keep-alive is `interval` from now."""
        if websocket in self._last_sent:
            self._last_sent[websocket] = time.monotonic()

    def close(self, websocket: WebSocket) -> None:
        self._last_sent.pop(websocket, None)
        sending = self._sending.pop(websocket, None)
        if sending is not None:
            sending.cancel()

    async def _run(self) -> None:
        """Until no stream is open: every tick, an empty frame to each stream quiet for `interval`."""
        while self._last_sent:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            due = [ws for ws, last in self._last_sent.items() if now - last >= self.interval]
            for websocket in due:
                if websocket in self._sending:  # its last keep-alive is still being written: it reads slowly, if at all
                    continue
                self._last_sent[websocket] = now
                self._sending[websocket] = asyncio.create_task(self._send(websocket))

    async def _send(self, websocket: WebSocket) -> None:
        try:
            with contextlib.suppress(FeedClosed):  # the stream's own tasks see the closed socket and end
                await send_text(websocket, "")
        finally:
            if self._sending.get(websocket) is asyncio.current_task():
                del self._sending[websocket]
