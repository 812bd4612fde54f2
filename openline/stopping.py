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
   WebSockets are answered 503 (`Drain.refuses`), and `/healthz` says
   "stopping", while the bots' calls are served; this phase ends once no
   client request is in flight;
2. uvicorn's own shutdown: the listener closed, the remaining requests
   finished (cancelled at the bound), the application's shutdown run (the
   store closed: everything acknowledged is committed).

A second SIGTERM or SIGINT ends the wait at once.
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


class Drain:
    """Whether the service is stopping, and how many client requests are in flight (counted by the API layer)."""

    def __init__(self) -> None:
        self.stopping = False
        self.in_flight = 0

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

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:  # a second signal, whichever: stop waiting (uvicorn forces on a second SIGINT only)
            self.force_exit = True
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
        await self.drain.settled(deadline, lambda: self.force_exit)
        # the rest of the bound (uvicorn's annotation says int; asyncio.wait_for takes any number)
        self.config.timeout_graceful_shutdown = max(0.0, deadline - time.monotonic())  # type: ignore[assignment]
        await super().shutdown(sockets)
