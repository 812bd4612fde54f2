"""The HTTP server: uvicorn (httptools and websockets) with the limits that keep one client from stalling the rest.

uvicorn bounds neither request header size nor the time a client may take to
send its headers, and `limit_concurrency` answers only once a request's
headers have arrived, in plain text: a client sending huge or endless headers
stalls the event loop or holds connections for ever. The HTTP protocol here is
uvicorn's own, with these checks added where the bytes arrive:

- the request line and headers may take at most `max_header_bytes` (431), and
  must be complete `header_timeout` seconds after the connection opened or the
  previous response ended (408, or a silent close when nothing was sent; one
  timer for every connection looks for late heads every fifth of that time);
- at most `max_connections` connections are open at once: a new one takes the
  place of the connection that has waited longest for a request (an idle
  keep-alive or a slow sender, waiting at least a second, or half the header
  timeout; in a burst, one that began a request's head and stalled), and is
  refused (503) only when there is none such, then or when its own request
  line arrives;
- with TLS (`--tls-cert`), the handshake happens inside this protocol
  (`loop.start_tls` once the connection is admitted), not before it as when
  uvicorn wraps the listener: a connection is counted, and must complete its
  handshake and its head within the header timeout, from the moment it is
  accepted; one that sends nothing is closed like any other slow sender
  (on asyncio's own event loop: see `server_config`);
- a response sent before its request's body was read to the end (a 413, a
  timeout) ends the connection: the server stops sending, then reads and drops
  what the client still sends (a lingering close, so the client reads the
  answer rather than a reset) for at most `LINGER_IDLE` seconds of quiet and
  `LINGER_TOTAL` in all.

Bodies the service reads have their own timeout (`api._http.read_body`: 408).
Every such answer is JSON in the error shape of the API the path belongs to.
WebSockets take messages of at most `max_frame_bytes` (a larger one closes
the socket with 1009, message too big), uncompressed (no `permessage-deflate`:
no compression bombs); clients only send empty keep-alives. Refused upgrades
and malformed frames end the connection without an error in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import resource
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.http11 import Response as WsResponse

from openline.api._paths import normal_raw_path
from openline.api.errors import error_document
from openline.config import Config
from openline.logs import access_log, quiet_server_logs, redact_target
from openline.protocol.connector import max_attachment_body
from openline.protocol.errors import ErrorKind, kind_of_status

PEER_SILENCE = 60.0  # seconds sent data may stay unacknowledged before the connection is dropped (see below)
_PATH_PEEK = 256  # bytes of the request target kept to choose the error shape of an early answer
_REFUSE_WAIT = 1.0  # seconds a refused connection may take to send its request line (to pick the error shape)
_RESERVED_FILES = 64  # open files kept for the store, logs and the like when sizing max_connections
LINGER_IDLE, LINGER_TOTAL = 5.0, 30.0  # seconds, as nginx's lingering_timeout and lingering_time
_EVICTABLE_AFTER = 1.0  # seconds a connection must have waited for a request before it may be closed for another
_EVICTION_SCAN = 64  # waiting connections looked at, longest waiting first, for one to close


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float  # seconds
    max_connections: int
    # bytes after a request's head (its body, chunk framing, trailers) past which the connection is ended: twice
    # the largest body any route takes, so it never cuts a request short; it bounds what no route reads
    max_body_bytes: int = 1 << 62


def open_file_limit(raise_soft: bool = False) -> int:
    """The process's open-file limit; with `raise_soft`, raised to the hard limit first (as Go does at start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if raise_soft and hard != soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def give_up_on_silent_peers(sock: Any) -> None:
    """Drop the connection when what was sent on it stays unacknowledged for `PEER_SILENCE` seconds (Linux).

    A client that vanished without closing (a laptop closed, a network gone) is otherwise noticed only when
    TCP stops retransmitting, about 15 minutes later: a quiet 3.0 stream would hold its task and subscription
    that long. Its keep-alive frames are what goes unacknowledged, so the stream ends within the keep-alive
    interval plus this. WebSocket pings would notice sooner, but a stream has one keep-alive, not two.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None or sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, int(PEER_SILENCE * 1000))


def auto_max_connections(open_files: int) -> int:
    """Connections to allow with `open_files` descriptors: each client may also hold one to the bot."""
    return max(16, min(10_000, (open_files - _RESERVED_FILES) // 2))


def limits_of(config: Config, open_files: int | None = None) -> ConnectionLimits:
    connections = config.max_connections or auto_max_connections(open_files or open_file_limit())
    largest = max(
        config.max_upload_bytes,
        config.max_message_bytes,
        config.max_form_bytes,
        config.max_connector_bytes,
        max_attachment_body(config.max_connector_bytes),
    )
    return ConnectionLimits(config.max_header_bytes, config.header_timeout, connections, 2 * largest + 65536)


def _raw_error(status_path: str, kind: ErrorKind, message: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """A whole HTTP/1.1 error response, in the shape of the API `status_path` belongs to, that closes the connection."""
    status, document = error_document(status_path, kind, message)
    body = msgspec.json.encode(document)
    reason = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "close"),
        ("access-control-allow-origin", "*"),
        *extra,
    ]
    head = f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def _path_of(target: bytes) -> str:
    """The path of a request target (or of the start of one), as routes see it: for choosing an error shape."""
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    if path.startswith((b"http://", b"https://")):  # absolute form
        path = b"/" + path.split(b"/", 3)[-1] if path.count(b"/") >= 3 else b"/"
    return normal_raw_path(path).decode("latin-1")


def _sweep_interval(limits: ConnectionLimits) -> float:
    """How often late heads are looked for: a fifth of the header timeout (late by at most that), 1 s at most."""
    return max(0.01, min(1.0, limits.header_timeout / 5))


def _head_size(target: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """About the bytes a request's head took: its target and its header lines."""
    return len(target) + sum(len(name) + len(value) + 4 for name, value in headers)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header size and time limits, and a bound on open connections."""

    limits: ClassVar[ConnectionLimits]
    tls: ClassVar[ssl.SSLContext | None]  # set: every connection is secured by a handshake in this protocol
    # the server's connections waiting for a request (none in progress), longest waiting first: the queue of
    # header deadlines (one timer for them all, rather than one per request) and of connections to close for room
    waiting: ClassVar[OrderedDict[GuardedHttpToolsProtocol, None]]
    sweeping: ClassVar[bool]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # waiting for (or reading) a request's line and headers
        self._busy = False  # a request is being answered
        self._head_bytes = 0  # bytes received of the current head
        self._feeding_head = False  # the parser is being fed no more than a head may take
        self._unbounded_head = False  # the current head began in bytes fed without that bound (pipelining)
        self._completed_in_feed = 0  # requests the parser completed in the current feed
        self._body_bytes = 0  # bytes received after the current request's head
        self._waiting_since = 0.0  # when this connection started waiting for a head (eviction order)
        self._deadline: asyncio.TimerHandle | None = None
        self._refusing = False
        self._oversized = False  # set by a parser callback; acted on once the parser has returned
        self._lingering_until: float | None = None  # answered, the rest of the body is being dropped
        self._heads_begun = 0
        self._ending = False  # the answer in progress began before its request's body was all in
        self._handshake: Coroutine[Any, Any, asyncio.Transport | None] | None = None  # the TLS handshake, stepped
        self._early: list[bytes] = []  # bytes decrypted before the handshake's end was seen here

    # -- the connection -----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Commence a graceful shutdown: an idle TLS connection is dropped at once.

        Closing a TLS connection waits for the client's close_notify, up to asyncio's
        30 s, and an idle keep-alive client never sends one: the server would wait that long to stop.
        """
        idle = self.cycle is None or self.cycle.response_complete
        if self._handshake is not None or (idle and self.tls is not None):
            self.transport.abort()
            return
        super().shutdown()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        give_up_on_silent_peers(transport.get_extra_info("socket"))
        if self.tls is not None:
            self._secure(transport)
            return
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            # decided when its first bytes come: by then the connections accepted with it may have shown
            # themselves to be slow senders (evictable); if not, it is refused in its API's error shape
            self._refusing = True
            self._deadline = self.loop.call_later(_REFUSE_WAIT, self._refuse)
            return
        self._admit()

    def _admit(self) -> None:
        self._refusing = False
        self._disarm()
        self._start_waiting()

    def _secure(self, transport: asyncio.Transport) -> None:
        """Admit a TLS connection (or close it: no answer can be read before the handshake), then shake hands.

        From here the connection counts and waits for its head, so a client that never completes the
        handshake is closed at the header timeout, or for another client's room, like a slow sender.
        """
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            transport.abort()
            # uvloop tells no connection_lost of a transport aborted in connection_made (asyncio does: a second
            # call is harmless): the count must drop here
            self.connection_lost(ConnectionAbortedError("too many connections"))
            access_log(self.client, "-", "-", 503, 0.0)
            return
        self._admit()
        assert self.tls is not None
        handshake = self.loop.start_tls(
            transport, self, self.tls, server_side=True, ssl_handshake_timeout=self.limits.header_timeout
        )
        # The first step of start_tls (until it waits for the handshake) must run now, inside connection_made:
        # it hands the transport to the TLS layer, and the client's hello may be read as soon as this returns
        # (uvloop starts reading then, whatever was paused), before any task or callback could run. So the
        # coroutine is stepped here by hand, and resumed when the handshake's future is done.
        self._handshake = handshake
        self._step_handshake(transport, None)

    def _step_handshake(self, transport: asyncio.Transport, _done: object) -> None:
        handshake = self._handshake
        assert handshake is not None
        try:
            waiting = handshake.send(None)
        except StopIteration as done:
            self._secured(done.value)
            return
        except (OSError, TimeoutError, asyncio.CancelledError) as e:  # ssl.SSLError and ConnectionError are OSErrors
            # a failed or abandoned handshake (or this side closed it: late, evicted, shutting down)
            self._handshake = None
            transport.abort()
            self.connection_lost(e if isinstance(e, Exception) else ConnectionAbortedError("handshake cancelled"))
            return
        waiting.add_done_callback(functools.partial(self._step_handshake, transport))

    def _secured(self, secured: asyncio.Transport | None) -> None:
        self._handshake = None
        if secured is None:  # the connection ended as the handshake did
            self.connection_lost(None)
            return
        self.transport = secured
        self.flow = FlowControl(secured)
        self.scheme = "https"
        early, self._early = b"".join(self._early), []
        if early:
            self.data_received(early)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_waiting()
        super().connection_lost(exc)

    def _start_waiting(self) -> None:
        self._waiting_since = time.monotonic()
        self.waiting.pop(self, None)
        self.waiting[self] = None  # at the end: the longest waiting come first
        cls = type(self)
        if not cls.sweeping:
            cls.sweeping = True
            self.loop.call_later(_sweep_interval(self.limits), cls._sweep_heads, self.loop)

    @classmethod
    def _sweep_heads(cls, loop: asyncio.AbstractEventLoop) -> None:
        """End the connections whose head is late (the header timeout from when they began waiting)."""
        late = time.monotonic() - cls.limits.header_timeout
        while cls.waiting:
            oldest = next(iter(cls.waiting))
            if oldest._waiting_since > late:
                break
            oldest._stop_waiting()
            oldest._head_timed_out()
        cls.sweeping = bool(cls.waiting)
        if cls.sweeping:
            loop.call_later(_sweep_interval(cls.limits), cls._sweep_heads, loop)

    def _stop_waiting(self) -> None:
        self.waiting.pop(self, None)

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for a request; False when there is none to close.

        Connections that opened (or were last answered) moments ago are left alone, unless they began a
        request's head and have not finished it: their request may be on its way. Those waiting longer are
        idle keep-alives and slow senders. Looks at the longest waiting few only, so a flood of connections
        costs little each.
        """
        settled = time.monotonic() - min(_EVICTABLE_AFTER, self.limits.header_timeout / 2)
        for candidate in list(itertools.islice(self.waiting, _EVICTION_SCAN)):
            if candidate.transport.is_closing():
                candidate._stop_waiting()
            elif candidate._waiting_since <= settled or candidate._head_bytes:
                candidate._stop_waiting()
                candidate._end(ErrorKind.OVERLOADED, "the service needed this idle connection for another client")
                return True
        return False

    def _refuse(self, data: bytes = b"") -> None:
        self._disarm()
        path = _path_of(data.split(b" ", 2)[1]) if data.count(b" ") >= 2 else "/"
        if not self.transport.is_closing():
            message = f"too many connections (the most is {self.limits.max_connections}): try again shortly"
            self.transport.write(_raw_error(path, ErrorKind.OVERLOADED, message, [("retry-after", "1")]))
            self.transport.close()
        access_log(self.client, "-", redact_target(path), 503, 0.0)

    def _end(self, kind: ErrorKind, message: str, answer: bool | None = None) -> None:
        """Answer (`kind`, in the shape of the request's API) and close; by default only if a request began."""
        self._disarm()
        if self.transport.is_closing():
            return
        if answer if answer is not None else self._head_bytes > 0:
            path = _path_of(getattr(self, "url", b"")[:_PATH_PEEK])
            status = error_document(path, kind, message)[0]
            self.transport.write(_raw_error(path, kind, message))
            access_log(self.client, "-", redact_target(path), status, 0.0)
        self.transport.close()

    # -- timers -------------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._end(ErrorKind.REQUEST_TIMEOUT, f"the request's headers took longer than {self.limits.header_timeout:g} s")

    # -- bytes in -----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._handshake is not None:  # decrypted before `_shake_hands` took the secured transport
            self._early.append(data)
            return
        if self.transport.is_closing():
            return
        if self._refusing:
            if len(self.connections) > self.limits.max_connections and not self._evict_one():
                self._refuse(data[:_PATH_PEEK])
                return
            self._admit()
        if self._lingering_until is not None:
            self._arm(min(LINGER_IDLE, max(0.0, self._lingering_until - self.loop.time())), self.transport.close)
            return
        # While a head is read, the parser is fed no more than the head may still take; what is left of the
        # read is fed once the head is complete (its body, a pipelined request), or is too much.
        while data and not self._oversized:
            if not self._reading_head:
                self._body_bytes += len(data)
                if self._body_bytes > self.limits.max_body_bytes:
                    self._body_too_large()
                    return
                self._feed(data)
                return
            room = self.limits.max_header_bytes - self._head_bytes
            head, data = data[:room], data[room:]
            self._head_bytes += len(head)
            heads_begun = self._heads_begun
            self._feeding_head = True
            self._feed(head)
            self._feeding_head = False
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return
            if data and self._reading_head and self._heads_begun == heads_begun:
                self._too_large()

    def _feed(self, data: bytes) -> None:
        self._completed_in_feed = 0
        super().data_received(data)
        if self._oversized:
            self._too_large()
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_started and "send" not in vars(cycle):
            # a body still on its way after this read (the app has not started yet: it takes this `send`)
            cycle.send = self._ending_early(cycle)  # type: ignore[method-assign,assignment]

    def _body_too_large(self) -> None:
        """More after a head than any route takes (a huge body nobody reads, endless trailers): end it, with a 413."""
        cycle = self.cycle
        started = cycle is not None and cycle.response_started
        if cycle is not None:
            cycle.disconnected = True  # the app's answer, if it comes, goes nowhere; its reads end
            cycle.message_event.set()
        message = f"the request is larger than any this service takes ({self.limits.max_body_bytes} bytes)"
        self._end(ErrorKind.TOO_LARGE, message, answer=not started)

    def _too_large(self) -> None:
        """Answer 431 and close; after the response in progress, if a request before this one is still answered."""
        self._oversized = True
        if self._busy:
            self.flow.pause_reading()
            return
        message = f"the request's headers exceed {self.limits.max_header_bytes} bytes"
        self._end(ErrorKind.HEADERS_TOO_LARGE, message, answer=True)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._heads_begun += 1
        self._body_bytes = 0
        # counted exactly only when it begins a read fed with the head's bound
        self._unbounded_head = self._completed_in_feed > 0 or not self._feeding_head

    def on_headers_complete(self) -> None:
        self._disarm()
        # a head that arrived in one read with an earlier request (pipelining) was not cut by data_received:
        # measured now. The parser is still running: the rest of its callbacks are ignored, and the answer
        # comes once it has returned.
        if self._unbounded_head and _head_size(self.url, self.headers) > self.limits.max_header_bytes:
            self._oversized = True
            return
        self._reading_head = False
        self._busy = True
        self.waiting.pop(self, None)
        super().on_headers_complete()

    def _ending_early(self, cycle: RequestResponseCycle) -> Callable[[Any], Awaitable[None]]:
        """The cycle's `send`, which ends the connection when the answer starts before the body is all in.

        The answer says `connection: close`; the connection is then ended by
        `_linger`, as uvicorn's immediate close could make the client see a
        reset instead of the answer while it is still sending.
        """
        send = cycle.send

        async def send_and_end(message: Any) -> None:
            if message["type"] == "http.response.start" and cycle.more_body:
                cycle.keep_alive = False
                self._ending = True
            elif self._ending and message["type"] == "http.response.body" and not message.get("more_body", False):
                cycle.keep_alive = True  # so that uvicorn leaves the ending to on_response_complete
            await send(message)

        return send_and_end

    def on_body(self, body: bytes) -> None:
        if not self._oversized:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._oversized:
            return
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0
        self._completed_in_feed += 1

    def on_response_complete(self) -> None:
        ending, self._ending = self._ending, False
        super().on_response_complete()
        self._busy = self.cycle is not None and not self.cycle.response_complete  # a pipelined request
        if self._oversized and not self._busy:
            self._too_large()  # the head after that request's
            return
        if ending and not self.transport.is_closing():
            self._linger()
            return
        if self._reading_head and not self._busy and not self.transport.is_closing():
            self._start_waiting()

    def _linger(self) -> None:
        """Answered before the body was all in: end the connection, dropping the rest of the body meanwhile."""
        self._unset_keepalive_if_required()
        self._busy = False
        self._stop_waiting()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the client reads the answer, then its end
        self._lingering_until = self.loop.time() + LINGER_TOTAL
        self._arm(LINGER_IDLE, self.transport.close)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP/1.1, in the API's error shape instead of plain text."""
        self._end(ErrorKind.MALFORMED, "the request is not valid HTTP/1.1", answer=True)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()


class QuietWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, without an error in the log for a client's mistake.

    A refused upgrade (an HTTP answer instead of the handshake) ends the
    handshake; a text frame that is not UTF-8 closes the connection (1007); a
    handshake the websockets library refuses (no key, another version, not a
    GET) is answered in the API's error shape, with an access line.
    """

    def handle_connect(self, event: Request) -> None:
        reject = self.conn.reject

        def json_reject(status: Any, text: str) -> WsResponse:
            path = _path_of(event.path.encode("latin-1", "replace"))
            code = int(status)
            message = text.strip().removeprefix("Failed to open a WebSocket connection: ").rstrip(".")
            _, document = error_document(path, kind_of_status(code), message)
            response = reject(status, "")
            response.body = msgspec.json.encode(document)
            response.headers["Content-Type"] = "application/json"
            response.headers["Content-Length"] = str(len(response.body))
            access_log(self.client, "WEBSOCKET", redact_target(path), code, 0.0)
            return response

        self.conn.reject = json_reject  # type: ignore[method-assign]
        super().handle_connect(event)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # the handshake's request and response (with their headers, and json_reject holding the request)
            # are of no more use: an open stream should cost as little as it can
            self.request = self.response = None  # type: ignore[assignment]
            self.conn.__dict__.pop("reject", None)

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text":
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                logging.getLogger("openline.stream").debug("closed a WebSocket that sent invalid UTF-8 text")
                self.conn.send_close(1007, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


def server_tls(config: Config) -> ssl.SSLContext | None:
    """The server side of TLS, when a certificate is configured (TLS 1.2 or later, HTTP/1.1 offered by ALPN)."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def server_config(app: Any, config: Config, limits: ConnectionLimits | None = None, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration openline runs with (the `openline serve` command and the tests alike)."""
    limits = limits or limits_of(config)
    state = {"limits": limits, "waiting": OrderedDict(), "sweeping": False, "tls": server_tls(config)}
    http = type("OpenlineHttpProtocol", (GuardedHttpToolsProtocol,), state)
    quiet_server_logs()
    settings: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "http": http,
        "ws": QuietWebSocketsProtocol,
        "ws_max_size": config.max_frame_bytes,  # directlinejs sends empty frames only
        "ws_per_message_deflate": False,
        # one keep-alive per stream: openline's empty text frames (stream_keepalive), which directlinejs expects;
        # no WebSocket pings besides
        "ws_ping_interval": None,
        "log_config": None,
        "log_level": config.log_level.lower(),
        "access_log": False,  # openline's own, with credentials redacted (openline.logs)
        "server_header": False,
        "lifespan": "on",
        # uvloop (0.23) never tells a start_tls protocol of its connection's end once the client closed it
        # (asyncio does), and that end is what lets the server count, and stop: with TLS, asyncio's loop
        **({"loop": "asyncio"} if config.tls_cert is not None else {}),
        **overrides,
    }
    return uvicorn.Config(app, **settings)
