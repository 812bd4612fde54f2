"""Properties of the Direct Line 1.1 projection (openline.protocol.v1): any input is projected or refused with a
ServiceError, a message survives the round trip through its activity, and every projection has the documented
shape (the `V1Message` schema of the OpenAPI document)."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import example, given
from hypothesis import strategies as st

from openline.api.openapi_schemas import SCHEMAS
from openline.protocol import v1
from openline.protocol.errors import ErrorKind, ServiceError
from tests.protocol._strategies import PROPERTY, json_values, objects_with, url_text

BASE = "http://localhost:3000"
MESSAGE_SCHEMA = jsonschema.Draft202012Validator(SCHEMAS["V1Message"])

messages_ish = objects_with(
    {
        "from": st.text(max_size=10),
        "text": st.text(max_size=10),
        "channelData": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "images": st.lists(url_text, max_size=3),
        "attachments": st.lists(
            objects_with({"url": url_text, "contentType": st.text(max_size=10)}) | json_values, max_size=3
        ),
    }
)


@PROPERTY
@given(messages_ish | json_values)
@example({"images": ["//[x"]})  # urljoin raised ValueError ("Invalid IPv6 URL"): a 500 before the fix
@example({"images": ["http://[x"]})
@example({"attachments": [{"url": "https://[::1"}]})
@example({"attachments": [{"url": "//[x", "contentType": "image/png"}]})
def test_any_message_becomes_an_activity_or_is_refused(message: Any) -> None:
    try:
        activity = v1.message_to_activity(message, "u1", BASE)
    except ServiceError as e:
        assert e.kind in (ErrorKind.MALFORMED, ErrorKind.MISSING)
        return
    assert activity["type"] == "message" and activity["from"] == {"id": "u1", "role": "user"}
    for attachment in activity.get("attachments", []):
        assert isinstance(attachment["contentUrl"], str) and isinstance(attachment["contentType"], str)


absolute_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9]{0,10}\.example", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9_\-/]{0,20}", fullmatch=True),
)


@PROPERTY
@given(
    st.text(max_size=30) | st.none(),
    st.lists(absolute_urls, max_size=3),
    st.lists(st.tuples(absolute_urls, st.from_regex(r"(application|text)/[a-z0-9.+-]{1,15}", fullmatch=True))),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3) | st.none(),
    st.integers(min_value=1, max_value=10**6),
)
def test_a_message_survives_the_round_trip(
    text: str | None, images: list[str], files: list[tuple[str, str]], channel_data: Any, seq: int
) -> None:
    message: dict[str, Any] = {"from": "u1", "images": images}
    message["attachments"] = [{"url": url, "contentType": media} for url, media in files]
    if text is not None:
        message["text"] = text
    if channel_data is not None:
        message["channelData"] = channel_data
    activity = v1.message_to_activity(message, "u1", BASE)
    activity["timestamp"] = "2026-11-30T12:00:00.000Z"  # what the store adds
    back = v1.activity_to_message("conv", seq, activity)
    assert back is not None
    assert back["from"] == "u1" and back["text"] == text
    assert back["images"] == images and back["attachments"] == message["attachments"]
    assert back.get("channelData") == channel_data
    assert back["id"] == f"conv|{seq:018d}"


stored_activities = st.builds(
    lambda fields, type_, sender, ts: {**fields, "type": type_, "from": {"id": sender}, "timestamp": ts},
    objects_with(
        {
            "text": st.text(max_size=10),
            "attachments": st.lists(
                objects_with({"contentUrl": url_text, "contentType": st.text(max_size=10), "content": json_values})
            ),
            "channelData": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
            "suggestedActions": st.dictionaries(st.text(max_size=5), json_values, max_size=2),
            "attachmentLayout": st.text(max_size=8),
        }
    ),
    st.sampled_from(["message", "event", "typing"]),
    st.text(max_size=10),
    st.text(max_size=30),
)


@PROPERTY
@given(stored_activities, st.integers(min_value=1, max_value=10**9))
def test_every_stored_activity_projects_to_the_documented_message_shape(activity: dict[str, Any], seq: int) -> None:
    message = v1.activity_to_message("conv", seq, activity)
    if activity["type"] != "message":
        assert message is None
        return
    assert message is not None
    MESSAGE_SCHEMA.validate(message)


@PROPERTY
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), stored_activities), max_size=5),
       st.integers(min_value=0, max_value=10**6))  # fmt: skip
def test_a_message_set_moves_its_watermark_to_the_last_activity_read(
    page: list[tuple[int, dict[str, Any]]], after: int
) -> None:
    body = v1.message_set("conv", page, after)
    assert body["watermark"] == str(max([after, *(seq for seq, _ in page)]))
    assert len(body["messages"]) == sum(1 for _, a in page if a["type"] == "message")
