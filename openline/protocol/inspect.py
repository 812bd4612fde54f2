"""The inspector's JSON (the admin API): conversation summaries, transcript entries and live changes.

How this works: a transcript is the conversation's stored activities, in
sequence order, each joined with the record of what the bot did with it (its
delivery), plus the activities the service sent the bot without storing them
(`conversationUpdate`, `typing`), placed by timestamp. Live, every broker event
becomes one change the page applies by entry id: `entry` (add, or replace an
entry keeping its delivery when the new one has none), `delivery` (set the
delivery of a stored entry) and `delete` (the bot deleted it). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from openline.protocol.activity import format_timestamp
from openline.protocol.errors import v3_code
from openline.protocol.ids import sequence_of
from openline.storage.base import ConversationSummary, Delivery, Event, Origin, StoredActivity

TO_BOT, TO_CLIENT = "toBot", "toClient"


def iso(seconds: float) -> str:
    return format_timestamp(int(seconds * 1000))


def summary_view(summary: ConversationSummary, bot_name: str | None) -> dict[str, Any]:
    conversation = summary.conversation
    return {
        "id": conversation.id,
        "bot": {"id": conversation.bot_id, "name": bot_name},
        "users": [{"id": m.id, "name": m.name} for m in summary.members if m.id != conversation.bot_id],
        "activityCount": summary.activity_count,
        "createdAt": iso(conversation.created_at),
        "lastActivityAt": iso(summary.last_active),
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "state": delivery.state,
        "attempts": delivery.attempts,
        "status": delivery.status,
        "durationMs": round(delivery.duration * 1000, 1),
        "error": v3_code(delivery.error) if delivery.error is not None else None,
        "detail": delivery.detail,
        "at": iso(delivery.at),
    }


def direction(origin: Origin | None, activity: dict[str, Any]) -> str:
    """Which way an activity went; for activities stored before origins were kept, guessed from the sender's role."""
    if origin is None:
        sender = activity.get("from")
        origin = "bot" if isinstance(sender, dict) and sender.get("role") == "bot" else "client"
    return TO_BOT if origin == "client" else TO_CLIENT


def entry(
    activity: dict[str, Any], seq: int | None, origin: Origin | None, delivery: Delivery | None
) -> dict[str, Any]:
    return {
        "id": activity.get("id"),
        "seq": seq,
        "direction": direction(origin, activity),
        "stored": seq is not None,
        "type": activity.get("type"),
        "timestamp": activity.get("timestamp"),
        "activity": activity,
        "delivery": delivery_view(delivery) if delivery is not None else None,
    }


def transcript(
    stored: Sequence[StoredActivity], deliveries: Iterable[Delivery], truncated: bool = False
) -> list[dict[str, Any]]:
    """Stored activities with their deliveries, and the unstored activities sent to the bot, by time.

    `truncated`: `stored` is only the end of the conversation, so unstored
    activities from before its first one are left out too.
    """
    by_id = {d.activity_id: d for d in deliveries}
    entries = [entry(s.activity, s.seq, s.origin, by_id.pop(str(s.activity.get("id")), None)) for s in stored]
    start = entries[0]["timestamp"] if truncated and entries else ""
    unstored = [
        entry(d.activity, None, "client", d)
        for d in by_id.values()
        if d.activity is not None and str(d.activity.get("timestamp", "")) >= start
    ]
    # stored entries are in sequence order with increasing timestamps, and the sort is stable
    return sorted(entries + unstored, key=lambda e: str(e["timestamp"] or ""))


def change(conversation_id: str, event: Event) -> dict[str, Any] | None:
    """The live change an event makes to the transcript (None: nothing to show)."""
    activity = event.activity
    if activity is None:
        delivery = event.delivery
        if delivery is None:
            return None
        if delivery.activity is not None:
            return {"op": "entry", "entry": entry(delivery.activity, None, "client", delivery)}
        return {"op": "delivery", "id": delivery.activity_id, "delivery": delivery_view(delivery)}
    if event.removed:
        return {"op": "delete", "id": activity.get("id")}
    seq = event.seq if event.seq is not None else sequence_of(conversation_id, str(activity.get("id", "")))
    return {"op": "entry", "entry": entry(activity, seq, event.origin, None)}
