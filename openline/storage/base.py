"""The storage interface every backend implements, and its value types.

A store keeps conversations (which bot, which members), their activities in
one sequence per conversation, and uploaded files. It also enforces retention:
activities and files older than `retention` seconds are never returned and are
deleted by `sweep`; conversations idle longer than `conversation_ttl` are
deleted with everything in them.

Times are POSIX seconds (float) passed in by the caller, so tests control the
clock. Every method is a coroutine and must not block the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class UnknownConversation(LookupError):
    """The conversation does not exist (never created, or deleted by retention)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    bot_id: str
    created_at: float
    last_seq: int = 0  # the sequence number of the last activity appended (0: none yet)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class StoredActivity:
    seq: int
    activity: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    conversation_id: str
    name: str
    content_type: str
    data: bytes
    created_at: float


class ConversationStore(Protocol):
    retention: float
    conversation_ttl: float

    async def open(self) -> None:
        """Connect, create the schema if needed. Called once before any other method."""

    async def close(self) -> None:
        """Finish pending writes and release resources. Nothing is lost that was acknowledged."""

    async def ping(self) -> None:
        """Return when the store can serve requests; raise when it cannot (the health check)."""

    async def create_conversation(self, conversation_id: str, bot_id: str, now: float) -> bool:
        """Create the conversation if it does not exist.

        Atomic: of concurrent calls with one id, exactly one returns True. An
        existing conversation is left unchanged (even with another `bot_id`) and
        False is returned.
        """

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation as it is now (its `last_seq` included), or None if it does not exist."""

    async def add_member(self, conversation_id: str, member: Member) -> bool:
        """Record `member` as part of the conversation.

        Returns True only for the call that added this member id (atomic, like
        `create_conversation`); a known id returns False and keeps its first name.
        Raises UnknownConversation.
        """

    async def remove_member(self, conversation_id: str, member_id: str) -> bool:
        """Forget a member; True when it was there. Raises UnknownConversation.

        Used to undo `add_member` when the bot was not told of the member, so the
        next activity of that member tells it again.
        """

    async def members(self, conversation_id: str) -> list[Member]:
        """The members in the order they were added. Raises UnknownConversation."""

    async def append(
        self, conversation_id: str, activity: dict[str, Any], now: float, files: Sequence[StoredFile] = ()
    ) -> StoredActivity:
        """Store an activity at the end of the conversation and return it with its place.

        Atomically: takes the next sequence number (1, 2, 3 ... without gaps),
        sets the activity's `id` and `timestamp` with
        `protocol.activity.assign_position` (the timestamp is `now` in ms but
        strictly after the previous activity's), stores `files` with it, and
        marks the conversation active at `now`. The activity dict is modified in
        place. When this returns, the write is durable for the backend's promise
        (SQLite: committed). Raises UnknownConversation.
        """

    async def read(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        """Up to `limit` activities with `seq > after_seq`, in sequence order.

        Activities older than the retention at `now` are left out. The dicts
        returned belong to the caller. Raises UnknownConversation.
        """

    async def get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        """The file, or None if unknown or older than the retention at `now`."""

    async def sweep(self, now: float) -> int:
        """Delete what retention has expired at `now`; return how many items went."""
