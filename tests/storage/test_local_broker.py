"""Tests for openline.storage.local_broker: fan-out per conversation, lag, closing, delivery reports."""

from __future__ import annotations

import asyncio

import pytest

from openline.storage.base import Delivery, Event
from openline.storage.local_broker import LocalBroker

REPORT = Event(None, None, "client", Delivery("c|0000001", 1.0, 200, 0.01))


def _drain(subscription: object) -> list[Event]:
    events: list[Event] = subscription._events  # type: ignore[attr-defined]
    drained = list(events)
    events.clear()
    return drained


def test_events_reach_the_conversations_subscribers_in_order() -> None:
    async def run() -> None:
        broker = LocalBroker()
        first, second, other = broker.subscribe("c"), broker.subscribe("c"), broker.subscribe("d")
        events = [Event(1, {"id": "c|0000001"}), Event(None, {"type": "typing"})]
        for event in events:
            await broker.publish("c", event)
        assert await first.get() == events[0] and await first.get() == events[1]
        assert _drain(second) == events
        assert _drain(other) == []

    asyncio.run(run())


def test_delivery_reports_reach_only_subscribers_that_ask_for_them() -> None:
    async def run() -> None:
        broker = LocalBroker()
        stream, inspector = broker.subscribe("c"), broker.subscribe("c", deliveries=True)
        await broker.publish("c", REPORT)
        await broker.publish("c", Event(1, {"id": "c|0000001"}))
        assert [e.seq for e in _drain(stream)] == [1]
        assert _drain(inspector) == [REPORT, Event(1, {"id": "c|0000001"})]

    asyncio.run(run())


def test_a_full_queue_marks_the_reader_lagged() -> None:
    async def run() -> None:
        broker = LocalBroker(queue_size=2)
        subscription = broker.subscribe("c")
        for seq in (1, 2, 3):
            await broker.publish("c", Event(seq, {}))
        assert subscription.lagged
        assert [e.seq for e in _drain(subscription)] == [1, 2]

    asyncio.run(run())


def test_closing_unsubscribes_once() -> None:
    async def run() -> None:
        broker = LocalBroker()
        subscription = broker.subscribe("c")
        assert broker.subscriber_count("c") == 1
        subscription.close()
        subscription.close()
        assert broker.subscriber_count("c") == 0
        await broker.publish("c", Event(1, {}))
        assert _drain(subscription) == []

    asyncio.run(run())


def test_get_waits_up_to_its_time_then_answers_none() -> None:
    async def run() -> None:
        broker = LocalBroker()
        subscription = broker.subscribe("c")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await subscription.get(0.05) is None
        assert loop.time() - started >= 0.04
        loop.call_later(0.02, lambda: loop.create_task(broker.publish("c", Event(1, {}))))
        got = await subscription.get(5)
        assert got is not None and got.seq == 1
        assert loop.time() - started < 2  # woken by the event, not by the time
        assert not loop._scheduled or all(h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]

    asyncio.run(run())


def test_a_cancelled_get_leaves_the_next_event_for_the_next_get() -> None:
    async def run() -> None:
        broker = LocalBroker()
        subscription = broker.subscribe("c")
        waiting = asyncio.create_task(subscription.get())
        await asyncio.sleep(0)
        waiting.cancel()
        await broker.publish("c", Event(1, {}))
        got = await subscription.get(1)
        assert got is not None and got.seq == 1

    asyncio.run(run())


def test_a_deleted_conversation_reaches_every_subscriber() -> None:
    async def run() -> None:
        broker = LocalBroker()
        stream, inspector = broker.subscribe("c"), broker.subscribe("c", deliveries=True)
        assert broker.conversation_ids() == ["c"]
        gone = Event(None, None, gone=True)
        await broker.publish("c", gone)
        assert _drain(stream) == [gone] and _drain(inspector) == [gone]

    asyncio.run(run())


def test_a_reader_cancelled_as_its_confirmation_arrives_is_cancelled() -> None:
    """A stream whose client leaves just as Redis confirms its subscription: `ready` must not swallow the
    cancellation (asyncio.wait_for on Python 3.11 did, and the stream then waited for an event forever)."""

    async def scenario() -> None:
        broker = LocalBroker()
        for _ in range(20):
            subscription = broker.subscribe("c1")
            subscription.awaiting_confirmation()
            waiting = asyncio.create_task(subscription.ready())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            subscription.confirm()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            subscription.close()

    asyncio.run(scenario())
