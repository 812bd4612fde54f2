"""One client cannot stall or exhaust the service: header size and time, body time, connections, WebSocket frames.

openline runs here with small limits set like flags would (2 KB of headers, 0.5 s for headers and body pauses,
8 connections), and raw sockets play the slow or greedy clients.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api._v3 import V3
from tests.api.conftest import ADMIN_SECRET, REC_SECRET, Service, serve

MAX_HEADER = 2048
HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    overrides: dict[str, Any] = {
        "max_header_bytes": MAX_HEADER,
        "header_timeout": HEAD_TIMEOUT,
        "body_timeout": BODY_TIMEOUT,
        "max_connections": MAX_CONNECTIONS,
    }
    with serve(Path(tmp_path_factory.mktemp("data")), **overrides) as running:
        yield running


def _open(service: Service) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    _UNREAD.pop(sock.fileno(), None)
    return sock


_UNREAD: dict[int, bytes] = {}  # bytes read past a response, by socket (pipelined responses)


def _response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Read one whole response (the server closes or says its length): status, headers, body."""
    sock.settimeout(timeout)
    data = _UNREAD.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    body, _UNREAD[sock.fileno()] = body[:length], body[length:]
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Whether the server ends the connection within `timeout` seconds (what it sent first is dropped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _healthy(service: Service) -> float:
    """GET /healthz on a new connection: its latency, after checking it answered 200."""
    started = time.monotonic()
    with contextlib.closing(_open(service)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, _ = _response(sock)
    assert status == 200
    return time.monotonic() - started


def _error(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    return error


# -- headers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code", "shape"),
    [("/api/conversations", "MalformedData", "1.1"), ("/v3/directline/conversations", "BadArgument", "3.0")],
)
def test_headers_over_the_limit_get_431_in_the_api_shape(limited: Service, path: str, code: str, shape: str) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * MAX_HEADER}\r\n\r\n".encode())
        status, headers, body = _response(sock)
        assert status == 431 and headers["content-type"] == "application/json"
        assert headers["connection"] == "close" and headers["access-control-allow-origin"] == "*"
        error = _error(body)
        assert error["code"] == code and str(MAX_HEADER) in error["message"]
        assert ("statusCode" in error) == (shape == "1.1")
        assert _closed(sock)


@pytest.mark.parametrize("path", ["/v3/directline/conversations/c1/stream?t=x", "/admin/conversations/c1/live"])
def test_websocket_upgrade_headers_over_the_limit_get_431(limited: Service, path: str) -> None:
    upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{upgrade}{key}X-Big: {'a' * MAX_HEADER}\r\n\r\n".encode())
        status, _, body = _response(sock)
        assert status == 431 and _error(body)["code"] == "BadArgument"
        assert _closed(sock)


def test_early_answers_to_doubled_slash_paths_keep_their_api_shape(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(f"POST //api//conversations HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * MAX_HEADER}\r\n\r\n".encode())
        status, _, body = _response(sock)
        assert status == 431 and _error(body)["statusCode"] == 431, "the 1.1 shape, as the app would answer"


def test_headers_just_under_the_limit_are_served(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n"
        pad = MAX_HEADER - len(head.format(""))  # the whole head: exactly the limit
        sock.sendall(head.format("p" * pad).encode())
        assert _response(sock)[0] == 200


def test_a_huge_header_is_cut_short_and_stalls_no_one(limited: Service) -> None:
    """64 MB of header: refused after the first 2 KB, while /healthz answers at once."""
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        sent = 0
        with contextlib.suppress(OSError):  # the server closes while we are still sending
            chunk = b"h" * 65536
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        assert sent < 64 * 1024 * 1024, "the server stopped reading"
        assert _healthy(limited) < 1.0


def test_an_oversized_head_pipelined_after_a_request_is_refused(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        second = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * MAX_HEADER}\r\n\r\n".encode()
        sock.sendall(first + second)
        assert _response(sock)[0] == 200
        assert _response(sock)[0] == 431


def test_an_oversized_head_pipelined_after_a_body_is_refused(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        first = b"POST /v3/conversations/x/activities HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        second = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * MAX_HEADER}\r\n\r\n".encode()
        sock.sendall(first + second)
        assert _response(sock)[0] == 404  # no such conversation
        assert _response(sock)[0] == 431


def test_pipelined_requests_within_the_limit_are_served(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        one = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {'p' * (MAX_HEADER // 2)}\r\n\r\n".encode()
        sock.sendall(one * 5)
        assert [_response(sock)[0] for _ in range(5)] == [200] * 5


def test_slow_headers_get_408(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v3/directline/conversations HTTP/1.1\r\nHost: x\r\n")
        status, _, body = _response(sock)
        assert status == 408 and _error(body)["code"] == "RequestTimeout"
        assert HEAD_TIMEOUT - 0.1 < time.monotonic() - started < HEAD_TIMEOUT + 2
        assert _closed(sock)


def test_headers_sent_a_byte_at_a_time_get_408_too(limited: Service) -> None:
    """A slow-loris sends bytes now and then: the time limit is for the whole head, not between bytes."""
    with contextlib.closing(_open(limited)) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in b"GET /api/conversations HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100:
                sock.send(bytes([byte]))
                time.sleep(0.05)
        status, _, body = _response(sock)
        assert status == 408 and _error(body)["code"] == "MalformedData"
        assert time.monotonic() - started < HEAD_TIMEOUT + 2


def test_a_connection_that_sends_nothing_is_closed_silently(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.settimeout(HEAD_TIMEOUT + 2)
        assert sock.recv(100) == b"", "closed, with no response to a request that never began"


def test_an_idle_keep_alive_connection_gets_the_header_time_too(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(sock)[0] == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # the next request never ends its head
        assert _response(sock)[0] == 408


# -- bodies --------------------------------------------------------------------------------------------------


def test_a_stalled_body_gets_408_in_the_api_shape(limited: Service) -> None:
    conv = limited.start()["conversationId"]
    cases = [
        (f"/api/conversations/{conv}/messages", {"Authorization": f"Bearer {REC_SECRET}"}, "MalformedData"),
        (
            f"/v3/directline/conversations/{conv}/activities",
            {"Authorization": f"Bearer {REC_SECRET}"},
            "RequestTimeout",
        ),
        (f"/v3/conversations/{conv}/activities", {}, "RequestTimeout"),
    ]
    for path, auth, code in cases:
        with contextlib.closing(_open(limited)) as sock:
            extra = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\n"
            head += "Content-Length: 100\r\n\r\n"
            sock.sendall(head.encode() + b'{"type": "mess')  # a Content-Length larger than what comes
            started = time.monotonic()
            status, _, body = _response(sock)
            assert status == 408 and _error(body)["code"] == code, (path, body)
            assert time.monotonic() - started < BODY_TIMEOUT + 2
            assert _closed(sock), "the connection ends: the rest of that body is not waited for"
    assert [a for a in limited.stored(conv) if a.get("type") == "mess"] == []


def test_a_body_trickled_in_is_ended_by_its_average_rate(limited: Service) -> None:
    """A byte now and then, each within the pause limit: the body must still average 500 bytes a second."""
    conv = limited.start()["conversationId"]
    with contextlib.closing(_open(limited)) as sock:
        head = f"POST /v3/conversations/{conv}/activities HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n"
        sock.sendall(head.encode())
        started = time.monotonic()
        status = None
        with contextlib.suppress(OSError):
            for _ in range(40):
                time.sleep(BODY_TIMEOUT / 3)
                sock.send(b"x")
                sock.settimeout(0.01)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(1, socket.MSG_PEEK):
                        break
        status, _, body = _response(sock)
        assert status == 408 and _error(body)["code"] == "RequestTimeout"
        assert time.monotonic() - started < BODY_TIMEOUT * 3, "not held for as long as the trickle goes on"


def test_endless_chunk_trailers_are_cut_off(limited: Service) -> None:
    """Trailers come after the head: they are bounded with everything after it (no route takes that much)."""
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(b"POST /v3/conversations/x/activities HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"2\r\n{}\r\n0\r\n")
        sent = 0
        with contextlib.suppress(OSError):
            line = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
            while sent < 64 * 1024 * 1024:
                sock.sendall(line * 64)
                sent += len(line) * 64
        assert sent < 64 * 1024 * 1024, "the server stopped reading"
        assert _healthy(limited) < 1.0


def test_a_body_the_service_does_not_read_ends_the_connection(limited: Service) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
        assert _response(sock)[0] == 200
        assert _closed(sock, 1.0), "no waiting for 50 bytes nobody reads"


def test_a_body_over_the_limit_is_answered_before_it_is_sent(limited: Service) -> None:
    """413 at once, read by the client even while it keeps sending (the server drops the rest, then closes)."""
    conv = limited.start()["conversationId"]
    body = b'{"text": "' + b"x" * 200_000 + b'"}'
    r = limited.http.post(f"/api/conversations/{conv}/messages", headers=limited.auth(REC_SECRET), content=body)
    assert r.status_code == 413 and r.json()["error"]["code"] == "MalformedData"


@pytest.mark.parametrize(
    ("request_bytes", "shape"),
    [
        (b"THIS IS NOT HTTP\r\n\r\n", "3.0"),
        (b"GET /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "1.1"),
        (b"POST /v3/directline/conversations HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", "3.0"),
        (
            b"POST /api/conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            "1.1",
        ),
    ],
)
def test_bytes_that_are_not_http_get_400_in_the_api_shape(limited: Service, request_bytes: bytes, shape: str) -> None:
    with contextlib.closing(_open(limited)) as sock:
        sock.sendall(request_bytes)
        status, headers, body = _response(sock)
        assert status == 400 and headers["content-type"] == "application/json", body
        error = _error(body)
        assert error["code"] == ("MalformedData" if shape == "1.1" else "BadArgument")


# -- connections -----------------------------------------------------------------------------------------


def test_idle_connections_make_room_for_new_ones(limited: Service) -> None:
    idle = [_open(limited) for _ in range(MAX_CONNECTIONS + 4)]
    try:
        time.sleep(HEAD_TIMEOUT / 2 + 0.1)  # long enough to count as idle (a request may be on its way before)
        for _ in range(3):
            assert _healthy(limited) < 1.0
        assert _closed(idle[0], 1.0), "the longest idle made room"
    finally:
        for sock in idle:
            sock.close()


def test_a_burst_of_slow_senders_makes_room_at_once(limited: Service) -> None:
    """Connections that began a request and stalled give way even when they are young (a slow-loris burst)."""
    slow = []
    try:
        for _ in range(MAX_CONNECTIONS * 3):
            sock = _open(limited)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(sock)
        for _ in range(5):
            assert _healthy(limited) < 1.0
    finally:
        for sock in slow:
            sock.close()


def test_when_every_connection_is_busy_a_new_one_gets_503(limited: Service) -> None:
    conv = limited.start()["conversationId"]
    # u1 is welcomed now (the bot's reply comes over a connection of its own), not while every connection is taken
    V3(limited).say(conv, "silent")
    time.sleep(HEAD_TIMEOUT / 2 + 0.1)  # the test client's and the bot's connections are idle by now: they make room

    def slow_post() -> int:
        activity = {"type": "message", "from": {"id": "u1"}, "text": "slow"}
        with contextlib.closing(_open(limited)) as sock:
            body = json.dumps(activity).encode()
            head = (
                f"POST /v3/directline/conversations/{conv}/activities HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {REC_SECRET}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            return _response(sock, 10)[0]

    with concurrent.futures.ThreadPoolExecutor(MAX_CONNECTIONS) as pool:
        busy = [pool.submit(slow_post) for _ in range(MAX_CONNECTIONS)]
        # every one of them is waiting for the bot (it takes longer than the bot timeout)
        deadline = time.monotonic() + 10
        while len(limited.bot.of(conv, "message", "slow")) < MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(limited.bot.of(conv, "message", "slow")) == MAX_CONNECTIONS, [b.result(15) for b in busy]
        for path, code in (("/v3/directline/conversations", "ServiceUnavailable"), ("/api/conversations", "Internal")):
            # the first probes may take the place of idle connections (the test client's, the bot's)
            for _ in range(6):
                with contextlib.closing(_open(limited)) as sock:
                    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    status, headers, body = _response(sock)
                if status == 503:
                    break
            assert status == 503 and headers["retry-after"] == "1", body
            assert _error(body)["code"] == code
        assert [b.result(15) for b in busy] == [504] * MAX_CONNECTIONS
    assert _healthy(limited) < 1.0, "served again once the busy ones are done"


# -- WebSockets ----------------------------------------------------------------------------------------------


def _stream_url(service: Service) -> str:
    url: str = V3(service).start()["streamUrl"]
    return url


def test_streams_refuse_compression(limited: Service) -> None:
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    with connect(_stream_url(limited), extensions=[ClientPerMessageDeflateFactory()], open_timeout=5) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers, "permessage-deflate is not accepted"


@pytest.mark.parametrize("route", ["stream", "admin"])
def test_a_message_over_the_websocket_limit_closes_the_socket(limited: Service, route: str) -> None:
    if route == "stream":
        url, headers = _stream_url(limited), {}
    else:
        conv = limited.start()["conversationId"]
        url = limited.url.replace("http", "ws") + f"/admin/conversations/{conv}/live"
        headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with connect(url, additional_headers=headers, open_timeout=5, max_size=None) as ws:
        ws.send("")  # a keep-alive is fine
        ws.send("x" * 4096)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.recv(timeout=5)
                ws.send("x" * 5000)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert _healthy(limited) < 1.0


def test_a_compressed_frame_without_compression_closes_the_socket(limited: Service) -> None:
    """A compression bomb needs permessage-deflate: without it, a compressed (RSV1) frame is a protocol error."""
    with connect(_stream_url(limited), open_timeout=5) as ws:
        masked = bytes([0xC1, 0x80 | 5]) + b"\x00\x00\x00\x00" + b"bomb!"  # FIN + RSV1, text, masked, 5 bytes
        ws.socket.sendall(masked)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
