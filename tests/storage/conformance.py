"""The storage conformance suite: every `ConversationStore` backend must pass these (see `conftest.BACKENDS`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from openline.storage.base import (
    ConversationDeleted,
    ConversationStore,
    ConversationSummary,
    Delivery,
    Member,
    StoredFile,
    UnknownConversation,
)

Run = Callable[[Coroutine[Any, Any, Any]], Any]

T0 = 1_700_000_000.0


def _ts(activity: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(activity["timestamp"])


def _file(conversation_id: str, file_id: str, created_at: float, data: bytes = b"") -> StoredFile:
    data = data or bytes(range(256)) * 41
    return StoredFile(file_id, conversation_id, f"{file_id}.bin", "application/octet-stream", data, created_at)


async def _new(store: ConversationStore, conversation_id: str = "c1", now: float = T0) -> str:
    assert await store.create_conversation(conversation_id, "bot", now)
    return conversation_id


async def _append_texts(store: ConversationStore, conversation_id: str, count: int, now: float = T0) -> None:
    for i in range(count):
        await store.append(conversation_id, {"type": "message", "text": f"m{i + 1}"}, now)


# -- conversations ------------------------------------------------------------------------------------


def test_create_conversation_once(store: ConversationStore, run: Run) -> None:
    assert run(store.create_conversation("c1", "bot-a", T0)) is True
    assert run(store.create_conversation("c1", "bot-b", T0 + 5)) is False
    conversation = run(store.get_conversation("c1"))
    assert (conversation.id, conversation.bot_id, conversation.created_at) == ("c1", "bot-a", T0)


def test_create_conversation_concurrent_exactly_one_wins(store: ConversationStore, run: Run) -> None:
    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(store.create_conversation("c1", f"bot{i}", T0) for i in range(30))))

    results = run(scenario())
    assert results.count(True) == 1
    assert run(store.get_conversation("c1")).bot_id == f"bot{results.index(True)}"


def test_get_unknown_conversation_is_none(store: ConversationStore, run: Run) -> None:
    assert run(store.get_conversation("nope")) is None


def test_unknown_conversation_raises(store: ConversationStore, run: Run) -> None:
    with pytest.raises(UnknownConversation):
        run(store.add_member("nope", Member("u1")))
    with pytest.raises(UnknownConversation):
        run(store.members("nope"))
    with pytest.raises(UnknownConversation):
        run(store.append("nope", {"type": "message"}, T0))
    with pytest.raises(UnknownConversation):
        run(store.read("nope", 0, 10, T0))
    assert run(store.get_file("nope", "f1", T0)) is None
    assert run(store.get_conversation("nope")) is None  # a failed append does not create it


# -- members ------------------------------------------------------------------------------------------


def test_members_added_once_in_order(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    assert run(store.members("c1")) == []
    assert run(store.add_member("c1", Member("u2", "Zed"))) is True
    assert run(store.add_member("c1", Member("u1", "Alice"))) is True
    assert run(store.add_member("c1", Member("u2", "Renamed"))) is False
    assert run(store.add_member("c1", Member("bot"))) is True
    assert run(store.members("c1")) == [Member("u2", "Zed"), Member("u1", "Alice"), Member("bot", None)]


def test_add_member_concurrent_exactly_one_wins(store: ConversationStore, run: Run) -> None:
    run(_new(store))

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(store.add_member("c1", Member("u1", f"n{i}")) for i in range(30))))

    results = run(scenario())
    assert results.count(True) == 1
    assert run(store.members("c1")) == [Member("u1", f"n{results.index(True)}")]


def test_members_are_per_conversation(store: ConversationStore, run: Run) -> None:
    run(_new(store, "a"))
    run(_new(store, "b"))
    assert run(store.add_member("a", Member("u1")))
    assert run(store.add_member("b", Member("u1")))
    assert run(store.members("a")) == run(store.members("b")) == [Member("u1")]


# -- append -------------------------------------------------------------------------------------------


def test_append_sets_id_and_timestamp_in_place(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    activity: dict[str, Any] = {"type": "message", "text": "hi", "id": "client-id", "timestamp": "bogus"}
    stored = run(store.append("c1", activity, T0 + 0.25))
    assert stored.seq == 1
    assert activity["id"] == "c1|0000001"
    assert activity["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert stored.activity == activity
    assert run(store.read("c1", 0, 10, T0))[0].activity == activity


def test_append_sequence_has_no_gaps(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    seqs = [run(store.append("c1", {"type": "message"}, T0)).seq for _ in range(3)]
    assert seqs == [1, 2, 3]


def test_concurrent_appends_are_gapless_and_ordered(store: ConversationStore, run: Run) -> None:
    run(_new(store))

    async def scenario() -> list[Any]:
        return list(
            await asyncio.gather(*(store.append("c1", {"type": "message", "text": str(i)}, T0) for i in range(50)))
        )

    results = run(scenario())
    assert sorted(r.seq for r in results) == list(range(1, 51))
    for r in results:
        assert r.activity["id"] == f"c1|{r.seq:07d}"
    stored = run(store.read("c1", 0, 100, T0))
    assert [s.seq for s in stored] == list(range(1, 51))
    by_seq = {r.seq: r.activity for r in results}
    assert [s.activity for s in stored] == [by_seq[seq] for seq in range(1, 51)]
    stamps = [_ts(s.activity) for s in stored]
    assert all(a < b for a, b in itertools.pairwise(stamps))


def test_timestamps_strictly_increase_when_the_clock_stalls_or_goes_back(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    nows = [T0 + 10, T0 + 10, T0 + 10, T0 + 5, T0 + 9.9995, T0 + 20]
    stamps = [_ts(run(store.append("c1", {"type": "message"}, now)).activity) for now in nows]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert stamps[0] == dt.datetime.fromtimestamp(T0 + 10, dt.UTC)
    assert stamps[1] - stamps[0] == dt.timedelta(milliseconds=1)
    assert stamps[-1] == dt.datetime.fromtimestamp(T0 + 20, dt.UTC)  # back to the clock once it is ahead


def test_conversations_have_independent_sequences(store: ConversationStore, run: Run) -> None:
    run(_new(store, "a"))
    run(_new(store, "b"))
    for conversation_id in ["a", "b", "a", "a", "b"]:
        run(store.append(conversation_id, {"type": "message", "text": conversation_id}, T0))
    a = run(store.read("a", 0, 10, T0))
    b = run(store.read("b", 0, 10, T0))
    assert [(s.seq, s.activity["id"], s.activity["text"]) for s in a] == [
        (1, "a|0000001", "a"),
        (2, "a|0000002", "a"),
        (3, "a|0000003", "a"),
    ]
    assert [(s.seq, s.activity["id"], s.activity["text"]) for s in b] == [(1, "b|0000001", "b"), (2, "b|0000002", "b")]


def test_stored_activities_are_copies(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    sent: dict[str, Any] = {"type": "message", "text": "original", "attachments": [{"name": "x"}]}
    run(store.append("c1", sent, T0))
    sent["text"] = "changed after append"
    sent["attachments"][0]["name"] = "changed"
    first = run(store.read("c1", 0, 10, T0))[0].activity
    assert first["text"] == "original"
    assert first["attachments"] == [{"name": "x"}]
    first["text"] = "changed by a reader"
    first["attachments"].append({"name": "y"})
    again = run(store.read("c1", 0, 10, T0))[0].activity
    assert again["text"] == "original"
    assert again["attachments"] == [{"name": "x"}]


def test_unicode_and_nested_json_round_trip(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    activity: dict[str, Any] = {
        "type": "message",
        "text": 'héllo wörld \u2014 \U0001f30d \u4e2d\u6587 \u0000 "quoted" \\ \n\t',
        "value": {"nested": [1, -2, 2.5, 2**53, None, True, False, {"deep": {"deeper": ["ok", {}]}}], "empty": []},
        "channelData": {"clé": "välue", "\U0001f600": [{"a": None}]},
    }
    run(store.append("c1", activity, T0))
    assert run(store.read("c1", 0, 1, T0))[0].activity == activity


# -- read ---------------------------------------------------------------------------------------------


def test_read_pages_in_order(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(_append_texts(store, "c1", 10))
    pages: list[list[int]] = []
    after = 0
    while page := run(store.read("c1", after, 3, T0)):
        pages.append([s.seq for s in page])
        assert [s.activity["text"] for s in page] == [f"m{s.seq}" for s in page]
        after = page[-1].seq
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    assert [s.seq for s in run(store.read("c1", 4, 100, T0))] == [5, 6, 7, 8, 9, 10]
    assert [s.seq for s in run(store.read("c1", 7, 1, T0))] == [8]


def test_read_after_the_end_is_empty(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    assert run(store.read("c1", 0, 10, T0)) == []
    run(_append_texts(store, "c1", 2))
    assert run(store.read("c1", 2, 10, T0)) == []
    assert run(store.read("c1", 50, 10, T0)) == []


# -- retention ----------------------------------------------------------------------------------------


def test_expired_activities_are_not_read_and_are_swept(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.append("c1", {"type": "message", "text": "old"}, T0))
    run(store.append("c1", {"type": "message", "text": "new"}, T0 + 50))
    later = T0 + store.retention + 10  # "old" has expired, "new" has not
    assert [s.activity["text"] for s in run(store.read("c1", 0, 10, T0 + 1))] == ["old", "new"]
    assert [(s.seq, s.activity["text"]) for s in run(store.read("c1", 0, 10, later))] == [(2, "new")]
    assert run(store.sweep(later)) > 0
    # gone, even for a reader whose clock says it would still be kept
    assert [s.activity["text"] for s in run(store.read("c1", 0, 10, T0 + 1))] == ["new"]
    assert run(store.sweep(later)) == 0
    # the sequence goes on after a sweep
    assert run(store.append("c1", {"type": "message"}, later)).seq == 3


def test_activity_at_the_retention_edge_is_kept(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.append("c1", {"type": "message"}, T0))
    assert len(run(store.read("c1", 0, 10, T0 + store.retention))) == 1
    assert run(store.read("c1", 0, 10, T0 + store.retention + 1)) == []


def test_read_after_a_hole_left_by_sweep(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.append("c1", {"type": "message"}, T0 + 50))
    run(store.append("c1", {"type": "message"}, T0))  # the clock went back: this one expires first
    run(store.append("c1", {"type": "message"}, T0 + 60))
    later = T0 + store.retention + 5
    run(store.sweep(later))
    assert [s.seq for s in run(store.read("c1", 0, 10, later))] == [1, 3]
    assert [s.seq for s in run(store.read("c1", 1, 10, later))] == [3]
    assert [s.seq for s in run(store.read("c1", 2, 10, later))] == [3]


def test_sweep_of_nothing_removes_nothing(store: ConversationStore, run: Run) -> None:
    assert run(store.sweep(T0)) == 0
    run(_new(store))
    run(_append_texts(store, "c1", 3))
    assert run(store.sweep(T0 + 1)) == 0
    assert len(run(store.read("c1", 0, 10, T0 + 1))) == 3


def test_files_round_trip(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    photo = StoredFile("f1", "c1", "photo é.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\xff" * 1000, T0)
    empty = StoredFile("f2", "c1", "empty.txt", "text/plain", b"", T0)
    run(store.append("c1", {"type": "message", "attachments": []}, T0, [photo, empty]))
    assert run(store.get_file("c1", "f1", T0 + 1)) == photo
    assert run(store.get_file("c1", "f2", T0 + 1)) == empty
    assert run(store.get_file("c1", "unknown", T0 + 1)) is None
    run(_new(store, "c2"))
    assert run(store.get_file("c2", "f1", T0 + 1)) is None  # files belong to their conversation


def test_expired_files_are_hidden_then_swept(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.append("c1", {"type": "message"}, T0, [_file("c1", "old", T0)]))
    run(store.append("c1", {"type": "message"}, T0 + 50, [_file("c1", "new", T0 + 50)]))
    later = T0 + store.retention + 10
    assert run(store.get_file("c1", "old", later)) is None
    assert run(store.get_file("c1", "new", later)) == _file("c1", "new", T0 + 50)
    assert run(store.sweep(later)) > 0
    assert run(store.get_file("c1", "old", T0 + 1)) is None
    assert run(store.get_file("c1", "new", T0 + 51)) == _file("c1", "new", T0 + 50)


def test_idle_conversation_is_deleted_entirely(store: ConversationStore, run: Run) -> None:
    run(_new(store, "idle"))
    run(_new(store, "busy"))
    run(store.add_member("idle", Member("u1", "Alice")))
    run(store.append("idle", {"type": "message"}, T0 + 10, [_file("idle", "f1", T0 + 10)]))
    later = T0 + 10 + store.conversation_ttl + 1
    run(store.append("busy", {"type": "message"}, later - 1))
    # not gone before the sweep runs
    assert run(store.get_conversation("idle")) is not None
    assert run(store.sweep(later)) > 0
    assert run(store.get_conversation("idle")) is None
    for call in (store.read("idle", 0, 10, later), store.members("idle")):
        with pytest.raises(UnknownConversation):
            run(call)
    with pytest.raises(UnknownConversation):
        run(store.append("idle", {"type": "message"}, later))
    assert run(store.get_file("idle", "f1", T0 + 11)) is None
    # the other conversation is untouched
    assert run(store.get_conversation("busy")) is not None
    assert [s.seq for s in run(store.read("busy", 0, 10, later))] == [1]
    # the id can be used again, from scratch
    assert run(store.create_conversation("idle", "bot", later)) is True
    assert run(store.members("idle")) == []
    assert run(store.append("idle", {"type": "message"}, later)).seq == 1


def test_activity_keeps_conversation_alive(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.append("c1", {"type": "message"}, T0 + store.conversation_ttl))
    assert run(store.sweep(T0 + store.conversation_ttl + 1)) == 0
    assert run(store.get_conversation("c1")) is not None


def test_large_sweep_removes_everything_expired(store: ConversationStore, run: Run) -> None:
    run(_new(store))

    async def fill() -> None:
        await asyncio.gather(*(store.append("c1", {"type": "message", "i": i}, T0) for i in range(1200)))

    run(fill())
    run(store.append("c1", {"type": "message", "text": "kept"}, T0 + 500))
    assert run(store.sweep(T0 + 500)) >= 1  # how many "items" a backend counts is its own business
    remaining = run(store.read("c1", 0, 10_000, T0))
    assert [(s.seq, s.activity["text"]) for s in remaining] == [(1201, "kept")]


def test_conversation_reports_its_last_sequence(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    assert run(store.get_conversation("c1")).last_seq == 0  # type: ignore[union-attr]
    for _ in range(3):
        run(store.append("c1", {"type": "message"}, T0))
    assert run(store.get_conversation("c1")).last_seq == 3  # type: ignore[union-attr]
    run(store.sweep(T0 + store.retention + 1))  # retention removes activities, never the position
    assert run(store.get_conversation("c1")).last_seq == 3  # type: ignore[union-attr]


def test_remove_member(store: ConversationStore, run: Run) -> None:
    run(_new(store))
    run(store.add_member("c1", Member("u1", "One")))
    run(store.add_member("c1", Member("u2")))
    assert run(store.remove_member("c1", "u1")) is True
    assert run(store.remove_member("c1", "u1")) is False
    assert [m.id for m in run(store.members("c1"))] == ["u2"]
    assert run(store.add_member("c1", Member("u1", "Again"))) is True
    assert run(store.members("c1"))[-1] == Member("u1", "Again")
    with pytest.raises(UnknownConversation):
        run(store.remove_member("nope", "u1"))


# -- client keys (idempotent appends) ------------------------------------------------------------------


def test_client_key_makes_append_idempotent(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    first = run(store.append(cid, {"type": "message", "text": "a"}, T0, client_key="k1"))
    again = run(store.append(cid, {"type": "message", "text": "a, retried"}, T0 + 1, client_key="k1"))
    assert (first.seq, first.repeated) == (1, False)
    assert (again.seq, again.repeated) == (1, True)
    assert again.activity == first.activity and again.activity["text"] == "a"
    other = run(store.append(cid, {"type": "message", "text": "b"}, T0 + 2, client_key="k2"))
    assert (other.seq, other.repeated) == (2, False)
    assert run(store.get_conversation(cid)).last_seq == 2


def test_client_keys_are_per_conversation(store: ConversationStore, run: Run) -> None:
    a, b = run(_new(store, "a")), run(_new(store, "b"))
    run(store.append(a, {"type": "message"}, T0, client_key="k"))
    assert run(store.append(b, {"type": "message"}, T0, client_key="k")).repeated is False


def test_concurrent_appends_with_one_client_key_store_one(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))

    async def scenario() -> list[Any]:
        return list(
            await asyncio.gather(*(store.append(cid, {"type": "message"}, T0, client_key="k") for _ in range(10)))
        )

    results = run(scenario())
    assert {r.seq for r in results} == {1}
    assert sum(not r.repeated for r in results) == 1


def test_an_expired_client_key_appends_again(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k"))
    later = T0 + store.retention + 1
    assert run(store.append(cid, {"type": "message"}, later, client_key="k")).seq == 2
    run(store.sweep(later))
    assert run(store.append(cid, {"type": "message"}, later, client_key="k")).repeated is True


# -- replace and delete -----------------------------------------------------------------------------------


def test_replace_keeps_the_position(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(_append_texts(store, cid, 2))
    original = run(store.read(cid, 0, 10, T0))[0].activity
    replaced = run(store.replace(cid, 1, {"type": "message", "text": "new", "id": "x", "timestamp": "y"}, T0 + 5))
    assert replaced is not None and replaced.seq == 1
    assert (replaced.activity["id"], replaced.activity["timestamp"]) == (original["id"], original["timestamp"])
    page = run(store.read(cid, 0, 10, T0 + 5))
    assert [a.activity["text"] for a in page] == ["new", "m2"]
    assert page[0].activity["timestamp"] == original["timestamp"]
    assert run(store.get_conversation(cid)).last_seq == 2


def test_replace_of_nothing_is_none(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.replace(cid, 1, {"type": "message"}, T0)) is None
    with pytest.raises(UnknownConversation):
        run(store.replace("nope", 1, {"type": "message"}, T0))


def test_delete_leaves_a_hole_the_sequence_skips(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(_append_texts(store, cid, 3))
    assert run(store.delete(cid, 2)) is True
    assert run(store.delete(cid, 2)) is False
    assert [a.seq for a in run(store.read(cid, 0, 10, T0))] == [1, 3]
    assert run(store.append(cid, {"type": "message"}, T0)).seq == 4
    with pytest.raises(UnknownConversation):
        run(store.delete("nope", 1))


# -- listing and standalone files ---------------------------------------------------------------------------


def test_conversations_of_a_bot_page_by_id(store: ConversationStore, run: Run) -> None:
    for cid in ("c3", "c1", "c2", "c4"):
        run(store.create_conversation(cid, "bot", T0))
    run(store.create_conversation("other", "bot-2", T0))
    run(_append_texts(store, "c2", 2))
    first = run(store.conversations("bot", "", 2))
    assert [c.id for c in first] == ["c1", "c2"] and first[1].last_seq == 2
    assert [c.id for c in run(store.conversations("bot", "c2", 10))] == ["c3", "c4"]
    assert run(store.conversations("bot", "c4", 10)) == []


def test_add_file_on_its_own(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    f = _file(cid, "f1", T0)
    run(store.add_file(f))
    assert run(store.get_file(cid, "f1", T0 + 1)) == f
    assert run(store.get_file(cid, "f1", T0 + store.retention + 1)) is None
    with pytest.raises(UnknownConversation):
        run(store.add_file(_file("nope", "f1", T0)))


# -- origins ------------------------------------------------------------------------------------------------


def test_origin_round_trips(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.append(cid, {"type": "message"}, T0)).origin == "client"  # the default
    assert run(store.append(cid, {"type": "message"}, T0, origin="bot")).origin == "bot"
    assert run(store.append(cid, {"type": "message"}, T0, origin="client")).origin == "client"
    assert [(a.seq, a.origin) for a in run(store.read(cid, 0, 10, T0))] == [(1, "client"), (2, "bot"), (3, "client")]


def test_repeated_append_returns_the_first_origin(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k", origin="bot"))
    again = run(store.append(cid, {"type": "message"}, T0 + 1, client_key="k", origin="client"))
    assert (again.seq, again.repeated, again.origin) == (1, True, "bot")


def test_replace_keeps_the_origin(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message", "text": "a"}, T0, origin="bot"))
    replaced = run(store.replace(cid, 1, {"type": "message", "text": "b"}, T0 + 1))
    assert replaced is not None and replaced.origin == "bot"
    assert [(a.activity["text"], a.origin) for a in run(store.read(cid, 0, 10, T0 + 1))] == [("b", "bot")]


# -- deliveries -----------------------------------------------------------------------------------------------


def _delivery(activity_id: str, at: float, status: int | None = 200, **kw: Any) -> Delivery:
    """A final record: "failed" when it has an error, else "delivered"."""
    kw.setdefault("state", "failed" if kw.get("error") else "delivered")
    return Delivery(activity_id, at, status, 0.25, **kw)


def test_deliveries_round_trip_oldest_first(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    failed = _delivery("c1|0000002", T0 + 2, None, error="BotUnreachable", detail="connection refused \u2014 é")
    typing = _delivery("typing-1", T0 + 1, 202, activity={"type": "typing", "from": {"id": "u1"}, "n": [1, None]})
    accepted = _delivery("c1|0000001", T0 + 3)
    for d in (failed, typing, accepted):
        run(store.add_delivery(cid, d))
    assert run(store.deliveries(cid, 0, T0 + 3)) == [typing, failed, accepted]
    # `since` is inclusive
    assert run(store.deliveries(cid, T0 + 2, T0 + 3)) == [failed, accepted]
    assert run(store.deliveries(cid, T0 + 3.5, T0 + 3)) == []


def test_a_second_delivery_of_an_activity_replaces_the_first(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.add_delivery(cid, _delivery("a1", T0, None, error="Timeout")))
    run(store.add_delivery(cid, _delivery("a2", T0 + 1)))
    retried = _delivery("a1", T0 + 5, 200)
    run(store.add_delivery(cid, retried))
    assert run(store.deliveries(cid, 0, T0 + 5)) == [_delivery("a2", T0 + 1), retried]


def test_deliveries_are_per_conversation_and_copies(store: ConversationStore, run: Run) -> None:
    a, b = run(_new(store, "a")), run(_new(store, "b"))
    activity: dict[str, Any] = {"type": "typing", "nested": {"x": 1}}
    run(store.add_delivery(a, _delivery("t1", T0, activity=activity)))
    activity["nested"]["x"] = 2
    assert run(store.deliveries(b, 0, T0)) == []
    first = run(store.deliveries(a, 0, T0))[0]
    assert first.activity == {"type": "typing", "nested": {"x": 1}}
    assert first.activity is not None
    first.activity["nested"]["x"] = 3
    assert run(store.deliveries(a, 0, T0))[0].activity == {"type": "typing", "nested": {"x": 1}}


def test_deliveries_of_an_unknown_conversation_raise(store: ConversationStore, run: Run) -> None:
    with pytest.raises(UnknownConversation):
        run(store.add_delivery("nope", _delivery("a1", T0)))
    with pytest.raises(UnknownConversation):
        run(store.deliveries("nope", 0, T0))
    assert run(store.get_conversation("nope")) is None


def test_expired_deliveries_are_left_out_then_swept(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    old, new = _delivery("old", T0), _delivery("new", T0 + 50)
    run(store.add_delivery(cid, old))
    run(store.add_delivery(cid, new))
    assert run(store.deliveries(cid, 0, T0 + store.retention)) == [old, new]  # the edge is kept, like activities
    later = T0 + store.retention + 10
    assert run(store.deliveries(cid, 0, later)) == [new]
    assert run(store.sweep(later)) == 1
    # gone, even for a reader whose clock says it would still be kept
    assert run(store.deliveries(cid, 0, T0 + 1)) == [new]
    assert run(store.sweep(later)) == 0


def test_a_delivery_does_not_keep_the_conversation_alive(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.add_delivery(cid, _delivery("a1", T0 + store.conversation_ttl)))
    summary = run(store.summary(cid, T0))
    assert summary is not None and summary.last_active == T0
    later = T0 + store.conversation_ttl + 1
    assert run(store.sweep(later)) > 0
    assert run(store.get_conversation(cid)) is None
    # deleting the conversation deleted its deliveries
    assert run(store.create_conversation(cid, "bot", later))
    assert run(store.deliveries(cid, 0, later)) == []


# -- delivery state: claims of activities and announcements ---------------------------------------------------

STALE = 20.0  # what the callers pass: a claim older than this is abandoned


def _claim(store: ConversationStore, run: Run, cid: str, activity_id: str, now: float) -> tuple[bool, Delivery]:
    result: tuple[bool, Delivery] = run(store.claim_delivery(cid, activity_id, now, now - STALE))
    return result


def test_a_client_activity_a_retry_can_find_is_stored_with_a_pending_delivery(
    store: ConversationStore, run: Run
) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0 + 1, client_key="k1", origin="client"))
    run(store.append(cid, {"type": "message"}, T0 + 2, client_key="k2", origin="bot"))
    run(store.append(cid, {"type": "message"}, T0 + 3, origin="client"))
    # the bot's own activity is not delivered to it; one without a key gets only the record of its outcome
    (record,) = run(store.deliveries(cid, 0, T0 + 3))
    assert record == Delivery("c1|0000001", T0 + 1, None, 0.0, state="pending", attempts=1)


def test_a_repeated_client_key_adds_no_delivery(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k"))
    run(store.add_delivery(cid, _delivery("c1|0000001", T0 + 1)))
    again = run(store.append(cid, {"type": "message"}, T0 + 2, client_key="k"))
    assert again.repeated
    assert run(store.deliveries(cid, 0, T0 + 2)) == [_delivery("c1|0000001", T0 + 1)]


def test_a_delivery_in_flight_is_not_claimed_until_abandoned(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k"))
    claimed, record = _claim(store, run, cid, "c1|0000001", T0 + STALE - 1)
    assert not claimed and (record.state, record.at, record.attempts) == ("pending", T0, 1)
    # its sender died (or never recorded an outcome): taken over, one more attempt
    claimed, record = _claim(store, run, cid, "c1|0000001", T0 + STALE + 1)
    assert claimed and (record.state, record.at, record.attempts) == ("pending", T0 + STALE + 1, 2)
    assert run(store.deliveries(cid, 0, T0 + STALE + 1)) == [record]


def test_a_failed_delivery_is_claimed_again_and_a_delivered_one_never(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0))
    failed = _delivery("c1|0000001", T0 + 1, 500, error="bot_rejected", detail="HTTP 500")
    run(store.add_delivery(cid, failed))
    claimed, record = _claim(store, run, cid, "c1|0000001", T0 + 2)
    assert claimed
    assert record == Delivery("c1|0000001", T0 + 2, None, 0.0, state="pending", attempts=2)
    # a second claimant meanwhile is refused
    assert _claim(store, run, cid, "c1|0000001", T0 + 3) == (False, record)
    delivered = _delivery("c1|0000001", T0 + 4, 200, attempts=2)
    run(store.add_delivery(cid, delivered))
    assert _claim(store, run, cid, "c1|0000001", T0 + 5) == (False, delivered)
    assert _claim(store, run, cid, "c1|0000001", T0 + 500) == (False, delivered)


def test_the_outcome_of_an_attempt_taken_over_is_dropped(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k"))
    claimed, second = _claim(store, run, cid, "c1|0000001", T0 + STALE + 1)  # the first sender was too slow
    assert claimed and second.attempts == 2
    delivered = _delivery("c1|0000001", T0 + STALE + 2, 200, attempts=2)
    run(store.add_delivery(cid, delivered))
    # the first sender's late outcome does not overwrite the second's
    run(store.add_delivery(cid, _delivery("c1|0000001", T0 + STALE + 3, None, error="bot_timeout", attempts=1)))
    assert run(store.deliveries(cid, 0, T0 + STALE + 3)) == [delivered]
    # one of the same attempt, or later, does
    again = _delivery("c1|0000001", T0 + STALE + 4, 201, attempts=3)
    run(store.add_delivery(cid, again))
    assert run(store.deliveries(cid, 0, T0 + STALE + 4)) == [again]


def test_a_claim_is_renewed_only_by_its_holder(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, client_key="k"))
    assert run(store.renew_claim(cid, "c1|0000001", 1, T0 + 10))
    # renewed: not abandoned for another STALE seconds
    assert not _claim(store, run, cid, "c1|0000001", T0 + STALE + 5)[0]
    claimed, record = _claim(store, run, cid, "c1|0000001", T0 + 10 + STALE + 1)
    assert claimed and record.attempts == 2
    assert not run(store.renew_claim(cid, "c1|0000001", 1, T0 + 40)), "taken over: the first holder must not deliver"
    assert run(store.renew_claim(cid, "c1|0000001", 2, T0 + 40))
    run(store.add_delivery(cid, _delivery("c1|0000001", T0 + 41, 200, attempts=2)))
    assert not run(store.renew_claim(cid, "c1|0000001", 2, T0 + 42)), "delivered: nothing to renew"
    assert not run(store.renew_claim(cid, "c1|0000009", 1, T0 + 42)), "no record"
    with pytest.raises(UnknownConversation):
        run(store.renew_claim("nope", "nope|0000001", 1, T0))


def test_a_delivery_without_a_record_is_claimed(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, origin="bot"))
    claimed, record = _claim(store, run, cid, "c1|0000001", T0 + 1)
    assert claimed and (record.state, record.attempts, record.at) == ("pending", 1, T0 + 1)


def test_concurrent_claims_exactly_one_wins(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0))
    run(store.add_delivery(cid, _delivery("c1|0000001", T0, None, error="bot_timeout")))

    async def scenario() -> list[tuple[bool, Delivery]]:
        return list(await asyncio.gather(*(store.claim_delivery(cid, "c1|0000001", T0 + 1, T0) for _ in range(20))))

    assert sum(claimed for claimed, _ in run(scenario())) == 1


def test_claims_in_an_unknown_conversation_raise(store: ConversationStore, run: Run) -> None:
    with pytest.raises(UnknownConversation):
        run(store.claim_delivery("nope", "nope|0000001", T0, T0))
    with pytest.raises(UnknownConversation):
        run(store.claim_announcement("nope", Member("u1"), T0, T0))
    run(store.finish_announcement("nope", "u1", True))  # nothing to record: no error


def test_an_announcement_is_claimed_once_until_it_fails(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.claim_announcement(cid, Member("u1", "Ann"), T0, T0 - STALE)) == (True, "pending")
    assert run(store.members(cid)) == [Member("u1", "Ann")], "a member from the claim on"
    assert run(store.claim_announcement(cid, Member("u1", "Other"), T0 + 1, T0 + 1 - STALE)) == (False, "pending")
    run(store.finish_announcement(cid, "u1", False))
    assert run(store.claim_announcement(cid, Member("u1"), T0 + 2, T0 + 2 - STALE)) == (True, "pending")
    run(store.finish_announcement(cid, "u1", True))
    assert run(store.claim_announcement(cid, Member("u1"), T0 + 3, T0 + 3 - STALE)) == (False, "delivered")
    assert run(store.members(cid)) == [Member("u1", "Ann")], "one member, its first name"


def test_an_abandoned_announcement_is_claimed_again(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.claim_announcement(cid, Member("u1"), T0, T0 - STALE))[0]
    later = T0 + STALE + 1
    assert run(store.claim_announcement(cid, Member("u1"), later, later - STALE)) == (True, "pending")


def test_members_added_directly_are_announced(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.add_member(cid, Member("u1")))
    assert run(store.claim_announcement(cid, Member("u1"), T0, T0 - STALE)) == (False, "delivered")
    # and a claimed member is known to add_member
    assert run(store.claim_announcement(cid, Member("u2"), T0, T0 - STALE))[0]
    assert run(store.add_member(cid, Member("u2"))) is False
    assert run(store.claim_announcement(cid, Member("u2"), T0, T0 - STALE)) == (False, "pending")


def test_announced_tells_which_members_the_bot_was_told_of(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.add_member(cid, Member("direct")))
    run(store.claim_announcement(cid, Member("told"), T0, T0 - STALE))
    run(store.finish_announcement(cid, "told", True))
    run(store.claim_announcement(cid, Member("failed"), T0, T0 - STALE))
    run(store.finish_announcement(cid, "failed", False))
    run(store.claim_announcement(cid, Member("in-flight"), T0, T0 - STALE))
    run(store.claim_announcement(cid, Member("gone"), T0, T0 - STALE))
    run(store.finish_announcement(cid, "gone", True))
    run(store.remove_member(cid, "gone"))
    ids = ["direct", "told", "failed", "in-flight", "gone", "never"]
    assert run(store.announced(cid, ids)) == {"direct", "told"}
    assert run(store.announced(cid, [])) == set()
    assert run(store.announced("no-such-conversation", ids)) == set()


def test_a_removed_member_is_announced_anew(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    assert run(store.claim_announcement(cid, Member("u1"), T0, T0 - STALE))[0]
    run(store.finish_announcement(cid, "u1", True))
    assert run(store.remove_member(cid, "u1"))
    run(store.finish_announcement(cid, "u1", True))  # a late outcome for a member that left: nothing
    assert run(store.members(cid)) == []
    assert run(store.claim_announcement(cid, Member("u1"), T0 + 1, T0 + 1 - STALE)) == (True, "pending")


def test_concurrent_announcement_claims_exactly_one_wins(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))

    async def scenario() -> list[tuple[bool, str]]:
        return list(await asyncio.gather(*(store.claim_announcement(cid, Member("u1"), T0, T0) for _ in range(20))))

    assert sum(claimed for claimed, _ in run(scenario())) == 1
    assert run(store.members(cid)) == [Member("u1")]


# -- the inspector's listing ------------------------------------------------------------------------------------


def test_recent_conversations_most_recently_active_first(store: ConversationStore, run: Run) -> None:
    for cid, created in (("c1", T0), ("c2", T0 + 1), ("c3", T0 + 2), ("c4", T0 + 2), ("c0", T0 + 2)):
        run(store.create_conversation(cid, "bot" if cid != "c4" else "bot-2", created))
    run(store.append("c1", {"type": "message"}, T0 + 5))
    recent = run(store.recent_conversations(10, T0 + 5))
    assert [(s.conversation.id, s.last_active) for s in recent] == [
        ("c1", T0 + 5),
        ("c0", T0 + 2),  # ties: by id
        ("c3", T0 + 2),
        ("c4", T0 + 2),
        ("c2", T0 + 1),
    ]
    assert recent[0].conversation == run(store.get_conversation("c1"))
    assert recent[3].conversation.bot_id == "bot-2"
    assert [s.conversation.id for s in run(store.recent_conversations(2, T0 + 5))] == ["c1", "c0"]
    assert run(store.recent_conversations(0, T0 + 5)) == []


def test_count_conversations_leaves_out_the_idle(store: ConversationStore, run: Run) -> None:
    assert run(store.count_conversations(T0)) == 0
    for cid in ("c1", "c2", "c3"):
        run(store.create_conversation(cid, "bot", T0))
    run(store.create_conversation("c4", "other", T0 + 100))
    assert run(store.count_conversations(T0 + 100)) == 4
    run(store.append("c2", {"type": "message"}, T0 + 50))
    ttl = store.conversation_ttl
    # c1 and c3 idle past the conversation TTL (not yet swept), c2 active later, c4 later still
    assert run(store.count_conversations(T0 + ttl + 10)) == 2
    assert run(store.count_conversations(T0 + ttl + 1000)) == 0


def test_recent_conversations_of_an_empty_store(store: ConversationStore, run: Run) -> None:
    assert run(store.recent_conversations(10, T0)) == []


def test_summary_counts_activities_stored_now(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.add_member(cid, Member("u2", "Zed")))
    run(store.add_member(cid, Member("u1")))
    run(store.append(cid, {"type": "message"}, T0))  # expires first
    run(_append_texts(store, cid, 3, T0 + 50))
    assert run(store.delete(cid, 3))
    expected = ConversationSummary(
        run(store.get_conversation(cid)), T0 + 50, 3, [Member("u2", "Zed"), Member("u1", None)]
    )
    assert run(store.summary(cid, T0 + 50)) == expected
    assert run(store.recent_conversations(10, T0 + 50)) == [expected]
    later = T0 + store.retention + 10  # the first activity is past the retention, not yet swept
    assert run(store.summary(cid, later)).activity_count == 2  # type: ignore[union-attr]
    run(store.sweep(later))
    assert [s.activity_count for s in run(store.recent_conversations(10, later))] == [2]
    assert run(store.summary(cid, later)).conversation.last_seq == 4  # type: ignore[union-attr]


def test_summaries_keep_members_apart(store: ConversationStore, run: Run) -> None:
    a, b = run(_new(store, "a")), run(_new(store, "b", T0 + 1))
    run(store.add_member(a, Member("u1")))
    run(store.add_member(b, Member("u3")))
    run(store.add_member(a, Member("u2", "Two")))
    assert [(s.conversation.id, s.members) for s in run(store.recent_conversations(10, T0 + 1))] == [
        ("b", [Member("u3")]),
        ("a", [Member("u1"), Member("u2", "Two")]),
    ]
    assert run(store.summary(b, T0 + 1)).members == [Member("u3")]  # type: ignore[union-attr]
    assert [s.members for s in run(store.recent_conversations(1, T0 + 1))] == [[Member("u3")]]


def test_summary_of_an_unknown_conversation_is_none(store: ConversationStore, run: Run) -> None:
    assert run(store.summary("nope", T0)) is None


# -- files go with the activity they came with ------------------------------------------------------------


def test_delete_takes_the_files_named_with_it(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    files = [_file(cid, "f1", T0), _file(cid, "f2", T0), _file(cid, "f3", T0)]
    run(store.append(cid, {"type": "message"}, T0, files))
    assert not run(store.delete(cid, 9, ["f3"])), "no such activity: nothing deleted"
    assert run(store.get_file(cid, "f3", T0)) is not None
    assert run(store.delete(cid, 1, ["f1", "f2", "unknown"]))
    assert run(store.get_file(cid, "f1", T0)) is None and run(store.get_file(cid, "f2", T0)) is None
    assert run(store.get_file(cid, "f3", T0)) is not None, "only those named"


def test_replace_takes_the_files_named_with_it(store: ConversationStore, run: Run) -> None:
    cid = run(_new(store))
    run(store.append(cid, {"type": "message"}, T0, [_file(cid, "f1", T0), _file(cid, "f2", T0)]))
    assert run(store.replace(cid, 1, {"type": "message", "text": "edited"}, T0 + 1, ["f1"])) is not None
    assert run(store.get_file(cid, "f1", T0 + 1)) is None and run(store.get_file(cid, "f2", T0 + 1)) is not None


def test_an_activity_that_cannot_be_stored_takes_no_position_or_key(store: ConversationStore, run: Run) -> None:
    run(store.create_conversation("c1", "bot", T0))
    with pytest.raises(TypeError):
        run(store.append("c1", {"type": "message", "bad": object()}, T0, client_key="k1"))
    first = run(store.append("c1", {"type": "message", "text": "ok"}, T0, client_key="k2"))
    assert first.seq == 1
    retried = run(store.append("c1", {"type": "message", "text": "again"}, T0, client_key="k1"))
    assert not retried.repeated and retried.seq == 2


# -- deleting a whole conversation (`openline conversation delete`, DELETE /admin/conversations/{id}) --------


def _fill(store: ConversationStore, run: Run, cid: str, now: float = T0) -> None:
    """A conversation with something of every kind: members, activities with a client key and files, a file on
    its own, delivery records."""
    run(_new(store, cid, now))
    run(store.add_member(cid, Member("u1", "Alice")))
    run(store.claim_announcement(cid, Member("u2"), now, now - 10))
    run(store.append(cid, {"type": "message", "text": "hi"}, now, [_file(cid, "f1", now)], client_key="k1"))
    run(store.append(cid, {"type": "message", "text": "bye"}, now, origin="bot"))
    run(store.add_file(_file(cid, "f2", now)))
    run(store.add_delivery(cid, _delivery(f"{cid}|0000002", now)))


def test_delete_conversation_removes_everything_of_it_and_nothing_else(store: ConversationStore, run: Run) -> None:
    _fill(store, run, "gone")
    _fill(store, run, "kept")
    assert run(store.delete_conversation("gone", T0, T0 + 60)) is True
    assert run(store.get_conversation("gone")) is None
    assert run(store.summary("gone", T0)) is None
    for call in (
        store.read("gone", 0, 10, T0),
        store.members("gone"),
        store.deliveries("gone", 0, T0),
        store.append("gone", {"type": "message"}, T0),
        store.append("gone", {"type": "message"}, T0, client_key="k1"),  # its old key finds nothing
        store.add_file(_file("gone", "f3", T0)),
        store.add_delivery("gone", _delivery("gone|0000003", T0)),
        store.add_delivery("gone", _delivery("gone|0000002", T0 + 1)),  # its old record is no record to update
        store.claim_delivery("gone", "gone|0000001", T0, T0),
        store.renew_claim("gone", "gone|0000001", 1, T0),
        store.add_member("gone", Member("u3")),
        store.claim_announcement("gone", Member("u3"), T0, T0),
        store.remove_member("gone", "u1"),
        store.replace("gone", 1, {"type": "message"}, T0),
        store.delete("gone", 1),
    ):
        with pytest.raises(UnknownConversation):
            run(call)
    assert run(store.announced("gone", ["u1", "u2"])) == set()
    run(store.finish_announcement("gone", "u2", True))  # nothing happens
    assert run(store.get_file("gone", "f1", T0)) is None and run(store.get_file("gone", "f2", T0)) is None
    assert [s.conversation.id for s in run(store.recent_conversations(10, T0))] == ["kept"]
    assert [c.id for c in run(store.conversations("bot", "", 10))] == ["kept"]
    assert run(store.count_conversations(T0)) == 1
    # the other conversation is whole
    assert [s.activity["text"] for s in run(store.read("kept", 0, 10, T0))] == ["hi", "bye"]
    assert [m.id for m in run(store.members("kept"))] == ["u1", "u2"]
    assert run(store.get_file("kept", "f1", T0)) is not None and run(store.get_file("kept", "f2", T0)) is not None
    assert len(run(store.deliveries("kept", 0, T0))) == 2
    assert run(store.append("kept", {"type": "message"}, T0 + 1)).seq == 3
    assert not run(store.deleted("kept", T0))
    # nothing is left for the sweep to find
    run(store.sweep(T0 + store.conversation_ttl + store.retention + 10))


def test_a_deleted_conversation_id_is_refused_while_its_tombstone_is_kept(store: ConversationStore, run: Run) -> None:
    """A token issued before the deletion must not bring the conversation back (`Channel.start`, refresh)."""
    _fill(store, run, "c1")
    assert not run(store.deleted("c1", T0))
    assert run(store.delete_conversation("c1", T0, T0 + 60)) is True
    assert run(store.deleted("c1", T0)) and run(store.deleted("c1", T0 + 60))
    for now in (T0, T0 + 30, T0 + 60):
        with pytest.raises(ConversationDeleted):
            run(store.create_conversation("c1", "bot", now))
        with pytest.raises(UnknownConversation):  # ConversationDeleted is one
            run(store.create_conversation("c1", "other-bot", now))
    assert run(store.get_conversation("c1")) is None
    run(store.sweep(T0 + 30))  # a sweep meanwhile keeps it
    assert run(store.deleted("c1", T0 + 30))
    with pytest.raises(ConversationDeleted):
        run(store.create_conversation("c1", "bot", T0 + 30))
    # ids never deleted, and a conversation that was never created, are not tombstones
    assert not run(store.deleted("never", T0))
    assert run(store.delete_conversation("never", T0, T0 + 60)) is False
    assert not run(store.deleted("never", T0)) and run(store.create_conversation("never", "bot", T0))


def test_a_deleted_conversation_id_starts_afresh_once_its_tombstone_is_forgotten(
    store: ConversationStore, run: Run
) -> None:
    _fill(store, run, "c1")
    assert run(store.delete_conversation("c1", T0, T0 + 60)) is True
    later = T0 + 61
    run(store.sweep(later))  # forgets the tombstone (Redis: its key expires by itself too)
    assert not run(store.deleted("c1", later))
    assert run(store.create_conversation("c1", "other-bot", later)) is True
    conversation = run(store.get_conversation("c1"))
    assert (conversation.bot_id, conversation.last_seq) == ("other-bot", 0)
    assert run(store.members("c1")) == [] and run(store.deliveries("c1", 0, later)) == []
    assert run(store.get_file("c1", "f1", later)) is None
    # the old client key is gone with it: the same key stores a new activity
    again = run(store.append("c1", {"type": "message", "text": "new"}, later, client_key="k1"))
    assert (again.seq, again.repeated) == (1, False)
    assert [s.activity["text"] for s in run(store.read("c1", 0, 10, later))] == ["new"]
    # and it can be deleted again
    assert run(store.delete_conversation("c1", later, later + 60)) is True
    assert run(store.deleted("c1", later))


def test_delete_of_an_unknown_conversation_is_false(store: ConversationStore, run: Run) -> None:
    assert run(store.delete_conversation("never", T0, T0 + 60)) is False
    _fill(store, run, "c1")
    assert run(store.delete_conversation("c1", T0, T0 + 60)) is True
    assert run(store.delete_conversation("c1", T0, T0 + 60)) is False
