"""What every service module shares: the configured bots, the not-found error, and append-and-publish.

Append-and-publish is the one step by which anything reaches a conversation:
the store commits the activity, then the broker tells the open streams, with
nothing awaited in between. Unstored activities (`typing`) only get an id and
a timestamp, and are published.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import random_id
from openline.storage.base import (
    Broker,
    ConversationStore,
    Event,
    Origin,
    StoredActivity,
    StoredFile,
    UnknownConversation,
)


@dataclass(frozen=True, slots=True)
class Bot:
    id: str
    name: str
    endpoint: str
    app_id: str | None = None  # set: every call to the bot carries a channel token for this app id

    @property
    def account(self) -> act.Account:
        return act.account(self.id, self.name, "bot")


def find_bot(bots: Mapping[str, Bot], bot_id: str) -> Bot:
    """The configured bot (NOT_FOUND when there is none with that id)."""
    bot = bots.get(bot_id)
    if bot is None:
        raise ServiceError(ErrorKind.NOT_FOUND, f"bot {bot_id!r} is not configured on this service")
    return bot


def conversation_not_found(conversation_id: str) -> ServiceError:
    return ServiceError(ErrorKind.NOT_FOUND, f"conversation {conversation_id!r} does not exist or has expired")


class Publisher:
    """Appends activities to conversations and tells their streams."""

    def __init__(self, store: ConversationStore, broker: Broker, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.broker = broker
        self.clock = clock

    async def append(
        self,
        conversation_id: str,
        activity: act.Activity,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
        origin: Origin = "bot",
    ) -> StoredActivity:
        """Append and publish, as one step: nothing is awaited between the commit and the publish.

        Raises NOT_FOUND for a conversation that does not exist (or expired).
        A `client_key` already stored returns that first activity (`repeated`), unpublished.
        """
        try:
            stored = await self.store.append(conversation_id, activity, self.clock(), files, client_key, origin)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if not stored.repeated:
            await self.broker.publish(conversation_id, Event(stored.seq, stored.activity, origin))
        return stored

    async def publish_ephemeral(self, conversation_id: str, activity: act.Activity, origin: Origin) -> str:
        """Give an unstored activity (typing) an id and a timestamp, push it to the streams; its id."""
        act.assign_ephemeral(activity, conversation_id, random_id(12), int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, activity, origin))
        return str(activity["id"])
