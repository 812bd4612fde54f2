"""1.1 messages over HTTP: what the bot receives, watermarks and paging, bad input, limits and bot failures."""

from __future__ import annotations

import concurrent.futures
import re
import time

import pytest

from tests.api.conftest import BOT_TIMEOUT, DOWN_SECRET, MAX_MESSAGE, PAGE_SIZE, REC_SECRET, RETENTION, Service

ID_V1 = re.compile(r"^(?P<conv>[A-Za-z0-9]+)\|(?P<seq>\d{18})$")


def _error(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["statusCode"] == status and body["error"]["message"]


def test_start_tells_the_bot_it_joined(service: Service) -> None:
    start = service.start()
    conv = start["conversationId"]
    (update,) = service.bot.of(conv)
    assert update["type"] == "conversationUpdate"
    assert update["membersAdded"] == [{"id": "rec", "name": "Recording Bot"}]
    assert update["recipient"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert update["channelId"] == "directline"
    assert update["serviceUrl"] == service.url + "/", "the hosted form: ends in /"
    assert update["conversation"] == {"id": conv}
    assert update["id"] and update["timestamp"].endswith("Z")


def test_empty_conversation(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.messages(conv) == {"messages": [], "watermark": "0"}
    assert service.messages(conv, "") == {"messages": [], "watermark": "0"}


def test_the_bot_receives_a_full_activity(service: Service) -> None:
    conv = service.start()["conversationId"]
    body = {
        "from": "user1",
        "text": "hello",
        "channelData": {"clientActivityID": "abc", "nested": {"k": [1, 2]}},
        "images": ["https://example.com/cat.png"],
        "attachments": [{"url": "/files/report.pdf", "contentType": "application/pdf"}],
    }
    r = service.send(conv, body)
    assert r.status_code == 204 and r.content == b""
    user_update, message = service.bot.of(conv)[1:]
    assert user_update["type"] == "conversationUpdate"
    assert user_update["membersAdded"] == [{"id": "user1"}]
    assert message["type"] == "message"
    assert message["id"] == f"{conv}|0000001"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
    assert message["channelId"] == "directline"
    assert message["serviceUrl"] == service.url + "/"
    assert message["conversation"] == {"id": conv}
    assert message["from"]["id"] == "user1"
    assert message["recipient"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert message["text"] == "hello"
    assert message["channelData"] == body["channelData"]
    assert message["attachments"] == [
        {"contentType": "image/png", "contentUrl": "https://example.com/cat.png"},
        {"contentType": "application/pdf", "contentUrl": f"{service.url}/files/report.pdf"},
    ]
    headers = service.bot.headers[-1]
    assert headers["content-type"].startswith("application/json")
    assert "authorization" not in headers


def test_messages_come_back_with_ids_and_watermarks(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "user1", "text": "one"}).status_code == 204
    page = service.messages(conv)
    texts = [(m["from"], m["text"]) for m in page["messages"]]
    assert texts == [("user1", "one"), ("rec", "welcome user1"), ("rec", "echo: one")]
    for n, m in enumerate(page["messages"], start=1):
        assert ID_V1.match(m["id"]) and m["id"] == f"{conv}|{n:018d}"
        assert m["conversationId"] == conv
        assert m["images"] == [] and m["attachments"] == []
        assert "channelData" not in m
    assert page["watermark"] == "3"
    created = [m["created"] for m in page["messages"]]
    assert created == sorted(created) and len(set(created)) == 3
    assert service.send(conv, {"from": "user1", "text": "two"}).status_code == 204
    later = service.messages(conv, page["watermark"])
    assert [m["text"] for m in later["messages"]] == ["two", "echo: two"]
    assert later["watermark"] == "5"
    assert service.messages(conv, "5") == {"messages": [], "watermark": "5"}
    # the user was greeted once
    assert len(service.bot.of(conv, "conversationUpdate")) == 2


def test_the_server_owns_id_conversation_and_created(service: Service) -> None:
    conv = service.start()["conversationId"]
    body = {"id": "mine", "conversationId": "other", "created": "2001-01-01T00:00:00Z", "from": "u", "text": "x"}
    assert service.send(conv, body).status_code == 204
    first = service.messages(conv)["messages"][0]
    assert first["id"] == f"{conv}|{1:018d}" and first["conversationId"] == conv
    assert not first["created"].startswith("2001")


def test_property_names_are_case_insensitive(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"From": "U1", "TEXT": "shout", "ChannelData": {"a": 1}}).status_code == 204
    message = service.bot.of(conv, "message")[0]
    assert (message["from"]["id"], message["text"], message["channelData"]) == ("U1", "shout", {"a": 1})


def test_a_message_without_from_gets_a_fresh_user_each_time(service: Service) -> None:
    conv = service.start()["conversationId"]
    for _ in range(2):
        assert service.send(conv, {"text": "who am i"}).status_code == 204
    users = [m["from"]["id"] for m in service.bot.of(conv, "message")]
    assert len(set(users)) == 2 and all(len(u) >= 8 for u in users)
    added = [u["membersAdded"][0]["id"] for u in service.bot.of(conv, "conversationUpdate")[1:]]
    assert added == users


def test_paging_by_watermark_has_no_gaps_or_duplicates(service: Service) -> None:
    conv = service.start()["conversationId"]
    for i in range(6):
        assert service.send(conv, {"from": "pager", "text": f"m{i}"}).status_code == 204
    first = service.messages(conv)
    assert len(first["messages"]) == PAGE_SIZE and first["watermark"] == str(PAGE_SIZE)
    everything = service.all_messages(conv)
    seqs = [int(m["id"].split("|")[1]) for m in everything]
    assert seqs == list(range(1, 14))  # 6 messages, 1 welcome, 6 echoes
    # any watermark in between continues exactly where it says
    assert service.messages(conv, "7")["messages"][0]["id"].endswith("|" + f"{8:018d}")


def test_hidden_activities_move_the_watermark(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "u", "text": "typing"}).status_code == 204
    page = service.messages(conv)
    # the message, the welcome, (the event is not a 1.1 message; typing is never stored), the echo
    assert [m["text"] for m in page["messages"]] == ["typing", "welcome u", "echo: typing"]
    assert page["watermark"] == "4"
    assert [m["id"][-1] for m in page["messages"]] == ["1", "2", "4"]


def test_a_page_of_hidden_activities_does_not_end_paging(service: Service) -> None:
    conv = service.start()["conversationId"]
    for _ in range(PAGE_SIZE):  # each "typing" stores message, typing, event, echo
        assert service.send(conv, {"from": "u", "text": "typing"}).status_code == 204
    texts = [m["text"] for m in service.all_messages(conv)]
    assert texts.count("echo: typing") == PAGE_SIZE


def test_cards_travel_in_channel_data(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "u", "text": "card"}).status_code == 204
    reply = service.messages(conv)["messages"][-1]
    assert reply["from"] == "rec"
    assert reply["text"] == "A card\nx"
    assert reply["channelData"]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.hero"


def test_form_encoded_messages(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = service.http.post(
        f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET), data={"from": "f", "text": "a b&c"}
    )
    assert r.status_code == 204
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={**service.auth(REC_SECRET), "Content-Type": "application/x-www-form-urlencoded"},
        content=b'{"from":"f","text":"json anyway"}',
    )
    assert r.status_code == 204
    assert [m["text"] for m in service.bot.of(conv, "message")] == ["a b&c", "json anyway"]


def test_text_json_content_type(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={**service.auth(REC_SECRET), "Content-Type": "text/json"},
        content=b'{"from":"t","text":"tj"}',
    )
    assert r.status_code == 204


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"not json", "application/json", 400, "MalformedData"),
        (b"", "application/json", 400, "MalformedData"),
        (b"[1, 2]", "application/json", 400, "MalformedData"),
        (b'"text"', "application/json", 400, "MalformedData"),
        (b'{"text": 5}', "application/json", 400, "MalformedData"),
        (b'{"from": {"id": "u"}}', "application/json", 400, "MalformedData"),
        (b'{"channelData": "a string"}', "application/json", 400, "MalformedData"),
        (b'{"channelData": [1]}', "application/json", 400, "MalformedData"),
        (b'{"images": "https://x/y.png"}', "application/json", 400, "MalformedData"),
        (b'{"images": [1]}', "application/json", 400, "MalformedData"),
        (b'{"attachments": [{"contentType": "a/b"}]}', "application/json", 400, "MissingProperty"),
        (b'{"attachments": {"url": "x"}}', "application/json", 400, "MalformedData"),
        # URLs no parser can read (an unclosed IPv6 host): a 500 before (found by tests/protocol/test_v1_properties)
        (b'{"images": ["http://[x"]}', "application/json", 400, "MalformedData"),
        (b'{"images": ["//[x"]}', "application/json", 400, "MalformedData"),
        (b'{"attachments": [{"url": "https://[::1"}]}', "application/json", 400, "MalformedData"),
        (b'{"text": "\xff"}', "application/json", 400, "MalformedData"),
        (b"<message><text>hi</text></message>", "application/xml", 415, "NotSupported"),
    ],
)
def test_bad_messages_are_4xx_and_not_stored(
    service: Service, content: bytes, content_type: str, status: int, code: str
) -> None:
    conv = service.start()["conversationId"]
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={**service.auth(REC_SECRET), "Content-Type": content_type},
        content=content,
    )
    _error(r, status, code)
    assert service.messages(conv)["messages"] == []
    assert service.bot.of(conv, "message") == []


def test_message_size_limit(service: Service) -> None:
    conv = service.start()["conversationId"]
    _error(service.send(conv, {"from": "u", "text": "x" * MAX_MESSAGE}), 413, "MalformedData")

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"text": "'
        for _ in range(MAX_MESSAGE // 100 + 1):
            yield b"y" * 100
        yield b'"}'

    # without a Content-Length (chunked), the limit is enforced while reading
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={**service.auth(REC_SECRET), "Content-Type": "application/json"},
        content=chunks(),
    )
    _error(r, 413, "MalformedData")
    assert service.send(conv, {"from": "u", "text": "x" * (MAX_MESSAGE - 100)}).status_code == 204


@pytest.mark.parametrize("watermark", ["abc", "-5", "1.5", "9" * 19, "0x10"])
def test_bad_watermark_is_400_invalid_range(service: Service, watermark: str) -> None:
    conv = service.start()["conversationId"]
    r = service.http.get(
        f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET), params={"watermark": watermark}
    )
    _error(r, 400, "InvalidRange")


def test_watermark_ahead_of_the_conversation_is_400(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "u", "text": "x"}).status_code == 204
    assert service.messages(conv, "3") == {"messages": [], "watermark": "3"}
    r = service.http.get(
        f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET), params={"watermark": "4"}
    )
    _error(r, 400, "InvalidRange")


def test_a_rejecting_bot_is_500_service_error_and_the_message_stays(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = service.send(conv, {"from": "u", "text": "fail"})
    _error(r, 500, "ServiceError")
    assert "rejected" in r.json()["error"]["message"] and "HTTP 500" in r.json()["error"]["message"]
    assert "crashed" not in r.text, "the bot's own error body is logged, not shown to clients"
    assert [m["text"] for m in service.messages(conv)["messages"]] == ["fail", "welcome u"]


def test_an_unreachable_bot_is_500_service_error(service: Service) -> None:
    conv = service.start(DOWN_SECRET)["conversationId"]
    r = service.send(conv, {"from": "u", "text": "hello?"}, secret=DOWN_SECRET)
    _error(r, 500, "ServiceError")
    assert "could not be reached" in r.json()["error"]["message"]
    assert "127.0.0.1" not in r.text, "the bot's address is not shown to clients"
    assert [m["text"] for m in service.messages(conv, secret=DOWN_SECRET)["messages"]] == ["hello?"]


def test_a_slow_bot_is_500_service_error_after_the_timeout(service: Service) -> None:
    conv = service.start()["conversationId"]
    started = time.monotonic()
    r = service.send(conv, {"from": "u", "text": "slow"})
    elapsed = time.monotonic() - started
    _error(r, 500, "ServiceError")
    assert "in time" in r.json()["error"]["message"]
    assert BOT_TIMEOUT <= elapsed < BOT_TIMEOUT + 1.5


def test_retention_hides_expired_messages(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "u", "text": "old"}).status_code == 204
    service.clock.offset = RETENTION + 1
    page = service.messages(conv)
    assert page["messages"] == []
    assert service.send(conv, {"from": "u", "text": "new"}).status_code == 204
    assert [m["text"] for m in service.messages(conv)["messages"]] == ["new", "echo: new"]


def test_a_user_the_bot_did_not_hear_about_is_announced_again(service: Service) -> None:
    conv = service.start()["conversationId"]
    service.bot.fail_updates = 1
    assert service.send(conv, {"from": "late", "text": "first"}).status_code == 204
    assert service.send(conv, {"from": "late", "text": "second"}).status_code == 204
    updates = [u for u in service.bot.of(conv, "conversationUpdate") if u["membersAdded"] == [{"id": "late"}]]
    assert len(updates) == 2
    texts = [m["text"] for m in service.messages(conv)["messages"]]
    assert texts == ["first", "echo: first", "second", "welcome late", "echo: second"]


def test_concurrent_first_messages_wait_for_the_user_to_be_announced(service: Service) -> None:
    conv = service.start()["conversationId"]
    service.bot.update_delay = 0.3
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            sends = [pool.submit(service.send, conv, {"from": "racer", "text": f"r{i}"}) for i in range(4)]
            assert [f.result().status_code for f in sends] == [204] * 4
    finally:
        service.bot.update_delay = 0.0
    kinds = [a["type"] for a in service.bot.of(conv) if a.get("from", {}).get("id") == "racer"]
    assert kinds == ["conversationUpdate"] + ["message"] * 4


def test_deeply_nested_json_is_400(service: Service) -> None:
    conv = service.start()["conversationId"]
    body = b'{"from": "u", "channelData": {"a": ' + b"[" * 1500 + b"]" * 1500 + b"}}"
    r = service.http.post(
        f"/api/conversations/{conv}/messages",
        headers={**service.auth(REC_SECRET), "Content-Type": "application/json"},
        content=body,
    )
    _error(r, 400, "MalformedData")
