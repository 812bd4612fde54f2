"""In-process fan-out of conversation events (`Broker` for one process: SQLite and memory stores).

Each subscription is a bounded queue. Publishing never waits: a reader whose
queue is full loses the event and is marked `lagged`, and re-reads the store.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from openline.storage.base import Broker, Event, Subscription

QUEUE_SIZE = 1024


class LocalSubscription:
    def __init__(self, broker: LocalBroker, conversation_id: str, size: int, deliveries: bool) -> None:
        self._broker = broker
        self._conversation_id = conversation_id
        self.deliveries = deliveries
        self._queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.lagged = False
        self.closed = False

    def offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    async def get(self) -> Event:
        return await self._queue.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker.unsubscribe(self._conversation_id, self)


class LocalBroker:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[LocalSubscription]] = defaultdict(set)

    async def publish(self, conversation_id: str, event: Event) -> None:
        report_only = event.activity is None
        for subscription in self._subscribers.get(conversation_id, ()):
            if subscription.deliveries or not report_only:
                subscription.offer(event)

    def subscribe(self, conversation_id: str, *, deliveries: bool = False) -> LocalSubscription:
        subscription = LocalSubscription(self, conversation_id, self._queue_size, deliveries)
        self._subscribers[conversation_id].add(subscription)
        return subscription

    def unsubscribe(self, conversation_id: str, subscription: LocalSubscription) -> None:
        subscribers = self._subscribers.get(conversation_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[conversation_id]

    def subscriber_count(self, conversation_id: str) -> int:
        return len(self._subscribers.get(conversation_id, ()))


_: type[Broker] = LocalBroker
__: type[Subscription] = LocalSubscription
