"""Tests for openline.protocol.v1: Direct Line 1.1 messages to activities and back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from openline.protocol import v1
from openline.protocol.activity import assign_position
from openline.protocol.errors import ErrorKind, ServiceError

BASE = "http://localhost:3000"
HERO = {
    "contentType": "application/vnd.microsoft.card.hero",
    "content": {"title": "Pick one", "subtitle": "Soup of the day", "text": "Tomato", "buttons": []},
}
SUGGESTED = {"actions": [{"type": "imBack", "title": "Yes", "value": "yes"}]}


def _kind(message: Any) -> ErrorKind:
    with pytest.raises(ServiceError) as info:
        v1.message_to_activity(message, "u1", BASE)
    return info.value.kind


# message_to_activity


def test_message_to_activity_minimal() -> None:
    assert v1.message_to_activity({"from": "u1", "text": "hi"}, "u1", BASE) == {
        "type": "message",
        "from": {"id": "u1", "role": "user"},
        "text": "hi",
    }


def test_message_to_activity_sender_is_the_user_id_the_caller_chose() -> None:
    activity = v1.message_to_activity({"from": "claimed", "text": "hi"}, "chosen", BASE)
    assert activity["from"] == {"id": "chosen", "role": "user"}


def test_message_to_activity_matches_property_names_case_insensitively() -> None:
    activity = v1.message_to_activity(
        {
            "Text": "hi",
            "From": "u",
            "CHANNELDATA": {"Keep": "Case"},
            "Images": ["http://x/a.png"],
            "ATTACHMENTS": [{"URL": "http://x/doc.pdf", "ContentType": "application/pdf"}],
        },
        "u",
        BASE,
    )
    assert activity["text"] == "hi"
    assert activity["channelData"] == {"Keep": "Case"}
    assert activity["attachments"] == [
        {"contentType": "image/png", "contentUrl": "http://x/a.png"},
        {"contentType": "application/pdf", "contentUrl": "http://x/doc.pdf"},
    ]


def test_message_to_activity_ignores_the_fields_the_service_assigns() -> None:
    activity = v1.message_to_activity(
        {
            "id": "5f1c0a2e-uuid",
            "conversationId": "someone-else",
            "created": "2016-07-17T05:04:36.8465036Z",
            "eTag": 'W/"x"',
            "from": "u1",
            "text": "hi",
        },
        "u1",
        BASE,
    )
    assert activity == {"type": "message", "from": {"id": "u1", "role": "user"}, "text": "hi"}


def test_message_to_activity_accepts_an_empty_message() -> None:
    assert v1.message_to_activity({}, "u1", BASE) == {"type": "message", "from": {"id": "u1", "role": "user"}}


def test_message_to_activity_treats_nulls_as_absent() -> None:
    activity = v1.message_to_activity(
        {"from": None, "text": None, "channelData": None, "images": None, "attachments": None}, "u1", BASE
    )
    assert activity == {"type": "message", "from": {"id": "u1", "role": "user"}}


def test_message_to_activity_keeps_channel_data_untouched() -> None:
    data = {"nested": {"list": [1, "two", None]}, "Mixed": True}
    activity = v1.message_to_activity({"text": "x", "channelData": copy.deepcopy(data)}, "u1", BASE)
    assert activity["channelData"] == data


@pytest.mark.parametrize("channel_data", ["a string", '{"json": "in a string"}', 5, True, ["list"]])
def test_message_to_activity_channel_data_must_be_an_object(channel_data: Any) -> None:
    assert _kind({"text": "x", "channelData": channel_data}) is ErrorKind.MALFORMED


@pytest.mark.parametrize("message", [None, [], ["text"], "hi", 5])
def test_message_to_activity_rejects_non_objects(message: Any) -> None:
    assert _kind(message) is ErrorKind.MALFORMED


@pytest.mark.parametrize(
    "message",
    [
        {"text": 5},
        {"text": ["hi"]},
        {"text": {"value": "hi"}},
        {"from": 5},
        {"from": {"id": "u1"}},
        {"images": "http://x/a.png"},
        {"images": [5]},
        {"images": [""]},
        {"images": ["http://x/a.png", None]},
        {"images": {"url": "http://x/a.png"}},
        {"attachments": {"url": "http://x/a"}},
        {"attachments": "http://x/a"},
        {"attachments": ["http://x/a"]},
        {"attachments": [{"url": "http://x/a", "contentType": 5}]},
    ],
)
def test_message_to_activity_rejects_wrong_types(message: dict[str, Any]) -> None:
    assert _kind(message) is ErrorKind.MALFORMED


@pytest.mark.parametrize(
    "attachment",
    [{"contentType": "application/pdf"}, {"url": ""}, {"url": None}, {}],
)
def test_message_to_activity_attachment_url_is_required(attachment: dict[str, Any]) -> None:
    assert _kind({"attachments": [{"url": "http://x/ok"}, attachment]}) is ErrorKind.MISSING


def test_message_to_activity_missing_attachment_url_names_the_index() -> None:
    with pytest.raises(ServiceError) as info:
        v1.message_to_activity({"attachments": [{"url": "http://x/ok"}, {}]}, "u1", BASE)
    assert "attachments[1]" in info.value.message


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("http://x/a.png", "image/png"),
        ("http://x/a.PNG", "image/png"),
        ("http://x/photo.jpg", "image/jpeg"),
        ("http://x/anim.gif", "image/gif"),
        ("http://x/a.png?sig=1&e=2", "image/png"),
        ("http://x/image", "image/*"),
        ("http://x/a.unknownext", "image/*"),
        ("http://x/doc.pdf", "image/*"),  # listed as an image: never a non-image type
    ],
)
def test_message_to_activity_images_get_a_guessed_image_type(url: str, content_type: str) -> None:
    activity = v1.message_to_activity({"images": [url]}, "u1", BASE)
    assert activity["attachments"] == [{"contentType": content_type, "contentUrl": url}]


@pytest.mark.parametrize("base", [BASE, BASE + "/"])
def test_message_to_activity_resolves_relative_urls_against_the_base_url(base: str) -> None:
    activity = v1.message_to_activity(
        {
            "images": ["/attachments/CuvLPID4kDb/0.jpg?t=abc"],
            "attachments": [{"url": "/attachments/CuvLPID4kDb/1.bin", "contentType": "application/zip"}],
        },
        "u1",
        base,
    )
    assert activity["attachments"] == [
        {"contentType": "image/jpeg", "contentUrl": "http://localhost:3000/attachments/CuvLPID4kDb/0.jpg?t=abc"},
        {"contentType": "application/zip", "contentUrl": "http://localhost:3000/attachments/CuvLPID4kDb/1.bin"},
    ]


@pytest.mark.parametrize(
    "url", ["https://cdn.example/a.png", "http://cdn.example/a.png", "data:image/png;base64,iVBORw0KGgo="]
)
def test_message_to_activity_keeps_absolute_urls(url: str) -> None:
    activity = v1.message_to_activity({"images": [url]}, "u1", BASE)
    assert activity["attachments"][0]["contentUrl"] == url


def test_message_to_activity_attachments_keep_their_content_type() -> None:
    activity = v1.message_to_activity(
        {
            "attachments": [
                {"url": "http://x/a.pdf", "contentType": "application/pdf"},
                {"url": "http://x/b.bin"},
                {"url": "http://x/c.bin", "contentType": None},
                {"url": "http://x/d.bin", "contentType": ""},
            ]
        },
        "u1",
        BASE,
    )
    assert activity["attachments"] == [
        {"contentType": "application/pdf", "contentUrl": "http://x/a.pdf"},
        {"contentType": "application/octet-stream", "contentUrl": "http://x/b.bin"},
        {"contentType": "application/octet-stream", "contentUrl": "http://x/c.bin"},
        {"contentType": "application/octet-stream", "contentUrl": "http://x/d.bin"},
    ]


def test_message_to_activity_images_come_before_attachments() -> None:
    activity = v1.message_to_activity(
        {"attachments": [{"url": "http://x/a.pdf", "contentType": "application/pdf"}], "images": ["http://x/i.png"]},
        "u1",
        BASE,
    )
    assert [a["contentUrl"] for a in activity["attachments"]] == ["http://x/i.png", "http://x/a.pdf"]


def test_message_to_activity_without_images_or_attachments_has_no_attachments() -> None:
    activity = v1.message_to_activity({"text": "x", "images": [], "attachments": []}, "u1", BASE)
    assert "attachments" not in activity


# activity_to_message


def _bot_message(**fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "conv|0000004",
        "timestamp": "2026-11-21T19:44:27.123Z",
        "from": {"id": "mybot", "name": "My Bot", "role": "bot"},
        **fields,
    }


def test_activity_to_message_basic_fields() -> None:
    message = v1.activity_to_message("conv", 4, _bot_message(text="hello"))
    assert message == {
        "id": "conv|000000000000000004",
        "conversationId": "conv",
        "created": "2026-11-21T19:44:27.123Z",
        "from": "mybot",
        "text": "hello",
        "images": [],
        "attachments": [],
    }


def test_activity_to_message_id_has_eighteen_digits() -> None:
    message = v1.activity_to_message("c", 123, _bot_message(text="x"))
    assert message is not None
    assert message["id"] == "c|000000000000000123"


def test_activity_to_message_empty_lists_present_and_no_channel_data_key() -> None:
    message = v1.activity_to_message("conv", 1, {"type": "message"})
    assert message is not None
    assert message["images"] == []
    assert message["attachments"] == []
    assert "channelData" not in message
    assert message["text"] is None
    assert message["from"] is None
    assert message["created"] is None


@pytest.mark.parametrize("type_", ["typing", "event", "conversationUpdate", "endOfConversation", None, ""])
def test_activity_to_message_skips_non_message_activities(type_: str | None) -> None:
    activity: dict[str, Any] = {"text": "x", "from": {"id": "b"}}
    if type_ is not None:
        activity["type"] = type_
    assert v1.activity_to_message("conv", 1, activity) is None


def test_activity_to_message_splits_images_and_attachments_by_content_type() -> None:
    message = v1.activity_to_message(
        "conv",
        1,
        _bot_message(
            attachments=[
                {"contentType": "image/png", "contentUrl": "http://x/a.png"},
                {"contentType": "application/pdf", "contentUrl": "http://x/b.pdf", "name": "b.pdf"},
                {"contentType": "image/*", "contentUrl": "http://x/c"},
                {"contentUrl": "http://x/d"},
            ]
        ),
    )
    assert message is not None
    assert message["images"] == ["http://x/a.png", "http://x/c"]
    assert message["attachments"] == [
        {"url": "http://x/b.pdf", "contentType": "application/pdf"},
        {"url": "http://x/d", "contentType": "application/octet-stream"},
    ]
    assert "channelData" not in message


def test_activity_to_message_passes_channel_data_untouched() -> None:
    data = {"custom": {"deep": [1, 2]}, "attachments": "the bot's own"}
    message = v1.activity_to_message("conv", 1, _bot_message(text="x", channelData=copy.deepcopy(data)))
    assert message is not None
    assert message["channelData"] == data


def test_activity_to_message_cards_go_to_channel_data() -> None:
    message = v1.activity_to_message("conv", 1, _bot_message(text="Choose", attachments=[HERO]))
    assert message is not None
    assert message["channelData"] == {"attachments": [HERO]}
    assert message["text"] == "Choose"
    assert message["images"] == []
    assert message["attachments"] == []


def test_activity_to_message_keeps_the_attachment_layout_of_cards() -> None:
    message = v1.activity_to_message(
        "conv", 1, _bot_message(text="x", attachments=[HERO, HERO], attachmentLayout="carousel")
    )
    assert message is not None
    assert message["channelData"] == {"attachments": [HERO, HERO], "attachmentLayout": "carousel"}


def test_activity_to_message_suggested_actions_go_to_channel_data() -> None:
    message = v1.activity_to_message("conv", 1, _bot_message(text="Continue?", suggestedActions=SUGGESTED))
    assert message is not None
    assert message["channelData"] == {"suggestedActions": SUGGESTED}
    assert message["text"] == "Continue?"


def test_activity_to_message_cards_and_suggested_actions_together() -> None:
    message = v1.activity_to_message("conv", 1, _bot_message(attachments=[HERO], suggestedActions=SUGGESTED))
    assert message is not None
    assert message["channelData"] == {"attachments": [HERO], "suggestedActions": SUGGESTED}


def test_activity_to_message_bot_channel_data_wins_over_cards() -> None:
    own = {"mine": True}
    message = v1.activity_to_message(
        "conv", 1, _bot_message(text="x", attachments=[HERO], suggestedActions=SUGGESTED, channelData=own)
    )
    assert message is not None
    assert message["channelData"] == {"mine": True}


def test_activity_to_message_file_attachments_stay_out_of_channel_data() -> None:
    message = v1.activity_to_message(
        "conv",
        1,
        _bot_message(attachments=[HERO, {"contentType": "image/png", "contentUrl": "http://x/a.png"}]),
    )
    assert message is not None
    assert message["images"] == ["http://x/a.png"]
    assert message["channelData"] == {"attachments": [HERO]}


@pytest.mark.parametrize("text", [None, ""])
def test_activity_to_message_card_text_fills_an_empty_text(text: str | None) -> None:
    fields: dict[str, Any] = {"attachments": [HERO]}
    if text is not None:
        fields["text"] = text
    message = v1.activity_to_message("conv", 1, _bot_message(**fields))
    assert message is not None
    assert message["text"] == "Pick one\nSoup of the day\nTomato"


def test_activity_to_message_card_text_from_several_cards_skips_missing_parts() -> None:
    second = {"contentType": "application/vnd.microsoft.card.thumbnail", "content": {"title": "Second", "text": ""}}
    message = v1.activity_to_message("conv", 1, _bot_message(attachments=[HERO, second]))
    assert message is not None
    assert message["text"] == "Pick one\nSoup of the day\nTomato\nSecond"


def test_activity_to_message_card_text_fills_text_even_with_bot_channel_data() -> None:
    message = v1.activity_to_message("conv", 1, _bot_message(attachments=[HERO], channelData={"own": 1}))
    assert message is not None
    assert message["text"] == "Pick one\nSoup of the day\nTomato"
    assert message["channelData"] == {"own": 1}


def test_activity_to_message_cards_without_text_leave_text_empty() -> None:
    card = {"contentType": "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "body": []}}
    message = v1.activity_to_message("conv", 1, _bot_message(attachments=[card]))
    assert message is not None
    assert message["text"] is None
    assert message["channelData"] == {"attachments": [card]}


def test_activity_to_message_ignores_non_object_attachments() -> None:
    message = v1.activity_to_message(
        "conv", 1, _bot_message(text="x", attachments=["junk", 5, {"contentType": "image/png", "contentUrl": "u"}])
    )
    assert message is not None
    assert message["images"] == ["u"]
    assert message["attachments"] == []
    assert "channelData" not in message


def test_activity_to_message_does_not_mutate_the_activity() -> None:
    activity = _bot_message(attachments=[HERO], suggestedActions=SUGGESTED)
    snapshot = copy.deepcopy(activity)
    v1.activity_to_message("conv", 1, activity)
    assert activity == snapshot


# message_set


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "from": {"id": "u1"}, "text": text}


def test_message_set_watermark_is_the_last_sequence_read() -> None:
    page = [(1, _user_message("a")), (2, _user_message("b"))]
    result = v1.message_set("conv", page, 0)
    assert [m["text"] for m in result["messages"]] == ["a", "b"]
    assert [m["id"] for m in result["messages"]] == ["conv|000000000000000001", "conv|000000000000000002"]
    assert result["watermark"] == "2"


def test_message_set_watermark_includes_hidden_activities() -> None:
    page = [(3, _user_message("a")), (4, {"type": "typing"}), (5, {"type": "event", "name": "x"})]
    result = v1.message_set("conv", page, 2)
    assert [m["text"] for m in result["messages"]] == ["a"]
    assert result["watermark"] == "5"


def test_message_set_of_only_hidden_activities_moves_the_watermark() -> None:
    result = v1.message_set("conv", [(8, {"type": "typing"})], 7)
    assert result == {"messages": [], "watermark": "8"}


def test_message_set_empty_page_keeps_the_watermark() -> None:
    assert v1.message_set("conv", [], 7) == {"messages": [], "watermark": "7"}


def test_message_set_empty_conversation_has_watermark_zero() -> None:
    assert v1.message_set("conv", [], 0) == {"messages": [], "watermark": "0"}


def test_message_set_accepts_any_iterable() -> None:
    result = v1.message_set("conv", iter([(1, _user_message("a"))]), 0)
    assert result["watermark"] == "1"
    assert len(result["messages"]) == 1


# client_user_id


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"from": "u1"}, "u1"),
        ({"From": "u1"}, "u1"),
        ({"FROM": "  u1  "}, "u1"),
        ({}, None),
        ({"from": None}, None),
        ({"from": ""}, None),
        ({"from": "   "}, None),
        ({"from": "\t\n"}, None),
        ({"from": 5}, None),
        ({"from": {"id": "u1"}}, None),
        (None, None),
        ("u1", None),
        (["from", "u1"], None),
    ],
)
def test_client_user_id(message: Any, expected: str | None) -> None:
    assert v1.client_user_id(message) == expected


# round trip


def test_round_trip_client_message_to_activity_to_message() -> None:
    sent = {
        "from": "user-7",
        "text": "hello there",
        "images": ["http://cdn.example/cat.png", "/attachments/conv/f1/dog.jpg"],
        "attachments": [{"url": "http://cdn.example/report.pdf", "contentType": "application/pdf"}],
        "channelData": {"clientId": 42, "nested": {"ok": True}},
    }
    user_id = v1.client_user_id(sent)
    assert user_id == "user-7"
    activity = v1.message_to_activity(sent, user_id, BASE)
    assign_position(activity, "conv", 9, 1_700_000_000_000)
    message = v1.activity_to_message("conv", 9, activity)
    assert message == {
        "id": "conv|000000000000000009",
        "conversationId": "conv",
        "created": "2023-11-14T22:13:20.000Z",
        "from": "user-7",
        "text": "hello there",
        "images": ["http://cdn.example/cat.png", "http://localhost:3000/attachments/conv/f1/dog.jpg"],
        "attachments": [{"url": "http://cdn.example/report.pdf", "contentType": "application/pdf"}],
        "channelData": {"clientId": 42, "nested": {"ok": True}},
    }


def test_round_trip_of_a_text_only_message() -> None:
    activity = v1.message_to_activity({"text": "hi"}, "anon", BASE)
    assign_position(activity, "c", 1, 0)
    message = v1.activity_to_message("c", 1, activity)
    assert message is not None
    assert (message["from"], message["text"], message["images"], message["attachments"]) == ("anon", "hi", [], [])
    assert "channelData" not in message


@pytest.mark.parametrize(
    "message",
    [{"images": ["http://[x"]}, {"images": ["//[x"]}, {"attachments": [{"url": "https://[::1"}]}],
)
def test_a_url_no_parser_can_read_is_malformed(message: Any) -> None:
    # urljoin and urlsplit raise ValueError for an unclosed IPv6 host: it was a 500 (found by test_v1_properties)
    assert _kind(message) is ErrorKind.MALFORMED
