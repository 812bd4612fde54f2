"""The answers HTTP fuzzing cannot reach, checked against the OpenAPI document: every refusal of the WebSocket
upgrades (the 3.0 stream, the admin live feed) and every `/healthz` body, each status documented and each body
in its documented schema (headers too: a 429 says `Retry-After`).

The refusals come from several places, each driven for real here: `deny()` in api/_ws.py (bad tokens,
watermarks, unknown conversations, the admin credential and origin), the rate limiter (api/_ratelimit.py),
the stopping refusal (api/_observe.py) and the store unavailable (api/_ws.py, a 503).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openline.api.openapi import build_document
from openline.auth.admin import SESSION_COOKIE
from openline.config import BotConfig
from openline.protocol.ratelimit import Rate
from openline.storage.base import StoreUnavailable
from tests.api.conftest import ADMIN_SECRET, ECHO_SECRET, Service, serve

DOCUMENT = build_document()
STREAM = ("/v3/directline/conversations/{conversation_id}/stream", "get")
LIVE = ("/admin/conversations/{conversation_id}/live", "get")
HEALTH = ("/healthz", "get")
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
PER_CONVERSATION = 6  # requests a conversation may take a minute here
GUARDED_SECRET = "guarded-secret-0123456789"  # a bot that trusts one origin only
TRUSTED = "https://app.example"
FOREIGN = "https://elsewhere.example"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    def guarded(endpoint: str) -> tuple[BotConfig, ...]:
        return (BotConfig("guarded", "Guarded", endpoint, (GUARDED_SECRET,), trusted_origins=(TRUSTED,)),)

    data = Path(tmp_path_factory.mktemp("data"))
    with serve(data, guarded, conversation_rate_limit=Rate(PER_CONVERSATION, 60.0)) as running:
        yield running


def conforms(operation: tuple[str, str], status: int, body: bytes, headers: Any) -> None:
    """`status` is one the document gives `operation`, with its schema's body and its required headers."""
    path, method = operation
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answers {status}, which is not documented"
    answer = responses[str(status)]
    for name, header in answer.get("headers", {}).items():
        assert not header.get("required") or headers.get(name), f"{status} without its {name} header"
    content = answer.get("content")
    if content is None:
        return
    schema = content["application/json"]["schema"]
    root = {**schema, "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(root).validate(json.loads(body))


def upgrade(url: str, headers: dict[str, str] | None = None, origin: str | None = None) -> tuple[int, bytes, Any]:
    """A WebSocket upgrade the service refuses: its status, body and headers."""
    more: dict[str, Any] = {"origin": origin} if origin is not None else {}
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(url, additional_headers=headers or {}, open_timeout=5, **more),
    ):
        pass
    response = refused.value.response
    return response.status_code, response.body or b"", response.headers


def _with(url: str, **query: str) -> str:
    parts = urllib.parse.urlsplit(url)
    merged = {**dict(urllib.parse.parse_qsl(parts.query)), **query}
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(merged)))


def _start(service: Service, secret: str = ECHO_SECRET) -> dict[str, Any]:
    r = service.http.post("/v3/directline/conversations", headers=service.auth(secret))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _live(service: Service, conversation_id: str, query: str = "") -> str:
    return service.url.replace("http", "ws", 1) + f"/admin/conversations/{conversation_id}/live{query}"


def _session(service: Service) -> str:
    """The inspector's session cookie, as its sign-in form gets it."""
    r = service.http.post("/inspect/login", data={"secret": ADMIN_SECRET})
    assert r.status_code == 303, r.text
    return str(r.cookies[SESSION_COOKIE])


@contextmanager
def stopping(service: Service) -> Iterator[None]:
    service.services.drain.stopping = True
    try:
        yield
    finally:
        service.services.drain.stopping = False


@contextmanager
def store_away(service: Service) -> Iterator[None]:
    """Every store call raises StoreUnavailable, as a store that cannot be reached does."""
    store = service.services.store

    async def away(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the store cannot be reached (test)")

    names = [name for name in dir(type(store)) if not name.startswith("_") and callable(getattr(store, name))]
    for name in names:
        setattr(store, name, away)
    try:
        yield
    finally:
        for name in names:
            delattr(store, name)


def test_every_refusal_of_the_stream_upgrade_is_documented(service: Service) -> None:
    start = _start(service)
    url = start["streamUrl"]
    refusals = {
        "no token": upgrade(_with(url, t="")),
        "bad token": upgrade(_with(url, t="garbage")),
        "bad watermark": upgrade(_with(url, watermark="zz")),
        "past the end": upgrade(_with(url, watermark="999")),
    }
    with stopping(service):
        refusals["stopping"] = upgrade(url)
    with store_away(service):
        refusals["store away"] = upgrade(url)
    for _ in range(PER_CONVERSATION):  # the conversation's limit spent, the next upgrade is refused
        service.http.get(f"/v3/directline/conversations/{start['conversationId']}/activities",
                         headers=service.auth(ECHO_SECRET))  # fmt: skip
    refusals["rate limit"] = upgrade(url)
    refusals["origin"] = upgrade(_start(service, GUARDED_SECRET)["streamUrl"], origin=FOREIGN)
    assert {name: status for name, (status, _, _) in refusals.items()} == {
        "no token": 401,
        "bad token": 403,
        "bad watermark": 400,
        "past the end": 400,
        "stopping": 503,
        "store away": 503,
        "rate limit": 429,
        "origin": 403,
    }
    for status, body, headers in refusals.values():
        conforms(STREAM, status, body, headers)


def test_every_refusal_of_the_live_feed_is_documented(service: Service) -> None:
    conv = _start(service)["conversationId"]
    refusals = [
        upgrade(_live(service, conv)),
        upgrade(_live(service, conv), {"Authorization": f"Bearer {ECHO_SECRET}"}),
        upgrade(_live(service, conv), {"Cookie": f"{SESSION_COOKIE}={_session(service)}"}, origin=FOREIGN),
        upgrade(_live(service, conv, "?limit=0"), ADMIN),
        upgrade(_live(service, "nosuch"), ADMIN),
    ]
    with stopping(service):
        refusals.append(upgrade(_live(service, conv), ADMIN))
    with store_away(service):
        refusals.append(upgrade(_live(service, conv), ADMIN))
    assert {status for status, _, _ in refusals} == {400, 401, 403, 404, 503}
    for status, body, headers in refusals:
        conforms(LIVE, status, body, headers)


def test_every_health_answer_is_documented(service: Service) -> None:
    answers = [service.http.get("/healthz")]
    with stopping(service):
        answers.append(service.http.get("/healthz"))
    with store_away(service):
        answers.append(service.http.get("/healthz"))
    assert [(r.status_code, r.json()["status"]) for r in answers] == [
        (200, "ok"),
        (503, "stopping"),
        (503, "unavailable"),
    ]
    for r in answers:
        conforms(HEALTH, r.status_code, r.content, r.headers)
