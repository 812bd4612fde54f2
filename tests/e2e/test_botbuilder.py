"""A stock botbuilder-python bot (CloudAdapter, auth off) behind openline over Direct Line 1.1, and bot failures."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from tests.e2e.harness import BOT_ID, SECRET, DirectLine, Processes, free_port, seq_of, summary

PAGE_SIZE = 4


def _check_messages(messages: list[dict[str, Any]], conversation_id: str, first_seq: int) -> None:
    """Ids `{conversationId}|{18 digits}` numbered on from first_seq without gaps; the 1.1 Message fields."""
    assert [seq_of(m, conversation_id) for m in messages] == list(range(first_seq, first_seq + len(messages)))
    for m in messages:
        assert m["conversationId"] == conversation_id
        assert datetime.fromisoformat(m["created"]).tzinfo is not None, m["created"]
        assert m["images"] == [] and m["attachments"] == []


def test_botbuilder_bot_conversation(procs: Processes, directline: Callable[..., DirectLine]) -> None:
    bot = procs.bot(wait=False)
    service = procs.openline(
        *("--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data")),
        *("--page-size", str(PAGE_SIZE)),
        wait=False,
    )
    bot.wait_ready()
    service.wait_ready()
    dl = directline(service)

    started = dl.start()
    cid, token = started["conversationId"], started["token"]
    assert isinstance(cid, str) and cid
    assert isinstance(token, str) and token and token != SECRET
    assert isinstance(started["expires_in"], int) and started["expires_in"] > 0

    # the bot heard membersAdded [bot] and, like every stock bot, does not greet itself
    assert dl.get(cid) == {"messages": [], "watermark": "0"}

    dl.send(cid, "hello")
    page = dl.get(cid)
    assert summary(page["messages"]) == [
        ("user1", "hello"),
        (BOT_ID, "Welcome, user1!"),
        (BOT_ID, "echo: hello"),
    ], "the user's message is stored first; the bot hears membersAdded [user1] (welcome) before the message (echo)"
    _check_messages(page["messages"], cid, 1)
    assert page["watermark"] == "3"

    # only what is new after the watermark; a known user is not welcomed again
    dl.send(cid, "second")
    dl.send(cid, "third")
    page = dl.get(cid, "3")
    assert summary(page["messages"]) == [
        ("user1", "second"),
        (BOT_ID, "echo: second"),
        ("user1", "third"),
        (BOT_ID, "echo: third"),
    ]
    _check_messages(page["messages"], cid, 4)
    assert page["watermark"] == "7"
    assert dl.get(cid, "7") == {"messages": [], "watermark": "7"}, "no news: empty, and the same watermark"

    # a second user id gets its own welcome, before the echo of its first message
    dl.send(cid, "hi there", sender="user2")
    dl.send(cid, "back again", sender="user1")
    news, watermark = dl.read_all(cid, "7")
    assert summary(news) == [
        ("user2", "hi there"),
        (BOT_ID, "Welcome, user2!"),
        (BOT_ID, "echo: hi there"),
        ("user1", "back again"),
        (BOT_ID, "echo: back again"),
    ]
    _check_messages(news, cid, 8)
    assert watermark == "12"

    # paging by watermark (page size 4): full pages, then the rest, then empty; no duplicates, no gaps
    pages: list[list[dict[str, Any]]] = []
    mark: str | None = None
    while True:
        page = dl.get(cid, mark)
        if not page["messages"]:
            assert page["watermark"] == mark
            break
        pages.append(page["messages"])
        mark = page["watermark"]
        assert mark == str(seq_of(page["messages"][-1], cid)), "the watermark is the last message's sequence number"
    assert [len(p) for p in pages] == [4, 4, 4]
    history = [m for p in pages for m in p]
    _check_messages(history, cid, 1)
    assert len({m["id"] for m in history}) == 12
    assert history[7:] == news

    # paging from a watermark in the middle of a page continues exactly after it
    rest, _ = dl.read_all(cid, "5")
    assert rest == history[5:]

    # the conversation token from start conversation reads and sends as the secret does
    by_token, watermark = dl.read_all(cid, credential=token)
    assert by_token == history
    dl.send(cid, "sent with the token", credential=token)
    news, watermark = dl.read_all(cid, watermark, credential=token)
    assert summary(news) == [("user1", "sent with the token"), (BOT_ID, "echo: sent with the token")]
    _check_messages(news, cid, 13)

    # a token is scoped to its conversation
    other = dl.start()
    assert other["conversationId"] != cid
    assert dl.get_response(cid, credential=other["token"]).status_code == 403

    # concurrent sends (each waits for its bot turn, which calls back into openline): all delivered, ids unique
    texts = [f"concurrent {i}" for i in range(6)]
    with ThreadPoolExecutor(len(texts)) as pool:
        statuses = list(pool.map(lambda text: dl.post(cid, text).status_code, texts))
    assert statuses == [204] * len(texts)
    news, watermark = dl.read_all(cid, watermark)
    _check_messages(news, cid, 15)
    assert sorted(summary(news)) == sorted([("user1", t) for t in texts] + [(BOT_ID, f"echo: {t}") for t in texts])
    position = {(m["from"], m["text"]): i for i, m in enumerate(news)}
    assert all(position[("user1", t)] < position[(BOT_ID, f"echo: {t}")] for t in texts), "a reply follows its message"

    assert "on_turn_error" not in bot.stderr, bot.stderr

    # the bot goes away mid-conversation: 500 ServiceError, and the message is kept
    bot.terminate()
    response = dl.post(cid, "are you there?")
    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "ServiceError"
    news, _ = dl.read_all(cid, watermark)
    assert summary(news) == [("user1", "are you there?")], "a message the bot did not take is still in the history"


def test_unreachable_bot_answers_500_and_keeps_the_message(
    procs: Processes, directline: Callable[..., DirectLine]
) -> None:
    closed = free_port()  # nothing listens there
    service = procs.openline(
        "--bot", f"http://127.0.0.1:{closed}/api/messages", "--secret", SECRET, "--data-dir", str(procs.tmp_path)
    )
    dl = directline(service)

    # start conversation does not depend on the bot's answer (a bot that is down shows on the first message)
    cid = dl.start()["conversationId"]

    response = dl.post(cid, "anyone there?")
    assert response.status_code == 500, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == "ServiceError"
    assert error["statusCode"] == 500
    assert isinstance(error["message"], str) and error["message"]

    page = dl.get(cid)
    assert summary(page["messages"]) == [("user1", "anyone there?")], (
        "the message is committed before the bot is called, so it stays in GET messages when the bot fails"
    )
    _check_messages(page["messages"], cid, 1)
    assert page["watermark"] == "1"
