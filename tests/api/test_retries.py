"""A client's retry converges to "the bot got it once": redelivered after a failure, never twice after success.

The recording bot answers 500 to the next `fail_messages` activities; "pause" makes it wait half a
second first, so a retry can arrive while the first delivery is in flight.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openline.protocol import activity as act
from openline.service.dispatch import abandoned_after
from tests.api._v3 import V3
from tests.api.conftest import ADMIN_SECRET, BOT_TIMEOUT, REC_SECRET, Service


@pytest.fixture(autouse=True)
def _bot_recovers(service: Service) -> Iterator[None]:
    yield
    service.bot.fail_messages = 0
    service.bot.fail_updates = 0


def _message(text: str, key: str, user: str = "u1") -> dict[str, Any]:
    return {"type": "message", "from": {"id": user}, "text": text, "channelData": {"clientActivityID": key}}


def _post(v3: V3, conv: str, activity: dict[str, Any]) -> httpx.Response:
    return v3.post(f"/conversations/{conv}/activities", json=activity)


def _received(service: Service, conv: str, text: str) -> list[dict[str, Any]]:
    return [a for a in service.bot.of(conv, "message") if a.get("text") == text]


def _stored_texts(service: Service, conv: str) -> list[str]:
    return [a.get("text", "") for a in service.stored(conv)]


def _delivery(service: Service, conv: str, activity_id: str) -> dict[str, Any]:
    r = service.http.get(f"/admin/conversations/{conv}", headers=service.auth(ADMIN_SECRET))
    (entry,) = [e for e in r.json()["entries"] if e["id"] == activity_id]
    delivery: dict[str, Any] = entry["delivery"]
    return delivery


def test_a_retry_after_the_bot_failed_is_delivered_again(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    service.bot.fail_messages = 1
    first = _post(v3, conv, _message("hello", "k-fail"))
    assert first.status_code == 502 and first.json()["error"]["code"] == "BotRejectedActivity"
    # the bot recovers; the client sends the same activity again (same clientActivityID)
    retry = _post(v3, conv, _message("hello", "k-fail"))
    assert retry.status_code == 200, retry.text
    (stored_id,) = [a["id"] for a in service.stored(conv) if a.get("text") == "hello"]
    assert retry.json() == {"id": stored_id}
    deliveries = _received(service, conv, "hello")
    assert [a["id"] for a in deliveries] == [stored_id, stored_id], "the same activity, delivered again"
    assert deliveries[0]["timestamp"] == deliveries[1]["timestamp"]
    assert _stored_texts(service, conv).count("hello") == 1, "not stored twice"
    assert _stored_texts(service, conv).count("echo: hello") == 1, "the bot's turn ran once, on the delivery it took"
    delivery = _delivery(service, conv, stored_id)
    assert (delivery["state"], delivery["attempts"], delivery["status"]) == ("delivered", 2, 201)


def test_a_retry_after_success_does_not_reach_the_bot_again(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    first = _post(v3, conv, _message("once", "k-once"))
    assert first.status_code == 200
    for _ in range(3):
        again = _post(v3, conv, _message("once, changed", "k-once"))
        assert again.status_code == 200 and again.json() == first.json()
    assert len(_received(service, conv, "once")) == 1
    assert _received(service, conv, "once, changed") == []
    assert _stored_texts(service, conv).count("once") == 1


def _concurrently(v3: V3, conv: str, activity: dict[str, Any]) -> tuple[httpx.Response, httpx.Response]:
    """The post, and the same post again while the first is with the bot."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, v3, conv, activity)
        time.sleep(0.15)  # the bot pauses 0.5 s: the first delivery is in flight
        second = pool.submit(_post, v3, conv, activity)
        return first.result(10), second.result(10)


def test_a_retry_while_the_first_is_in_flight_waits_for_its_answer(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    started = time.monotonic()
    first, retry = _concurrently(v3, conv, _message("pause then answer", "k-flight"))
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert time.monotonic() - started >= service.bot.pause_seconds
    assert len(_received(service, conv, "pause then answer")) == 1, "the bot was called once"


def test_a_retry_while_the_first_fails_delivers_it_itself(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    service.bot.fail_messages = 1
    first, retry = _concurrently(v3, conv, _message("pause then fail", "k-flight-fail"))
    assert first.status_code == 502, "the first attempt's own answer"
    assert retry.status_code == 200, retry.text
    deliveries = _received(service, conv, "pause then fail")
    assert len(deliveries) == 2 and deliveries[0]["id"] == deliveries[1]["id"] == retry.json()["id"]


def test_a_retry_of_an_abandoned_delivery_takes_it_over(service: Service) -> None:
    """A pending delivery nobody finishes (its process died) is delivered by the next retry."""
    v3 = V3(service)
    conv = v3.start({"user": {"id": "u1"}})["conversationId"]
    # stored as a client activity by a process that died before calling the bot
    past = service.clock() - abandoned_after(BOT_TIMEOUT) - 1
    activity = act.from_client(_message("orphan", "k-orphan"), conv, act.account("rec", "Recording Bot", "bot"))
    service.loop.run(service.services.store.append(conv, activity, past, client_key="k-orphan"))
    assert _delivery(service, conv, activity["id"])["state"] == "pending"
    retry = _post(v3, conv, _message("orphan", "k-orphan"))
    assert retry.status_code == 200 and retry.json() == {"id": activity["id"]}
    assert [a["id"] for a in _received(service, conv, "orphan")] == [activity["id"]]
    assert _delivery(service, conv, activity["id"])["attempts"] == 2


def test_a_retry_within_the_deliverers_time_waits_then_takes_over(service: Service) -> None:
    """A pending delivery that was claimed moments ago is waited for until it counts as abandoned."""
    v3 = V3(service)
    conv = v3.start({"user": {"id": "u1"}})["conversationId"]
    claimed_at = service.clock() - abandoned_after(BOT_TIMEOUT) + 0.5
    activity = act.from_client(_message("orphan too", "k-orphan-2"), conv, act.account("rec", "Recording Bot", "bot"))
    service.loop.run(service.services.store.append(conv, activity, claimed_at, client_key="k-orphan-2"))
    started = time.monotonic()
    retry = _post(v3, conv, _message("orphan too", "k-orphan-2"))
    assert retry.status_code == 200
    assert 0.3 < time.monotonic() - started < 3, "waited for the deliverer's time to run out, then delivered"
    assert len(_received(service, conv, "orphan too")) == 1


def test_a_retry_while_the_bot_is_being_told_of_joins_does_not_deliver_twice(service: Service) -> None:
    """Telling the bot of joins before the activity may take longer than a delivery: the claim is kept alive."""
    v3 = V3(service)
    service.bot.fail_updates = 1  # the bot's own join at start fails: it is sent again with the first message
    conv = v3.start()["conversationId"]
    service.bot.update_delay = BOT_TIMEOUT * 0.85  # each join takes nearly the bot timeout
    try:
        message = _message("slow joins", "k-joins")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(_post, v3, conv, message)
            time.sleep(abandoned_after(BOT_TIMEOUT) + 0.2)  # the first is still telling the bot of joins
            retry = pool.submit(_post, v3, conv, message)
            answers = [first.result(20), retry.result(20)]
    finally:
        service.bot.update_delay = 0.0
    assert [a.status_code for a in answers] == [200, 200] and answers[0].json() == answers[1].json()
    assert len(_received(service, conv, "slow joins")) == 1, "the bot got it once"


def _upload(v3: V3, conv: str, key: str, data: bytes) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "channelData": {"clientActivityID": key}}
    activity["attachments"] = [{"name": "cat.png", "contentType": "image/png"}]
    files = [
        ("activity", ("blob", json.dumps(activity), "application/vnd.microsoft.activity")),
        ("file", ("cat.png", data, "image/png")),
    ]
    return v3.post(f"/conversations/{conv}/upload?userId=u1", files=files)


def test_a_retried_upload_is_delivered_again_without_storing_its_files_again(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    service.bot.fail_messages = 1
    assert _upload(v3, conv, "k-upload", b"\x89PNG first").status_code == 502
    retry = _upload(v3, conv, "k-upload", b"\x89PNG second")
    assert retry.status_code == 200, retry.text
    sent = [a for a in service.bot.of(conv, "message") if a.get("attachments")]
    assert len(sent) == 2 and sent[0]["id"] == sent[1]["id"] == retry.json()["id"]
    url = sent[1]["attachments"][0]["contentUrl"]
    assert url == sent[0]["attachments"][0]["contentUrl"], "the first upload's file"
    assert service.http.get(url).content == b"\x89PNG first"
    assert len([a for a in service.stored(conv) if a.get("attachments") and a["from"]["id"] == "u1"]) == 1


def test_a_retried_1_1_message_with_a_client_id_is_delivered_again(service: Service) -> None:
    conv = service.start()["conversationId"]
    message = {"from": "u1", "text": "v1 retry", "channelData": {"clientActivityID": "k-v1"}}
    service.bot.fail_messages = 1
    assert service.send(conv, message).status_code == 500
    assert service.send(conv, message).status_code == 204
    assert service.send(conv, message).status_code == 204
    deliveries = _received(service, conv, "v1 retry")
    assert len(deliveries) == 2 and deliveries[0]["id"] == deliveries[1]["id"]
    assert [m["text"] for m in service.all_messages(conv)].count("v1 retry") == 1


def test_the_bot_joined_update_failed_at_start_is_sent_before_the_next_activity(service: Service) -> None:
    service.bot.fail_updates = 1  # the [bot] update of the start
    conv = service.start()["conversationId"]
    assert service.bot.fail_updates == 0
    assert service.send(conv, {"from": "u1", "text": "first"}).status_code == 204
    received = [(a["type"], [m["id"] for m in a.get("membersAdded", [])], a.get("text")) for a in service.bot.of(conv)]
    assert received == [
        ("conversationUpdate", ["rec"], None),  # refused
        ("conversationUpdate", ["rec"], None),  # sent again, first
        ("conversationUpdate", ["u1"], None),
        ("message", [], "first"),
    ]
    # and only once: the bot has it now
    assert service.send(conv, {"from": "u1", "text": "second"}).status_code == 204
    assert len(service.bot.of(conv, "conversationUpdate")) == 3


def test_an_update_the_bot_keeps_refusing_is_offered_with_each_activity(service: Service) -> None:
    conv = service.start()["conversationId"]
    service.bot.fail_updates = 2  # u1's update, twice
    assert service.send(conv, {"from": "u1", "text": "one"}).status_code == 204
    assert service.send(conv, {"from": "u1", "text": "two"}).status_code == 204
    assert service.send(conv, {"from": "u1", "text": "three"}).status_code == 204
    users = [a["membersAdded"][0]["id"] for a in service.bot.of(conv, "conversationUpdate")]
    assert users == ["rec", "u1", "u1", "u1"], "until the bot took it, then never again"


def test_a_typing_retry_is_not_deduplicated(service: Service) -> None:
    """`typing` is never stored: each post is delivered (there is nothing to find a retry in)."""
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    typing = {"type": "typing", "from": {"id": "u1"}, "channelData": {"clientActivityID": "k-typing"}}
    ids = {_post(v3, conv, typing).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and len(service.bot.of(conv, "typing")) == 2


def test_retries_are_per_conversation(service: Service) -> None:
    v3 = V3(service)
    a, b = v3.start()["conversationId"], v3.start()["conversationId"]
    first = _post(v3, a, _message("same key", "k-shared"))
    second = _post(v3, b, _message("same key", "k-shared"))
    assert first.status_code == second.status_code == 200 and first.json() != second.json()
    assert len(_received(service, a, "same key")) == len(_received(service, b, "same key")) == 1


def test_a_retry_from_another_credential_of_the_conversation_is_one_post(service: Service) -> None:
    v3 = V3(service)
    started = v3.start()
    conv, token = started["conversationId"], started["token"]
    first = _post(v3, conv, _message("by secret", "k-cred"))
    again = v3.post(f"/conversations/{conv}/activities", token, json=_message("by secret", "k-cred"))
    assert again.status_code == 200 and again.json() == first.json()
    assert token != REC_SECRET and len(_received(service, conv, "by secret")) == 1
