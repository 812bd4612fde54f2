"""Deleting a whole conversation on an operator's word (`openline conversation delete`, DELETE /admin/...).

The store forgets it in one step and keeps a tombstone of its id for as long as a credential issued before
can live (a conversation token, a stream token), so none can bring it back (`Channel.start`,
`Channel.refresh`); then its readers are told (`Event.gone`), so its open 3.0 streams and inspector feeds
end, on every instance that shares the store's broker.
"""

from __future__ import annotations

import asyncio

from openline.auth.tokens import STREAM_TTL
from openline.storage.base import Broker, ConversationStore, Event
from openline.storage.local_broker import LocalBroker


def tombstone_seconds(token_ttl: float) -> float:
    """How long a deleted conversation's id is refused: a token issued (or refreshed) just before the deletion
    lives `token_ttl` seconds, a stream token `STREAM_TTL`; both, as a margin for a refresh racing the deletion."""
    return token_ttl + STREAM_TTL


async def delete_conversation(
    store: ConversationStore, broker: Broker, conversation_id: str, now: float, token_ttl: float
) -> bool:
    """Delete the conversation with its activities, members, files and records; False when there was none.

    Its id stays deleted for `tombstone_seconds(token_ttl)` from `now` (POSIX seconds). Raises
    StoreUnavailable when the store cannot be reached (nothing, or all of it, was deleted then).
    """
    if not await store.delete_conversation(conversation_id, now, now + tombstone_seconds(token_ttl)):
        return False
    await broker.publish(conversation_id, Event(None, None, gone=True))
    return True


async def end_readers_of_deleted(store: ConversationStore, broker: LocalBroker) -> int:
    """Tell the readers of conversations that are gone from the store (deleted by another process, which cannot
    reach this process's broker: `openline conversation delete` on SQLite); how many conversations."""
    gone = 0
    for i, conversation_id in enumerate(broker.conversation_ids()):
        if i % 500 == 499:
            await asyncio.sleep(0)  # many readers: let the loop breathe between batches
        if await store.get_conversation(conversation_id) is None:
            await broker.publish(conversation_id, Event(None, None, gone=True))
            gone += 1
    return gone
