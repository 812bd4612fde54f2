"""Tests for openline.protocol.connector: parameters, transcripts, attachment data and ids, paging tokens."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError

BOT = {"id": "mybot", "name": "My Bot"}


def _kind(call: Any, *args: Any) -> ErrorKind:
    with pytest.raises(ServiceError) as info:
        call(*args)
    return info.value.kind


# conversation parameters


def test_conversation_parameters() -> None:
    body = {
        "isGroup": False,
        "bot": {"id": "b1", "name": "B"},
        "members": [{"id": "u1", "name": "User"}, {"id": "u2", "role": "user"}],
        "topicName": "t",
        "tenantID": "x",
        "activity": {"type": "message", "text": "hi"},
        "channelData": {"k": 1},
    }
    parsed = wire.parse_conversation_parameters(body)
    assert parsed.bot_id == "b1"
    assert parsed.members == [{"id": "u1", "name": "User"}, {"id": "u2", "role": "user"}]
    assert parsed.activity == {"type": "message", "text": "hi"}
    empty = wire.parse_conversation_parameters({})
    assert (empty.bot_id, empty.members, empty.activity) == (None, [], None)
    nulls = wire.parse_conversation_parameters({"bot": None, "members": None, "activity": None, "isGroup": None})
    assert (nulls.bot_id, nulls.members, nulls.activity) == (None, [], None)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ([], ErrorKind.MALFORMED),
        ("x", ErrorKind.MALFORMED),
        ({"isGroup": "yes"}, ErrorKind.MALFORMED),
        ({"topicName": 5}, ErrorKind.MALFORMED),
        ({"tenantId": {}}, ErrorKind.MALFORMED),
        ({"channelData": "x"}, ErrorKind.MALFORMED),
        ({"bot": "b1"}, ErrorKind.MALFORMED),
        ({"bot": {}}, ErrorKind.MISSING),
        ({"bot": {"id": " "}}, ErrorKind.MISSING),
        ({"bot": {"id": "b", "name": 3}}, ErrorKind.MALFORMED),
        ({"members": {"id": "u"}}, ErrorKind.MALFORMED),
        ({"members": ["u1"]}, ErrorKind.MALFORMED),
        ({"members": [{"name": "no id"}]}, ErrorKind.MISSING),
        ({"members": [{"id": 7}]}, ErrorKind.MISSING),
        ({"activity": "hello"}, ErrorKind.MALFORMED),
    ],
)
def test_bad_conversation_parameters(body: Any, kind: ErrorKind) -> None:
    assert _kind(wire.parse_conversation_parameters, body) is kind


# transcripts


def test_history_activities() -> None:
    assert wire.history_activities({"activities": [{"type": "message"}]}) == [{"type": "message"}]
    assert wire.history_activities({"activities": []}) == []
    assert _kind(wire.history_activities, []) is ErrorKind.MALFORMED
    assert _kind(wire.history_activities, {}) is ErrorKind.MISSING
    assert _kind(wire.history_activities, {"activities": {"type": "message"}}) is ErrorKind.MALFORMED


def test_from_history_keeps_the_sender_and_stamps_the_rest() -> None:
    activity = {
        "type": "message",
        "from": {"id": "alice", "name": "Alice", "role": "user"},
        "id": "old",
        "timestamp": "2020-01-01T00:00:00Z",
        "serviceUrl": "http://elsewhere",
        "channelId": "webchat",
        "conversation": {"id": "other"},
    }
    stamped = wire.from_history(activity, "conv", BOT)
    assert stamped["from"] == {"id": "alice", "name": "Alice", "role": "user"}
    assert stamped["channelId"] == "directline" and stamped["conversation"] == {"id": "conv"}
    assert not {"id", "timestamp", "serviceUrl"} & stamped.keys()
    assert wire.from_history({"type": "event"}, "conv", BOT)["from"] == {"id": "mybot", "name": "My Bot", "role": "bot"}


@pytest.mark.parametrize(
    ("activity", "kind"),
    [
        ("text", ErrorKind.MALFORMED),
        ({"text": "no type"}, ErrorKind.MISSING),
        ({"type": "message", "from": "alice"}, ErrorKind.MALFORMED),
        ({"type": "message", "from": {"name": "no id"}}, ErrorKind.MISSING),
        ({"type": "message", "text": 5}, ErrorKind.MALFORMED),
    ],
)
def test_bad_history_activity(activity: Any, kind: ErrorKind) -> None:
    assert _kind(wire.from_history, activity, "conv", BOT) is kind


# attachment data


def test_attachment_data_decodes_both_views() -> None:
    body = {
        "name": "cat.png",
        "type": "image/png",
        "originalBase64": base64.b64encode(b"original bytes").decode(),
        "thumbnailBase64": base64.b64encode(b"thumb").decode(),
    }
    data = wire.parse_attachment_data(body, 100)
    assert data == wire.AttachmentData("cat.png", "image/png", b"original bytes", b"thumb")
    assert data.views() == {"original": b"original bytes", "thumbnail": b"thumb"}


def test_attachment_data_defaults_and_cleaning() -> None:
    data = wire.parse_attachment_data({"originalBase64": ""}, 10)
    assert data == wire.AttachmentData("file", "application/octet-stream", b"", None)
    assert data.views() == {"original": b""}
    data = wire.parse_attachment_data({"originalBase64": "", "name": "../../etc/passwd", "type": "Text/HTML; x=y"}, 10)
    assert (data.name, data.content_type) == ("passwd", "text/html")
    assert wire.parse_attachment_data({"originalBase64": "", "type": "not a type"}, 10).content_type == (
        "application/octet-stream"
    )


@pytest.mark.parametrize(
    "encoded",
    ["/+/+AA==", "/+/+AA", "_-_-AA", "_-_-AA==", "/+/+\nAA==", " /+/+AA== "],
)
def test_base64_alphabets_and_padding(encoded: str) -> None:
    assert wire.decode_base64(encoded, "x") == b"\xff\xef\xfe\x00"


@pytest.mark.parametrize("encoded", ["@@@@", "abcde", "YQ=x", 5, ["YQ=="], None])
def test_bad_base64(encoded: Any) -> None:
    assert _kind(wire.decode_base64, encoded, "x") is ErrorKind.MALFORMED


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ([], ErrorKind.MALFORMED),
        ({}, ErrorKind.MISSING),
        ({"originalBase64": None}, ErrorKind.MISSING),
        ({"originalBase64": "!!"}, ErrorKind.MALFORMED),
        ({"originalBase64": "", "thumbnailBase64": "!!"}, ErrorKind.MALFORMED),
        ({"originalBase64": "", "name": 5}, ErrorKind.MALFORMED),
        ({"originalBase64": "", "type": ["image/png"]}, ErrorKind.MALFORMED),
        ({"originalBase64": base64.b64encode(b"x" * 11).decode()}, ErrorKind.TOO_LARGE),
        (
            {"originalBase64": base64.b64encode(b"x" * 6).decode(), "thumbnailBase64": base64.b64encode(b"x" * 5)},
            ErrorKind.MALFORMED,  # bytes, not a string
        ),
        (
            {"originalBase64": base64.b64encode(b"x" * 6).decode(), "thumbnailBase64": "eHh4eHg="},
            ErrorKind.TOO_LARGE,  # 6 + 5 bytes together
        ),
    ],
)
def test_bad_attachment_data(body: Any, kind: ErrorKind) -> None:
    assert _kind(wire.parse_attachment_data, body, 10) is kind


def test_attachment_data_at_the_limit() -> None:
    body = {"originalBase64": base64.b64encode(b"x" * 6).decode(), "thumbnailBase64": "eHh4eA=="}
    assert len(wire.parse_attachment_data(body, 10).original) == 6


def test_max_attachment_body_holds_the_largest_upload() -> None:
    for limit in (1, 2, 3, 4, 1000, 4 * 1024 * 1024):
        assert wire.max_attachment_body(limit) >= len(base64.b64encode(b"x" * limit)) + 1024


# attachment ids


def test_attachment_ids() -> None:
    attachment_id = wire.attachment_id("Conv0123", "Key0123")
    assert attachment_id == "Conv0123~Key0123"
    assert wire.parse_attachment_id(attachment_id) == ("Conv0123", "Key0123")
    # a conversation id containing the separator still round-trips: the key never does
    assert wire.parse_attachment_id(wire.attachment_id("a~b", "K")) == ("a~b", "K")
    assert wire.attachment_file_id("K", "thumbnail") == "K.thumbnail"


@pytest.mark.parametrize("value", ["", "nosep", "~key", "conv~", "conv~ke.y", "conv~ke/y", "conv~k\u00e9y"])
def test_not_attachment_ids(value: str) -> None:
    assert wire.parse_attachment_id(value) is None


# paging


@pytest.mark.parametrize(("raw", "size"), [(None, 200), ("", 200), (" ", 200), ("1", 1), ("500", 500), ("07", 7)])
def test_page_size(raw: str | None, size: int) -> None:
    assert wire.parse_page_size(raw) == size


@pytest.mark.parametrize("raw", ["0", "501", "-1", "1.5", "ten", "99999", "\u0661"])
def test_bad_page_size(raw: str) -> None:
    assert _kind(wire.parse_page_size, raw) is ErrorKind.MALFORMED


def test_member_tokens() -> None:
    assert wire.parse_member_token(None) == 0
    assert wire.parse_member_token("") == 0
    assert wire.parse_member_token(wire.member_token(200)) == 200
    for bad in ("-1", "x", "1e3", "1234567890"):
        assert _kind(wire.parse_member_token, bad) is ErrorKind.MALFORMED


def test_conversation_tokens() -> None:
    assert wire.parse_conversations_token(None) is None
    assert wire.parse_conversations_token("") is None
    for bot_id, after_id in [("bot", "Abc"), ("b|o~t \u00e9", ""), ("", "x")]:
        token = wire.conversations_token(bot_id, after_id)
        assert token.isascii() and "=" not in token and "/" not in token and "+" not in token
        assert wire.parse_conversations_token(token) == (bot_id, after_id)
    not_pair = base64.urlsafe_b64encode(b'["only one"]').decode()
    for bad in ("!!!", "abc", not_pair, base64.urlsafe_b64encode(b"{}").decode()):
        assert _kind(wire.parse_conversations_token, bad) is ErrorKind.MALFORMED
