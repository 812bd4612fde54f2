"""Tests for openline.protocol.ids: id renderings, sequence parsing and watermarks."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from openline.protocol import ids
from openline.protocol.ids import InvalidWatermark

BASE62 = re.compile(r"[0-9A-Za-z]+")


def test_activity_id_is_conversation_and_seven_digit_sequence() -> None:
    assert ids.activity_id("conv", 7) == "conv|0000007"


def test_message_id_v1_is_conversation_and_eighteen_digit_sequence() -> None:
    assert ids.message_id_v1("conv", 7) == "conv|000000000000000007"


def test_activity_id_does_not_truncate_large_sequences() -> None:
    assert ids.activity_id("conv", 123456789) == "conv|123456789"


@pytest.mark.parametrize("render", [ids.activity_id, ids.message_id_v1])
def test_sequence_of_reads_both_renderings(render: Callable[[str, int], str]) -> None:
    assert ids.sequence_of("conv", render("conv", 7)) == 7
    assert ids.sequence_of("conv", render("conv", 1234567)) == 1234567


def test_sequence_of_reads_the_largest_sequence_a_watermark_can_hold() -> None:
    assert ids.sequence_of("conv", "conv|" + "9" * 18) == 10**18 - 1


@pytest.mark.parametrize(
    "candidate",
    [
        "other|0000007",  # another conversation
        "conv2|0000007",
        "con|0000007",
        "0000007",  # no conversation at all
        "conv0000007",
        "conv|",  # no digits
        "conv|12a",
        "conv|-1",
        "conv|+1",
        "conv| 7",
        "conv|7 ",
        "conv|1.5",
        "conv|" + "1" * 19,  # longer than any sequence the service issues
        "",
    ],
)
def test_sequence_of_rejects_ids_that_are_not_of_this_conversation(candidate: str) -> None:
    assert ids.sequence_of("conv", candidate) is None


def test_sequence_of_handles_conversation_ids_containing_a_bar() -> None:
    assert ids.sequence_of("a|b", "a|b|0000003") == 3
    assert ids.sequence_of("a", "a|b|0000003") is None


@pytest.mark.parametrize("candidate", ["conv|\u0661\u0662", "conv|\uff10\uff17", "conv|\u00b2"])
def test_sequence_of_rejects_non_ascii_digits(candidate: str) -> None:
    assert ids.sequence_of("conv", candidate) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 0),
        ("", 0),
        ("-", 0),
        ("   ", 0),
        ("0", 0),
        ("5", 5),
        (" 5 ", 5),
        ("007", 7),
        ("9" * 18, 10**18 - 1),
    ],
)
def test_parse_watermark_accepts_what_the_service_issues(raw: str | None, expected: int) -> None:
    assert ids.parse_watermark(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["abc", "-1", "1.5", "+1", "1e3", "0x10", "5 6", "1" * 19, "\u0661\u0662", "\uff10\uff17", "\u00b2", "0001a-94"],
)
def test_parse_watermark_rejects_anything_else(raw: str) -> None:
    with pytest.raises(InvalidWatermark):
        ids.parse_watermark(raw)


def test_invalid_watermark_is_a_value_error() -> None:
    assert issubclass(InvalidWatermark, ValueError)


@pytest.mark.parametrize("seq", [0, 1, 42, 10**18 - 1])
def test_format_watermark_round_trips_through_parse(seq: int) -> None:
    assert ids.format_watermark(seq) == str(seq)
    assert ids.parse_watermark(ids.format_watermark(seq)) == seq


def test_new_conversation_ids_are_url_safe_base62_and_distinct() -> None:
    generated = {ids.new_conversation_id() for _ in range(200)}
    assert len(generated) == 200
    for conv in generated:
        assert len(conv) == 22
        assert BASE62.fullmatch(conv)


def test_new_user_ids_are_url_safe_base62_and_distinct() -> None:
    generated = {ids.new_user_id() for _ in range(200)}
    assert len(generated) == 200
    for user in generated:
        assert len(user) == 11
        assert BASE62.fullmatch(user)


@pytest.mark.parametrize("length", [0, 1, 5, 64])
def test_random_id_has_the_requested_length(length: int) -> None:
    value = ids.random_id(length)
    assert len(value) == length
    assert BASE62.fullmatch(value) or length == 0
