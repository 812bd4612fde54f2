"""Properties of openline.protocol.ids: watermarks and ids round-trip, and bad watermarks are refused cleanly."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from openline.protocol import ids
from openline.protocol.ids import InvalidWatermark
from tests.protocol._strategies import PROPERTY

sequences = st.integers(min_value=0, max_value=10**18 - 1)
# the oracle, kept apart from the code's own test (no int(), no str.isdigit()): 1 to 18 ASCII decimal digits
DIGITS = re.compile(r"[0-9]{1,18}")
conversation_ids = st.text(min_size=1, max_size=40)


@PROPERTY
@given(sequences, st.sampled_from(["", " ", "\t", "\u2003"]))
def test_a_formatted_watermark_parses_back(seq: int, pad: str) -> None:
    assert ids.parse_watermark(pad + ids.format_watermark(seq) + pad) == seq


@PROPERTY
@given(st.text(max_size=60))
@example("٣")  # a digit, but not an ASCII one
@example("1" * 19)
@example("-1")
@example("+1")
@example("1_000")
@example("0" * 15 + "\x1f" * 6 + "\U000119e5" * 10)  # its quote escapes to more than 200 characters
def test_any_text_is_a_watermark_or_refused_as_invalid(raw: str) -> None:
    text = raw.strip()
    try:
        seq = ids.parse_watermark(raw)
    except InvalidWatermark as e:
        assert repr(text[:40]) in str(e)  # the message quotes at most the start of what was sent
        assert text not in ("", "-") and not DIGITS.fullmatch(text), "a valid watermark refused"
        return
    if text in ("", "-"):
        assert seq == 0
    else:  # accepted: ASCII digits only ("٣", "+1", "1_000" are what int() takes and a watermark is not)
        assert DIGITS.fullmatch(text), f"{text!r} accepted as watermark {seq}"
        assert seq == sum(int(d) * 10**i for i, d in enumerate(reversed(text)))


@PROPERTY
@given(conversation_ids, sequences)
def test_both_id_renderings_give_back_their_sequence(conversation_id: str, seq: int) -> None:
    for render in (ids.activity_id, ids.message_id_v1):
        assert ids.sequence_of(conversation_id, render(conversation_id, seq)) == seq
        assert ids.sequence_of(conversation_id + "x", render(conversation_id, seq)) is None


@PROPERTY
@given(conversation_ids, st.text(max_size=60) | st.text(max_size=20).map(lambda tail: "c|" + tail))
@example("c", "c|٣")
@example("c", "c|+1")
@example("c", "c|1_000")
@example("c", "c| 1")
@example("c", "c|" + "1" * 19)
@example("c", "c|0000042")
def test_sequence_of_any_text_is_a_sequence_or_none(conversation_id: str, raw: str) -> None:
    seq = ids.sequence_of(conversation_id, raw)
    prefix, _, digits = raw.rpartition("|")
    valid = prefix == conversation_id and DIGITS.fullmatch(digits) is not None
    assert (seq is not None) == valid, (raw, seq)
    assert seq is None or seq == sum(int(d) * 10**i for i, d in enumerate(reversed(digits)))


@PROPERTY
@given(st.integers(min_value=0, max_value=64))
def test_random_ids_are_base62_of_their_length(length: int) -> None:
    value = ids.random_id(length)
    assert len(value) == length and value.isascii() and (value.isalnum() or not value)
