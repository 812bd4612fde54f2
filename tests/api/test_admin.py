"""The admin API the inspector reads: credentials, status, conversations, transcripts and the live feed."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from openline import __version__
from openline.auth.admin import SESSION_COOKIE
from openline.echobot import PATH as ECHO_PATH
from tests.api._connector import bot_says, error, quoted
from tests.api._v3 import V3, stream
from tests.api.conftest import ADMIN_SECRET, DOWN_SECRET, ECHO_SECRET, REC_SECRET, Service

BEARER = {"Authorization": f"Bearer {ADMIN_SECRET}"}
FOREIGN = "https://evil.example"


def _get(service: Service, path: str, **params: Any) -> dict[str, Any]:
    r = service.http.get(path, headers=BEARER, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _conversation(service: Service, conv: str) -> dict[str, Any]:
    return _get(service, f"/admin/conversations/{conv}")


def _session(service: Service) -> str:
    """A session cookie value, from signing in like the inspector page does."""
    r = httpx.post(service.url + "/inspect/login", data={"secret": ADMIN_SECRET})
    assert r.status_code == 303, r.text
    value: str = r.cookies[SESSION_COOKIE]
    return value


def _start(service: Service, secret: str = REC_SECRET, user: str = "u1") -> str:
    conv: str = V3(service, secret).start({"user": {"id": user}})["conversationId"]
    return conv


def _ts(value: str) -> dt.datetime:
    assert value.endswith("Z") and len(value) == len("2026-01-01T00:00:00.000Z"), value
    return dt.datetime.fromisoformat(value)


# credentials


@pytest.mark.parametrize("path", ["/admin/status", "/admin/conversations", "/admin/conversations/nosuch"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {REC_SECRET}"},
        {"Authorization": f"Basic {ADMIN_SECRET}"},
        {"Authorization": ADMIN_SECRET},
        {"Cookie": f"{SESSION_COOKIE}=1.x"},
        {"Cookie": f"{SESSION_COOKIE}={ADMIN_SECRET}"},
    ],
)
def test_the_admin_api_needs_the_admin_credential(service: Service, path: str, headers: dict[str, str]) -> None:
    message = error(service.http.get(path, headers=headers), 401, "Unauthorized")
    assert ADMIN_SECRET not in message


def test_the_bearer_secret_and_the_session_cookie_open_it(service: Service) -> None:
    assert service.http.get("/admin/status", headers=BEARER).status_code == 200
    cookie = {"Cookie": f"{SESSION_COOKIE}={_session(service)}"}
    assert service.http.get("/admin/status", headers=cookie).status_code == 200
    # plain requests with the cookie are fine from anywhere: without CORS headers, no other site can read them
    assert service.http.get("/admin/conversations", headers={**cookie, "Origin": FOREIGN}).status_code == 200


# status


def test_status_lists_the_bots(service: Service) -> None:
    body = _get(service, "/admin/status")
    config = service.services.config
    assert body == {
        "service": "openline",
        "version": __version__,
        "bots": [
            {"id": "echobot", "name": "Echo Bot", "endpoint": config.local_url + ECHO_PATH},
            {"id": "rec", "name": "Recording Bot", "endpoint": config.bots[1].endpoint},
            {"id": "down", "name": "Down Bot", "endpoint": config.bots[2].endpoint},
        ],
    }


# the conversation list


def test_conversations_most_recent_first_with_users_and_counts(service: Service) -> None:
    first = _start(service, user="alice")
    second = _start(service, ECHO_SECRET, user="bob")
    V3(service).say(first, "hi", user="alice")
    conversations = _get(service, "/admin/conversations")["conversations"]
    ids = [c["id"] for c in conversations]
    assert ids[:2] == [first, second]
    a, b = conversations[0], conversations[1]
    assert a["bot"] == {"id": "rec", "name": "Recording Bot"}
    assert a["users"] == [{"id": "alice", "name": None}], "the bot is not a user"
    assert a["activityCount"] == 3  # welcome alice, hi, echo: hi
    assert b["bot"] == {"id": "echobot", "name": "Echo Bot"}
    assert b["users"] == [{"id": "bob", "name": None}] and b["activityCount"] == 1  # the welcome
    for c in (a, b):
        assert set(c) == {"id", "bot", "users", "activityCount", "createdAt", "lastActivityAt"}
        assert _ts(c["createdAt"]) <= _ts(c["lastActivityAt"])
    assert _ts(a["lastActivityAt"]) >= _ts(b["lastActivityAt"])
    assert _ts(a["createdAt"]) <= _ts(b["createdAt"])
    # limit takes the most recent ones
    assert [c["id"] for c in _get(service, "/admin/conversations", limit="1")["conversations"]] == [first]
    assert [c["id"] for c in _get(service, "/admin/conversations", limit="2")["conversations"]] == [first, second]


def test_a_conversation_of_the_web_page_lists_its_dl_user(service: Service) -> None:
    session = service.http.post("/web/token").json()
    V3(service, session["token"]).start()
    (listed,) = [
        c for c in _get(service, "/admin/conversations")["conversations"] if c["id"] == session["conversationId"]
    ]
    assert listed["users"] == [{"id": session["user"]["id"], "name": None}]
    assert listed["bot"]["id"] == "echobot"


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "1.5", "1e3", " 5", "\uff11"])
def test_conversation_list_limits(service: Service, limit: str) -> None:
    error(service.http.get("/admin/conversations", headers=BEARER, params={"limit": limit}), 400, "BadArgument")


@pytest.mark.parametrize("limit", ["1", "1000", ""])
def test_conversation_list_limits_in_range(service: Service, limit: str) -> None:
    assert service.http.get("/admin/conversations", headers=BEARER, params={"limit": limit}).status_code == 200


@pytest.mark.parametrize(("limit", "status"), [("0", 400), ("5001", 400), ("y", 400), ("5000", 200), ("1", 200)])
def test_transcript_limits(service: Service, limit: str, status: int) -> None:
    conv = _start(service)
    r = service.http.get(f"/admin/conversations/{conv}", headers=BEARER, params={"limit": limit})
    assert r.status_code == status, r.text
    if status == 400:
        error(r, 400, "BadArgument")


# one conversation


def _entry(entries: list[dict[str, Any]], activity_id: str) -> dict[str, Any]:
    (found,) = [e for e in entries if e["id"] == activity_id]
    return found


def test_a_transcript_shows_both_directions_and_the_deliveries(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    posted = v3.say(conv, "hi")
    body = _conversation(service, conv)
    assert set(body) == {"conversation", "entries", "truncated"} and body["truncated"] is False
    assert body["conversation"]["id"] == conv and body["conversation"]["activityCount"] == 3
    entries = body["entries"]
    for e in entries:
        assert set(e) == {"id", "seq", "direction", "stored", "type", "timestamp", "activity", "delivery"}
    stored = [e for e in entries if e["stored"]]
    assert [(e["seq"], e["direction"], e["activity"].get("text")) for e in stored] == [
        (1, "toClient", "welcome u1"),
        (2, "toBot", "hi"),
        (3, "toClient", "echo: hi"),
    ]
    hi = _entry(entries, posted)
    assert hi["activity"]["from"]["id"] == "u1" and hi["type"] == "message"
    delivery = hi["delivery"]
    assert delivery["status"] == 201 and delivery["error"] is None and delivery["detail"] == ""
    assert isinstance(delivery["durationMs"], float) and 0 <= delivery["durationMs"] < 2000
    assert _ts(delivery["at"]) >= _ts(hi["timestamp"])
    assert stored[0]["delivery"] is None and stored[2]["delivery"] is None, "the bot's activities were not delivered"
    # the conversationUpdates the bot was sent (bot, then the user) are shown, unstored, with what the bot did
    updates = [e for e in entries if not e["stored"]]
    assert [(e["type"], e["direction"], e["seq"]) for e in updates] == [("conversationUpdate", "toBot", None)] * 2
    assert [[m["id"] for m in e["activity"]["membersAdded"]] for e in updates] == [["rec"], ["u1"]]
    assert all(e["delivery"]["status"] == 201 and e["delivery"]["error"] is None for e in updates)
    assert all(e["id"].startswith(conv + "|") for e in updates)
    # by time: the updates come before the user's message, the echo after it
    order = [e["id"] for e in entries]
    assert order.index(updates[0]["id"]) < order.index(updates[1]["id"]) < order.index(posted)
    assert order[-1] == stored[2]["id"]
    assert [_ts(e["timestamp"]) for e in entries] == sorted(_ts(e["timestamp"]) for e in entries)


def test_typing_from_the_client_is_shown_unstored(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    typing_id = v3.send(conv, {"type": "typing", "from": {"id": "u1"}})
    entry = _entry(_conversation(service, conv)["entries"], typing_id)
    assert (entry["type"], entry["stored"], entry["seq"], entry["direction"]) == ("typing", False, None, "toBot")
    assert entry["delivery"]["status"] == 201


def test_a_rejecting_bot_shows_its_status_and_answer(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": "fail"})
    assert r.status_code == 502
    (fail,) = [e for e in _conversation(service, conv)["entries"] if e["activity"].get("text") == "fail"]
    assert fail["stored"] and fail["direction"] == "toBot"
    delivery = fail["delivery"]
    assert delivery["status"] == 500 and delivery["error"] == "BotRejectedActivity", "the 3.0 error code"
    assert "bot crashed" in delivery["detail"], "the inspector shows what the bot said (the client never sees it)"


def test_an_unreachable_bot_shows_the_failure(service: Service) -> None:
    v3 = V3(service, DOWN_SECRET)
    conv = _start(service, DOWN_SECRET)
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": "x"})
    assert r.status_code == 502
    body = _conversation(service, conv)
    assert body["conversation"]["bot"] == {"id": "down", "name": "Down Bot"}
    entries = body["entries"]
    (x,) = [e for e in entries if e["stored"]]
    assert x["activity"]["text"] == "x"
    for e in entries:
        assert e["direction"] == "toBot"
        assert e["delivery"]["status"] is None
        assert e["delivery"]["error"] == "BotUnavailable"
        assert e["delivery"]["detail"]
    # the record keeps the kind; the API shows its 3.0 code
    records = service.loop.run(service.services.store.deliveries(conv, 0.0, service.clock()))
    assert {d.error for d in records} == {"bot_unreachable"} and len(records) == len(entries)
    # the bot was told of the conversation and of u1 at start (refused), and of both again with the message
    updates = [e["activity"] for e in entries if not e["stored"]]
    assert [(u["type"], u["membersAdded"][0]["id"]) for u in updates] == [
        ("conversationUpdate", "down"),
        ("conversationUpdate", "u1"),
        ("conversationUpdate", "down"),
        ("conversationUpdate", "u1"),
    ]


def test_a_long_conversation_is_truncated_to_the_limit(service: Service) -> None:
    conv = _start(service)
    for text in ("one", "two"):
        V3(service).say(conv, text)
    body = _get(service, f"/admin/conversations/{conv}", limit="2")
    assert body["truncated"] is True
    assert [(e["seq"], e["activity"].get("text")) for e in body["entries"]] == [(4, "two"), (5, "echo: two")]
    full = _conversation(service, conv)
    assert full["truncated"] is False and len([e for e in full["entries"] if e["stored"]]) == 5


@pytest.mark.parametrize("conv", ["nosuch", "a%7Cb", "x" * 300])
def test_an_unknown_conversation_is_404(service: Service, conv: str) -> None:
    error(service.http.get(f"/admin/conversations/{conv}", headers=BEARER), 404, "NotFound")


def test_a_bot_deletion_leaves_the_transcript(service: Service) -> None:
    conv = _start(service)
    said = bot_says(service, conv, "oops")
    assert _entry(_conversation(service, conv)["entries"], said)["direction"] == "toClient"
    assert service.http.delete(f"/v3/conversations/{quoted(conv)}/activities/{quoted(said)}").status_code == 200
    assert said not in [e["id"] for e in _conversation(service, conv)["entries"]]


# the live feed


def _live_url(service: Service, conv: str, query: str = "") -> str:
    return f"{service.url.replace('http', 'ws', 1)}/admin/conversations/{quoted(conv)}/live{query}"


class Live:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = self.ws.recv(timeout=timeout)
        assert isinstance(raw, str), "frames are text"
        change: dict[str, Any] = json.loads(raw)
        return change

    def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0) -> list[dict[str, Any]]:
        """Changes until `done(changes so far)`."""
        deadline = time.monotonic() + timeout
        changes: list[dict[str, Any]] = []
        while not done(changes):
            changes.append(self.next(max(0.01, deadline - time.monotonic())))
        return changes


@contextmanager
def live(url: str, headers: dict[str, str] | None = None, origin: str | None = None) -> Iterator[Live]:
    kw: dict[str, Any] = {"origin": origin} if origin is not None else {}
    with connect(url, additional_headers=headers or BEARER, open_timeout=5, close_timeout=2, **kw) as ws:
        yield Live(ws)


def _refused(url: str, headers: dict[str, str] | None = None, origin: str | None = None) -> tuple[int, Any]:
    kw: dict[str, Any] = {"origin": origin} if origin is not None else {}
    with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers or {}, open_timeout=5, **kw):
        pass
    response = refused.value.response
    return response.status_code, json.loads(response.body) if response.body else None


def test_the_live_feed_needs_the_credential(service: Service) -> None:
    conv = _start(service)
    status, body = _refused(_live_url(service, conv))
    assert status == 401 and body["error"]["code"] == "Unauthorized"
    assert _refused(_live_url(service, conv), {"Authorization": f"Bearer {REC_SECRET}"})[0] == 401
    assert _refused(_live_url(service, conv), {"Cookie": f"{SESSION_COOKIE}=1.x"})[0] == 401


def test_the_live_feed_refuses_unknown_conversations_and_bad_limits(service: Service) -> None:
    status, body = _refused(_live_url(service, "nosuch"), BEARER)
    assert status == 404 and body["error"]["code"] == "NotFound"
    conv = _start(service)
    assert _refused(_live_url(service, conv, "?limit=0"), BEARER)[0] == 400


def test_a_cookie_opens_the_live_feed_from_this_service_only(service: Service) -> None:
    conv = _start(service)
    cookie = {"Cookie": f"{SESSION_COOKIE}={_session(service)}"}
    status, body = _refused(_live_url(service, conv), cookie, origin=FOREIGN)
    assert status == 403 and body["error"]["code"] == "Forbidden"
    status, body = _refused(_live_url(service, conv), cookie, origin="http://[x")  # unreadable: a 500 before
    assert status == 403 and body["error"]["code"] == "Forbidden"
    with live(_live_url(service, conv), cookie, origin=service.url) as feed:
        assert feed.next()["op"] == "snapshot"
    with live(_live_url(service, conv), cookie) as feed:  # no Origin: not a browser
        assert feed.next()["op"] == "snapshot"
    # the Bearer secret is not a browser's ambient credential: any origin
    with live(_live_url(service, conv), BEARER, origin=FOREIGN) as feed:
        assert feed.next()["op"] == "snapshot"


def test_the_live_feed_starts_with_a_snapshot(service: Service) -> None:
    conv = _start(service)
    V3(service).say(conv, "before")
    with live(_live_url(service, conv)) as feed:
        snapshot = feed.next()
        assert snapshot["op"] == "snapshot"
        assert snapshot == {"op": "snapshot", **_conversation(service, conv)}
    with live(_live_url(service, conv, "?limit=1")) as feed:
        snapshot = feed.next()
        assert snapshot["truncated"] is True
        assert [e["activity"].get("text") for e in snapshot["entries"] if e["stored"]] == ["echo: before"]


def _is(change: dict[str, Any], op: str, activity_id: str | None = None) -> bool:
    if change["op"] != op:
        return False
    if activity_id is None:
        return True
    found: str = change["entry"]["id"] if op == "entry" else change["id"]
    return found == activity_id


def test_a_message_and_its_echo_arrive_live(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    with live(_live_url(service, conv)) as feed:
        assert feed.next()["op"] == "snapshot"
        posted = v3.say(conv, "hi")
        changes = feed.until(lambda cs: sum(1 for c in cs if c["op"] in ("entry", "delivery")) >= 3)
        assert _is(changes[0], "entry", posted), "the message shows before the bot has it"
        hi = changes[0]["entry"]
        assert (hi["direction"], hi["stored"], hi["seq"], hi["delivery"]) == ("toBot", True, 2, None)
        assert hi["activity"]["text"] == "hi"
        (delivery,) = [c for c in changes if c["op"] == "delivery"]
        assert delivery["id"] == posted
        assert delivery["delivery"]["status"] == 201 and delivery["delivery"]["error"] is None
        assert isinstance(delivery["delivery"]["durationMs"], float)
        (echo,) = [c["entry"] for c in changes[1:] if c["op"] == "entry"]
        assert (echo["direction"], echo["stored"], echo["seq"]) == ("toClient", True, 3)
        assert echo["activity"]["text"] == "echo: hi" and echo["activity"]["replyToId"] == posted
        # the bot replied before it answered
        assert [c["op"] for c in changes] == ["entry", "entry", "delivery"]
    # what came live is what the transcript shows
    entries = _conversation(service, conv)["entries"]
    assert _entry(entries, posted)["delivery"] == delivery["delivery"]
    assert _entry(entries, echo["id"])["activity"] == echo["activity"]


def test_a_new_user_is_announced_live(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    with live(_live_url(service, conv)) as feed:
        feed.next()
        posted = v3.say(conv, "hello", user="newcomer")
        changes = feed.until(lambda cs: any(_is(c, "delivery", posted) for c in cs))
    updates = [c["entry"] for c in changes if c["op"] == "entry" and c["entry"]["type"] == "conversationUpdate"]
    assert len(updates) == 1
    (update,) = updates
    assert update["stored"] is False and update["direction"] == "toBot"
    assert update["activity"]["membersAdded"] == [{"id": "newcomer"}]
    assert update["delivery"]["status"] == 201


def test_typing_from_the_client_arrives_live_unstored(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    with live(_live_url(service, conv)) as feed:
        feed.next()
        typing_id = v3.send(conv, {"type": "typing", "from": {"id": "u1"}})
        first = feed.next()
        assert _is(first, "entry", typing_id)
        entry = first["entry"]
        assert (entry["type"], entry["stored"], entry["seq"], entry["direction"]) == ("typing", False, None, "toBot")
        # then again with what the bot did with it (the page replaces the entry by id); the recording bot
        # answers every activity, typing too, with an echo in between
        changes = feed.until(lambda cs: any(_is(c, "entry", typing_id) for c in cs))
    again = changes[-1]["entry"]
    assert again["stored"] is False and again["delivery"]["status"] == 201 and again["activity"]["type"] == "typing"
    assert [c["entry"]["activity"].get("replyToId") for c in changes[:-1]] == [typing_id]


def test_typing_from_the_bot_arrives_live_as_sent_to_the_client(service: Service) -> None:
    v3 = V3(service)
    conv = _start(service)
    with live(_live_url(service, conv)) as feed:
        feed.next()
        v3.say(conv, "typing")  # the recording bot sends typing, an event, then the echo
        changes = feed.until(lambda cs: any(c["op"] == "delivery" for c in cs))
    entries = [c["entry"] for c in changes if c["op"] == "entry"]
    assert [(e["type"], e["direction"], e["stored"]) for e in entries] == [
        ("message", "toBot", True),
        ("typing", "toClient", False),
        ("event", "toClient", True),
        ("message", "toClient", True),
    ]


def test_bot_updates_and_deletions_arrive_live(service: Service) -> None:
    conv = _start(service)
    said = bot_says(service, conv, "draft")
    path = f"/v3/conversations/{quoted(conv)}/activities/{quoted(said)}"
    with live(_live_url(service, conv)) as feed:
        feed.next()
        assert service.http.put(path, json={"type": "message", "text": "final"}).status_code == 200
        change = feed.next()
        assert _is(change, "entry", said)
        entry = change["entry"]
        assert (entry["seq"], entry["stored"], entry["direction"]) == (2, True, "toClient")
        assert entry["activity"]["text"] == "final"
        assert service.http.delete(path).status_code == 200
        assert feed.next() == {"op": "delete", "id": said}
        # and something new after that still arrives
        later = bot_says(service, conv, "later")
        assert _is(feed.next(), "entry", later)


def test_the_live_feed_is_per_conversation(service: Service) -> None:
    conv = _start(service)
    other = _start(service)
    with live(_live_url(service, conv)) as feed:
        feed.next()
        bot_says(service, other, "elsewhere")
        mine = bot_says(service, conv, "here")
        assert _is(feed.next(), "entry", mine)


def test_a_failed_delivery_arrives_live(service: Service) -> None:
    v3 = V3(service, DOWN_SECRET)
    conv = _start(service, DOWN_SECRET)
    with live(_live_url(service, conv)) as feed:
        feed.next()
        r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": "x"})
        assert r.status_code == 502
        (posted,) = [e["id"] for e in _conversation(service, conv)["entries"] if e["stored"]]
        changes = feed.until(lambda cs: any(_is(c, "delivery", posted) for c in cs))
    (delivery,) = [c["delivery"] for c in changes if _is(c, "delivery", posted)]
    assert delivery["status"] is None and delivery["error"] == "BotUnavailable"


def test_a_huge_session_cookie_is_refused(service: Service) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={'9' * 5000}.x"}
    assert service.http.get("/inspect", headers=cookie).status_code == 401
    error(service.http.get("/admin/status", headers=cookie), 401, "Unauthorized")


def test_a_huge_limit_is_400(service: Service) -> None:
    answer = service.http.get("/admin/conversations", headers=BEARER, params={"limit": "9" * 5000})
    error(answer, 400, "BadArgument")


def test_a_non_ascii_session_cookie_is_refused(service: Service) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}=99999999999.%C3%A9x"}
    assert service.http.get("/inspect", headers=cookie).status_code == 401
    error(service.http.get("/admin/status", headers=cookie), 401, "Unauthorized")
    raw = httpx.Headers([(b"cookie", f"{SESSION_COOKIE}=99999999999.\xe9x".encode("latin-1"))])
    error(service.http.get("/admin/status", headers=raw), 401, "Unauthorized")


def test_admin_answers_are_not_cached(service: Service) -> None:
    answer = service.http.get("/admin/status", headers=BEARER)
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"


# deleting a conversation


def test_deleting_a_conversation_needs_the_admin_credential(service: Service) -> None:
    conv = _start(service)
    for headers in ({}, {"Authorization": f"Bearer {REC_SECRET}"}, {"Cookie": f"{SESSION_COOKIE}=1.x"}):
        error(service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=headers), 401, "Unauthorized")
    cookie = {"Cookie": f"{SESSION_COOKIE}={_session(service)}"}
    refused = service.http.delete(f"/admin/conversations/{quoted(conv)}", headers={**cookie, "Origin": FOREIGN})
    error(refused, 403, "Forbidden")
    assert _conversation(service, conv)["conversation"]["id"] == conv, "nothing deleted"
    own = service.http.delete(f"/admin/conversations/{quoted(conv)}", headers={**cookie, "Origin": service.url})
    assert own.status_code == 204, own.text


@pytest.mark.parametrize("conv", ["nosuch", "a%7Cb", "x" * 300])
def test_deleting_an_unknown_conversation_is_404(service: Service, conv: str) -> None:
    error(service.http.delete(f"/admin/conversations/{conv}", headers=BEARER), 404, "NotFound")


def test_a_deleted_conversation_is_gone_from_every_api(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    other = _start(service)
    r = v3.post(f"/conversations/{conv}/upload?userId=u1", files=[("file", ("notes.txt", b"notes", "text/plain"))])
    assert r.status_code == 200, r.text
    (attachment,) = next(a for a in v3.activities(conv)["activities"] if a.get("attachments"))["attachments"]
    assert httpx.get(attachment["contentUrl"]).content == b"notes"

    r = service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER)
    assert r.status_code == 204 and r.content == b"" and r.headers["cache-control"] == "no-store"
    error(service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER), 404, "NotFound")
    error(service.http.get(f"/admin/conversations/{quoted(conv)}", headers=BEARER), 404, "NotFound")
    assert conv not in [c["id"] for c in _get(service, "/admin/conversations")["conversations"]]
    error(v3.get(f"/conversations/{conv}/activities"), 404, "NotFound")
    error(v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}}), 404, "NotFound")
    assert httpx.get(attachment["contentUrl"]).status_code == 404
    v1 = service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET))
    assert v1.status_code == 404, v1.text
    connector = service.http.get(f"/v3/conversations/{quoted(conv)}/members")
    assert connector.status_code == 404, connector.text
    # the other conversation goes on
    assert V3(service).say(other, "still here")
    assert other in [c["id"] for c in _get(service, "/admin/conversations")["conversations"]]


def test_deleting_a_conversation_ends_its_streams_and_live_feeds(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    other = v3.start({"user": {"id": "u2"}})
    with stream(start["streamUrl"]) as s, stream(other["streamUrl"]) as t, live(_live_url(service, conv)) as feed:
        s.frame()  # the welcome
        t.frame()
        assert feed.next()["op"] == "snapshot"
        assert service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER).status_code == 204
        assert feed.until(lambda changes: bool(changes) and changes[-1]["op"] == "gone")[-1]["message"]
        with pytest.raises(ConnectionClosed):
            feed.next()
        with pytest.raises(ConnectionClosed):
            s.frame()
        # another conversation's stream is not touched
        v3.say(other["conversationId"], "hi", user="u2")
        assert [a["text"] for a in t.activities(2)] == ["hi", "echo: hi"]
    # a new stream is refused
    status, body = _refused(start["streamUrl"])
    assert status == 404 and body["error"]["code"] == "NotFound"


# (method, path with {c} for the conversation and {a} for an activity of it, JSON body, credential: "secret" or
# "bot" (the connector's, none needed by the test service))
_CONVERSATION_ROUTES = [
    ("GET", "/v3/directline/conversations/{c}", None, "secret"),
    ("GET", "/v3/directline/conversations/{c}/activities", None, "secret"),
    ("POST", "/v3/directline/conversations/{c}/activities", {"type": "message", "from": {"id": "u1"}}, "secret"),
    ("POST", "/api/conversations/{c}/messages", {"text": "hi", "from": "u1"}, "secret"),
    ("GET", "/api/conversations/{c}/messages", None, "secret"),
    ("POST", "/v3/conversations/{c}/activities", {"type": "message", "text": "hi"}, "bot"),
    ("POST", "/v3/conversations/{c}/activities/{a}", {"type": "message", "text": "hi"}, "bot"),
    ("PUT", "/v3/conversations/{c}/activities/{a}", {"type": "message", "text": "hi"}, "bot"),
    ("DELETE", "/v3/conversations/{c}/activities/{a}", None, "bot"),
    ("GET", "/v3/conversations/{c}/activities/{a}/members", None, "bot"),
    ("POST", "/v3/conversations/{c}/activities/history", {"activities": []}, "bot"),
    ("GET", "/v3/conversations/{c}/members", None, "bot"),
    ("GET", "/v3/conversations/{c}/pagedmembers", None, "bot"),
    ("GET", "/v3/conversations/{c}/members/u1", None, "bot"),
    ("DELETE", "/v3/conversations/{c}/members/u1", None, "bot"),
    (
        "POST",
        "/v3/conversations/{c}/attachments",
        {"type": "text/plain", "name": "a.txt", "originalBase64": "aGk="},
        "bot",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "credential"), _CONVERSATION_ROUTES)
def test_every_route_of_a_deleted_conversation_is_404(
    service: Service, method: str, path: str, body: Any, credential: str
) -> None:
    conv = _start(service)
    said = V3(service).say(conv, "hi")
    assert service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER).status_code == 204
    headers = {"Authorization": f"Bearer {REC_SECRET}"} if credential == "secret" else {}
    url = path.format(c=quoted(conv), a=quoted(said))
    r = service.http.request(method, url, headers=headers, **({"json": body} if body is not None else {}))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "NotFound", "in the error shape of the route's API"
