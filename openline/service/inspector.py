"""What the inspector reads: recent conversations, one conversation's transcript, and its live events.

Read-only but for `delete` (an operator's deletion of a whole conversation).
The JSON shapes are built by `protocol.inspect`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from openline.protocol import inspect
from openline.service import removal
from openline.service.publish import Bot, conversation_not_found
from openline.storage.base import Broker, ConversationStore, StoredActivity, Subscription, UnknownConversation

_PAGE = 500


def _seconds(timestamp: Any) -> float:
    """POSIX seconds of an activity's ISO timestamp (0.0 when it has none readable)."""
    try:
        return dt.datetime.fromisoformat(str(timestamp)).timestamp()
    except ValueError:
        return 0.0


class Inspector:
    """Reads conversations for the inspector; deletes one on the admin's word."""

    def __init__(
        self,
        store: ConversationStore,
        broker: Broker,
        bots: Mapping[str, Bot],
        clock: Callable[[], float] = time.time,
        token_ttl: float = 1800,
    ) -> None:
        self.store = store
        self.token_ttl = token_ttl  # how long tokens live: a deleted conversation's id is refused as long
        self.broker = broker
        self.bots = bots
        self.clock = clock

    def _bot_name(self, bot_id: str) -> str | None:
        bot = self.bots.get(bot_id)
        return bot.name if bot is not None else None

    async def conversations(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` conversations, the most recently active first."""
        found = await self.store.recent_conversations(limit, self.clock())
        return [inspect.summary_view(s, self._bot_name(s.conversation.bot_id)) for s in found]

    async def require(self, conversation_id: str) -> None:
        """NOT_FOUND unless the conversation exists."""
        if await self.store.get_conversation(conversation_id) is None:
            raise conversation_not_found(conversation_id)

    async def conversation(self, conversation_id: str, limit: int) -> dict[str, Any]:
        """The conversation's summary and the last `limit` entries of its transcript (NOT_FOUND)."""
        now = self.clock()
        summary = await self.store.summary(conversation_id, now)
        if summary is None:
            raise conversation_not_found(conversation_id)
        after = max(0, summary.conversation.last_seq - limit)
        stored: list[StoredActivity] = []
        try:
            while True:
                page = await self.store.read(conversation_id, after, _PAGE, now)
                stored += page
                if len(page) < _PAGE:
                    break
                after = page[-1].seq
            truncated = summary.conversation.last_seq > limit
            # only the records of what is shown: from the first activity shown on (all when nothing is cut)
            since = _seconds(stored[0].activity.get("timestamp")) if truncated and stored else 0.0
            deliveries = await self.store.deliveries(conversation_id, since, now)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return {
            "conversation": inspect.summary_view(summary, self._bot_name(summary.conversation.bot_id)),
            "entries": inspect.transcript(stored, deliveries, truncated),
            "truncated": truncated,
        }

    async def delete(self, conversation_id: str) -> bool:
        """Delete the conversation and everything of it; False when there is none (see `removal`)."""
        return await removal.delete_conversation(self.store, self.broker, conversation_id, self.clock(), self.token_ttl)

    def subscribe(self, conversation_id: str) -> Subscription:
        """The conversation's events from now on (`protocol.inspect.change` turns each into a change)."""
        return self.broker.subscribe(conversation_id, deliveries=True)
