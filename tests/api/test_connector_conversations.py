"""The connector API's conversation operations: a bot creates a conversation, and lists them."""

from __future__ import annotations

from typing import Any

import pytest

from openline.protocol.ids import new_conversation_id
from openline.storage.base import Member
from tests.api._connector import create, error
from tests.api.conftest import REC_SECRET, Service


def _all_conversations(service: Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every listed conversation, paging with the token; and the pages."""
    pages: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    while True:
        r = service.http.get("/v3/conversations", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"conversations", "continuationToken"}
        pages.append(page)
        if page["continuationToken"] is None:
            return [c for p in pages for c in p["conversations"]], pages
        params = {"continuationToken": page["continuationToken"]}
        assert len(pages) < 50, "paging did not end"


def _many_conversations(service: Service, bot_id: str, count: int) -> set[str]:
    async def make() -> set[str]:
        store = service.services.store
        ids = {new_conversation_id() for _ in range(count)}
        for conv in ids:
            assert await store.create_conversation(conv, bot_id, service.clock())
            await store.add_member(conv, Member(bot_id, "Down Bot"))
        return ids

    made: set[str] = service.loop.run(make())
    return made


# create


def test_create_conversation_with_members_and_an_activity(service: Service) -> None:
    answer = create(
        service,
        isGroup=False,
        members=[{"id": "u1", "name": "User One"}],
        topicName="topic",
        tenantID="tenant",
        channelData={"x": 1},
        activity={"type": "message", "text": "hello from the bot", "from": {"id": "ignored"}},
    )
    conv = answer["id"]
    assert set(answer) == {"id", "activityId", "serviceUrl"}
    assert answer["serviceUrl"] == service.url + "/" and answer["activityId"] == f"{conv}|0000001"
    assert len(conv) == 22 and conv.isalnum()
    assert service.http.get(f"/v3/conversations/{conv}/members").json() == [
        {"id": "rec", "name": "Recording Bot", "role": "bot"},
        {"id": "u1", "name": "User One", "role": "user"},
    ]
    # the bot's secret reaches the conversation over 1.1; the first message is the bot's
    assert [(m["from"], m["text"]) for m in service.all_messages(conv)] == [("rec", "hello from the bot")]
    stored = service.stored(conv)[0]
    assert stored["from"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert stored["conversation"] == {"id": conv} and stored["channelId"] == "directline"
    # a listed member is not announced to the bot again: it gets the message only
    assert service.send(conv, {"from": "u1", "text": "hi bot"}).status_code == 204
    assert [a["type"] for a in service.bot.of(conv)] == ["message"]
    assert [(m["from"], m["text"]) for m in service.all_messages(conv)][1:] == [
        ("u1", "hi bot"),
        ("rec", "echo: hi bot"),
    ]


def test_create_conversation_without_an_activity(service: Service) -> None:
    answer = create(service)
    assert set(answer) == {"id", "serviceUrl"}
    conv = answer["id"]
    assert service.all_messages(conv) == []
    assert service.http.get(f"/v3/conversations/{conv}/members").json() == [
        {"id": "rec", "name": "Recording Bot", "role": "bot"}
    ]
    assert service.bot.of(conv) == [], "the bot is not called: it created the conversation"


def test_create_conversation_with_typing_stores_nothing(service: Service) -> None:
    answer = create(service, activity={"type": "typing"})
    assert answer["activityId"].startswith(answer["id"] + "|t")
    assert service.stored(answer["id"]) == []


def test_create_conversation_with_duplicate_members(service: Service) -> None:
    conv = create(service, members=[{"id": "u1"}, {"id": "u1", "name": "Again"}, {"id": "rec"}])["id"]
    assert [m["id"] for m in service.http.get(f"/v3/conversations/{conv}/members").json()] == ["rec", "u1"]


def test_other_secrets_cannot_read_a_created_conversation(service: Service) -> None:
    conv = create(service)["id"]
    r = service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET))
    assert r.status_code == 200
    r = service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth("echo-secret-0123456789"))
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"bot": {"id": "nosuch"}}, 404, "NotFound"),
        ({}, 400, "MissingProperty"),  # three bots are configured: which one?
        ({"bot": None}, 400, "MissingProperty"),
        (["x"], 400, "BadArgument"),
        ({"bot": {"id": "rec"}, "isGroup": "yes"}, 400, "BadArgument"),
        ({"bot": {"id": "rec"}, "members": "u1"}, 400, "BadArgument"),
        ({"bot": {"id": "rec"}, "members": [{"name": "no id"}]}, 400, "MissingProperty"),
        ({"bot": {"id": "rec"}, "activity": "hi"}, 400, "BadArgument"),
        ({"bot": {"id": "rec"}, "activity": {"text": "no type"}}, 400, "MissingProperty"),
        ({"bot": {"id": "rec"}, "activity": {"type": "message", "attachments": {}}}, 400, "BadArgument"),
    ],
)
def test_create_conversation_errors_create_nothing(service: Service, body: Any, status: int, code: str) -> None:
    before, _ = _all_conversations(service)
    error(service.http.post("/v3/conversations", json=body), status, code)
    after, _ = _all_conversations(service)
    assert after == before


def test_create_conversation_unreadable_bodies(service: Service) -> None:
    error(service.http.post("/v3/conversations", content=b"{"), 400, "BadArgument")
    error(service.http.post("/v3/conversations", content=b""), 400, "BadArgument")
    error(service.http.put("/v3/conversations", json={}), 405, "BadArgument")


# list


def test_list_conversations_pages_through_every_bot(service: Service) -> None:
    started = service.start()["conversationId"]
    service.send(started, {"from": "alice", "text": "hi"})
    created = {create(service, bot={"id": "down"}, members=[{"id": "d0"}])["id"] for _ in range(3)}
    created |= _many_conversations(service, "down", 120)  # over a page; straight into the store, for speed
    echo = create(service, bot={"id": "echobot"})["id"]
    listed, pages = _all_conversations(service)
    ids = [c["id"] for c in listed]
    assert len(ids) == len(set(ids)), "no conversation is listed twice"
    assert created | {started, echo} <= set(ids)
    assert all(len(p["conversations"]) == 100 for p in pages[:-1]) and len(pages[-1]["conversations"]) <= 100
    assert all(isinstance(p["continuationToken"], str) for p in pages[:-1])
    by_id = {c["id"]: c for c in listed}
    assert by_id[started]["members"] == [
        {"id": "rec", "name": "Recording Bot", "role": "bot"},
        {"id": "alice", "role": "user"},
    ]
    some = next(iter(created))
    assert by_id[some]["members"][0] == {"id": "down", "name": "Down Bot", "role": "bot"}
    assert by_id[echo]["members"] == [{"id": "echobot", "name": "Echo Bot", "role": "bot"}]
    # bots by id, then conversations by id
    bots = [by_id[i]["members"][0]["id"] for i in ids]
    assert bots == sorted(bots)
    assert all(ids[i] < ids[i + 1] for i in range(len(ids) - 1) if bots[i] == bots[i + 1])


def test_list_conversations_bad_tokens(service: Service) -> None:
    for token in ("!!", "abc", "WyJub2JvdCIsIiJd", "WyJvbmx5Il0"):  # the last two: ["nobot",""] and ["only"]
        error(service.http.get("/v3/conversations", params={"continuationToken": token}), 400, "BadArgument")
