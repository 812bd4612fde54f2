"""Tests for openline.protocol.inspect: summaries, transcripts (stored activities joined with deliveries), changes."""

from __future__ import annotations

from typing import Any

import pytest

from openline.protocol import inspect
from openline.protocol.activity import deletion, format_timestamp
from openline.protocol.errors import ErrorKind
from openline.storage.base import (
    Conversation,
    ConversationSummary,
    Delivery,
    Event,
    Member,
    Origin,
    StoredActivity,
)

CONV = "Conv0123456789abcdefXY"
T0 = 1_700_000_000.0  # seconds
T0_MS = int(T0 * 1000)
BOT = {"id": "rec", "name": "Recording Bot", "role": "bot"}
USER = {"id": "u1", "name": "Jane", "role": "user"}


def _ts(ms: int) -> str:
    return format_timestamp(T0_MS + ms)


def _activity(id_: str, ms: int, sender: dict[str, Any], type_: str = "message", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "id": id_, "timestamp": _ts(ms), "from": sender, "conversation": {"id": CONV}, **extra}


def _stored(seq: int, ms: int, origin: Origin | None, sender: dict[str, Any] | None = None) -> StoredActivity:
    sender = sender or (BOT if origin == "bot" else USER)
    return StoredActivity(seq, _activity(f"{CONV}|{seq:07d}", ms, sender, text=f"#{seq}"), origin=origin)


def _update(ms: int, tag: str = "upd") -> dict[str, Any]:
    return _activity(f"{CONV}|{tag}", ms, USER, "conversationUpdate", membersAdded=[{"id": "u1"}])


def _delivery(
    activity_id: str,
    ms: int,
    status: int | None = 200,
    activity: dict[str, Any] | None = None,
    error: str | None = None,
    duration: float = 0.0125,
) -> Delivery:
    detail = "the detail" if error else ""
    state = "failed" if error else "delivered"
    return Delivery(activity_id, T0 + ms / 1000, status, duration, error, detail, activity, state)


def _shape(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(id suffix, seq, direction, stored, delivery status or '-')."""
    return [
        (
            str(e["id"]).rpartition("|")[2],
            e["seq"],
            e["direction"],
            e["stored"],
            e["delivery"]["status"] if e["delivery"] is not None else "-",
        )
        for e in entries
    ]


# iso and delivery_view


def test_iso_is_the_activity_timestamp_format() -> None:
    assert inspect.iso(T0 + 0.1234) == format_timestamp(T0_MS + 123)
    assert inspect.iso(0) == "1970-01-01T00:00:00.000Z"


def test_delivery_view() -> None:
    view = inspect.delivery_view(_delivery("x", 5, None, error="bot_unreachable", duration=0.01234))
    assert view == {
        "state": "failed",
        "attempts": 1,
        "status": None,
        "durationMs": 12.3,
        "error": "BotUnavailable",  # the record keeps the ErrorKind value; the view shows the 3.0 code
        "detail": "the detail",
        "at": _ts(5),
    }
    assert inspect.delivery_view(_delivery("x", 0, 201))["error"] is None


def test_delivery_view_of_a_delivery_in_flight() -> None:
    pending = Delivery("x", T0, None, 0.0, state="pending", attempts=2)
    view = inspect.delivery_view(pending)
    assert (view["state"], view["attempts"], view["status"], view["error"]) == ("pending", 2, None, None)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (ErrorKind.BOT_REJECTED, "BotRejectedActivity"),
        (ErrorKind.BOT_UNREACHABLE, "BotUnavailable"),
        (ErrorKind.BOT_TIMEOUT, "BotTimeout"),
        (ErrorKind.INTERNAL, "InternalError"),
    ],
)
def test_delivery_errors_are_shown_as_3_0_codes(kind: ErrorKind, code: str) -> None:
    assert inspect.delivery_view(_delivery("x", 0, None, error=kind.value))["error"] == code


def test_an_unknown_delivery_error_is_shown_as_recorded() -> None:
    """A record written by another version of openline may hold a kind this one does not know."""
    assert inspect.delivery_view(_delivery("x", 0, None, error="bot_exploded"))["error"] == "bot_exploded"


# summary_view


def test_summary_view_lists_users_without_the_bot() -> None:
    summary = ConversationSummary(
        Conversation(CONV, "rec", T0, 7),
        T0 + 60,
        5,
        [Member("rec", "Recording Bot"), Member("u1", "Jane"), Member("dl_abc")],
    )
    assert inspect.summary_view(summary, "Recording Bot") == {
        "id": CONV,
        "bot": {"id": "rec", "name": "Recording Bot"},
        "users": [{"id": "u1", "name": "Jane"}, {"id": "dl_abc", "name": None}],
        "activityCount": 5,
        "createdAt": _ts(0),
        "lastActivityAt": _ts(60_000),
    }


def test_summary_view_of_a_bot_no_longer_configured() -> None:
    summary = ConversationSummary(Conversation(CONV, "gone", T0), T0, 0, [Member("gone", "Old")])
    view = inspect.summary_view(summary, None)
    assert view["bot"] == {"id": "gone", "name": None} and view["users"] == []


# direction


@pytest.mark.parametrize(
    ("origin", "sender", "expected"),
    [
        ("client", USER, "toBot"),
        ("client", BOT, "toBot"),  # the recorded origin wins over what `from` says
        ("bot", USER, "toClient"),
        ("bot", BOT, "toClient"),
        (None, BOT, "toClient"),
        (None, {"id": "rec", "role": "bot"}, "toClient"),
        (None, USER, "toBot"),
        (None, {"id": "u1"}, "toBot"),
        (None, "rec", "toBot"),
        (None, None, "toBot"),
    ],
)
def test_direction(origin: Origin | None, sender: Any, expected: str) -> None:
    activity: dict[str, Any] = {"type": "message"}
    if sender is not None:
        activity["from"] = sender
    assert inspect.direction(origin, activity) == expected


# entry


def test_entry_shape() -> None:
    activity = _activity(f"{CONV}|0000003", 10, USER, text="hi")
    delivery = _delivery(f"{CONV}|0000003", 20)
    assert inspect.entry(activity, 3, "client", delivery) == {
        "id": f"{CONV}|0000003",
        "seq": 3,
        "direction": "toBot",
        "stored": True,
        "type": "message",
        "timestamp": _ts(10),
        "activity": activity,
        "delivery": inspect.delivery_view(delivery),
    }
    bare = inspect.entry({}, None, "bot", None)
    assert bare == {
        "id": None,
        "seq": None,
        "direction": "toClient",
        "stored": False,
        "type": None,
        "timestamp": None,
        "activity": {},
        "delivery": None,
    }


# transcript


def test_transcript_joins_deliveries_and_places_unstored_activities_by_time() -> None:
    stored = [
        _stored(1, 10, "client"),
        _stored(2, 20, "bot"),
        _stored(3, 40, None, USER),  # stored before origins were kept
        _stored(4, 50, None, BOT),
    ]
    update = _update(0)
    typing = _activity(f"{CONV}|tTyping1", 30, USER, "typing")
    deliveries = [
        _delivery(f"{CONV}|upd", 1, activity=update),
        _delivery(f"{CONV}|0000001", 15, 200),
        _delivery(f"{CONV}|tTyping1", 31, 200, activity=typing),
        _delivery(f"{CONV}|0000003", 45, 500, error="bot_rejected"),
        # a stored activity the retention removed: nothing to show it with
        _delivery(f"{CONV}|0000000", 2, 200),
    ]
    entries = inspect.transcript(stored, deliveries)
    assert _shape(entries) == [
        ("upd", None, "toBot", False, 200),
        ("0000001", 1, "toBot", True, 200),
        ("0000002", 2, "toClient", True, "-"),
        ("tTyping1", None, "toBot", False, 200),
        ("0000003", 3, "toBot", True, 500),
        ("0000004", 4, "toClient", True, "-"),
    ]
    assert entries[0]["activity"] == update and entries[0]["type"] == "conversationUpdate"
    assert entries[3]["activity"] == typing
    assert entries[4]["delivery"]["error"] == "BotRejectedActivity"
    assert entries[1]["activity"] == stored[0].activity


def test_transcript_without_deliveries_is_the_stored_activities() -> None:
    stored = [_stored(1, 10, "client"), _stored(2, 20, "bot")]
    assert _shape(inspect.transcript(stored, [])) == [
        ("0000001", 1, "toBot", True, "-"),
        ("0000002", 2, "toClient", True, "-"),
    ]
    assert inspect.transcript([], []) == []


def test_transcript_of_unstored_activities_only() -> None:
    first, second = _update(5, "a"), _update(3, "b")
    deliveries = [_delivery(f"{CONV}|a", 6, activity=first), _delivery(f"{CONV}|b", 7, None, second, "bot_timeout")]
    entries = inspect.transcript([], deliveries)
    assert _shape(entries) == [("b", None, "toBot", False, None), ("a", None, "toBot", False, 200)]
    # even when marked truncated (no stored activity to start from)
    assert _shape(inspect.transcript([], deliveries, truncated=True)) == _shape(entries)


def test_an_unstored_activity_at_the_same_time_comes_after_the_stored_one() -> None:
    stored = [_stored(1, 10, "client")]
    update = _update(10)
    entries = inspect.transcript(stored, [_delivery(f"{CONV}|upd", 11, activity=update)])
    assert _shape(entries) == [("0000001", 1, "toBot", True, "-"), ("upd", None, "toBot", False, 200)]


def test_a_truncated_transcript_drops_older_unstored_activities() -> None:
    stored = [_stored(3, 30, "client"), _stored(4, 40, "bot")]  # 1 and 2 are beyond the limit
    deliveries = [
        _delivery(f"{CONV}|early", 1, activity=_update(0, "early")),
        _delivery(f"{CONV}|0000001", 11, 200),  # its activity is not in this page
        _delivery(f"{CONV}|atstart", 30, activity=_update(30, "atstart")),
        _delivery(f"{CONV}|0000003", 31, 201),
        _delivery(f"{CONV}|late", 35, activity=_update(35, "late")),
    ]
    assert _shape(inspect.transcript(stored, deliveries, truncated=True)) == [
        ("0000003", 3, "toBot", True, 201),
        ("atstart", None, "toBot", False, 200),
        ("late", None, "toBot", False, 200),
        ("0000004", 4, "toClient", True, "-"),
    ]
    # not truncated: the early one is kept, the orphan still dropped
    assert [s[0] for s in _shape(inspect.transcript(stored, deliveries))] == [
        "early",
        "0000003",
        "atstart",
        "late",
        "0000004",
    ]


def test_transcript_does_not_change_its_inputs() -> None:
    stored = [_stored(1, 10, "client")]
    deliveries = [_delivery(f"{CONV}|0000001", 15)]
    inspect.transcript(stored, deliveries)
    assert deliveries == [_delivery(f"{CONV}|0000001", 15)]


# change


def test_change_for_a_stored_client_activity() -> None:
    activity = _activity(f"{CONV}|0000001", 10, USER, text="hi")
    change = inspect.change(CONV, Event(1, activity, "client"))
    assert change == {"op": "entry", "entry": inspect.entry(activity, 1, "client", None)}
    assert change["entry"]["direction"] == "toBot" and change["entry"]["stored"] is True
    assert change["entry"]["delivery"] is None


def test_change_for_a_bot_activity() -> None:
    activity = _activity(f"{CONV}|0000002", 20, BOT, text="echo: hi")
    change = inspect.change(CONV, Event(2, activity))  # origin "bot" by default
    assert change is not None and change["op"] == "entry"
    entry = change["entry"]
    assert (entry["seq"], entry["direction"], entry["stored"], entry["delivery"]) == (2, "toClient", True, None)


@pytest.mark.parametrize(("origin", "direction"), [("client", "toBot"), ("bot", "toClient")])
def test_change_for_typing(origin: Origin, direction: str) -> None:
    typing = _activity(f"{CONV}|tAbc123", 10, USER if origin == "client" else BOT, "typing")
    change = inspect.change(CONV, Event(None, typing, origin))
    assert change is not None and change["op"] == "entry"
    entry = change["entry"]
    assert (entry["id"], entry["seq"], entry["stored"], entry["direction"], entry["type"]) == (
        f"{CONV}|tAbc123",
        None,
        False,
        direction,
        "typing",
    )


@pytest.mark.parametrize("rendering", ["0000002", "00000000002"])
def test_change_for_a_replacement_keeps_the_place(rendering: str) -> None:
    replaced = _activity(f"{CONV}|{rendering}", 20, BOT, text="edited")
    change = inspect.change(CONV, Event(None, replaced))
    assert change is not None and change["op"] == "entry"
    entry = change["entry"]
    assert (entry["id"], entry["seq"], entry["stored"], entry["direction"]) == (
        f"{CONV}|{rendering}",
        2,
        True,
        "toClient",
    )
    assert entry["activity"]["text"] == "edited" and entry["delivery"] is None


def test_change_for_a_deletion() -> None:
    tombstone = deletion(CONV, f"{CONV}|0000002", BOT, T0_MS + 30)
    assert inspect.change(CONV, Event(None, tombstone, removed=True)) == {"op": "delete", "id": f"{CONV}|0000002"}


def test_a_stored_message_delete_is_an_entry() -> None:
    """A bot may post an activity of type messageDelete: stored, it is shown, not applied."""
    activity = _activity(f"{CONV}|0000005", 50, BOT, "messageDelete")
    change = inspect.change(CONV, Event(5, activity))
    assert change is not None and change["op"] == "entry" and change["entry"]["seq"] == 5


def test_a_replacement_that_looks_like_a_deletion_is_an_entry() -> None:
    """A bot's update to an event named messageDelete replaces the entry: only a removal removes it."""
    lookalike = {**deletion(CONV, f"{CONV}|0000002", BOT, T0_MS + 30), "text": "not a removal"}
    change = inspect.change(CONV, Event(None, lookalike))
    assert change is not None and change["op"] == "entry" and change["entry"]["seq"] == 2


def test_change_for_the_delivery_of_a_stored_activity() -> None:
    delivery = _delivery(f"{CONV}|0000001", 15, 200, duration=0.0421)
    assert inspect.change(CONV, Event(None, None, "client", delivery)) == {
        "op": "delivery",
        "id": f"{CONV}|0000001",
        "delivery": {
            "state": "delivered",
            "attempts": 1,
            "status": 200,
            "durationMs": 42.1,
            "error": None,
            "detail": "",
            "at": _ts(15),
        },
    }


def test_change_for_a_failed_delivery() -> None:
    delivery = _delivery(f"{CONV}|0000001", 15, None, error="bot_unreachable")
    change = inspect.change(CONV, Event(None, None, "client", delivery))
    assert change is not None and change["op"] == "delivery"
    assert change["delivery"]["status"] is None and change["delivery"]["error"] == "BotUnavailable"


def test_change_for_a_delivery_with_its_activity() -> None:
    update = _update(5)
    delivery = _delivery(f"{CONV}|upd", 6, 201, activity=update)
    change = inspect.change(CONV, Event(None, None, "client", delivery))
    assert change == {"op": "entry", "entry": inspect.entry(update, None, "client", delivery)}
    entry = change["entry"]
    assert (entry["stored"], entry["direction"], entry["type"]) == (False, "toBot", "conversationUpdate")
    assert entry["delivery"]["status"] == 201


def test_an_event_without_activity_or_delivery_changes_nothing() -> None:
    assert inspect.change(CONV, Event(None, None)) is None
