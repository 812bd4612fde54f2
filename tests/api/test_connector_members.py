"""The connector API's member operations: one member, paged members, removing a member."""

from __future__ import annotations

import pytest

from tests.api._connector import create, error, quoted
from tests.api.conftest import Service

BOT = {"id": "rec", "name": "Recording Bot", "role": "bot"}


def _conversation_with(service: Service, count: int) -> tuple[str, list[dict[str, str]]]:
    """A bot-created conversation with `count` users; its id and every member (the bot first)."""
    users = [{"id": f"u{i}", "name": f"User {i}"} for i in range(count)]
    conv = create(service, members=users)["id"]
    return conv, [BOT, *({**u, "role": "user"} for u in users)]


# one member


def test_get_one_member(service: Service) -> None:
    conv = service.start()["conversationId"]
    service.send(conv, {"from": "alice", "text": "a"})
    service.send(conv, {"from": "a/b c|d", "text": "b"})
    assert service.http.get(f"/v3/conversations/{conv}/members/alice").json() == {"id": "alice", "role": "user"}
    r = service.http.get(f"/v3/conversations/{conv}/members/{quoted('a/b c|d')}")
    assert r.status_code == 200 and r.json() == {"id": "a/b c|d", "role": "user"}
    assert service.http.get(f"/v3/conversations/{conv}/members/rec").json() == BOT
    error(service.http.get(f"/v3/conversations/{conv}/members/bob"), 404, "NotFound")
    error(service.http.get(f"/v3/conversations/{conv}/members/ALICE"), 404, "NotFound")
    error(service.http.get("/v3/conversations/nosuch/members/alice"), 404, "NotFound")


# paged members


def test_paged_members_walk_with_the_token(service: Service) -> None:
    conv, everyone = _conversation_with(service, 6)
    seen: list[dict[str, str]] = []
    tokens: list[str | None] = []
    params: dict[str, str] = {"pageSize": "3"}
    while True:
        r = service.http.get(f"/v3/conversations/{conv}/pagedmembers", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"members", "continuationToken"}
        seen += page["members"]
        tokens.append(page["continuationToken"])
        if page["continuationToken"] is None:
            break
        params["continuationToken"] = page["continuationToken"]
    assert seen == everyone
    assert len(tokens) == 3 and tokens[-1] is None


@pytest.mark.parametrize(("size", "pages"), [("7", 1), ("1", 7), ("6", 2), ("500", 1)])
def test_paged_members_page_sizes(service: Service, size: str, pages: int) -> None:
    conv, everyone = _conversation_with(service, 6)
    r = service.http.get(f"/v3/conversations/{conv}/pagedmembers", params={"pageSize": size})
    first = r.json()
    assert first["members"] == everyone[: int(size)]
    assert (first["continuationToken"] is None) == (pages == 1)


def test_paged_members_default_and_the_end(service: Service) -> None:
    conv, everyone = _conversation_with(service, 2)
    assert service.http.get(f"/v3/conversations/{conv}/pagedmembers").json() == {
        "members": everyone,
        "continuationToken": None,
    }
    r = service.http.get(f"/v3/conversations/{conv}/pagedmembers", params={"pageSize": "", "continuationToken": ""})
    assert r.json()["members"] == everyone
    r = service.http.get(f"/v3/conversations/{conv}/pagedmembers", params={"continuationToken": "50"})
    assert r.json() == {"members": [], "continuationToken": None}


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": "0"},
        {"pageSize": "501"},
        {"pageSize": "-3"},
        {"pageSize": "two"},
        {"pageSize": "2.5"},
        {"continuationToken": "abc"},
        {"continuationToken": "-1"},
        {"continuationToken": "99999999999"},
    ],
)
def test_paged_members_bad_parameters(service: Service, params: dict[str, str]) -> None:
    conv, _ = _conversation_with(service, 1)
    error(service.http.get(f"/v3/conversations/{conv}/pagedmembers", params=params), 400, "BadArgument")


def test_paged_members_of_an_unknown_conversation(service: Service) -> None:
    error(service.http.get("/v3/conversations/nosuch/pagedmembers"), 404, "NotFound")


# removing a member


def test_delete_member(service: Service) -> None:
    conv, everyone = _conversation_with(service, 3)
    r = service.http.delete(f"/v3/conversations/{conv}/members/u1")
    assert r.status_code == 200 and r.content == b""
    remaining = [m for m in everyone if m["id"] != "u1"]
    assert service.http.get(f"/v3/conversations/{conv}/members").json() == remaining
    error(service.http.get(f"/v3/conversations/{conv}/members/u1"), 404, "NotFound")
    error(service.http.delete(f"/v3/conversations/{conv}/members/u1"), 404, "NotFound")
    error(service.http.delete(f"/v3/conversations/{conv}/members/rec"), 400, "BadArgument")
    error(service.http.delete("/v3/conversations/nosuch/members/u0"), 404, "NotFound")
    assert service.http.get(f"/v3/conversations/{conv}/members").json() == remaining


def test_a_removed_user_who_posts_again_joins_again(service: Service) -> None:
    conv = service.start()["conversationId"]
    assert service.send(conv, {"from": "alice", "text": "one"}).status_code == 204
    assert service.http.delete(f"/v3/conversations/{conv}/members/alice").status_code == 200
    assert service.send(conv, {"from": "alice", "text": "two"}).status_code == 204
    added = [u["membersAdded"] for u in service.bot.of(conv, "conversationUpdate")]
    assert added == [[{"id": "rec", "name": "Recording Bot"}], [{"id": "alice"}], [{"id": "alice"}]]
    assert service.http.get(f"/v3/conversations/{conv}/members/alice").status_code == 200
