"""The connector API's activity operations beyond send and reply: update (PUT), delete, and conversation history."""

from __future__ import annotations

import pytest

from tests.api._connector import bot_says, error, next_event, no_event, quoted, subscribe
from tests.api.conftest import MAX_UPLOAD, Service


def _path(conv: str, activity_id: str) -> str:
    return f"/v3/conversations/{conv}/activities/{quoted(activity_id)}"


def _texts(service: Service, conv: str) -> list[tuple[str, str]]:
    return [(m["from"], m["text"]) for m in service.all_messages(conv)]


# update


def test_update_replaces_the_activity_in_place(service: Service) -> None:
    conv = service.start()["conversationId"]
    first = bot_says(service, conv, "draft")
    second = bot_says(service, conv, "after")
    before = service.stored(conv)[0]
    subscription = subscribe(service, conv)
    try:
        r = service.http.put(_path(conv, first), json={"type": "message", "text": "final", "id": "ignored"})
        assert r.status_code == 200 and r.json() == {"id": first}
        event = next_event(service, subscription)
        assert event.seq is None and event.activity["id"] == first and event.activity["text"] == "final"
    finally:
        subscription.close()
    # the 1.1 read path shows the new text at the same place and id
    messages = service.all_messages(conv)
    assert [(m["id"], m["text"]) for m in messages] == [
        (first.replace("|", "|00000000000"), "final"),
        (second.replace("|", "|00000000000"), "after"),
    ]
    after = service.stored(conv)[0]
    assert after["timestamp"] == before["timestamp"]
    assert after["from"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert after["conversation"] == {"id": conv} and after["channelId"] == "directline"


def test_update_errors(service: Service) -> None:
    conv = service.start()["conversationId"]
    other = service.start()["conversationId"]
    activity_id = bot_says(service, conv, "x")
    message = {"type": "message", "text": "y"}
    error(service.http.put(_path(conv, f"{conv}|0000099"), json=message), 404, "NotFound")
    error(service.http.put(_path(conv, f"{other}|0000001"), json=message), 404, "NotFound")
    error(service.http.put(_path(conv, f"{conv}|tTypingId"), json=message), 404, "NotFound")
    error(service.http.put(_path(conv, "history"), json=message), 404, "NotFound")
    error(service.http.put(_path("nosuch", "nosuch|0000001"), json=message), 404, "NotFound")
    error(service.http.put(_path(conv, activity_id), content=b"{oops"), 400, "BadArgument")
    error(service.http.put(_path(conv, activity_id), content=b""), 400, "BadArgument")
    error(service.http.put(_path(conv, activity_id), json=["x"]), 400, "BadArgument")
    error(service.http.put(_path(conv, activity_id), json={"text": "no type"}), 400, "MissingProperty")
    error(service.http.put(_path(conv, activity_id), json={"type": "message", "text": 5}), 400, "BadArgument")
    big = {"type": "message", "text": "x" * (MAX_UPLOAD + 1)}
    error(service.http.put(_path(conv, activity_id), json=big), 413, "BadArgument")
    assert _texts(service, conv) == [("rec", "x")]


def test_update_a_deleted_activity_is_not_found(service: Service) -> None:
    conv = service.start()["conversationId"]
    activity_id = bot_says(service, conv, "x")
    assert service.http.delete(_path(conv, activity_id)).status_code == 200
    error(service.http.put(_path(conv, activity_id), json={"type": "message", "text": "y"}), 404, "NotFound")


# delete


def test_delete_removes_the_activity(service: Service) -> None:
    conv = service.start()["conversationId"]
    first = bot_says(service, conv, "one")
    bot_says(service, conv, "two")
    subscription = subscribe(service, conv)
    try:
        r = service.http.delete(_path(conv, first))
        assert r.status_code == 200 and r.content == b""
        event = next_event(service, subscription)
        assert event.seq is None and event.removed and event.activity["id"] == first
        assert (event.activity["type"], event.activity["name"]) == ("event", "messageDelete")
    finally:
        subscription.close()
    assert _texts(service, conv) == [("rec", "two")]
    error(service.http.delete(_path(conv, first)), 404, "NotFound")


def test_delete_errors(service: Service) -> None:
    conv = service.start()["conversationId"]
    other = service.start()["conversationId"]
    bot_says(service, conv, "kept")
    error(service.http.delete(_path(conv, f"{conv}|0000099")), 404, "NotFound")
    error(service.http.delete(_path(conv, f"{other}|0000001")), 404, "NotFound")
    error(service.http.delete(_path(conv, "garbage")), 404, "NotFound")
    error(service.http.delete(_path("nosuch", "nosuch|0000001")), 404, "NotFound")
    assert _texts(service, conv) == [("rec", "kept")]


# history


def test_history_stores_each_activity_with_its_own_sender(service: Service) -> None:
    conv = service.start()["conversationId"]
    subscription = subscribe(service, conv)
    transcript = {
        "activities": [
            {
                "type": "message",
                "text": "earlier question",
                "from": {"id": "alice", "name": "Alice", "role": "user"},
                "recipient": {"id": "rec"},
                "id": "old-1",
                "timestamp": "2020-01-01T00:00:00.000Z",
                "channelId": "webchat",
                "conversation": {"id": "old-conversation"},
                "serviceUrl": "http://old",
                "channelData": {"kept": True},
            },
            {"type": "typing", "from": {"id": "alice"}},
            {"type": "message", "text": "earlier answer"},
            {"type": "event", "name": "note", "from": {"id": "system"}},
        ]
    }
    try:
        r = service.http.post(f"/v3/conversations/{conv}/activities/history", json=transcript)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": f"{conv}|0000003"}
        events = [next_event(service, subscription) for _ in range(3)]
        assert [e.seq for e in events] == [1, 2, 3]
        no_event(service, subscription)
    finally:
        subscription.close()
    stored = service.stored(conv)
    assert [a["type"] for a in stored] == ["message", "message", "event"]
    first = stored[0]
    assert first["from"] == {"id": "alice", "name": "Alice", "role": "user"}
    assert first["id"] == f"{conv}|0000001" and first["timestamp"] != "2020-01-01T00:00:00.000Z"
    assert first["conversation"] == {"id": conv} and first["channelId"] == "directline"
    assert "serviceUrl" not in first and "replyToId" not in first
    assert first["channelData"] == {"kept": True} and first["recipient"] == {"id": "rec"}
    assert stored[1]["from"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert stored[2]["from"] == {"id": "system"}
    # the 1.1 read path shows the history like any other messages
    assert _texts(service, conv) == [("alice", "earlier question"), ("rec", "earlier answer")]


def test_history_is_not_a_reply(service: Service) -> None:
    """`/activities/history` wins over the reply route `/activities/{activityId}`."""
    conv = service.start()["conversationId"]
    r = service.http.post(f"/v3/conversations/{conv}/activities/history", json={"activities": []})
    assert r.status_code == 200 and r.json() == {"id": ""}
    r = service.http.post(f"/v3/conversations/{conv}/activities/history", json={"type": "message", "text": "x"})
    error(r, 400, "MissingProperty")
    assert service.stored(conv) == []


def test_history_of_only_typing_stores_nothing(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = service.http.post(f"/v3/conversations/{conv}/activities/history", json={"activities": [{"type": "typing"}]})
    assert r.status_code == 200 and r.json() == {"id": ""}
    assert service.stored(conv) == []


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (["x"], "BadArgument", ""),
        ({"activities": None}, "MissingProperty", ""),
        ({"activities": {"type": "message"}}, "BadArgument", ""),
        ({"activities": [{"type": "message", "text": "ok"}, "x"]}, "BadArgument", "activities[1]"),
        ({"activities": [{"type": "message", "text": "ok"}, {"text": "no type"}]}, "MissingProperty", "activities[1]"),
        ({"activities": [{"type": "message", "from": "alice"}]}, "BadArgument", "activities[0]"),
        ({"activities": [{"type": "message", "from": {"name": "A"}}]}, "MissingProperty", "activities[0]"),
        ({"activities": [{"type": "message", "attachments": 3}]}, "BadArgument", "activities[0]"),
    ],
)
def test_bad_history_stores_nothing(service: Service, body: object, code: str, where: str) -> None:
    conv = service.start()["conversationId"]
    message = error(service.http.post(f"/v3/conversations/{conv}/activities/history", json=body), 400, code)
    assert message.startswith(where)
    assert service.stored(conv) == []


def test_history_errors(service: Service) -> None:
    conv = service.start()["conversationId"]
    error(service.http.post("/v3/conversations/nosuch/activities/history", json={"activities": []}), 404, "NotFound")
    error(service.http.post(f"/v3/conversations/{conv}/activities/history", content=b"{"), 400, "BadArgument")
    error(service.http.post(f"/v3/conversations/{conv}/activities/history", content=b""), 400, "BadArgument")
    big = {"activities": [{"type": "message", "text": "x" * (MAX_UPLOAD + 1)}]}
    error(service.http.post(f"/v3/conversations/{conv}/activities/history", json=big), 413, "BadArgument")
    error(service.http.get(f"/v3/conversations/{conv}/activities/history"), 405, "BadArgument")


def test_files_uploaded_with_an_activity_go_with_it(service: Service) -> None:
    """A bot deletes (or replaces without them) an activity that came with files: the files are gone too."""
    from tests.api._v3 import V3

    v3 = V3(service)
    conv = v3.start()["conversationId"]
    ids = []
    for name in ("one.png", "two.png"):
        r = v3.post(
            f"/conversations/{conv}/upload?userId=u1",
            content=b"\x89PNG " + name.encode(),
            headers={"Content-Type": "image/png", "Content-Disposition": f'name="file"; filename="{name}"'},
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    urls = {a["id"]: a["attachments"][0]["contentUrl"] for a in service.stored(conv) if a.get("attachments")}
    assert [service.http.get(urls[i]).status_code for i in ids] == [200, 200]
    assert service.http.delete(_path(conv, ids[0])).status_code == 200
    assert service.http.get(urls[ids[0]]).status_code == 404, "deleted with its activity"
    edited = service.http.put(_path(conv, ids[1]), json={"type": "message", "text": "no picture any more"})
    assert edited.status_code == 200
    assert service.http.get(urls[ids[1]]).status_code == 404, "dropped by the new version"


def test_a_replacement_that_keeps_its_files_keeps_them(service: Service) -> None:
    from tests.api._v3 import V3

    v3 = V3(service)
    conv = v3.start()["conversationId"]
    r = v3.post(
        f"/conversations/{conv}/upload?userId=u1",
        content=b"\x89PNG kept",
        headers={"Content-Type": "image/png", "Content-Disposition": 'name="file"; filename="kept.png"'},
    )
    activity_id = r.json()["id"]
    (stored,) = [a for a in service.stored(conv) if a["id"] == activity_id]
    edited = {"type": "message", "text": "a caption", "attachments": stored["attachments"]}
    assert service.http.put(_path(conv, activity_id), json=edited).status_code == 200
    assert service.http.get(stored["attachments"][0]["contentUrl"]).content == b"\x89PNG kept"
