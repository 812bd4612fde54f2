"""RedisBroker (events across instances) and SharedFiles (the data directory's keys in Redis), on a real redis-server.

Two stores on one Redis stand for two instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from openline.auth.secret_file import SecretFile
from openline.service.removal import delete_conversation
from openline.storage import redis_broker
from openline.storage.base import Delivery, Event
from openline.storage.redis import RedisStore
from openline.storage.redis_shared import SharedFiles
from tests.redis_servers import RedisServer, redis_server


@asynccontextmanager
async def _instances(url: str, count: int = 2) -> AsyncIterator[list[RedisStore]]:
    prefix = f"broker-{uuid.uuid4().hex[:8]}"
    stores = [RedisStore(url, 100.0, 1000.0, prefix=prefix) for _ in range(count)]
    for s in stores:
        await s.open()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


def test_an_append_on_one_instance_reaches_readers_on_another(redis_url: str) -> None:
    async def scenario() -> None:
        async with _instances(redis_url) as (a, b):
            await a.create_conversation("c1", "bot", 1.0)
            reader = b.broker.subscribe("c1")
            await reader.ready()
            stored = await a.append("c1", {"type": "message", "text": "hi"}, 2.0)
            event = await reader.get(5)
            assert event is not None and event.seq == stored.seq == 1
            assert event.activity == stored.activity and event.origin == "client"
            # a delivery record is reported by the script that writes it, to readers that ask for reports only
            inspector = b.broker.subscribe("c1", deliveries=True)
            await inspector.ready()
            report = Delivery("c1|0000001", 3.0, 201, 0.1, state="delivered")
            await a.add_delivery("c1", report)
            await a.broker.publish("c1", Event(None, None, "client", report))  # what Dispatcher does: not twice
            # events without a place and not written go through `publish`
            await a.broker.publish("c1", Event(None, {"type": "typing"}, "client"))
            got = await inspector.get(5)
            assert got is not None and got.delivery == report
            typing_for_inspector = await inspector.get(5)
            assert typing_for_inspector is not None and typing_for_inspector.activity == {"type": "typing"}
            claimed, record = await a.claim_delivery("c1", "c1|0000009", 4.0, 0.0)
            got = await inspector.get(5)
            assert claimed and got is not None and got.delivery == record
            assert await inspector.get(0.2) is None, "each report once"
            typing = await reader.get(5)
            assert typing is not None and typing.activity == {"type": "typing"} and typing.seq is None
            assert await reader.get(0.2) is None, "the report went to the inspector only"
            reader.close()
            inspector.close()

    asyncio.run(scenario())


def test_an_event_with_a_place_is_published_by_the_append_only(redis_url: str) -> None:
    async def scenario() -> None:
        async with _instances(redis_url) as (a, b):
            await a.create_conversation("c1", "bot", 1.0)
            reader = b.broker.subscribe("c1")
            await reader.ready()
            stored = await a.append("c1", {"type": "message"}, 2.0)
            await a.broker.publish("c1", Event(stored.seq, stored.activity, "client"))  # what Publisher does
            assert await reader.get(5) is not None
            assert await reader.get(0.3) is None, "once, not twice"
            reader.close()

    asyncio.run(scenario())


def test_readers_are_woken_to_reread_after_redis_comes_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()

    async def scenario() -> None:
        async with _instances(server.url) as (a, b):
            await a.create_conversation("c1", "bot", 1.0)
            reader = b.broker.subscribe("c1")
            await reader.ready()
            waiting = asyncio.ensure_future(reader.get())
            await asyncio.to_thread(server.stop, True)
            await asyncio.to_thread(server.start)
            # what was published while the connection was down is in the store only: the reader re-reads it
            event = await asyncio.wait_for(waiting, 10)
            assert event is None and reader.lagged
            reader.lagged = False
            await b.broker.connected.wait()
            await a.create_conversation("c1", "bot", 3.0)  # this server keeps nothing across its restart
            await a.append("c1", {"type": "message"}, 3.0)
            after = await reader.get(5)
            assert after is not None and after.seq == 1, "live again after the reconnect"
            reader.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_shared_files_go_from_the_first_instance_to_the_others_and_rotations_spread(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        url = f"{server.url}?prefix=files-{uuid.uuid4().hex[:8]}"
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        first, second = SharedFiles(url, a), SharedFiles(url, b)
        assert first.pull() == []
        (a / "signing.key").write_text("key-a")
        assert first.publish_new()
        (b / "signing.key").write_text("key-b")  # made by B at the same moment, before it saw A's
        assert not second.publish_new(), "A's was first"
        assert second.pull() == ["signing.key"] and (b / "signing.key").read_text() == "key-a"
        # a rotation against B's directory is published by B, then taken by A
        (b / "bot-keys.json").write_text('{"keys": ["new"]}')
        assert second.sync() == ["bot-keys.json"]
        assert first.sync() == ["bot-keys.json"] and (a / "bot-keys.json").read_text() == '{"keys": ["new"]}'
        assert first.sync() == [] and second.sync() == [], "nothing more to move"


def test_secrets_made_against_one_instance_reach_the_others_in_either_form(redis_url: str, tmp_path: Path) -> None:
    """`openline secret new` against A's directory (pull, change, publish); B takes it on its next look at
    secrets.json alone (the service's secret reload), its other files untouched."""
    url = f"{redis_url}?prefix=secrets-{uuid.uuid4().hex[:8]}"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first, second = SharedFiles(url, a), SharedFiles(url, b)
    generated = SecretFile(a).generated("echobot")  # the first form, as a first start writes it
    assert generated is not None
    assert first.publish_new() and second.pull() == ["secrets.json"]
    assert SecretFile(b).load() == SecretFile(a).load()
    (b / "bot-keys.json").write_text("B's own, not yet published")
    first.pull()
    made = SecretFile(a).new("echobot", 5)
    first.publish("secrets.json")
    assert second.sync(("secrets.json",)) == ["secrets.json"]
    assert [k.secret for k in SecretFile(b).load()["echobot"]] == [generated[0], made.secret]
    assert (b / "bot-keys.json").read_text() == "B's own, not yet published", "only the names asked for"
    SecretFile(a).revoke("echobot", made.id)
    first.publish("secrets.json")
    assert second.sync(("secrets.json",)) == ["secrets.json"]
    assert [k.secret for k in SecretFile(b).load()["echobot"]] == [generated[0]]


def test_a_change_elsewhere_right_after_the_first_start_is_taken_not_undone(redis_url: str, tmp_path: Path) -> None:
    """The first instance publishes its files, then a secret is revoked against another directory: the first
    instance's next look takes the revocation rather than publishing its own older copy over it."""
    url = f"{redis_url}?prefix=first-{uuid.uuid4().hex[:8]}"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first, admin = SharedFiles(url, a), SharedFiles(url, b)
    made = SecretFile(a).new("echobot", 5)
    assert first.publish_new()
    admin.pull()
    SecretFile(b).revoke("echobot", made.id)
    admin.publish("secrets.json")
    assert first.sync(("secrets.json",)) == ["secrets.json"]
    assert SecretFile(a).load()["echobot"] == [], "revoked everywhere"
    first.close()
    admin.close()


def test_looks_from_two_threads_never_publish_a_stale_copy(redis_url: str, tmp_path: Path) -> None:
    """The key reload and the secret reload look from two threads at once, while secrets change elsewhere: what
    ends in Redis, and in the directory, is the last change made elsewhere."""
    url = f"{redis_url}?prefix=threads-{uuid.uuid4().hex[:8]}"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    service, admin = SharedFiles(url, a), SharedFiles(url, b)
    SecretFile(a).new("echobot", 1)
    assert service.publish_new()
    admin.pull()
    stop = threading.Event()

    def look(names: tuple[str, ...] | None) -> None:
        while not stop.is_set():
            service.sync(names)

    threads = [threading.Thread(target=look, args=(names,)) for names in (None, ("secrets.json",))]
    for thread in threads:
        thread.start()
    try:
        for i in range(30):
            SecretFile(b).new("echobot", 10 + i)
            admin.publish("secrets.json")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    service.sync()
    assert len(SecretFile(a).load()["echobot"]) == 31
    admin.pull()
    assert len(SecretFile(b).load()["echobot"]) == 31, "Redis holds the last change"
    service.close()
    admin.close()


def test_closing_is_bounded_even_when_the_connection_task_will_not_stop(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_broker, "STOP_WITHIN", 0.2)

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as redis-py can, mid-read: the first cancellation
            await asyncio.sleep(60)
        await asyncio.sleep(60)  # and reads on

    async def scenario() -> None:
        async with _instances(redis_url, 1) as (store,):
            task = asyncio.ensure_future(stubborn())
            await asyncio.sleep(0.01)  # inside its read
            store.broker._task = task
            started = time.monotonic()
            await store.broker.close()
            assert time.monotonic() - started < 3 and not task.done()
            task.cancel()  # what the end of the event loop does

    asyncio.run(scenario())


def test_a_deleted_conversation_ends_readers_on_every_instance(redis_url: str) -> None:
    async def scenario() -> None:
        async with _instances(redis_url) as (a, b):
            await a.create_conversation("c1", "bot", 1.0)
            stream, inspector = b.broker.subscribe("c1"), b.broker.subscribe("c1", deliveries=True)
            await stream.ready()
            await inspector.ready()
            assert await delete_conversation(a, a.broker, "c1", time.time(), 60)
            for reader in (stream, inspector):
                event = await reader.get(5)
                assert event is not None and event.gone
            assert await b.get_conversation("c1") is None
            stream.close()
            inspector.close()

    asyncio.run(scenario())
