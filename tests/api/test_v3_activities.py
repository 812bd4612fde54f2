"""Direct Line 3.0 activities: posting (ids, stamping, idempotency, bot failures), reading, CORS, 1.1 alongside."""

from __future__ import annotations

import datetime as dt

import pytest

from openline.auth.bot_auth import BotCaller
from tests.api._v3 import V3
from tests.api.conftest import DOWN_SECRET, MAX_MESSAGE, PAGE_SIZE, Service


def _seq(activity_id: str) -> int:
    return int(activity_id.rsplit("|", 1)[1])


def test_post_answers_the_id_and_the_echo_is_stored_stamped(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    sent = {
        "type": "message",
        "id": "client-id",
        "timestamp": "2001-01-01T00:00:00Z",
        "channelId": "webchat",
        "conversation": {"id": "elsewhere"},
        "from": {"id": "u1", "name": "Ann", "role": "user"},
        "text": "hi",
        "channelData": {"clientActivityID": "c-1", "nested": {"x": [1, 2]}},
        "entities": [{"type": "ClientCapabilities", "requiresBotState": True}],
        "locale": "en-US",
        "localTimestamp": "2026-01-01T10:00:00+02:00",
        "futureField": {"kept": True},
    }
    activity_id = v3.send(conv, sent)
    assert activity_id == f"{conv}|0000001"
    page = v3.activities(conv)
    echo = page["activities"][0]
    assert echo["id"] == activity_id and echo["channelId"] == "directline" and echo["conversation"] == {"id": conv}
    assert echo["channelData"] == sent["channelData"] and echo["entities"] == sent["entities"]
    assert echo["from"] == sent["from"] and echo["futureField"] == {"kept": True}
    assert echo["localTimestamp"] == sent["localTimestamp"] and "serviceUrl" not in echo
    assert echo["recipient"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    # the bot heard of the new user (and welcomed it) before the message
    assert [a["text"] for a in page["activities"]] == ["hi", "welcome u1", "echo: hi"]
    reply = page["activities"][2]
    assert reply["replyToId"] == activity_id and reply["from"]["id"] == "rec"
    assert page["watermark"] == "3"
    # what the bot got: the same activity with the serviceUrl
    delivered = service.bot.of(conv, "message")[0]
    assert delivered["id"] == activity_id and delivered["serviceUrl"] == service.url + "/"


def test_timestamps_are_ms_utc_and_strictly_increase(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    service.clock.offset = -1000  # the clock is frozen for the test: every activity gets the same "now"
    for i in range(4):
        v3.say(conv, f"m{i}", **{"deliveryMode": "normal"})
    stamps = [a["timestamp"] for a in v3.activities(conv)["activities"]]
    assert all(len(s) == len("2026-01-01T00:00:00.000Z") and s.endswith("Z") for s in stamps)
    parsed = [dt.datetime.fromisoformat(s) for s in stamps]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)


def test_user_bound_token_forces_from_id(service: Service) -> None:
    v3 = V3(service)
    token = v3.post("/tokens/generate", json={"user": {"id": "dl_bound", "name": "B"}}).json()["token"]
    conv = v3.start(credential=token)["conversationId"]
    v3.send(conv, {"type": "message", "from": {"id": "impostor", "role": "user"}, "text": "x"}, token)
    v3.send(conv, {"type": "message", "text": "no from at all"}, token)
    echoes = [a for a in v3.activities(conv)["activities"] if a["from"].get("role") != "bot"]
    assert [a["from"] for a in echoes] == [
        {"id": "dl_bound", "name": "B", "role": "user"},
        {"id": "dl_bound", "name": "B", "role": "user"},
    ]


def test_repeated_client_activity_id_returns_the_first_id_without_a_second_turn(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    first = v3.say(conv, "once", channelData={"clientActivityID": "web-1"})
    again = v3.say(conv, "once (retried)", channelData={"clientActivityID": "web-1"})
    other = v3.say(conv, "twice", channelData={"clientActivityID": "web-2"})
    assert again == first and _seq(other) == _seq(first) + 3  # the welcome and the echo come between
    assert [a["text"] for a in service.bot.of(conv, "message")] == ["once", "twice"]
    # another conversation may use the same client id
    conv2 = v3.start()["conversationId"]
    assert v3.say(conv2, "once", channelData={"clientActivityID": "web-1"}) == f"{conv2}|0000001"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "BadArgument"),
        (b"[1]", 400, "BadArgument"),
        (b'{"from": {"id": "u"}, "text": "no type"}', 400, "MissingProperty"),
        (b'{"type": 5, "from": {"id": "u"}, "text": "a number for a type"}', 400, "BadArgument"),
        (b'{"type": "message", "text": "no from"}', 400, "MissingProperty"),
        (b'{"type": "message", "from": "u"}', 400, "BadArgument"),
        (b'{"type": "message", "from": {"id": "u"}, "attachments": {}}', 400, "BadArgument"),
        (b"", 400, "BadArgument"),
    ],
)
def test_bad_activities_are_4xx(service: Service, body: bytes, status: int, code: str) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.post(f"/conversations/{conv}/activities", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert v3.activities(conv)["activities"] == []


def test_too_large_is_413(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "text": "x" * MAX_MESSAGE})
    assert r.status_code == 413


def test_bot_error_is_502_and_the_activity_stays(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u"}, "text": "fail"})
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "BotRejectedActivity" and error["innerHttpError"] == {"statusCode": 500}
    assert "bot crashed" not in r.text
    assert [a["text"] for a in v3.activities(conv)["activities"]] == ["fail", "welcome u"]


def test_bot_timeout_is_504(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u"}, "text": "slow"})
    assert r.status_code == 504 and r.json()["error"]["code"] == "BotTimeout"


def test_unreachable_bot_is_502(service: Service) -> None:
    v3 = V3(service, DOWN_SECRET)
    conv = v3.start()["conversationId"]
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u"}, "text": "x"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "BotUnavailable"


def test_get_hides_typing_and_conversation_updates_and_always_has_a_watermark(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    assert v3.activities(conv) == {"activities": [], "watermark": "0"}
    v3.send(conv, {"type": "typing", "from": {"id": "u"}})
    v3.say(conv, "typing", user="u")  # the bot answers with typing, an event, then the echo
    update = {"type": "conversationUpdate", "membersAdded": []}
    conversation = service.loop.run(service.services.store.get_conversation(conv))
    caller = BotCaller(conversation.bot_id)
    service.loop.run(service.services.connector.post_from_bot(caller, conv, update, None))
    page = v3.activities(conv)
    # stored: the welcome, the bot's answer to the client's typing, "typing", the event, the echo, the update
    assert [(a["type"], a.get("text")) for a in page["activities"]] == [
        ("message", "welcome u"),
        ("message", "echo: "),
        ("message", "typing"),
        ("event", None),
        ("message", "echo: typing"),
    ]
    assert page["watermark"] == "5"  # one full page
    # the next page has only the hidden update: nothing to show, but the watermark moves past it (typing did not)
    assert v3.activities(conv, "5") == {"activities": [], "watermark": "6"}
    assert v3.activities(conv, "6") == {"activities": [], "watermark": "6"}


@pytest.mark.parametrize("watermark", ["", "-", "null", "garbage", "999999"])
def test_odd_watermarks_read_from_the_beginning(service: Service, watermark: str) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    v3.say(conv, "a")
    assert [a["text"] for a in v3.activities(conv, watermark)["activities"]] == ["a", "welcome u1", "echo: a"]


def test_paging_by_watermark(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    for i in range(4):
        v3.say(conv, f"m{i}")
    seen: list[str] = []
    watermark = ""
    while True:
        page = v3.activities(conv, watermark)
        assert len(page["activities"]) <= PAGE_SIZE
        if not page["activities"]:
            break
        seen += [a["id"] for a in page["activities"]]
        watermark = page["watermark"]
    assert [_seq(i) for i in seen] == list(range(1, 10))  # 4 messages, a welcome, 4 echoes


def test_cors_preflight_and_errors_carry_cors_headers(service: Service) -> None:
    origin = "https://app.example.com"
    preflight = service.http.options(
        "/v3/directline/conversations/x/activities",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, accept, x-ms-bot-agent, x-requested-with",
        },
    )
    assert preflight.status_code == 200
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].lower().split(",")}
    assert {"authorization", "content-type", "accept", "x-ms-bot-agent", "x-requested-with"} <= allowed
    for response in (
        service.http.post("/v3/directline/conversations", headers={"Origin": origin}),
        service.http.get(
            "/v3/directline/conversations/nope/activities", headers={"Origin": origin, **V3(service).headers()}
        ),
        service.http.get("/v3/directline/nothing-here", headers={"Origin": origin}),
    ):
        assert response.status_code in (401, 404)
        assert response.headers["access-control-allow-origin"] in ("*", origin)


def test_one_conversation_through_both_apis(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    conv, token = start["conversationId"], start["token"]
    v3.say(conv, "via 3.0", user="u", credential=token)
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={"from": "u", "text": "via 1.1"},
    )
    assert r.status_code == 204, r.text
    texts = ["via 3.0", "welcome u", "echo: via 3.0", "via 1.1", "echo: via 1.1"]
    assert [a["text"] for a in v3.activities(conv, credential=token)["activities"]] == texts
    messages = service.messages(conv)
    assert [m["text"] for m in messages["messages"]] == texts
    assert [m["id"].rsplit("|", 1)[1] for m in messages["messages"]] == [f"{i:018d}" for i in range(1, 6)]
    assert messages["watermark"] == v3.activities(conv)["watermark"] == "5"
