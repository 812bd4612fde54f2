"""Every body the service reads has a size setting, answered 413 in the error shape of its API past it, and every
WebSocket message a client sends is bounded by `max_frame_bytes` (1009). Headers: tests/api/test_limits.py (431).

Each route is tried with a body just within its limit (not refused for size, whatever else it says) and one
just past it (413, in the route's own shape).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api.conftest import ADMIN_SECRET, MAX_MESSAGE, MAX_UPLOAD, REC_SECRET, Service, serve

MAX_CONNECTOR = 32 * 1024
MAX_FORM = 2048
MAX_PARTS = 3
MAX_FRAME = 1024


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    overrides: dict[str, Any] = {
        "max_connector_bytes": MAX_CONNECTOR,
        "max_form_bytes": MAX_FORM,
        "max_upload_parts": MAX_PARTS,
        "max_frame_bytes": MAX_FRAME,
    }
    with serve(Path(tmp_path_factory.mktemp("data")), **overrides) as running:
        yield running


def _json_of_size(size: int, **fields: Any) -> bytes:
    """A JSON object of exactly `size` bytes: `fields` and a padding string."""
    base = json.dumps({**fields, "pad": ""}, separators=(",", ":")).encode()
    assert len(base) <= size
    return json.dumps({**fields, "pad": "x" * (size - len(base))}, separators=(",", ":")).encode()


def _form_of_size(size: int, **fields: str) -> bytes:
    base = "&".join(f"{k}={v}" for k, v in {**fields, "pad": ""}.items()).encode()
    return base + b"x" * (size - len(base))


def _v3_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "BadArgument"


def _v1_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "MalformedData" and r.json()["error"]["statusCode"] == 413


def _start_v3(service: Service) -> tuple[str, str]:
    r = service.http.post("/v3/directline/conversations", headers={"Authorization": f"Bearer {REC_SECRET}"})
    assert r.status_code == 201, r.text
    return r.json()["conversationId"], r.json()["token"]


JSON = {"Content-Type": "application/json"}
SECRET_AUTH = {"Authorization": f"Bearer {REC_SECRET}"}

# (name, path with {conv}, limit, headers, the body of a size, the check of a 413)
JSON_BODIES: list[tuple[str, str, int, dict[str, str], Any]] = [
    ("3.0 token", "/v3/directline/tokens/generate", MAX_MESSAGE, SECRET_AUTH, _v3_413),
    ("3.0 start", "/v3/directline/conversations", MAX_MESSAGE, SECRET_AUTH, _v3_413),
    ("3.0 activity", "/v3/directline/conversations/{conv}/activities", MAX_MESSAGE, SECRET_AUTH, _v3_413),
    ("1.1 message", "/api/conversations/{conv}/messages", MAX_MESSAGE, SECRET_AUTH, _v1_413),
    ("connector activity", "/v3/conversations/{conv}/activities", MAX_CONNECTOR, {}, _v3_413),
    ("connector reply", "/v3/conversations/{conv}/activities/{conv}%7C0000001", MAX_CONNECTOR, {}, _v3_413),
    ("connector history", "/v3/conversations/{conv}/activities/history", MAX_CONNECTOR, {}, _v3_413),
    ("connector create", "/v3/conversations", MAX_CONNECTOR, {}, _v3_413),
    ("echo bot", "/echobot/api/messages", MAX_CONNECTOR, {}, _v3_413),
    ("web page token", "/web/token", MAX_FORM, {}, _v3_413),
]


@pytest.mark.parametrize(("name", "path", "limit", "headers", "check"), JSON_BODIES, ids=[b[0] for b in JSON_BODIES])
def test_json_bodies_are_bounded_by_their_setting(
    sized: Service, name: str, path: str, limit: int, headers: dict[str, str], check: Any
) -> None:
    conv, _ = _start_v3(sized)
    url = path.format(conv=conv)
    fields = {"type": "message", "from": {"id": "u1"}, "text": "hi", "activities": []}
    within = sized.http.post(url, headers={**JSON, **headers}, content=_json_of_size(limit, **fields))
    assert within.status_code != 413, within.text
    check(sized.http.post(url, headers={**JSON, **headers}, content=_json_of_size(limit + 1, **fields)))


def test_an_activity_replaced_by_the_bot_is_bounded_too(sized: Service) -> None:
    conv, token = _start_v3(sized)
    r = sized.http.post(
        f"/v3/directline/conversations/{conv}/activities",
        headers={"Authorization": f"Bearer {token}"},
        json={"type": "message", "from": {"id": "u1"}, "text": "hi"},
    )
    activity_id = r.json()["id"]
    url = f"/v3/conversations/{conv}/activities/{activity_id}"
    fields = {"type": "message", "text": "edited"}
    assert sized.http.put(url, headers=JSON, content=_json_of_size(MAX_CONNECTOR, **fields)).status_code == 200
    _v3_413(sized.http.put(url, headers=JSON, content=_json_of_size(MAX_CONNECTOR + 1, **fields)))


def test_a_bot_attachment_is_bounded_by_the_connector_setting(sized: Service) -> None:
    conv, _ = _start_v3(sized)
    url = f"/v3/conversations/{conv}/attachments"

    def data(size: int) -> dict[str, Any]:
        return {"type": "text/plain", "name": "a.txt", "originalBase64": base64.b64encode(b"x" * size).decode()}

    assert sized.http.post(url, json=data(MAX_CONNECTOR)).status_code == 200
    _v3_413(sized.http.post(url, json=data(MAX_CONNECTOR + 1)))
    _v3_413(sized.http.post(url, headers=JSON, content=b" " * (MAX_CONNECTOR * 2)))  # the body itself


@pytest.mark.parametrize("api", ["3.0", "1.1"])
def test_uploads_are_bounded_in_size_and_parts(sized: Service, api: str) -> None:
    conv, token = _start_v3(sized)
    if api == "3.0":
        url, check = f"/v3/directline/conversations/{conv}/upload?userId=u1", _v3_413
    else:
        url, check = f"/api/conversations/{conv}/upload?userId=u1", _v1_413
    auth = {"Authorization": f"Bearer {token}"}
    raw = {**auth, "Content-Type": "text/plain"}
    assert sized.http.post(url, headers=raw, content=b"x" * MAX_UPLOAD).status_code < 300
    check(sized.http.post(url, headers=raw, content=b"x" * (MAX_UPLOAD + 1)))
    files = [("file", (f"f{i}.txt", b"x", "text/plain")) for i in range(MAX_PARTS)]
    assert sized.http.post(url, headers=auth, files=files).status_code < 300
    files.append(("file", ("one-more.txt", b"x", "text/plain")))
    r = sized.http.post(url, headers=auth, files=files)
    check(r)
    assert f"more than {MAX_PARTS} parts" in r.json()["error"]["message"]


def test_the_inspector_sign_in_form_is_bounded(sized: Service) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = sized.http.post("/inspect/login", headers=form, content=_form_of_size(MAX_FORM, secret=ADMIN_SECRET))
    assert r.status_code == 303, r.text
    r = sized.http.post("/inspect/login", headers=form, content=_form_of_size(MAX_FORM + 1, secret=ADMIN_SECRET))
    assert r.status_code == 413 and "too large" in r.text and r.headers["content-type"].startswith("text/html")


def test_a_bot_token_request_is_bounded(sized: Service) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    fields = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    within = sized.http.post("/adfs/oauth2/token", headers=form, content=_form_of_size(MAX_FORM, **fields))
    assert within.status_code != 413 and within.json()["error"] != "invalid_request", within.text
    r = sized.http.post("/adfs/oauth2/token", headers=form, content=_form_of_size(MAX_FORM + 1, **fields))
    assert r.status_code == 413 and r.json()["error"] == "invalid_request", r.text


@pytest.mark.parametrize("route", ["stream", "admin"])
def test_a_websocket_message_past_the_setting_closes_with_1009(sized: Service, route: str) -> None:
    conv, _ = _start_v3(sized)
    if route == "stream":
        r = sized.http.post("/v3/directline/conversations", headers=SECRET_AUTH)
        url, headers = r.json()["streamUrl"], {}
    else:
        url = sized.url.replace("http", "ws") + f"/admin/conversations/{conv}/live"
        headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with connect(url, additional_headers=headers, open_timeout=5, max_size=None) as ws:
        ws.send("x" * MAX_FRAME)  # within the limit: read and ignored
        ws.send("")
        with pytest.raises(ConnectionClosed) as closed:
            ws.send("x" * (MAX_FRAME + 1))
            for _ in range(100):
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
