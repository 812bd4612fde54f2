"""ASGI middleware around every request: its id, its access line, its metrics, and its refusal while stopping.

The outermost layer (inside Starlette's error middleware): it sees the path as
requested, and, once the request is answered, the route that took it (the
router sets `scope["route"]` on the same scope).
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from openline import request_id
from openline.api._ws import deny
from openline.api.errors import error_response
from openline.logs import access, access_log, redact_target
from openline.metrics import OTHER_ROUTE, Metrics
from openline.protocol.errors import ErrorKind, ServiceError
from openline.stopping import Drain

STOPPING = "the service is stopping: try again (another instance takes the request)"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics, drain: Drain, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.drain = drain
        self.log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        rid = request_id.from_headers(scope["headers"])
        reset = request_id.current.set(rid)
        requested = scope["path"]
        is_http = kind == "http"
        client = self.drain.is_client_path(requested)
        started = time.perf_counter()
        status = 0
        open_route: str | None = None  # the route of an accepted WebSocket, counted as open
        echo = (b"x-request-id", rid.encode())

        async def record(message: Message) -> None:
            nonlocal status, open_route
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            elif kind == "websocket.accept":
                status = 101
                message["headers"] = [*message.get("headers", ()), echo]
                open_route = _route_of(scope)
                self.metrics.open_websockets.labels(open_route).inc()
            elif kind == "websocket.close" and status == 0:
                status = 403  # closed before the handshake: the server answers 403
            await send(message)

        counted = is_http and client
        task = asyncio.current_task() if counted else None
        if counted:
            self.drain.in_flight += 1
            self.drain.tasks.add(task)  # type: ignore[arg-type]
        failed = True
        try:
            if self.drain.stopping and (client or not is_http):
                await self._refuse(scope, receive, record)
            else:
                try:
                    await self.app(scope, receive, record)
                except asyncio.CancelledError:
                    # ended by a stop's bound (Drain.abandon), and only that: answered 503 as a new request is
                    if not (self.drain.abandoning and task is not None and task.uncancel() == 0):
                        raise
                    if status == 0:
                        await self._refuse(scope, receive, record)
            failed = False
        finally:
            if counted:
                self.drain.in_flight -= 1
                self.drain.tasks.discard(task)
            seconds = time.perf_counter() - started
            if open_route is not None:
                self.metrics.open_websockets.labels(open_route).dec()
            method = scope["method"] if is_http else "WEBSOCKET"
            self.metrics.request(_route_of(scope), method, status or 500, seconds)
            if self.log and access.isEnabledFor(logging.INFO):
                target = redact_target(requested, scope.get("query_string", b""))
                access_log(scope.get("client"), method, target, status or 500, seconds)
            # an error going on keeps the id: the handler outside this layer logs it (api.errors.on_unexpected);
            # each request is served in a task (a context) of its own, so the id goes no further
            if not failed:
                request_id.current.reset(reset)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A new client request or WebSocket while the service stops: 503 in the API's error shape."""
        if scope["type"] == "websocket":
            await deny(WebSocket(scope, receive, send), ServiceError(ErrorKind.OVERLOADED, STOPPING))
            return
        headers = {"Retry-After": "1", "Connection": "close"}
        await error_response(scope["path"], ErrorKind.OVERLOADED, STOPPING, headers)(scope, receive, send)


def _route_of(scope: Scope) -> str:
    """The template of the route that took the request (never its path: ids would multiply the series)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else OTHER_ROUTE
