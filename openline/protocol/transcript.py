"""A conversation as the Bot Framework Emulator's `.transcript` file: a JSON array of activities.

The Emulator (File > Open Transcript) reads the file with `JSON.parse` and feeds the activities to its Web
Chat after `Conversation.prepTranscriptActivities` (BotFramework-Emulator, packages/app/main/src/server/
state/conversation.ts), which reads `recipient.role` and `from.id` of every activity and tells the bot
from the user by `role`: "bot" or "user", as botbuilder's TranscriptLoggerMiddleware records them. Stored
activities may lack a role or a recipient (a Direct Line client sends neither), so both are filled from
who sent each one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from openline.storage.base import Member, StoredActivity

CHANNEL_ID = "directline"


def _account(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _sent_by_bot(stored: StoredActivity, bot_id: str) -> bool:
    if stored.origin is not None:
        return stored.origin == "bot"
    # stored before openline recorded origins: the sender's role, else its id
    sender = _account(stored.activity.get("from"))
    return sender.get("role") == "bot" or sender.get("id") == bot_id


def emulator_transcript(
    conversation_id: str, bot_id: str, bot_name: str | None, members: Sequence[Member], stored: Iterable[StoredActivity]
) -> list[dict[str, Any]]:
    """The activities of a conversation, oldest first, each a copy with `from` and `recipient` carrying their
    role ("user" or "bot"), `conversation.id` and `channelId` set; nothing else of the activity changes.

    A bot's activity without a recipient is addressed to the user who spoke last (else the first member that is
    not the bot).
    """
    bot = {"id": bot_id, "name": bot_name or bot_id, "role": "bot"}
    users = [m for m in members if m.id != bot_id]
    last_user: dict[str, Any] = {"id": users[0].id if users else "user", "role": "user"}
    if users and users[0].name:
        last_user["name"] = users[0].name
    out: list[dict[str, Any]] = []
    for item in stored:
        activity = copy.deepcopy(item.activity)
        sender, recipient = _account(activity.get("from")), _account(activity.get("recipient"))
        if _sent_by_bot(item, bot_id):
            activity["from"] = {**bot, **sender, "role": "bot"}
            activity["recipient"] = {**last_user, **recipient, "role": "user"}
        else:
            sender = {"id": "user", **sender, "role": "user"}
            activity["from"] = sender
            activity["recipient"] = {**bot, **recipient, "role": "bot"}
            last_user = sender
        activity["conversation"] = {**_account(activity.get("conversation")), "id": conversation_id}
        activity.setdefault("channelId", CHANNEL_ID)
        activity.setdefault("type", "message")
        out.append(activity)
    return out
