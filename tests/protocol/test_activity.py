"""Tests for openline.protocol.activity: timestamps, positions and inbound/bot-sent normalisation."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest

from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError

BOT = {"id": "mybot", "name": "My Bot"}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# format_timestamp


def test_format_timestamp_is_utc_with_milliseconds_and_z() -> None:
    ms = int(dt.datetime(2026, 11, 21, 19, 44, 27, 123000, tzinfo=dt.UTC).timestamp() * 1000)
    assert act.format_timestamp(ms) == "2026-11-21T19:44:27.123Z"


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (1000, "1970-01-01T00:00:01.000Z"),
        (1_700_000_000_999, "2023-11-14T22:13:20.999Z"),
    ],
)
def test_format_timestamp_keeps_exact_milliseconds(ms: int, expected: str) -> None:
    assert act.format_timestamp(ms) == expected


def test_format_timestamp_parses_back_to_the_same_instant() -> None:
    ms = 1_763_754_267_045
    text = act.format_timestamp(ms)
    assert TIMESTAMP.fullmatch(text)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert round(parsed.timestamp() * 1000) == ms


# next_timestamp_ms


def test_next_timestamp_is_now_when_the_clock_moved_on() -> None:
    assert act.next_timestamp_ms(5000, 4000) == 5000


@pytest.mark.parametrize("now", [4000, 3999, 0])
def test_next_timestamp_is_strictly_after_the_previous_one(now: int) -> None:
    assert act.next_timestamp_ms(now, 4000) == 4001


def test_next_timestamps_are_strictly_increasing_with_a_stalled_clock() -> None:
    last = 0
    seen = []
    for _ in range(5):
        last = act.next_timestamp_ms(1000, last)
        seen.append(last)
    assert seen == [1000, 1001, 1002, 1003, 1004]


# assign_position


def test_assign_position_sets_id_and_timestamp_in_place() -> None:
    activity: dict[str, Any] = {"type": "message", "text": "hi"}
    result = act.assign_position(activity, "conv", 7, 1000)
    assert result is activity
    assert activity == {
        "type": "message",
        "text": "hi",
        "id": "conv|0000007",
        "timestamp": "1970-01-01T00:00:01.000Z",
    }


def test_assign_position_replaces_an_existing_id() -> None:
    activity = act.assign_position({"id": "client-id", "timestamp": "x"}, "conv", 1, 0)
    assert activity["id"] == "conv|0000001"
    assert activity["timestamp"] == "1970-01-01T00:00:00.000Z"


# account


def test_account_has_only_the_fields_given() -> None:
    assert act.account("u1") == {"id": "u1"}
    assert act.account("u1", "Ann") == {"id": "u1", "name": "Ann"}
    assert act.account("u1", role="user") == {"id": "u1", "role": "user"}
    assert act.account("b", "Bot", "bot") == {"id": "b", "name": "Bot", "role": "bot"}


# from_client


def _client_activity() -> dict[str, Any]:
    return {
        "type": "message",
        "id": "client-id",
        "timestamp": "2000-01-01T00:00:00Z",
        "channelId": "webchat",
        "conversation": {"id": "someone-else"},
        "recipient": {"id": "not-the-bot"},
        "serviceUrl": "https://evil.example",
        "from": {"id": "u1", "name": "Ann"},
        "text": "hello",
        "channelData": {"clientActivityID": "abc", "nested": {"x": [1, 2]}},
        "entities": [{"type": "ClientCapabilities"}],
        "x-custom": {"keep": True},
    }


def test_from_client_stamps_the_channel_owned_fields_in_place() -> None:
    activity = _client_activity()
    result = act.from_client(activity, "conv", BOT)
    assert result is activity
    assert "id" not in activity
    assert "timestamp" not in activity
    assert "serviceUrl" not in activity
    assert activity["channelId"] == "directline"
    assert activity["conversation"] == {"id": "conv"}
    assert activity["recipient"] == BOT


def test_from_client_keeps_channel_data_and_unknown_fields_untouched() -> None:
    original = _client_activity()
    activity = act.from_client(copy.deepcopy(original), "conv", BOT)
    for key in ("type", "text", "channelData", "entities", "x-custom"):
        assert activity[key] == original[key]
    assert activity["from"] == {**original["from"], "role": "user"}


def test_from_client_keeps_the_clients_from_without_a_user() -> None:
    activity = act.from_client(_client_activity(), "conv", BOT)
    assert activity["from"] == {"id": "u1", "name": "Ann", "role": "user"}


def test_from_client_user_forces_the_senders_id() -> None:
    user = {"id": "bound-user", "name": "Bound"}
    activity = act.from_client(_client_activity(), "conv", BOT, user=user)
    assert activity["from"] == {"id": "bound-user", "name": "Ann", "role": "user"}


def test_from_client_user_names_a_sender_without_a_name() -> None:
    user = {"id": "bound-user", "name": "Bound"}
    activity = act.from_client({"type": "message", "from": {"id": "x", "role": "user"}}, "conv", BOT, user=user)
    assert activity["from"] == {"id": "bound-user", "name": "Bound", "role": "user"}
    assert act.from_client({"type": "message"}, "conv", BOT, user=user)["from"] == {**user, "role": "user"}


@pytest.mark.parametrize("role", ["bot", "channel", "skill", "", None, 5, {"x": 1}])
def test_whatever_role_a_client_claims_it_is_a_user(role: object) -> None:
    activity = act.from_client({"type": "message", "from": {"id": "u1", "role": role}}, "conv", BOT)
    assert activity["from"] == {"id": "u1", "role": "user"}


@pytest.mark.parametrize("sender", [BOT["id"], BOT["id"].upper(), BOT["id"].title()])
@pytest.mark.parametrize("role", ["bot", "user", None])
def test_a_client_cannot_use_the_bots_id(sender: str, role: str | None) -> None:
    with pytest.raises(ServiceError) as info:
        act.from_client({"type": "message", "from": {"id": sender, "role": role}}, "conv", BOT)
    assert info.value.kind is ErrorKind.MALFORMED


def test_a_token_bound_to_the_bots_id_cannot_post() -> None:
    with pytest.raises(ServiceError):
        act.from_client({"type": "message", "from": {"id": "u1"}}, "conv", BOT, user={"id": BOT["id"]})


def test_ephemeral_ids_are_never_sequence_ids() -> None:
    activity = act.assign_ephemeral({"type": "typing"}, "conv", "abc", 1_700_000_000_123)
    assert activity["id"] == "conv|tabc" and activity["timestamp"] == "2023-11-14T22:13:20.123Z"


def test_deletion_names_the_deleted_activity() -> None:
    tombstone = act.deletion("conv", "conv|0000003", BOT, 0)
    # an event (Web Chat renders none, silently) with the deleted id (clients replace the activity by it)
    assert (tombstone["type"], tombstone["name"], tombstone["id"]) == ("event", "messageDelete", "conv|0000003")
    assert not tombstone.get("text") and not tombstone.get("attachments")
    assert tombstone["conversation"] == {"id": "conv"} and tombstone["from"] == BOT


# from_bot


def test_from_bot_forces_the_sender_to_the_bot() -> None:
    activity = act.from_bot({"type": "message", "from": {"id": "impostor"}}, "conv", BOT, None)
    assert activity["from"] == {"id": "mybot", "name": "My Bot", "role": "bot"}


def test_from_bot_without_from_uses_the_bot_account() -> None:
    activity = act.from_bot({"type": "message"}, "conv", BOT, None)
    assert activity["from"] == {"id": "mybot", "name": "My Bot", "role": "bot"}


def test_from_bot_keeps_a_name_the_bot_gave() -> None:
    activity = act.from_bot({"type": "message", "from": {"id": "x", "name": "Helper"}}, "conv", BOT, None)
    assert activity["from"] == {"id": "mybot", "name": "Helper", "role": "bot"}


@pytest.mark.parametrize("sender", [{"id": "x", "name": ""}, {"id": "x", "name": 5}, "a string", None])
def test_from_bot_ignores_an_unusable_name(sender: Any) -> None:
    activity = act.from_bot({"type": "message", "from": sender}, "conv", BOT, None)
    assert activity["from"] == {"id": "mybot", "name": "My Bot", "role": "bot"}


def test_from_bot_for_a_bot_without_a_name() -> None:
    activity = act.from_bot({"type": "message"}, "conv", {"id": "nameless"}, None)
    assert activity["from"] == {"id": "nameless", "role": "bot"}


def test_from_bot_stamps_the_channel_owned_fields_in_place() -> None:
    sent = {
        "type": "message",
        "id": "bot-id",
        "timestamp": "2000-01-01T00:00:00Z",
        "serviceUrl": "https://elsewhere",
        "channelId": "msteams",
        "conversation": {"id": "other"},
        "text": "hi",
        "channelData": {"k": "v"},
        "attachments": [{"contentType": "application/vnd.microsoft.card.hero", "content": {"title": "T"}}],
        "custom": 1,
    }
    result = act.from_bot(sent, "conv", BOT, None)
    assert result is sent
    assert "id" not in sent
    assert "timestamp" not in sent
    assert "serviceUrl" not in sent
    assert sent["channelId"] == "directline"
    assert sent["conversation"] == {"id": "conv"}
    assert sent["text"] == "hi"
    assert sent["channelData"] == {"k": "v"}
    assert sent["attachments"] == [{"contentType": "application/vnd.microsoft.card.hero", "content": {"title": "T"}}]
    assert sent["custom"] == 1


def test_from_bot_sets_reply_to_id_from_the_route_when_absent() -> None:
    activity = act.from_bot({"type": "message"}, "conv", BOT, "conv|0000003")
    assert activity["replyToId"] == "conv|0000003"


@pytest.mark.parametrize("empty", [None, ""])
def test_from_bot_sets_reply_to_id_when_the_body_has_an_empty_one(empty: str | None) -> None:
    activity = act.from_bot({"type": "message", "replyToId": empty}, "conv", BOT, "conv|0000003")
    assert activity["replyToId"] == "conv|0000003"


def test_from_bot_keeps_the_bodys_reply_to_id() -> None:
    activity = act.from_bot({"type": "message", "replyToId": "conv|0000001"}, "conv", BOT, "conv|0000003")
    assert activity["replyToId"] == "conv|0000001"


def test_from_bot_without_a_route_reply_to_id_adds_none() -> None:
    activity = act.from_bot({"type": "message"}, "conv", BOT, None)
    assert "replyToId" not in activity


@pytest.mark.parametrize("body", [None, [], ["type", "message"], "message", 5, True])
def test_from_bot_rejects_non_objects(body: Any) -> None:
    with pytest.raises(ServiceError) as info:
        act.from_bot(body, "conv", BOT, None)
    assert info.value.kind is ErrorKind.MALFORMED


@pytest.mark.parametrize("body", [{}, {"type": None}, {"type": ""}, {"text": "hi"}])
def test_from_bot_requires_a_type(body: dict[str, Any]) -> None:
    with pytest.raises(ServiceError) as info:
        act.from_bot(body, "conv", BOT, None)
    assert info.value.kind is ErrorKind.MISSING


def test_from_bot_names_a_type_that_is_not_a_string() -> None:
    with pytest.raises(ServiceError) as info:
        act.from_bot({"type": 5}, "conv", BOT, None)
    assert info.value.kind is ErrorKind.MALFORMED and "must be a string" in info.value.message


# for_bot


def test_for_bot_adds_service_url_without_mutating() -> None:
    stored = {"type": "message", "id": "conv|0000001", "channelData": {"a": 1}}
    snapshot = copy.deepcopy(stored)
    sent = act.for_bot(stored, "http://127.0.0.1:3000/")
    assert sent == {**snapshot, "serviceUrl": "http://127.0.0.1:3000/"}
    assert sent is not stored
    assert stored == snapshot


# members_added


def test_members_added_shape() -> None:
    user = {"id": "u1", "name": "Ann"}
    activity = act.members_added("conv", "conv|0000001", 1000, BOT, user, [BOT])
    assert activity == {
        "type": "conversationUpdate",
        "id": "conv|0000001",
        "timestamp": "1970-01-01T00:00:01.000Z",
        "channelId": "directline",
        "conversation": {"id": "conv"},
        "from": user,
        "recipient": BOT,
        "membersAdded": [BOT],
    }


def test_members_added_includes_locale_only_when_given() -> None:
    user = {"id": "u1"}
    with_locale = act.members_added("conv", "e", 0, BOT, user, [user], locale="fr-FR")
    assert with_locale["locale"] == "fr-FR"
    assert "locale" not in act.members_added("conv", "e", 0, BOT, user, [user])
    assert "locale" not in act.members_added("conv", "e", 0, BOT, user, [user], locale=None)


def test_format_timestamp_across_seconds_and_before_1970() -> None:

    for ms in (0, 999, 1000, 1_700_000_000_123, 1_700_000_000_999, 1_700_000_001_000, 1_700_000_000_123, -1, -1500):
        expected = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
        assert act.format_timestamp(ms) == expected, ms


@pytest.mark.parametrize(
    ("body", "kind", "says"),
    [
        ({}, ErrorKind.MISSING, "no 'type'"),
        ({"type": ""}, ErrorKind.MISSING, "no 'type'"),
        ({"type": "  "}, ErrorKind.MISSING, "no 'type'"),
        ({"type": None}, ErrorKind.MISSING, "no 'type'"),
        ({"type": 5}, ErrorKind.MALFORMED, "must be a string, not int"),
        ({"type": ["message"]}, ErrorKind.MALFORMED, "must be a string, not list"),
    ],
)
def test_an_activity_type_that_is_absent_or_not_a_string_is_named_as_such(
    body: dict[str, Any], kind: ErrorKind, says: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        act.check_type(body)
    assert refused.value.kind is kind and says in refused.value.message
