"""What the service logs: an access line per request, no credential anywhere, no error for a client's mistake."""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.parse
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from openline.logs import REDACTED, redact_target, redact_text
from tests.api._v3 import V3, stream
from tests.api.conftest import REC_SECRET, Service

ACCESS = "openline.access"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at INFO and above, uvicorn's included."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    return caplog


SERVER_LOGGERS = ("openline", "uvicorn", "websockets")  # not the test's own HTTP client


def _lines(logs: pytest.LogCaptureFixture, logger: str | None = None) -> list[str]:
    """What the service logged (or one of its loggers)."""
    return [
        r.getMessage() for r in logs.records if (r.name == logger if logger else r.name.split(".")[0] in SERVER_LOGGERS)
    ]


def _eventually(holds: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether `holds()` comes true within `timeout` s: a server's own early answers are logged after they are sent."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _no_errors(logs: pytest.LogCaptureFixture) -> None:
    bad = [(r.name, r.levelname, r.getMessage()) for r in logs.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == []


# -- redaction, as pure functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "logged"),
    [
        ("/healthz", "", "/healthz"),
        (
            "/v3/directline/conversations/c/stream",
            "watermark=3&t=eyJ.secret",
            f"/v3/directline/conversations/c/stream?watermark=3&t={REDACTED}",
        ),
        ("/attachments/c/f/n.png", "e=1700000000&s=sig-nature", f"/attachments/c/f/n.png?e=1700000000&s={REDACTED}"),
        ("/v3/attachments/conv~capabilitykey/views/original", "", f"/v3/attachments/conv~{REDACTED}/views/original"),
        ("/v3/attachments/conv~capabilitykey", "", f"/v3/attachments/conv~{REDACTED}"),
        ("//v3/attachments/conv~capabilitykey/views/original", "", f"//v3/attachments/conv~{REDACTED}/views/original"),
        ("/v3//attachments//conv~capabilitykey", "", f"/v3//attachments//conv~{REDACTED}"),
        (
            "/api/conversations/c/upload",
            "userId=u1&token=t0k&code=123",
            f"/api/conversations/c/upload?userId=u1&token={REDACTED}&code={REDACTED}",
        ),
        ("/x", "T=upper&flag&%74=encoded", f"/x?T={REDACTED}&flag&%74={REDACTED}"),
        ("/admin/conversations", "limit=5", "/admin/conversations?limit=5"),
        (
            "/sidecar/the-sidecar-secret/AuthorizationHeaderUnauthenticated/default",
            "",
            f"/sidecar/{REDACTED}/AuthorizationHeaderUnauthenticated/default",
        ),
        ("//sidecar//the-sidecar-secret", "", f"//sidecar//{REDACTED}"),
        ("/openline/Sidecar/the-sidecar-secret/x", "", f"/openline/Sidecar/{REDACTED}/x"),
        ("/api/x\n2026 ERROR forged\r", "", "/api/x\\x0a2026 ERROR forged\\x0d"),
    ],
)
def test_redact_target(path: str, query: str, logged: str) -> None:
    assert redact_target(path, query) == logged
    assert redact_target(path, query.encode()) == logged


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        (
            '127.0.0.1 - "WebSocket /s?watermark=-&t=eyJhbGciOi.x.y" [accepted]',
            f'127.0.0.1 - "WebSocket /s?watermark=-&t={REDACTED}" [accepted]',
        ),
        ("Authorization: Bearer abcdefghijklmnop", f"Authorization: Bearer {REDACTED}"),
        ("botconnector QWERTYUIOPASDF", f"botconnector {REDACTED}"),
        ("nothing secret here, bearer of news", "nothing secret here, bearer of news"),
    ],
)
def test_redact_text(text: str, logged: str) -> None:
    assert redact_text(text) == logged


# -- the access log -------------------------------------------------------------------------------------------


def test_every_request_has_an_access_line(service: Service, logs: pytest.LogCaptureFixture) -> None:
    service.http.get("/healthz")
    service.http.post("/api/conversations", headers=service.auth("not-a-secret"))
    lines = _lines(logs, ACCESS)
    assert any(
        line.startswith("127.0.0.1:") and '"GET /healthz" 200 ' in line and line.endswith("ms") for line in lines
    ), lines
    assert any('"POST /api/conversations" 403 ' in line for line in lines), lines


def test_no_credential_reaches_the_log(service: Service, logs: pytest.LogCaptureFixture) -> None:
    v3 = V3(service)
    started = v3.start()
    conv, token = started["conversationId"], started["token"]
    stream_token = urllib.parse.parse_qs(urllib.parse.urlsplit(started["streamUrl"]).query)["t"][0]
    with stream(started["streamUrl"]) as s:
        v3.say(conv, "hello", credential=token)
        s.activities(2)
    v3.get(f"/conversations/{conv}/activities?watermark=1&token=query-credential", token)
    # a signed file link and a bot attachment's capability
    upload = v3.post(
        f"/conversations/{conv}/upload?userId=u1", token, content=b"\x89PNG", headers={"Content-Type": "image/png"}
    )
    (file_url,) = [a["attachments"][0]["contentUrl"] for a in service.stored(conv) if a.get("attachments")]
    assert upload.status_code == 200 and service.http.get(file_url).status_code == 200
    data = {"type": "image/png", "name": "x.png", "originalBase64": base64.b64encode(b"x").decode()}
    attachment = service.http.post(f"/v3/conversations/{conv}/attachments", json=data).json()["id"]
    assert service.http.get(f"/v3/attachments/{attachment}").status_code == 200

    text = "\n".join(_lines(logs))
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(file_url).query)["s"][0]
    for secret in (REC_SECRET, token, stream_token, "query-credential", signature, attachment.split("~")[1]):
        assert secret not in text
    access = _lines(logs, ACCESS)
    assert any(
        '"WEBSOCKET /v3/directline/conversations/' in line and f"t={REDACTED}" in line and '" 101 ' in line
        for line in access
    )
    assert any(f"s={REDACTED}" in line and '" 200 ' in line for line in access)
    _no_errors(logs)


def test_capabilities_are_redacted_as_bots_ask_for_them_and_in_early_answers(
    service: Service, logs: pytest.LogCaptureFixture
) -> None:
    import socket

    data = {"type": "image/png", "name": "x.png", "originalBase64": base64.b64encode(b"x").decode()}
    conv = service.start()["conversationId"]
    attachment = service.http.post(f"/v3/conversations/{conv}/attachments", json=data).json()["id"]
    key = attachment.split("~")[1]
    # the way bots build it from a serviceUrl that ends in "/"
    assert service.http.get(f"{service.url}//v3/attachments/{attachment}/views/original").status_code == 200
    # an answer from the server itself, before the app: headers over the limit
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        big = "x" * (64 * 1024)
        sock.sendall(
            f"GET /v3/attachments/{attachment}/views/original HTTP/1.1\r\nHost: x\r\nX: {big}\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 431")
    assert _eventually(lambda: sum(f"~{REDACTED}" in line for line in _lines(logs, ACCESS)) >= 2)
    assert key not in "\n".join(_lines(logs))


def test_a_refused_upgrade_logs_no_error(service: Service, logs: pytest.LogCaptureFixture) -> None:
    url = V3(service).start()["streamUrl"]
    bad = url.replace("t=", "t=x")
    with pytest.raises(InvalidStatus) as refused, connect(bad, open_timeout=5):
        pass
    assert refused.value.response.status_code == 403
    # the line is written once the session has ended, which may be just after the client read the answer
    assert _eventually(lambda: any('"WEBSOCKET ' in line and '" 403 ' in line for line in _lines(logs, ACCESS)))
    _no_errors(logs)


@pytest.mark.parametrize("frame", [b"\xff\xfe", b"\xc3", b"ok \xed\xa0\x80"])
def test_a_frame_of_bad_utf8_closes_the_stream_without_a_traceback(
    service: Service, logs: pytest.LogCaptureFixture, frame: bytes
) -> None:
    with connect(V3(service).start()["streamUrl"], open_timeout=5) as ws:
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(frame))
        ws.socket.sendall(bytes([0x81, 0x80 | len(frame)]) + mask + payload)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    _no_errors(logs)
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]


def test_a_malformed_request_is_information_not_a_warning(service: Service, logs: pytest.LogCaptureFixture) -> None:
    import socket

    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = sock.recv(1000)
    assert answer.startswith(b"HTTP/1.1 400") and b"application/json" in answer
    assert not [r for r in logs.records if r.levelno >= logging.WARNING and r.name.startswith("uvicorn")]
    assert _eventually(lambda: any('" 400 ' in line for line in _lines(logs, ACCESS))), "an access line for it too"


def test_a_client_cannot_write_lines_of_its_own_into_the_log(service: Service, logs: pytest.LogCaptureFixture) -> None:
    forged = "%0a2026-11-30%2009:00:00,000%20ERROR%20openline.api:%20forged%20line%0d%00"
    service.http.get(f"{service.url}/api/x{forged}")
    service.http.get(f"{service.url}/v3/directline/x{forged}?watermark=1{forged}")
    assert not [m for m in _lines(logs) if "\n" in m or "\r" in m or "\x00" in m]
    assert _eventually(lambda: any("\\x0a2026" in line for line in _lines(logs, ACCESS)))


def test_what_a_failing_bot_says_is_logged_without_credentials(
    service: Service, logs: pytest.LogCaptureFixture
) -> None:
    """The recording bot answers "fail" with 500 and its body; a bot's body can quote a signed file link."""
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    upload = v3.post(f"/conversations/{conv}/upload?userId=u1", content=b"x", headers={"Content-Type": "image/png"})
    (url,) = [a["attachments"][0]["contentUrl"] for a in service.stored(conv) if a.get("attachments")]
    assert upload.status_code == 200
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["s"][0]
    service.bot.fail_body = f'{{"error": "cannot read {url}"}}'.encode()
    try:
        service.bot.fail_messages = 1
        assert (
            v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}}).status_code
            == 502
        )
    finally:
        service.bot.fail_body = None
    warnings = [m for m in _lines(logs, "openline.delivery")]
    assert warnings and all(signature not in m for m in warnings) and any(f"s={REDACTED}" in m for m in warnings)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/healthz", {"Method": "POST"}, 405),
        ("/healthz", {}, 404),
        ("/api/conversations", {}, 404),
        ("/v3/directline/conversations/c/stream/multimodal", {}, 404),
        ("/v3/directline/conversations/c/stream", {"Sec-WebSocket-Version": "8"}, 400),
        ("/v3/directline/conversations/c/stream", {"Sec-WebSocket-Key": ""}, 400),
    ],
)
def test_a_refused_websocket_upgrade_is_in_the_error_shape(
    service: Service, logs: pytest.LogCaptureFixture, path: str, headers: dict[str, str], status: int
) -> None:
    import socket

    fields = {
        "Host": "x",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        **headers,
    }
    method = fields.pop("Method", "GET")
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert int(status_line.split()[1]) == status, answer
    body = rest.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["error"]["message"], answer
    assert b"application/json" in rest.lower()
    assert any(f'" {status} ' in line for line in _lines(logs, ACCESS))
    _no_errors(logs)
