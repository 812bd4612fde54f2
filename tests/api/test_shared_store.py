"""Two services on one Redis (two instances, in this process): what one process could remember must not give a
wrong answer when the other instance acts. Each has its own recording bot; both bots are the bot `rec`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api._v3 import V3
from tests.api.conftest import Service, serve


@pytest.fixture
def pair(tmp_path: Path, redis_url: str) -> Iterator[tuple[Service, Service]]:
    store = f"{redis_url}?prefix=pair-{uuid.uuid4().hex[:8]}"
    with serve(tmp_path / "a", store=store) as a, serve(tmp_path / "b", store=store) as b:
        yield a, b


def _joins(service: Service, conv: str, member: str) -> int:
    return sum(
        1
        for a in service.bot.of(conv, "conversationUpdate")
        if any(m.get("id") == member for m in a.get("membersAdded", []))
    )


def test_a_member_removed_on_another_instance_is_announced_again(pair: tuple[Service, Service]) -> None:
    a, b = pair
    conv = V3(a).start()["conversationId"]
    V3(a).say(conv, "hello", user="u1")
    assert _joins(a, conv, "u1") == 1
    V3(a).say(conv, "again", user="u1")
    assert _joins(a, conv, "u1") == 1, "known: not announced twice"
    # the bot removes the member through the other instance's connector API
    assert b.http.delete(f"/v3/conversations/{conv}/members/u1").status_code == 200
    V3(a).say(conv, "back", user="u1")
    assert _joins(a, conv, "u1") == 2, "a removed member who comes back is announced anew, on every instance"


def test_a_users_first_activity_waits_for_the_join_in_flight_on_another_instance(pair: tuple[Service, Service]) -> None:
    a, b = pair
    conv = V3(a).start()["conversationId"]
    a.bot.update_delay = 1.0  # instance A's bot takes a second over the user's join
    try:
        first = threading.Thread(target=lambda: V3(a).say(conv, "via a", user="u2"))
        first.start()
        while _joins(a, conv, "u2") == 0:  # A's announcement of u2 reached its bot, which has not answered yet
            time.sleep(0.01)
        started = time.monotonic()
        V3(b).say(conv, "via b", user="u2")
        waited = time.monotonic() - started
        first.join(10)
    finally:
        a.bot.update_delay = 0.0
    assert _joins(a, conv, "u2") + _joins(b, conv, "u2") == 1, "one announcement between the two instances"
    assert waited > 0.5, f"B sent u2's message after {waited:.2f} s, before A's bot had taken the news of u2's join"
    assert b.bot.of(conv, "message", "via b")
