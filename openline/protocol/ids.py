"""Conversation, user and activity ids, and watermarks.

How this works: every conversation has one sequence of stored activities,
numbered 1, 2, 3 ... by the store as it appends them. Ids are renderings of
that number: the canonical (3.0 style) activity id is ``{conv}|{seq:07d}``,
the 1.1 message id is ``{conv}|{seq:018d}``. A watermark is the decimal
sequence number of the last activity a reader has been given; ``0`` means
"nothing yet", so reading "after the watermark" is reading ``seq > W``.
"""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# A watermark longer than this is not a sequence number this service issued.
_MAX_WATERMARK_DIGITS = 18


class InvalidWatermark(ValueError):
    """A watermark that is not one this service could have issued."""


def random_id(length: int) -> str:
    """A random base62 string of `length` characters (about 5.95 bits each)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_conversation_id() -> str:
    """A fresh, unguessable, URL-safe conversation id (22 base62 chars, ~130 bits)."""
    return random_id(22)


def new_user_id() -> str:
    """A fresh user id for a message without `from` (1.1 ids looked like `Dm7wEZR41W2`)."""
    return random_id(11)


def activity_id(conversation_id: str, seq: int) -> str:
    """The canonical activity id, as bots and 3.0 clients see it: `conv|0000007`."""
    return f"{conversation_id}|{seq:07d}"


def message_id_v1(conversation_id: str, seq: int) -> str:
    """The 1.1 message id: `conv|000000000000000007`."""
    return f"{conversation_id}|{seq:018d}"


def sequence_of(conversation_id: str, any_activity_id: str) -> int | None:
    """The sequence number inside an id of this conversation (either rendering), else None."""
    prefix, sep, digits = any_activity_id.rpartition("|")
    if (
        not sep
        or prefix != conversation_id
        or not (digits.isascii() and digits.isdigit())
        or len(digits) > _MAX_WATERMARK_DIGITS
    ):
        return None
    return int(digits)


def parse_watermark(raw: str | None) -> int:
    """The sequence a watermark stands for.

    Absent, empty and "-" (the 3.0 "from the beginning" marker) mean 0. Anything
    but up to 18 decimal digits raises InvalidWatermark.
    """
    if raw is None:
        return 0
    raw = raw.strip()
    if raw in ("", "-"):
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_WATERMARK_DIGITS:
        raise InvalidWatermark(f"invalid watermark {raw[:40]!r}: expected a watermark returned by this service")
    return int(raw)


def format_watermark(seq: int) -> str:
    """The watermark string for "everything up to `seq` has been seen"."""
    return str(seq)
