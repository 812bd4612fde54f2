"""Trusted origins over real HTTP: every route that takes a conversation credential, the stream included, with a
trusted, a foreign and no `Origin`; tokens carrying their origins to every token issued for them."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openline.config import BotConfig
from tests.api._v3 import BASE, claims
from tests.api.conftest import REC_SECRET, Service, serve

GOOD = "https://good.example"
ALSO = "http://localhost:8080"
FOREIGN = "https://evil.example"
GUARD_SECRET = "guard-secret-0123456789"

Call = Callable[[dict[str, str]], httpx.Response]


def _bots(endpoint: str) -> tuple[BotConfig, ...]:
    return (BotConfig("guarded", "Guarded Bot", endpoint, (GUARD_SECRET,), trusted_origins=(GOOD, ALSO)),)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serve(Path(tmp_path_factory.mktemp("data")), _bots) as running:
        yield running


def _auth(credential: str, origin: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {credential}"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


def _generate(svc: Service, secret: str, body: Any = None) -> dict[str, Any]:
    r = svc.http.post(BASE + "/tokens/generate", headers=_auth(secret), json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _started(svc: Service, token: str) -> str:
    """Start the token's conversation (from no browser) and answer its id."""
    r = svc.http.post(BASE + "/conversations", headers=_auth(token))
    assert r.status_code == 201, r.text
    conversation_id: str = r.json()["conversationId"]
    return conversation_id


def _conversation_calls(svc: Service, credential: str, conv: str) -> dict[str, Call]:
    """Every HTTP route a conversation credential (secret or token) is used on, each a request with extra headers."""
    http = svc.http
    c3 = f"{BASE}/conversations/{conv}"
    c1 = f"/api/conversations/{conv}"
    message = {"type": "message", "from": {"id": "u1"}, "text": "hi"}
    files = [("file", ("a.txt", b"data", "text/plain"))]

    def h(extra: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential}", **extra}

    return {
        "3.0 start": lambda x: http.post(BASE + "/conversations", headers=h(x), json={"user": {}}),
        "3.0 reconnect": lambda x: http.get(c3, headers=h(x), params={"watermark": ""}),
        "3.0 get activities": lambda x: http.get(c3 + "/activities", headers=h(x)),
        "3.0 post activity": lambda x: http.post(c3 + "/activities", headers=h(x), json=message),
        "3.0 upload": lambda x: http.post(c3 + "/upload", headers=h(x), params={"userId": "u1"}, files=files),
        "1.1 get messages": lambda x: http.get(c1 + "/messages", headers=h(x)),
        "1.1 post message": lambda x: http.post(c1 + "/messages", headers=h(x), json={"text": "hi", "from": "u1"}),
        "1.1 upload": lambda x: http.post(c1 + "/upload", headers=h(x), params={"userId": "u1"}, files=files),
        "1.1 start": lambda x: http.post("/api/conversations", headers=h(x)),
    }


def _token_calls(svc: Service, token: str, conv: str) -> dict[str, Call]:
    http = svc.http
    renew = f"/api/tokens/{conv}/renew"

    def h(extra: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", **extra}

    return {
        **_conversation_calls(svc, token, conv),
        "3.0 refresh": lambda x: http.post(BASE + "/tokens/refresh", headers=h(x)),
        "1.1 renew (GET)": lambda x: http.get(renew, headers=h(x)),
        "1.1 renew (POST)": lambda x: http.post(renew, headers=h(x)),
    }


def _secret_calls(svc: Service, secret: str, conv: str) -> dict[str, Call]:
    http = svc.http

    def h(extra: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}", **extra}

    return {
        **_conversation_calls(svc, secret, conv),
        "3.0 generate": lambda x: http.post(BASE + "/tokens/generate", headers=h(x)),
        "1.1 generate (POST)": lambda x: http.post("/api/tokens/conversation", headers=h(x)),
        "1.1 generate (GET)": lambda x: http.get("/api/tokens", headers=h(x)),
    }


def _assert_refused(name: str, r: httpx.Response, origin: str) -> None:
    assert r.status_code == 403, (name, r.status_code, r.text)
    # the browser client must see the 403, not status 0: the CORS header is on the refusal too
    assert r.headers.get("access-control-allow-origin") == "*", name
    if " 1.1 " in f" {name} ":
        assert r.json()["error"]["code"] == "NotAllowed", name
        assert origin in r.json()["error"]["message"], name
    else:
        assert r.json()["error"]["code"] == "Forbidden", name
        assert origin in r.json()["error"]["message"], name


def _check_every_route(calls: dict[str, Call], trusted: list[str]) -> None:
    for name, call in calls.items():
        for origin in trusted:
            r = call({"Origin": origin})
            assert r.status_code < 300, (name, origin, r.status_code, r.text)
        r = call({})  # no Origin: not a browser (a server, curl, a mobile app)
        assert r.status_code < 300, (name, r.status_code, r.text)
        _assert_refused(name, call({"Origin": FOREIGN}), FOREIGN)
        _assert_refused(name, call({"Origin": "null"}), "null")  # a sandboxed frame, a file:// page


def test_a_token_generated_with_trusted_origins_is_refused_elsewhere_on_every_route(svc: Service) -> None:
    token = _generate(svc, REC_SECRET, {"trustedOrigins": [GOOD]})["token"]
    conv = _started(svc, token)
    # an origin is compared in the form browsers send it: scheme and host in lower case, no default port
    _check_every_route(_token_calls(svc, token, conv), [GOOD, "https://GOOD.example", "https://good.example:443"])


def test_a_bot_with_trusted_origins_refuses_its_secret_and_its_tokens_elsewhere(svc: Service) -> None:
    secret_conv = svc.http.post(BASE + "/conversations", headers=_auth(GUARD_SECRET)).json()["conversationId"]
    _check_every_route(_secret_calls(svc, GUARD_SECRET, secret_conv), [GOOD, ALSO])
    token = _generate(svc, GUARD_SECRET)["token"]  # names no origin: the bot's apply
    assert "origins" not in claims(token)
    _check_every_route(_token_calls(svc, token, _started(svc, token)), [GOOD, ALSO])


def test_a_token_within_the_bots_origins_is_held_to_its_own(svc: Service) -> None:
    token = _generate(svc, GUARD_SECRET, {"trustedOrigins": [ALSO]})["token"]
    conv = _started(svc, token)
    r = svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(token, GOOD))
    _assert_refused("3.0 get activities", r, GOOD)  # trusted by the bot, but not by this token
    assert svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(token, ALSO)).status_code == 200


def test_requested_origins_are_checked(svc: Service) -> None:
    bad = [
        "https://good.example/path",
        "good.example",
        "https://*.example",
        "null",
        "https://user@good.example",
        "https://good.example?x=1",
        "",
    ]
    for origin in bad:
        for path in ("/tokens/generate", "/conversations"):
            r = svc.http.post(BASE + path, headers=_auth(REC_SECRET), json={"trustedOrigins": [origin]})
            assert r.status_code == 400, (origin, path, r.text)
            assert r.json()["error"]["code"] == "BadArgument" and "trustedOrigins" in r.json()["error"]["message"]
    # outside the bot's own list
    r = svc.http.post(BASE + "/tokens/generate", headers=_auth(GUARD_SECRET), json={"trustedOrigins": [FOREIGN]})
    assert r.status_code == 400 and "not one of the bot's trusted origins" in r.json()["error"]["message"]
    # not a list of strings: refused as before
    r = svc.http.post(BASE + "/tokens/generate", headers=_auth(REC_SECRET), json={"trustedOrigins": GOOD})
    assert r.status_code == 400
    # kept in the form browsers send; names in any letter case, as the hosted service binds them
    token = _generate(svc, REC_SECRET, {"TrustedOrigins": ["HTTPS://Good.Example:443/", GOOD]})["token"]
    assert claims(token)["origins"] == [GOOD]


def _stream_token(stream_url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(stream_url).query)["t"][0]


def test_every_token_issued_for_a_token_carries_its_origins(svc: Service) -> None:
    generated = _generate(svc, REC_SECRET, {"user": {"id": "u7"}, "trustedOrigins": [GOOD, ALSO]})
    token = generated["token"]
    assert claims(token)["origins"] == [GOOD, ALSO]
    r = svc.http.post(BASE + "/conversations", headers=_auth(token, GOOD))
    assert r.status_code == 201
    started = r.json()
    conv = started["conversationId"]
    issued = [started["token"], _stream_token(started["streamUrl"])]
    r = svc.http.get(f"{BASE}/conversations/{conv}", headers=_auth(token, GOOD))
    issued += [r.json()["token"], _stream_token(r.json()["streamUrl"])]
    refreshed = svc.http.post(BASE + "/tokens/refresh", headers=_auth(token, GOOD)).json()["token"]
    twice = svc.http.post(BASE + "/tokens/refresh", headers=_auth(refreshed)).json()["token"]
    renewed = svc.http.get(f"/api/tokens/{conv}/renew", headers=_auth(twice)).json()
    v1_started = svc.http.post("/api/conversations", headers=_auth(renewed)).json()["token"]
    issued += [refreshed, twice, renewed, v1_started]
    for each in issued:
        assert claims(each)["origins"] == [GOOD, ALSO]
    assert all(claims(each)["user"] == "u7" for each in (refreshed, twice, renewed, v1_started))
    # and the refreshed token is held to them
    _assert_refused("3.0 refresh", svc.http.post(BASE + "/tokens/refresh", headers=_auth(twice, FOREIGN)), FOREIGN)


def test_a_secret_start_with_trusted_origins_binds_the_answers_tokens(svc: Service) -> None:
    r = svc.http.post(BASE + "/conversations", headers=_auth(REC_SECRET), json={"trustedOrigins": [GOOD]})
    assert r.status_code == 201
    started = r.json()
    assert claims(started["token"])["origins"] == [GOOD]
    assert claims(_stream_token(started["streamUrl"]))["origins"] == [GOOD]
    conv = started["conversationId"]
    # the secret itself stays the master key of a bot without trusted origins
    r = svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(REC_SECRET, FOREIGN))
    assert r.status_code == 200
    _assert_refused(
        "3.0 get activities",
        svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(started["token"], FOREIGN)),
        FOREIGN,
    )


def _handshake(url: str, origin: str | None) -> int:
    headers = {"Origin": origin} if origin is not None else {}
    try:
        with connect(url, open_timeout=5, close_timeout=2, additional_headers=headers) as ws:
            ws.recv(timeout=5)  # the replay (or a keep-alive): the stream is open
            return 101
    except InvalidStatus as e:
        assert e.response.headers.get("content-type") == "application/json"
        return e.response.status_code


@pytest.mark.parametrize("bound_by", ["token", "bot"])
def test_the_stream_handshake_checks_the_origin(svc: Service, bound_by: str) -> None:
    if bound_by == "token":
        token = _generate(svc, REC_SECRET, {"trustedOrigins": [GOOD]})["token"]
    else:
        token = _generate(svc, GUARD_SECRET)["token"]
    started = svc.http.post(BASE + "/conversations", headers=_auth(token)).json()
    url = started["streamUrl"]
    assert _handshake(url, GOOD) == 101
    assert _handshake(url, None) == 101
    assert _handshake(url, FOREIGN) == 403
    assert _handshake(url, "null") == 403
    # the stream URL of a reconnect too
    again = svc.http.get(f"{BASE}/conversations/{started['conversationId']}", headers=_auth(token)).json()
    assert _handshake(again["streamUrl"], FOREIGN) == 403
    assert _handshake(again["streamUrl"], GOOD) == 101


def test_a_preflight_needs_no_credential_and_is_not_refused(svc: Service) -> None:
    token = _generate(svc, REC_SECRET, {"trustedOrigins": [GOOD]})["token"]
    conv = _started(svc, token)
    r = svc.http.options(
        f"{BASE}/conversations/{conv}/activities",
        headers={
            "Origin": FOREIGN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_signed_file_links_are_not_origin_checked(svc: Service) -> None:
    """A browser's <img> or download sends no Origin, and the signed link is the credential (README: Access rules)."""
    token = _generate(svc, REC_SECRET, {"trustedOrigins": [GOOD]})["token"]
    conv = _started(svc, token)
    files = [("file", ("pic.png", b"\x89PNG\r\n\x1a\nrest", "image/png"))]
    r = svc.http.post(
        f"{BASE}/conversations/{conv}/upload", headers=_auth(token, GOOD), params={"userId": "u1"}, files=files
    )
    assert r.status_code == 200, r.text
    stored = [a for a in svc.stored(conv) if a.get("attachments")]
    url = stored[0]["attachments"][0]["contentUrl"]
    assert svc.http.get(url, headers={"Origin": FOREIGN}).status_code == 200
    assert svc.http.get(url).status_code == 200


def test_the_chat_pages_tokens_are_bound_to_the_page(svc: Service) -> None:
    page = svc.url  # the service's own origin, as the built-in page sends it
    r = svc.http.post("/web/token", headers={"Origin": page}, json={"bot": "rec"})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert claims(token)["origins"] == [page]
    conv = _started(svc, token)
    assert svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(token, page)).status_code == 200
    r = svc.http.get(f"{BASE}/conversations/{conv}/activities", headers=_auth(token, FOREIGN))
    _assert_refused("3.0 get activities", r, FOREIGN)
    # a bot whose trusted origins leave the page out gets no token from it
    r = svc.http.post("/web/token", headers={"Origin": page}, json={"bot": "guarded"})
    assert r.status_code == 403 and page in r.json()["error"]["message"]
