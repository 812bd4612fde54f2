"""Properties of openline.protocol.connector: continuation tokens round-trip, and any bot input is read or refused
with a ServiceError."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError
from tests.protocol._strategies import PROPERTY, json_values, objects_with

REFUSED = (ErrorKind.MALFORMED, ErrorKind.MISSING, ErrorKind.TOO_LARGE)


@PROPERTY
@given(st.text(max_size=30), st.text(max_size=30))
def test_a_conversations_token_reads_back(bot_id: str, after_id: str) -> None:
    assert wire.parse_conversations_token(wire.conversations_token(bot_id, after_id)) == (bot_id, after_id)


@PROPERTY
@given(st.text(max_size=60) | st.from_regex(r"\A\s?[0-9+_٣]{0,20}\s?\Z"))
@example("٣")
@example("+1")
@example("1_0")
@example("501")
@example("0")
@example("1234567890")
@example(" 12 ")
def test_any_text_is_a_continuation_token_or_refused(raw: str) -> None:
    for parse in (wire.parse_conversations_token, wire.parse_member_token, wire.parse_page_size):
        try:
            parse(raw)
        except ServiceError as e:
            assert e.kind is ErrorKind.MALFORMED
    # the numbers, against an oracle of their own (int() would take "٣", "+1", "1_0"): ASCII digits only
    if raw.strip():
        size = _or_refused(wire.parse_page_size, raw)
        digits = re.fullmatch(r"[0-9]{1,3}", raw)
        assert size == (int(digits[0]) if digits and 1 <= int(digits[0]) <= wire.MEMBERS_PAGE_MAX else None), raw
        offset = _or_refused(wire.parse_member_token, raw)
        digits = re.fullmatch(r"[0-9]{1,9}", raw.strip())  # an offset: at most 9 digits
        assert offset == (int(digits[0]) if digits else None), raw


def _or_refused(parse: Callable[[str], int], raw: str) -> int | None:
    try:
        return parse(raw)
    except ServiceError:
        return None


@PROPERTY
@given(st.binary(max_size=200), st.booleans())
def test_base64_reads_back_in_either_alphabet(data: bytes, url_safe: bool) -> None:
    encoded = (base64.urlsafe_b64encode if url_safe else base64.b64encode)(data).decode().rstrip("=")
    assert wire.decode_base64(encoded, "x") == data


attachment_data = objects_with(
    {
        "name": st.text(max_size=20),
        "type": st.text(max_size=20),
        "originalBase64": st.binary(max_size=50).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=20),
        "thumbnailBase64": st.binary(max_size=50).map(lambda b: base64.b64encode(b).decode()),
    }
)
accounts = objects_with({"id": st.text(max_size=10), "name": st.text(max_size=10)})
conversation_parameters = objects_with(
    {
        "bot": accounts,
        "members": st.lists(accounts, max_size=3),
        "activity": objects_with({"type": st.text(max_size=8)}),
        "isGroup": st.booleans(),
        "topicName": st.text(max_size=8),
        "channelData": st.dictionaries(st.text(max_size=4), json_values, max_size=2),
    }
)


@PROPERTY
@given(attachment_data | conversation_parameters | json_values)
def test_any_bot_body_is_read_or_refused(body: Any) -> None:
    for parse in (
        lambda b: wire.parse_attachment_data(b, 40),
        wire.parse_conversation_parameters,
        wire.history_activities,
    ):
        try:
            parse(body)
        except ServiceError as e:
            assert e.kind in REFUSED
