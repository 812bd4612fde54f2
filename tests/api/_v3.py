"""A small Direct Line 3.0 test client over the `service` fixture: REST calls and WebSocket streams."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.api.conftest import REC_SECRET, Service

BASE = "/v3/directline"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (what Web Chat and directlinejs read)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


class V3:
    def __init__(self, service: Service, credential: str = REC_SECRET) -> None:
        self.service = service
        self.http = service.http
        self.credential = credential

    def headers(self, credential: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential or self.credential}"}

    def post(self, path: str, credential: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.post(BASE + path, headers={**self.headers(credential), **kw.pop("headers", {})}, **kw)

    def get(self, path: str, credential: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(BASE + path, headers={**self.headers(credential), **kw.pop("headers", {})}, **kw)

    def start(self, body: Any = None, credential: str | None = None, status: int = 201) -> dict[str, Any]:
        r = self.post("/conversations", credential, **({"json": body} if body is not None else {}))
        assert r.status_code == status, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def send(self, conv: str, activity: dict[str, Any], credential: str | None = None) -> str:
        r = self.post(f"/conversations/{conv}/activities", credential, json=activity)
        assert r.status_code == 200, r.text
        activity_id: str = r.json()["id"]
        return activity_id

    def say(self, conv: str, text: str, user: str = "u1", credential: str | None = None, **extra: Any) -> str:
        return self.send(conv, {"type": "message", "from": {"id": user}, "text": text, **extra}, credential)

    def activities(self, conv: str, watermark: str | None = None, credential: str | None = None) -> dict[str, Any]:
        params = {"watermark": watermark} if watermark is not None else {}
        r = self.get(f"/conversations/{conv}/activities", credential, params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


class Stream:
    """One open stream: frames as parsed ActivitySets, keep-alives counted apart."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.keepalives = 0

    def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next ActivitySet (keep-alives are counted and skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            assert isinstance(raw, str), "frames must be text"
            if raw == "":
                self.keepalives += 1
                continue
            body: dict[str, Any] = json.loads(raw)
            return body

    def activities(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` activities, across frames."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            out += self.frame(timeout)["activities"]
        assert len(out) == count, out
        return out

    def quiet(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """The ActivitySets that arrive within `seconds` (keep-alives skipped)."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frames.append(self.frame(left))
            except TimeoutError:
                break
        return frames


@contextmanager
def stream(url: str) -> Iterator[Stream]:
    with connect(url, open_timeout=5, close_timeout=2) as ws:
        yield Stream(ws)
