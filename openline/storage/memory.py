"""In-memory store (`--store memory://`): fast, throwaway, for tests and demos.

Every method completes without awaiting, so each one is atomic on the event loop.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from openline.protocol.activity import assign_position, next_timestamp_ms
from openline.storage.base import (
    Conversation,
    ConversationDeleted,
    ConversationStore,
    ConversationSummary,
    Delivery,
    DeliveryState,
    Member,
    Origin,
    StoredActivity,
    StoredFile,
    UnknownConversation,
    claimable,
    first_claim,
)


@dataclass(slots=True)
class _Record:
    conversation: Conversation
    last_active: float
    last_ts_ms: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    announcements: dict[str, tuple[DeliveryState, float]] = field(default_factory=dict)  # member id -> (state, at)
    # (seq, stored-at, activity, origin), in sequence order; the first items are the oldest
    # (seq, stored at, the activity as JSON, origin): JSON, as SQLite keeps it, is a private copy cheaper than deepcopy
    activities: list[tuple[int, float, bytes, Origin]] = field(default_factory=list)
    next_seq: int = 1
    files: dict[str, StoredFile] = field(default_factory=dict)
    client_keys: dict[str, int] = field(default_factory=dict)  # client key -> seq
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # activity id -> its latest record

    def find(self, seq: int) -> int | None:
        """The index in `activities` of the activity at `seq`, if it is stored."""
        i = bisect.bisect_left(self.activities, seq, key=lambda item: item[0])
        return i if i < len(self.activities) and self.activities[i][0] == seq else None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _copied(delivery: Delivery) -> Delivery:
    """`delivery` with its own copy of the activity, so neither the caller nor a reader can rewrite the record."""
    if delivery.activity is None:
        return delivery
    return dataclasses.replace(delivery, activity=_decode(_encode(delivery.activity)))


class MemoryStore:
    def __init__(self, retention: float, conversation_ttl: float) -> None:
        self.retention = retention
        self.conversation_ttl = conversation_ttl
        self._records: dict[str, _Record] = {}
        self._tombstones: dict[str, float] = {}  # deleted conversation id -> kept until then

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    def _record(self, conversation_id: str) -> _Record:
        record = self._records.get(conversation_id)
        if record is None:
            raise UnknownConversation(conversation_id)
        return record

    async def create_conversation(self, conversation_id: str, bot_id: str, now: float) -> bool:
        if conversation_id in self._records:
            return False
        if await self.deleted(conversation_id, now):
            raise ConversationDeleted(conversation_id)
        self._records[conversation_id] = _Record(Conversation(conversation_id, bot_id, now), now)
        return True

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        record = self._records.get(conversation_id)
        if record is None:
            return None
        return Conversation(
            conversation_id, record.conversation.bot_id, record.conversation.created_at, record.next_seq - 1
        )

    async def add_member(self, conversation_id: str, member: Member) -> bool:
        record = self._record(conversation_id)
        if member.id in record.members:
            return False
        record.members[member.id] = member
        record.announcements[member.id] = ("delivered", 0.0)
        return True

    async def claim_announcement(
        self, conversation_id: str, member: Member, now: float, stale_before: float
    ) -> tuple[bool, DeliveryState]:
        record = self._record(conversation_id)
        if member.id not in record.members:
            record.members[member.id] = member
        else:
            state, at = record.announcements.get(member.id, ("delivered", 0.0))
            if not claimable(state, at, stale_before):
                return False, state
        record.announcements[member.id] = ("pending", now)
        return True, "pending"

    async def announced(self, conversation_id: str, member_ids: Sequence[str]) -> set[str]:
        record = self._records.get(conversation_id)
        if record is None:
            return set()
        return {
            i
            for i in member_ids
            if i in record.members and record.announcements.get(i, ("delivered",))[0] == "delivered"
        }

    async def finish_announcement(self, conversation_id: str, member_id: str, delivered: bool) -> None:
        record = self._records.get(conversation_id)
        if record is not None and member_id in record.members:
            record.announcements[member_id] = ("delivered" if delivered else "failed", 0.0)

    async def remove_member(self, conversation_id: str, member_id: str) -> bool:
        record = self._record(conversation_id)
        record.announcements.pop(member_id, None)
        return record.members.pop(member_id, None) is not None

    async def members(self, conversation_id: str) -> list[Member]:
        return list(self._record(conversation_id).members.values())

    async def append(
        self,
        conversation_id: str,
        activity: dict[str, Any],
        now: float,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
        origin: Origin = "client",
    ) -> StoredActivity:
        record = self._record(conversation_id)
        if client_key is not None:
            known = record.client_keys.get(client_key)
            i = record.find(known) if known is not None else None
            if i is not None and record.activities[i][1] >= now - self.retention:
                first_seq, _, first, first_origin = record.activities[i]
                return StoredActivity(first_seq, _decode(first), repeated=True, origin=first_origin)
        seq = record.next_seq
        ts_ms = next_timestamp_ms(int(now * 1000), record.last_ts_ms)
        # encoded first (a private copy, so later changes to the caller's dict do not rewrite history): an
        # activity that cannot be encoded takes no position and no client key, as in SQLite
        body = _encode(assign_position(dict(activity), conversation_id, seq, ts_ms))
        if client_key is not None:
            record.client_keys[client_key] = seq
        record.next_seq += 1
        record.last_ts_ms = ts_ms
        assign_position(activity, conversation_id, seq, ts_ms)
        record.activities.append((seq, now, body, origin))
        for f in files:
            record.files[f.id] = f
        if origin == "client" and client_key is not None:
            record.deliveries[activity["id"]] = first_claim(activity["id"], now)
        record.last_active = now
        return StoredActivity(seq, activity, origin=origin)

    async def replace(
        self, conversation_id: str, seq: int, activity: dict[str, Any], now: float, file_ids: Sequence[str] = ()
    ) -> StoredActivity | None:
        record = self._record(conversation_id)
        i = record.find(seq)
        if i is None or record.activities[i][1] < now - self.retention:
            return None
        _, stored_at, old_body, origin = record.activities[i]
        old = _decode(old_body)
        body = _encode({**activity, "id": old["id"], "timestamp": old["timestamp"]})
        activity["id"], activity["timestamp"] = old["id"], old["timestamp"]
        record.activities[i] = (seq, stored_at, body, origin)
        for file_id in file_ids:
            record.files.pop(file_id, None)
        return StoredActivity(seq, activity, origin=origin)

    async def delete(self, conversation_id: str, seq: int, file_ids: Sequence[str] = ()) -> bool:
        record = self._record(conversation_id)
        i = record.find(seq)
        if i is None:
            return False
        del record.activities[i]
        for file_id in file_ids:
            record.files.pop(file_id, None)
        return True

    async def delete_conversation(self, conversation_id: str, now: float, forget_at: float) -> bool:
        if self._records.pop(conversation_id, None) is None:
            return False
        self._tombstones[conversation_id] = forget_at
        return True

    async def deleted(self, conversation_id: str, now: float) -> bool:
        return self._tombstones.get(conversation_id, -1.0) >= now

    async def conversations(self, bot_id: str, after_id: str, limit: int) -> list[Conversation]:
        ids = sorted(i for i, r in self._records.items() if r.conversation.bot_id == bot_id and i > after_id)
        found = [await self.get_conversation(i) for i in ids[: max(limit, 0)]]
        return [c for c in found if c is not None]

    async def add_file(self, file: StoredFile) -> None:
        record = self._record(file.conversation_id)
        record.files[file.id] = file
        record.last_active = max(record.last_active, file.created_at)

    async def add_delivery(self, conversation_id: str, delivery: Delivery) -> None:
        deliveries = self._record(conversation_id).deliveries
        known = deliveries.get(delivery.activity_id)
        if known is None or known.attempts <= delivery.attempts:
            deliveries[delivery.activity_id] = _copied(delivery)

    async def renew_claim(self, conversation_id: str, activity_id: str, attempts: int, now: float) -> bool:
        deliveries = self._record(conversation_id).deliveries
        known = deliveries.get(activity_id)
        if known is None or known.state != "pending" or known.attempts != attempts:
            return False
        deliveries[activity_id] = dataclasses.replace(known, at=now)
        return True

    async def claim_delivery(
        self, conversation_id: str, activity_id: str, now: float, stale_before: float
    ) -> tuple[bool, Delivery]:
        record = self._record(conversation_id)
        known = record.deliveries.get(activity_id)
        if known is not None and not claimable(known.state, known.at, stale_before):
            return False, _copied(known)
        claimed = known.claimed(now) if known is not None else first_claim(activity_id, now)
        record.deliveries[activity_id] = claimed
        return True, _copied(claimed)

    async def deliveries(self, conversation_id: str, since: float, now: float) -> list[Delivery]:
        record = self._record(conversation_id)
        start = max(since, now - self.retention)
        found = sorted((d for d in record.deliveries.values() if d.at >= start), key=lambda d: (d.at, d.activity_id))
        return [_copied(d) for d in found]

    def _summary(self, record: _Record, now: float) -> ConversationSummary:
        cutoff = now - self.retention
        conversation = record.conversation
        return ConversationSummary(
            Conversation(conversation.id, conversation.bot_id, conversation.created_at, record.next_seq - 1),
            record.last_active,
            sum(1 for item in record.activities if item[1] >= cutoff),
            list(record.members.values()),
        )

    async def recent_conversations(self, limit: int, now: float) -> list[ConversationSummary]:
        records = sorted(self._records.values(), key=lambda r: (-r.last_active, r.conversation.id))
        return [self._summary(r, now) for r in records[: max(limit, 0)]]

    async def count_conversations(self, now: float) -> int:
        idle_before = now - self.conversation_ttl
        return sum(1 for r in self._records.values() if r.last_active >= idle_before)

    async def summary(self, conversation_id: str, now: float) -> ConversationSummary | None:
        record = self._records.get(conversation_id)
        return self._summary(record, now) if record is not None else None

    async def read(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        record = self._record(conversation_id)
        cutoff = now - self.retention
        out: list[StoredActivity] = []
        # a sweep can leave holes (timestamps are not ordered by `now`), so search by seq
        start = bisect.bisect_right(record.activities, after_seq, key=lambda item: item[0])
        for seq, stored_at, activity, origin in record.activities[start:]:
            if len(out) >= limit:
                break
            if stored_at >= cutoff:
                out.append(StoredActivity(seq, _decode(activity), origin=origin))
        return out

    async def get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        record = self._records.get(conversation_id)
        f = record.files.get(file_id) if record else None
        if f is None or f.created_at < now - self.retention:
            return None
        return f

    async def sweep(self, now: float) -> int:
        cutoff = now - self.retention
        removed = 0
        self._tombstones = {i: until for i, until in self._tombstones.items() if until >= now}
        for conversation_id in list(self._records):
            record = self._records[conversation_id]
            if record.last_active < now - self.conversation_ttl:
                removed += 1 + len(record.activities) + len(record.files) + len(record.deliveries)
                del self._records[conversation_id]
                continue
            keep = [item for item in record.activities if item[1] >= cutoff]
            removed += len(record.activities) - len(keep)
            record.activities = keep
            kept = {item[0] for item in keep}
            record.client_keys = {k: seq for k, seq in record.client_keys.items() if seq in kept}
            for file_id, f in list(record.files.items()):
                if f.created_at < cutoff:
                    del record.files[file_id]
                    removed += 1
            for activity_id, d in list(record.deliveries.items()):
                if d.at < cutoff:
                    del record.deliveries[activity_id]
                    removed += 1
        return removed


_: type[ConversationStore] = MemoryStore
