"""Direct Line 3.0 tokens, start and reconnect: status codes, bodies, claims, stream URLs, the bot's updates."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.api._v3 import V3, claims
from tests.api.conftest import ECHO_SECRET, REC_SECRET, TOKEN_TTL, Service

# tokens


def test_generate_gives_a_token_for_a_new_conversation(service: Service) -> None:
    v3 = V3(service)
    r = v3.post("/tokens/generate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"conversationId", "token", "expires_in"}
    assert body["expires_in"] == TOKEN_TTL
    payload = claims(body["token"])
    assert payload["conv"] == body["conversationId"] and payload["bot"] == "rec" and "user" not in payload
    # a token does not start the conversation
    assert v3.get(f"/conversations/{body['conversationId']}/activities").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"user": {"id": "dl_jane", "name": "Jane"}},
        {"User": {"Id": "dl_jane", "Name": "Jane"}},
        {"USER": {"id": "dl_jane", "NAME": "Jane"}, "trustedOrigins": ["https://example.com"]},
    ],
)
def test_generate_puts_the_user_in_the_token(service: Service, body: dict[str, object]) -> None:
    r = V3(service).post("/tokens/generate", json=body)
    assert r.status_code == 200, r.text
    payload = claims(r.json()["token"])
    assert (payload["user"], payload["name"]) == ("dl_jane", "Jane"), "the user id as a string, the name apart"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b"[]", 400),
        (b'{"user": "x"}', 400),
        (b'{"user": {"id": 5}}', 400),
        (b'{"trustedOrigins": "x"}', 400),
    ],
)
def test_generate_refuses_bad_bodies(service: Service, body: bytes, status: int) -> None:
    r = V3(service).post("/tokens/generate", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == "BadArgument"


def test_generate_needs_the_secret(service: Service) -> None:
    v3 = V3(service)
    token = v3.post("/tokens/generate").json()["token"]
    r = v3.post("/tokens/generate", credential=token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "Forbidden"
    r = service.http.post("/v3/directline/tokens/generate")
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
    assert v3.post("/tokens/generate", credential="not-a-secret").status_code == 403


def test_refresh_keeps_conversation_and_user(service: Service) -> None:
    v3 = V3(service)
    issued = v3.post("/tokens/generate", json={"user": {"id": "dl_r"}}).json()
    service.clock.offset = 5
    r = v3.post("/tokens/refresh", credential=issued["token"])
    assert r.status_code == 200, r.text
    refreshed = r.json()
    assert refreshed["conversationId"] == issued["conversationId"] and refreshed["token"] != issued["token"]
    assert refreshed["expires_in"] == TOKEN_TTL
    assert claims(refreshed["token"])["user"] == "dl_r"
    assert claims(refreshed["token"])["exp"] > claims(issued["token"])["exp"]


def test_refresh_of_an_expired_token_is_token_expired(service: Service) -> None:
    v3 = V3(service)
    token = v3.post("/tokens/generate").json()["token"]
    service.clock.offset = TOKEN_TTL + 1
    r = v3.post("/tokens/refresh", credential=token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "TokenExpired"


def test_refresh_needs_a_token(service: Service) -> None:
    assert V3(service).post("/tokens/refresh").status_code == 403


# start


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"user":{}}', b'{"user":{"id":null}}'])
def test_start_with_the_secret_tolerates_empty_bodies(service: Service, body: bytes | None) -> None:
    v3 = V3(service)
    kw = {} if body is None else {"content": body, "headers": {"Content-Type": "application/json"}}
    r = v3.post("/conversations", **kw)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert set(answer) == {"conversationId", "token", "expires_in", "streamUrl"}
    conv = answer["conversationId"]
    assert claims(answer["token"])["conv"] == conv and "user" not in claims(answer["token"])
    url = urllib.parse.urlsplit(answer["streamUrl"])
    assert url.scheme == "ws" and url.netloc == urllib.parse.urlsplit(service.url).netloc
    assert url.path == f"/v3/directline/conversations/{conv}/stream"
    query = urllib.parse.parse_qs(url.query)
    assert query["watermark"] == ["-"] and claims(query["t"][0])["exp"] - claims(query["t"][0])["iat"] == 60
    updates = service.bot.of(conv, "conversationUpdate")
    assert [u["membersAdded"] for u in updates] == [[{"id": "rec", "name": "Recording Bot"}]]


def test_start_with_a_user_in_the_body_tells_the_bot_at_once_with_the_locale(service: Service) -> None:
    answer = V3(service).start({"User": {"Id": "u-start", "Name": "Sam"}, "locale": "fr-FR"})
    updates = service.bot.of(answer["conversationId"], "conversationUpdate")
    assert [u["membersAdded"] for u in updates] == [
        [{"id": "rec", "name": "Recording Bot"}],
        [{"id": "u-start", "name": "Sam"}],
    ]
    assert all(u["locale"] == "fr-FR" for u in updates)
    assert updates[1]["from"] == {"id": "u-start", "name": "Sam"}


def test_start_with_a_token_is_201_then_200(service: Service) -> None:
    v3 = V3(service)
    issued = v3.post("/tokens/generate", json={"user": {"id": "dl_t"}}).json()
    first = v3.start(credential=issued["token"])
    assert first["conversationId"] == issued["conversationId"]
    assert claims(first["token"])["user"] == "dl_t"
    again = v3.start(credential=first["token"], status=200)
    assert again["conversationId"] == issued["conversationId"] and again["streamUrl"] != first["streamUrl"]
    updates = service.bot.of(issued["conversationId"], "conversationUpdate")
    assert [[m["id"] for m in u["membersAdded"]] for u in updates] == [["rec"], ["dl_t"]], "the token's user at once"


def test_start_without_a_user_tells_the_bot_before_the_first_activity(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    v3.say(conv, "hello", user="later", locale="de-DE")
    received = service.bot.of(conv)
    assert [(a["type"], a.get("text")) for a in received] == [
        ("conversationUpdate", None),
        ("conversationUpdate", None),
        ("message", "hello"),
    ]
    assert received[1]["membersAdded"] == [{"id": "later"}] and received[1]["locale"] == "de-DE"


def test_stream_url_follows_forwarded_headers(service: Service) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.com"}
    answer = V3(service).post("/conversations", headers=headers).json()
    assert answer["streamUrl"].startswith("wss://chat.example.com/v3/directline/conversations/")


def test_a_token_of_another_bot_cannot_start_or_read(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    assert v3.get(f"/conversations/{conv}", credential=ECHO_SECRET).status_code == 403
    other = V3(service, ECHO_SECRET).start()["token"]
    assert v3.get(f"/conversations/{conv}", credential=other).status_code == 403


# reconnect


def test_reconnect_gives_a_fresh_token_and_stream_url(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u-re"}})
    conv = start["conversationId"]
    v3.say(conv, "one", user="u-re")  # 3 activities: welcome, message, echo
    for query, expected in [("", "3"), ("-", "-"), ("1", "1"), ("3", "3")]:
        r = v3.get(f"/conversations/{conv}?watermark={query}", credential=start["token"])
        assert r.status_code == 200, r.text
        answer = r.json()
        assert set(answer) == {"conversationId", "token", "expires_in", "streamUrl"}
        assert answer["conversationId"] == conv and claims(answer["token"])["user"] == "u-re"
        watermark = urllib.parse.parse_qs(urllib.parse.urlsplit(answer["streamUrl"]).query)["watermark"]
        assert watermark == [expected], query
    # the C# client leaves the parameter out: from now too
    no_param = v3.get(f"/conversations/{conv}").json()["streamUrl"]
    assert "watermark=3&" in no_param


@pytest.mark.parametrize("watermark", ["abc", "99", "-1"])
def test_reconnect_refuses_a_watermark_it_never_issued(service: Service, watermark: str) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.get(f"/conversations/{conv}", params={"watermark": watermark})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadArgument"


def test_reconnect_to_an_unknown_conversation_is_404(service: Service) -> None:
    r = V3(service).get("/conversations/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


def test_secret_of_rec_is_a_master_key(service: Service) -> None:
    v3 = V3(service)
    token = v3.start()["token"]
    conv = claims(token)["conv"]
    assert v3.get(f"/conversations/{conv}", credential=REC_SECRET).status_code == 200
    assert v3.activities(conv, credential=token)["watermark"] == "0"


def test_a_user_update_the_bot_failed_at_start_is_sent_again_with_the_first_activity(service: Service) -> None:
    v3 = V3(service)
    service.bot.fail_updates = 2  # the [bot] and the [user] updates of the start
    conv = v3.start({"user": {"id": "u-retry"}})["conversationId"]
    assert service.bot.fail_updates == 0
    v3.say(conv, "hi", user="u-retry")
    updates = service.bot.of(conv, "conversationUpdate")
    # both are sent again before the first activity, the bot's own arrival first
    assert [[m["id"] for m in u["membersAdded"]] for u in updates] == [["rec"], ["u-retry"], ["rec"], ["u-retry"]]
