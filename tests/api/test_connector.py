"""The connector API bots call: send and reply routes, members, and its error shape."""

from __future__ import annotations

import urllib.parse

import httpx

from tests.api.conftest import Service


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"error": {"code": code, "message": r.json()["error"]["message"]}}


def test_send_and_reply_routes(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "u", "text": "hi"}).status_code == 204
    user_id = f"{conv}|0000001"
    r = service.http.post(f"/v3/conversations/{conv}/activities", json={"type": "message", "text": "proactive"})
    assert r.status_code == 200 and r.json()["id"].startswith(conv + "|")
    encoded = urllib.parse.quote(user_id, safe="")
    r = service.http.post(
        f"/v3/conversations/{conv}/activities/{encoded}",
        json={"type": "message", "text": "reply", "from": {"id": "impostor", "name": "Named"}, "id": "mine"},
    )
    assert r.status_code == 200
    reply_id = r.json()["id"]
    page = service.messages(conv)["messages"]
    assert [(m["from"], m["text"]) for m in page[-2:]] == [("rec", "proactive"), ("rec", "reply")]
    assert page[-1]["id"] == reply_id.replace("|", "|00000000000")
    stored = service.stored(conv)[-1]
    assert stored["replyToId"] == user_id and stored["from"] == {"id": "rec", "name": "Named", "role": "bot"}


def test_reply_fields_are_stamped(service: Service) -> None:
    conv = service.start()["conversationId"]
    r = service.http.post(
        f"/v3/conversations/{conv}/activities/{conv}%7C0000009",
        json={"type": "message", "text": "t", "channelId": "other", "conversation": {"id": "x"}, "serviceUrl": "y"},
    )
    assert r.status_code == 200
    (item,) = service.stored(conv)
    assert item["channelId"] == "directline" and item["conversation"] == {"id": conv}
    assert item["replyToId"] == f"{conv}|0000009"
    assert item["from"] == {"id": "rec", "name": "Recording Bot", "role": "bot"}
    assert "serviceUrl" not in item


def test_members(service: Service) -> None:
    conv = service.start()["conversationId"]
    service.send(conv, {"from": "alice", "text": "a"})
    service.send(conv, {"from": "bob", "text": "b"})
    expected = [
        {"id": "rec", "name": "Recording Bot", "role": "bot"},
        {"id": "alice", "role": "user"},
        {"id": "bob", "role": "user"},
    ]
    assert service.http.get(f"/v3/conversations/{conv}/members").json() == expected
    r = service.http.get(f"/v3/conversations/{conv}/activities/{conv}%7C0000001/members")
    assert r.status_code == 200 and r.json() == expected
    _error(service.http.get(f"/v3/conversations/{conv}/activities/elsewhere%7C0000001/members"), 404, "NotFound")
    _error(service.http.get(f"/v3/conversations/{conv}/activities/{conv}%7C0000999/members"), 404, "NotFound")


def test_v3_errors(service: Service) -> None:
    conv = service.start()["conversationId"]
    _error(service.http.post("/v3/conversations/nosuch/activities", json={"type": "message"}), 404, "NotFound")
    _error(service.http.get("/v3/conversations/nosuch/members"), 404, "NotFound")
    _error(service.http.post(f"/v3/conversations/{conv}/activities", content=b"{oops"), 400, "BadArgument")
    _error(service.http.post(f"/v3/conversations/{conv}/activities", json=["x"]), 400, "BadArgument")
    _error(service.http.post(f"/v3/conversations/{conv}/activities", json={"text": "no type"}), 400, "MissingProperty")
    _error(service.http.post(f"/v3/conversations/{conv}/activities", json={"type": 5}), 400, "BadArgument")
    for bad in ({"attachments": 5}, {"attachments": {"a": 1}}, {"attachments": [1]}, {"text": 7}, {"channelData": "x"}):
        r = service.http.post(f"/v3/conversations/{conv}/activities", json={"type": "message", **bad})
        _error(r, 400, "BadArgument")
    assert service.messages(conv)["messages"] == []
