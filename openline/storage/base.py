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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# who sent a stored activity: a Direct Line client (it is delivered to the bot), or the bot
Origin = Literal["client", "bot"]
# where the delivery of something sent to the bot stands: being sent (or its sender died), taken by the bot, refused
DeliveryState = Literal["pending", "delivered", "failed"]


class UnknownConversation(LookupError):
    """The conversation does not exist (never created, or deleted by retention)."""


class ConversationDeleted(UnknownConversation):
    """The id is of a conversation an operator deleted (`ConversationStore.delete_conversation`): it cannot be
    created again while its tombstone is kept."""


class StoreUnavailable(ConnectionError):
    """The store cannot be reached now (a Redis server down or restarting); nothing of the call was done, or
    its outcome is unknown. Clients are answered 503 and retry."""


class StoreFull(StoreUnavailable):
    """The store has no room for the write (its disk is full): nothing of the call was done. Clients are
    answered 503 and retry; writes succeed again as soon as there is room, without a restart."""


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
    repeated: bool = False  # `append` found the client key already stored: this is the first activity, unchanged
    origin: Origin | None = None  # None: stored by an openline that did not record origins (schema < 3)


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    conversation_id: str
    name: str
    content_type: str
    data: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the delivery of one activity to the bot stands, and what the bot's endpoint did with it.

    The record of a stored activity decides what a client's retry does (see
    `ConversationStore.claim_delivery`), and the inspector shows every record.
    `activity` is the activity itself when it is not in the conversation's
    transcript (a `conversationUpdate` the service sent, a `typing`); None for
    a stored activity, found by `activity_id`. A "failed" record has an
    `error`; the others have none.
    """

    activity_id: str
    at: float  # when the state was set: the attempt's start ("pending"), else when the bot answered or failed
    status: int | None  # the bot's HTTP status; None when it never answered (or has not yet)
    duration: float  # seconds the last attempt took (0 while pending)
    error: str | None = None  # an `ErrorKind` value; None unless the state is "failed"
    detail: str = ""
    activity: dict[str, Any] | None = None
    state: DeliveryState = "delivered"
    attempts: int = 1  # how many times the service has started sending it

    def __post_init__(self) -> None:
        if (self.state == "failed") != (self.error is not None):
            raise ValueError(f"a {self.state!r} delivery record {'needs' if self.error is None else 'has no'} error")

    def claimed(self, now: float) -> Delivery:
        """This record taken over for one more attempt: "pending" since `now`, the last outcome cleared."""
        return dataclasses.replace(
            self, at=now, status=None, duration=0.0, error=None, detail="", state="pending", attempts=self.attempts + 1
        )


def claimable(state: DeliveryState, at: float, stale_before: float) -> bool:
    """The rule of every claim (`claim_delivery`, `claim_announcement`): a failed delivery, or one whose
    sender has held it since before `stale_before` (it gave up or died); never one the bot has."""
    return state == "failed" or (state == "pending" and at < stale_before)


def first_claim(activity_id: str, now: float) -> Delivery:
    """The record of a delivery claimed for its first attempt, at `now`."""
    return Delivery(activity_id, now, None, 0.0, state="pending")


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as the inspector lists it."""

    conversation: Conversation
    last_active: float  # when an activity was last appended (the creation time before any)
    activity_count: int  # activities stored now, within the retention
    members: list[Member]


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
        False is returned. Raises ConversationDeleted for an id whose tombstone
        is kept at `now` (see `delete_conversation`).
        """

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation as it is now (its `last_seq` included), or None if it does not exist."""

    async def add_member(self, conversation_id: str, member: Member) -> bool:
        """Record `member` as part of the conversation, as one the bot knows of (announced).

        Returns True only for the call that added this member id (atomic, like
        `create_conversation`); a known id returns False and keeps its first
        name and announcement state. Raises UnknownConversation.
        """

    async def claim_announcement(
        self, conversation_id: str, member: Member, now: float, stale_before: float
    ) -> tuple[bool, DeliveryState]:
        """Take over telling the bot that `member` joined, unless it knows or someone is telling it.

        Atomically: a new member is added (at the end, in state "pending" at
        `now`); a member whose announcement is "failed", or "pending" since
        before `stale_before` (its sender gave up or died), becomes "pending" at
        `now`. Both return (True, "pending"): the caller announces it, then
        calls `finish_announcement`. Otherwise (False, state): "delivered" (the
        bot knows) or "pending" (in flight elsewhere). Raises UnknownConversation.
        """

    async def announced(self, conversation_id: str, member_ids: Sequence[str]) -> set[str]:
        """The ids among `member_ids` whose joining the bot was told of ("delivered"), read in one step.

        An unknown conversation has none (the caller's claim then finds it unknown).
        """

    async def finish_announcement(self, conversation_id: str, member_id: str, delivered: bool) -> None:
        """Record whether the bot took the announcement of a claimed member ("delivered", else "failed").

        Nothing happens when the member or the conversation is gone meanwhile.
        """

    async def remove_member(self, conversation_id: str, member_id: str) -> bool:
        """Forget a member; True when it was there. Raises UnknownConversation.

        A removed member who comes back is a new member: its announcement is claimed anew.
        """

    async def members(self, conversation_id: str) -> list[Member]:
        """The members in the order they were added. Raises UnknownConversation."""

    async def append(
        self,
        conversation_id: str,
        activity: dict[str, Any],
        now: float,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
        origin: Origin = "client",
    ) -> StoredActivity:
        """Store an activity at the end of the conversation and return it with its place.

        Atomically: takes the next sequence number (1, 2, 3 ... without gaps),
        sets the activity's `id` and `timestamp` with
        `protocol.activity.assign_position` (the timestamp is `now` in ms but
        strictly after the previous activity's), stores `files` with it, and
        marks the conversation active at `now`. The activity dict is modified in
        place. When this returns, the write is durable for the backend's promise
        (SQLite: committed). Raises UnknownConversation.

        `client_key` (a client's own id for the activity) makes the append
        idempotent: when an activity with that key is still stored in the
        conversation, nothing is written and that activity is returned with
        `repeated=True` (the caller's dict is left alone).

        `origin` is kept with the activity and returned by `read` (the
        inspector shows which way it went). A client's activity is delivered to
        the bot by the caller; when it has a `client_key` (a retry can find it),
        its delivery record is created with it, atomically, in state "pending" at
        `now`, attempt 1, so that a retry waits for that delivery rather than
        making another (see `claim_delivery`). Without a key nothing can retry
        it, and its record is only the outcome the caller adds.
        """

    async def replace(
        self, conversation_id: str, seq: int, activity: dict[str, Any], now: float, file_ids: Sequence[str] = ()
    ) -> StoredActivity | None:
        """Replace the body of the stored activity at `seq`, keeping its `id` and `timestamp`.

        The new body is stamped with the old position (in place) and returned;
        None when there is no such activity (never stored, deleted, or past the
        retention). The sequence does not move. The conversation's files
        `file_ids` (those the old version linked and the new one does not) are
        deleted with it, in one step. Raises UnknownConversation.
        """

    async def delete(self, conversation_id: str, seq: int, file_ids: Sequence[str] = ()) -> bool:
        """Remove the activity at `seq` (its number is not reused); True when it was there.

        The conversation's files `file_ids` (uploaded with it) are deleted
        with it, in one step. Raises UnknownConversation.
        """

    async def delete_conversation(self, conversation_id: str, now: float, forget_at: float) -> bool:
        """Delete the conversation and everything of it; True when it was there.

        At once (one step: a reader finds all of it or nothing) the
        conversation is gone for every call, as if it never existed, and its id
        gets a tombstone kept until at least `forget_at`: meanwhile
        `create_conversation` refuses the id (ConversationDeleted) and `deleted`
        says so, so that no credential issued before the deletion can bring it
        back. Its activities, members, files, delivery records and client keys
        go with it (SQLite deletes their rows in short batches before returning;
        a batch cut short by a crash is finished by `sweep`, and the id is not
        given back before), then its entries in the store's indexes
        (`recent_conversations`, `conversations`). `sweep` forgets tombstones
        past their `forget_at`. Deleted data is made unrecoverable as `sweep`
        describes (at the next sweep). The caller tells the conversation's
        readers (an `Event` with `gone`).
        """

    async def deleted(self, conversation_id: str, now: float) -> bool:
        """Whether `delete_conversation` deleted this id and its tombstone is kept at `now`."""

    async def conversations(self, bot_id: str, after_id: str, limit: int) -> list[Conversation]:
        """Up to `limit` conversations of `bot_id` whose id sorts after `after_id` ("" for the first), by id."""

    async def add_file(self, file: StoredFile) -> None:
        """Store a file on its own (not with an activity); kept for the retention. Raises UnknownConversation."""

    async def add_delivery(self, conversation_id: str, delivery: Delivery) -> None:
        """Record what the bot did with an activity; kept for the retention (from `delivery.at`).

        One record per `activity_id`: a second one replaces the first, unless
        the first is of a later attempt (more `attempts`): the outcome of an
        attempt that was taken over is dropped. Does not mark the conversation
        active. Raises UnknownConversation.
        """

    async def renew_claim(self, conversation_id: str, activity_id: str, attempts: int, now: float) -> bool:
        """Keep a claim alive: a "pending" record of attempt `attempts` gets `at = now`; True when it did.

        False when the record is no longer that claim (another sender took the
        delivery over, or there is none): the caller must not deliver it.
        Raises UnknownConversation.
        """

    async def claim_delivery(
        self, conversation_id: str, activity_id: str, now: float, stale_before: float
    ) -> tuple[bool, Delivery]:
        """Take over delivering a stored activity again, unless the bot has it or someone is delivering it.

        Atomically: when the activity's record is "failed", "pending" since
        before `stale_before` (its sender gave up or died), or missing, it
        becomes "pending" at `now` with one more attempt (the rest of the old
        record kept), and (True, that record) is returned: the caller delivers
        it and records the outcome with `add_delivery`. Otherwise (False, the
        record as it is): "delivered" or "pending" (in flight elsewhere).
        Raises UnknownConversation.
        """

    async def deliveries(self, conversation_id: str, since: float, now: float) -> list[Delivery]:
        """The delivery records with `at >= since`, oldest first, leaving out those past the retention at `now`.

        Raises UnknownConversation.
        """

    async def recent_conversations(self, limit: int, now: float) -> list[ConversationSummary]:
        """Up to `limit` conversations, the most recently active first (ties: by id)."""

    async def count_conversations(self, now: float) -> int:
        """How many conversations are stored: those active within `conversation_ttl` before `now` (the idle
        ones the next sweep deletes are not counted). Cheap with many (an index range), for `/metrics`."""

    async def summary(self, conversation_id: str, now: float) -> ConversationSummary | None:
        """One conversation as `recent_conversations` describes it, or None if it does not exist."""

    async def read(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        """Up to `limit` activities with `seq > after_seq`, in sequence order.

        Activities older than the retention at `now` are left out. The dicts
        returned belong to the caller. Raises UnknownConversation.
        """

    async def get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        """The file, or None if unknown or older than the retention at `now`."""

    async def sweep(self, now: float) -> int:
        """Delete what retention has expired at `now`; return how many items went.

        A backend that keeps files also makes everything deleted since the last
        sweep (expired here, or removed by `delete`, `replace` or
        `remove_member`) unrecoverable from them before returning, as far as it
        can: the service sweeps at least every minute, which bounds how long
        deleted data stays on disk.
        """


@dataclass(frozen=True, slots=True)
class Event:
    """Something stream readers of a conversation are told.

    `seq` is the position of an activity just appended; None for what has no
    position: ephemeral activities (typing), and replacements or removals of
    stored ones (the activity then carries the id it replaces; `removed` for a
    removal). Inspectors also hear what the bot did with each activity sent to
    it (`delivery`). `gone` (no activity) tells every reader that the
    conversation was deleted: its streams end.
    """

    seq: int | None
    activity: dict[str, Any] | None  # None: only a delivery report (see `Broker.subscribe`)
    origin: Origin = "bot"
    delivery: Delivery | None = None
    removed: bool = False  # the activity with this id was deleted; `activity` is what streams are sent instead
    gone: bool = False  # the conversation was deleted (`ConversationStore.delete_conversation`)


class Subscription(Protocol):
    lagged: bool  # set when events were dropped because the reader fell behind; re-read the store

    async def get(self, within: float | None = None) -> Event | None:
        """The next event, waiting for one up to `within` seconds (None: for ever).

        None when the time ran out, or when the reader was woken `lagged` with
        no event (a cross-instance broker that may have missed some): re-read
        the store.
        """

    async def ready(self) -> None:
        """Return once events published from now on reach this reader (a cross-instance broker waits for its
        server to confirm the subscription, at most a few seconds; after that the reader is `lagged`).

        Readers that replay the store and then follow live call this before the replay.
        """

    def close(self) -> None:
        """Stop receiving; idempotent."""


class Broker(Protocol):
    """Fans events out to the open streams of a conversation.

    Delivery is best effort and ordered per publisher: a reader that falls
    behind loses events and sees `lagged`. Readers never rely on the broker
    alone: they re-read the store from their watermark, so nothing is missed.
    """

    async def publish(self, conversation_id: str, event: Event) -> None:
        """Tell every current subscriber of the conversation (none: nothing happens)."""

    def subscribe(self, conversation_id: str, *, deliveries: bool = False) -> Subscription:
        """Start receiving the conversation's events published from now on.

        Events that are only a delivery report (`activity` None, not `gone`)
        reach the subscriptions that ask for them (`deliveries=True`:
        inspectors) only.
        """
