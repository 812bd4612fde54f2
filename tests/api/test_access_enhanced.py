"""Enhanced authentication per bot over real HTTP: `dl_` users from the token, `from.id` forced to it, the secret
refused from browsers and on reconnect, and the user-joined update sent when the conversation starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openline.config import BotConfig
from tests.api._v3 import BASE, claims
from tests.api.conftest import Service, serve

ENH_SECRET = "enh-secret-0123456789"
PAGE = "https://chat.example"


def _bots(endpoint: str) -> tuple[BotConfig, ...]:
    return (BotConfig("enh", "Enhanced Bot", endpoint, (ENH_SECRET,), enhanced_auth=True),)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serve(Path(tmp_path_factory.mktemp("data")), _bots) as running:
        yield running


def _auth(credential: str, origin: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {credential}"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


def _generate(svc: Service, body: Any = None) -> dict[str, Any]:
    r = svc.http.post(BASE + "/tokens/generate", headers=_auth(ENH_SECRET), json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_token_always_names_a_dl_user(svc: Service) -> None:
    made = claims(_generate(svc)["token"])["user"]
    assert made.startswith("dl_") and len(made) > 10
    assert made != claims(_generate(svc, {"user": {}})["token"])["user"]  # directlinejs's empty user
    assert claims(_generate(svc, {"User": {"Id": "dl_jane", "Name": "Jane"}})["token"])["user"] == "dl_jane"
    v1 = svc.http.post("/api/tokens/conversation", headers=_auth(ENH_SECRET))
    assert claims(v1.json())["user"].startswith("dl_")


def test_user_ids_must_start_with_dl(svc: Service) -> None:
    for path in ("/tokens/generate", "/conversations"):
        r = svc.http.post(BASE + path, headers=_auth(ENH_SECRET), json={"user": {"id": "jane"}})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "BadArgument" and "dl_" in r.json()["error"]["message"]
    # a server posting with the secret names its user, and that user too must be a dl_ one
    conv = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET)).json()["conversationId"]
    r = svc.http.post(
        f"{BASE}/conversations/{conv}/activities",
        headers=_auth(ENH_SECRET),
        json={"type": "message", "from": {"id": "jane"}, "text": "hi"},
    )
    assert r.status_code == 400 and "dl_" in r.json()["error"]["message"]
    r = svc.http.post(
        f"{BASE}/conversations/{conv}/activities",
        headers=_auth(ENH_SECRET),
        json={"type": "message", "from": {"id": "dl_jane"}, "text": "hi"},
    )
    assert r.status_code == 200, r.text
    files = [("file", ("a.txt", b"x", "text/plain"))]
    r = svc.http.post(f"{BASE}/conversations/{conv}/upload?userId=jane", headers=_auth(ENH_SECRET), files=files)
    assert r.status_code == 400 and "dl_" in r.json()["error"]["message"]
    r = svc.http.post(f"/api/conversations/{conv}/upload?userId=jane", headers=_auth(ENH_SECRET), files=files)
    assert r.status_code == 400 and "dl_" in r.json()["error"]["message"]
    r = svc.http.post(
        f"/api/conversations/{conv}/messages", headers=_auth(ENH_SECRET), json={"text": "hi", "from": "jane"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "MalformedData"
    # 1.1 makes a user for a message without one: a dl_ one
    r = svc.http.post(f"/api/conversations/{conv}/messages", headers=_auth(ENH_SECRET), json={"text": "anon"})
    assert r.status_code == 204
    anon = [a for a in svc.stored(conv) if a.get("text") == "anon"]
    assert anon[0]["from"]["id"].startswith("dl_")


def test_the_secret_cannot_be_used_from_a_browser(svc: Service) -> None:
    conv = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET)).json()["conversationId"]
    http = svc.http
    calls = {
        "generate": lambda h: http.post(BASE + "/tokens/generate", headers=h),
        "start": lambda h: http.post(BASE + "/conversations", headers=h),
        "activities": lambda h: http.get(f"{BASE}/conversations/{conv}/activities", headers=h),
        "post": lambda h: http.post(
            f"{BASE}/conversations/{conv}/activities",
            headers=h,
            json={"type": "message", "from": {"id": "dl_x"}, "text": "x"},
        ),
        "1.1 generate": lambda h: http.post("/api/tokens/conversation", headers=h),
        "1.1 start": lambda h: http.post("/api/conversations", headers=h),
        "1.1 messages": lambda h: http.get(f"/api/conversations/{conv}/messages", headers=h),
    }
    for name, call in calls.items():
        r = call(_auth(ENH_SECRET, PAGE))
        assert r.status_code == 403, (name, r.text)
        assert "enhanced authentication" in r.json()["error"]["message"]
        assert r.headers.get("access-control-allow-origin") == "*"
        assert call(_auth(ENH_SECRET)).status_code < 300, name  # from a server: the master key still


def test_reconnecting_with_the_secret_is_missing_a_user(svc: Service) -> None:
    """As the hosted service answers (spec directline-3.0 §1.4): 400 MissingProperty."""
    conv = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET)).json()["conversationId"]
    r = svc.http.get(f"{BASE}/conversations/{conv}", headers=_auth(ENH_SECRET), params={"watermark": ""})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "MissingProperty" and "Missing user ID" in r.json()["error"]["message"]


def test_from_is_forced_to_the_tokens_user_and_the_bot_hears_of_the_user_at_start(svc: Service) -> None:
    generated = _generate(svc)
    token, conv = generated["token"], generated["conversationId"]
    user = claims(token)["user"]
    r = svc.http.post(BASE + "/conversations", headers=_auth(token, PAGE), json={"user": {}})
    assert r.status_code == 201
    # before any message: the bot was told the user joined (and welcomed them)
    _wait_for(lambda: any(a.get("text") == f"welcome {user}" for a in svc.stored(conv)))
    updates = svc.bot.of(conv, "conversationUpdate")
    assert [m["id"] for u in updates for m in u["membersAdded"]] == ["enh", user]
    # a post from another id is sent as the token's user, on every client route
    r = svc.http.post(
        f"{BASE}/conversations/{conv}/activities",
        headers=_auth(token, PAGE),
        json={"type": "message", "from": {"id": "dl_mallory", "name": "M"}, "text": "as me"},
    )
    assert r.status_code == 200, r.text
    files = [("file", ("a.txt", b"x", "text/plain"))]
    r = svc.http.post(f"{BASE}/conversations/{conv}/upload?userId=dl_mallory", headers=_auth(token), files=files)
    assert r.status_code == 200, r.text
    r = svc.http.post(
        f"/api/conversations/{conv}/messages", headers=_auth(token), json={"text": "v1", "from": "dl_mallory"}
    )
    assert r.status_code == 204, r.text
    sent = [a for a in svc.stored(conv) if a["type"] == "message" and a["from"].get("role") == "user"]
    assert len(sent) == 3 and all(a["from"]["id"] == user for a in sent)
    assert all(a["from"]["id"] == user for a in svc.bot.of(conv, "message"))
    # the bot was not told again at the first message
    assert len(svc.bot.of(conv, "conversationUpdate")) == len(updates)


def test_a_v1_start_tells_the_bot_of_the_tokens_user(svc: Service) -> None:
    token = svc.http.post("/api/tokens/conversation", headers=_auth(ENH_SECRET)).json()
    user = claims(token)["user"]
    started = svc.http.post("/api/conversations", headers=_auth(token))
    assert started.status_code == 200
    conv = started.json()["conversationId"]
    assert claims(started.json()["token"])["user"] == user
    _wait_for(lambda: any(a.get("text") == f"welcome {user}" for a in svc.stored(conv)))


def test_a_secret_start_makes_a_user_the_answers_token_names(svc: Service) -> None:
    r = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET))
    assert r.status_code == 201
    user = claims(r.json()["token"])["user"]
    assert user.startswith("dl_")
    conv = r.json()["conversationId"]
    _wait_for(lambda: any(a.get("text") == f"welcome {user}" for a in svc.stored(conv)))
    given = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET), json={"user": {"id": "dl_ann"}})
    assert claims(given.json()["token"])["user"] == "dl_ann"


def test_a_token_without_a_user_is_refused(svc: Service) -> None:
    """A token issued before enhanced authentication was turned on for the bot names no user: it is not used."""
    conv = svc.http.post(BASE + "/conversations", headers=_auth(ENH_SECRET)).json()["conversationId"]
    old = svc.services.auth.tokens.issue("enh", conv).token
    r = svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(old))
    assert r.status_code == 403 and "names no user" in r.json()["error"]["message"]
    r = svc.http.get(f"/api/conversations/{conv}/messages", headers=_auth(old))
    assert r.status_code == 403 and r.json()["error"]["code"] == "NotAllowed"
