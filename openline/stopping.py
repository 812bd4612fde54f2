"""A graceful stop (SIGTERM): streams closed with 1001 at once, requests in flight finished, then the store closed.

How this works. uvicorn, on its own, stops listening, ends idle connections,
waits for the requests in flight and closes WebSockets with 1012. A request
waiting on the bot needs more: the bot answers through this service (its
replies are connector calls, and it may first fetch a token), so the service
keeps listening while such requests finish. `GracefulServer.shutdown` runs
in two phases, within one bound (`shutdown_timeout`):

1. draining: every open WebSocket (3.0 streams, inspector feeds) is closed
   with 1001 "going away" so clients reconnect, to another instance when
   there is one; new Direct Line client requests (both APIs) and new
   WebSockets are answered 503 (api/_observe.py), and `/healthz` says
   "stopping", while the bots' calls are served; this phase ends once no
   client request is in flight, or at the bound, where the client requests
   still in flight are ended and answered 503 like new ones (`Drain.abandon`);
2. uvicorn's own shutdown: the listener closed, the remaining requests (the
   bots') finished, the application's shutdown run (the store closed:
   everything acknowledged is committed).

A second SIGTERM or SIGINT ends the wait at once (what is in flight is answered 503), and the store is still
closed; a third ends the process without closing it (acknowledged writes are committed already).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("openline")

# the paths of the Direct Line client APIs (3.0 and 1.1): what a draining service refuses
CLIENT_PATHS = ("/v3/directline/", "/api/")
_SLASHES = re.compile(r"//+")
_POLL = 0.05  # seconds between looks at the requests in flight
ABANDONED = "the service stopped before the request was done"
_ABANDON_WITHIN = 1.0  # seconds the requests ended at the bound have to send their 503


class Drain:
    """Whether the service is stopping, and how many client requests are in flight (counted by the API layer)."""

    def __init__(self) -> None:
        self.stopping = False
        self.in_flight = 0
        self.tasks: set[asyncio.Task[object]] = set()  # the tasks serving the client requests in flight
        self.abandoning = False  # set at the bound: the requests still in flight are answered 503 and ended

    def abandon(self) -> None:
        """End the client requests still in flight (the bound has passed): each is answered 503 in its API's
        error shape, as a new one would be, rather than cut off by the server with a bare 500."""
        self.abandoning = True
        for task in list(self.tasks):
            task.cancel(ABANDONED)

    @staticmethod
    def is_client_path(path: str) -> bool:
        """Whether `path`, as requested, is one of a client API's (`//v3/...` too: the router collapses slashes)."""
        if "//" in path:
            path = _SLASHES.sub("/", path)
        return path.startswith(CLIENT_PATHS) or path.rstrip("/") in ("/api", "/v3/directline")

    async def settled(self, deadline: float, forced: Callable[[], bool]) -> None:
        """Return once no client request is in flight, at `deadline` (time.monotonic) or once `forced()`."""
        # polled, as uvicorn polls its own state: `forced` is a flag a signal handler sets
        while self.in_flight > 0 and not forced() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL)


class GracefulServer(uvicorn.Server):
    """uvicorn's server with the two-phase stop described above; `bound` in seconds."""

    def __init__(self, config: uvicorn.Config, drain: Drain, bound: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.bound = bound
        self.hurry = False  # a second signal: what is in flight is ended now (503), then the store is closed

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # a second signal, whichever: stop waiting for requests, but still close the store (uvicorn's force_exit,
        # which it sets on a second SIGINT, would skip that, with a traceback); a third: force_exit, for a
        # shutdown that does not end
        if self.should_exit and self.hurry:
            self.force_exit = True
        elif self.should_exit:
            self.hurry = True
        else:
            super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        deadline = time.monotonic() + self.bound
        self.drain.stopping = True
        log.info(
            "stopping: streams closed (1001), new client requests refused (503); %d in flight may take %g s more",
            self.drain.in_flight,
            self.bound,
        )
        for connection in list(self.server_state.connections):
            if isinstance(connection, WebSocketsSansIOProtocol):
                connection.shutdown()  # 1001 (server.QuietWebSocketsProtocol)
        await self.drain.settled(deadline, lambda: self.hurry or self.force_exit)
        if self.drain.in_flight:  # the bound has passed, or a second signal came: 503 for what is left
            log.warning("stopping: %d client request(s) still in flight are answered 503", self.drain.in_flight)
            self.drain.abandon()
            await self.drain.settled(time.monotonic() + _ABANDON_WITHIN, lambda: False)
        # the rest of the bound (uvicorn's annotation says int; asyncio.wait_for takes any number)
        # (at least a little: at 0 uvicorn reports a timeout, as an error, even with nothing left to wait for)
        left = 0.1 if self.hurry else max(0.1, deadline - time.monotonic())
        self.config.timeout_graceful_shutdown = left  # type: ignore[assignment]
        await super().shutdown(sockets)
