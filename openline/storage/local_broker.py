"""In-process fan-out of conversation events (`Broker` for one process: SQLite and memory stores).

Each subscription is a bounded queue. Publishing never waits: a reader whose
queue is full loses the event and is marked `lagged`, and re-reads the store.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from openline.storage.base import Broker, Event, Subscription

QUEUE_SIZE = 1024
CONFIRM_WITHIN = 5.0  # seconds `ready` waits for a cross-instance broker's server to confirm a subscription


class _Subscriptions(Protocol):
    def unsubscribe(self, conversation_id: str, subscription: LocalSubscription) -> None: ...


class LocalSubscription:
    """A bounded queue of events with one reader. Small on purpose: a WebSocket stream keeps one open for its
    whole life, often idle (a list and at most one future and timer while the reader waits)."""

    __slots__ = (
        "_broker",
        "_confirmed",
        "_conversation_id",
        "_events",
        "_size",
        "_waiter",
        "closed",
        "deliveries",
        "lagged",
    )

    def __init__(self, broker: _Subscriptions, conversation_id: str, size: int, deliveries: bool) -> None:
        self._broker = broker
        self._conversation_id = conversation_id
        self.deliveries = deliveries
        self._size = size
        self._events: list[Event] = []
        self._waiter: asyncio.Future[None] | None = None
        self._confirmed: asyncio.Future[None] | None = None  # set while a broker waits for its server to confirm
        self.lagged = False
        self.closed = False

    def offer(self, event: Event) -> None:
        if len(self._events) >= self._size:
            self.lagged = True
            return
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def awaiting_confirmation(self) -> None:
        """`ready` waits until `confirm` (a broker whose server has not confirmed the subscription yet)."""
        self._confirmed = asyncio.get_running_loop().create_future()

    @property
    def confirmed(self) -> bool:
        return self._confirmed is None or self._confirmed.done()

    def confirm(self) -> None:
        if self._confirmed is not None and not self._confirmed.done():
            self._confirmed.set_result(None)

    async def ready(self, within: float = CONFIRM_WITHIN) -> None:
        if self._confirmed is None or self._confirmed.done():
            return
        try:
            # not asyncio.wait_for: on Python 3.11 it returns instead of raising when the caller is cancelled as
            # the confirmation arrives, and a stream whose client left at that moment then waited forever
            async with asyncio.timeout(within):
                await asyncio.shield(self._confirmed)
        except TimeoutError:
            # not confirmed in time (the server is away): follow live as soon as it is, re-reading the store then
            self.confirm()
            self.lagged = True

    def nudge(self) -> None:
        """Mark the reader `lagged` and wake it: it re-reads the store (something may have passed it by)."""
        self.lagged = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self, within: float | None = None) -> Event | None:
        if not self._events:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(within, _wake, waiter) if within is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._events:
                return None
        return self._events.pop(0)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker.unsubscribe(self._conversation_id, self)


def offer(readers: Iterable[LocalSubscription], event: Event) -> None:
    """Give an event to a conversation's readers: a delivery report only (`activity` None, not `gone`) to those
    that asked for reports (see `Broker.subscribe`)."""
    report_only = event.activity is None and not event.gone
    for subscription in readers:
        if subscription.deliveries or not report_only:
            subscription.offer(event)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class LocalBroker:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[LocalSubscription]] = defaultdict(set)

    async def publish(self, conversation_id: str, event: Event) -> None:
        offer(self._subscribers.get(conversation_id, ()), event)

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

    def conversation_ids(self) -> list[str]:
        """The conversations that have readers now."""
        return list(self._subscribers)


_: type[Broker] = LocalBroker
__: type[Subscription] = LocalSubscription
