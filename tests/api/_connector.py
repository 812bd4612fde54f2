"""Helpers for the connector API tests: the error shape, bot-created conversations, stream subscriptions."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httpx

from openline.storage.base import Event, Subscription
from tests.api.conftest import Service


def error(r: httpx.Response, status: int, code: str) -> str:
    """Check the ErrorResponse shape and status; the message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body == {"error": {"code": code, "message": body["error"]["message"]}}
    message: str = body["error"]["message"]
    return message


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def create(service: Service, **parameters: Any) -> dict[str, Any]:
    """POST /v3/conversations (bot `rec` unless given); the 201 answer."""
    parameters.setdefault("bot", {"id": "rec"})
    r = service.http.post("/v3/conversations", json=parameters)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def bot_says(service: Service, conv: str, text: str) -> str:
    """An activity the bot sends to the conversation; its id."""
    r = service.http.post(f"/v3/conversations/{conv}/activities", json={"type": "message", "text": text})
    assert r.status_code == 200, r.text
    activity_id: str = r.json()["id"]
    return activity_id


def subscribe(service: Service, conv: str) -> Subscription:
    """A broker subscription made on the server's loop, as a stream would: ready (on Redis, confirmed by the
    server) before it is returned, or an event published at once could be missed."""

    async def make() -> Subscription:
        subscription = service.services.broker.subscribe(conv)
        await subscription.ready()
        return subscription

    subscription: Subscription = service.loop.run(make())
    return subscription


def next_event(service: Service, subscription: Subscription, timeout: float = 5) -> Event:
    event: Event = service.loop.run(asyncio.wait_for(subscription.get(), timeout))
    return event


def no_event(service: Service, subscription: Subscription, wait: float = 0.2) -> None:
    try:
        event = service.loop.run(asyncio.wait_for(subscription.get(), wait))
    except TimeoutError:
        return
    raise AssertionError(f"unexpected event {event}")
