"""The storage fixtures: one `store` fixture per backend, each with its own event loop (`run`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openline.storage.base import ConversationStore
from openline.storage.memory import MemoryStore
from openline.storage.redis import RedisStore
from openline.storage.sqlite import SqliteStore
from tests.storage.conformance import Run

RETENTION = 100.0
CONVERSATION_TTL = 1000.0


def _redis(url_fixture: str) -> Callable[[Path, pytest.FixtureRequest], ConversationStore]:
    """A Redis store on the session's server (or cluster), its keys under a prefix of its own."""

    def make(tmp: Path, request: pytest.FixtureRequest) -> ConversationStore:
        url = request.getfixturevalue(url_fixture)
        return RedisStore(url, RETENTION, CONVERSATION_TTL, prefix=f"test-{uuid.uuid4().hex[:12]}")

    return make


# Adding a backend to the conformance suite is adding one factory here: (a scratch directory, the test) -> store.
BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], ConversationStore]] = {
    "memory": lambda tmp, _: MemoryStore(RETENTION, CONVERSATION_TTL),
    "sqlite": lambda tmp, _: SqliteStore(tmp / "openline.sqlite3", RETENTION, CONVERSATION_TTL),
    # COMMITs on a thread, each with an fsync: the same rules must hold
    "sqlite-power": lambda tmp, _: SqliteStore(
        tmp / "openline.sqlite3", RETENTION, CONVERSATION_TTL, durability="power"
    ),
    "redis": _redis("redis_url"),
    # keys spread over 3 shards: every script must keep to one conversation's hash tag
    "redis-cluster": _redis("redis_cluster_url"),
}


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop per test, shared by the store's open/close and the test's calls."""
    with asyncio.Runner() as r:
        yield r


@pytest.fixture
def run(runner: asyncio.Runner) -> Run:
    """Run a coroutine to completion on the test's loop: `run(store.read(...))`."""
    return runner.run


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner) -> Iterator[ConversationStore]:
    """An open, empty store of each backend (retention 100 s, conversations idle 1000 s expire)."""
    s = BACKENDS[request.param](tmp_path, request)
    runner.run(s.open())
    try:
        yield s
    finally:
        runner.run(s.close())
