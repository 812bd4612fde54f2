"""What the conformance suite cannot see of the Redis store: key expiry on every key, the sweep index under
concurrent writes, and Redis Cluster losing the node the broker listens on. On a real redis-server (cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from redis.asyncio.cluster import RedisCluster

from openline.storage.base import Delivery, Member, StoredFile
from openline.storage.redis import RedisStore
from openline.storage.redis_broker import RedisBroker
from tests.redis_servers import redis_cluster

RETENTION = 100.0
TTL = 1000.0


def _store(url: str) -> RedisStore:
    return RedisStore(url, RETENTION, TTL, prefix=f"store-{uuid.uuid4().hex[:8]}")


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[RedisStore]:
    """An open store of its own prefix, closed after."""
    store = _store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _ttls(store: RedisStore, conversation_id: str) -> dict[str, int]:
    """The expiry (ms) of each key of the conversation that exists."""
    client: Any = store.client
    keys = store._keys(conversation_id)
    ttls = [await client.pttl(k) for k in keys]
    return {k.rsplit(":", 1)[1]: t for k, t in zip(keys, ttls, strict=True) if t != -2}


def test_every_key_of_a_conversation_expires_whatever_wrote_it(redis_url: str) -> None:
    async def scenario() -> None:
        async with _opened(redis_url) as store:
            cid, now = "c1", 10.0
            await store.create_conversation(cid, "bot", now)
            steps = [
                store.claim_announcement(cid, Member("u1"), now, now - 30),
                store.add_member(cid, Member("u2")),
                store.append(cid, {"type": "message"}, now, client_key="k1"),
                store.claim_delivery(cid, "c1|9999999", now, now - 30),
                store.renew_claim(cid, "c1|9999999", 1, now),
                store.add_delivery(cid, Delivery("other", now, 200, 0.1)),
                store.add_file(StoredFile("f1", cid, "a.txt", "text/plain", b"x", now)),
                # the only activity replaced: its zset is emptied and made again
                store.replace(cid, 1, {"type": "message", "text": "new"}, now),
            ]
            for step in steps:
                await step
                ttls = await _ttls(store, cid)
                assert ttls and all(t > 0 for t in ttls.values()), f"a key without expiry: {ttls}"
            assert set(await _ttls(store, cid)) == {"c", "a", "k", "m", "f", "d", "at", "ot"}

    asyncio.run(scenario())


def test_a_conversation_made_again_after_its_hash_expired_starts_empty(redis_url: str) -> None:
    async def scenario() -> None:
        async with _opened(redis_url) as store:
            await store.create_conversation("c1", "bot", 10.0)
            await store.append("c1", {"type": "message", "text": "old"}, 10.0, client_key="k")
            await store.client.delete(store._keys("c1")[0])  # the hash went first (it expired)
            assert await store.create_conversation("c1", "bot", 20.0)
            assert await store.read("c1", 0, 10, 20.0) == []
            again = await store.append("c1", {"type": "message", "text": "new"}, 20.0, client_key="k")
            assert again.seq == 1 and not again.repeated

    asyncio.run(scenario())


def test_a_write_between_a_sweep_and_its_index_update_is_still_swept(redis_url: str) -> None:
    async def scenario() -> None:
        async with _opened(redis_url) as store:
            await store.create_conversation("c1", "bot", 0.0)
            await store.append("c1", {"type": "message", "text": "old"}, 0.0)
            run_script = store._eval

            async def forget_after_a_write(script: str, keys: Any, args: Any) -> Any:
                if script == "forget_swept":
                    # another instance appends after the sweep emptied the conversation, before the index is told
                    await store.append("c1", {"type": "message", "text": "new"}, 150.0)
                return await run_script(script, keys, args)

            store._eval = forget_after_a_write  # type: ignore[method-assign]
            assert await store.sweep(150.0) == 1
            store._eval = run_script  # type: ignore[method-assign]
            assert [a.activity["text"] for a in await store.read("c1", 0, 10, 150.0)] == ["new"]
            assert await store.sweep(300.0) == 1, "the new activity expires in its turn"
            assert await store.read("c1", 0, 10, 0.0) == []

    asyncio.run(scenario())


def test_a_lost_sweep_index_update_is_made_good(redis_url: str) -> None:
    async def scenario() -> None:
        async with _opened(redis_url) as store:
            await store.create_conversation("c1", "bot", 0.0)
            await store.append("c1", {"type": "message"}, 0.0)
            await store.client.zrem(store._sweep_key, "c1")  # the instance died before telling the index
            await store.append("c1", {"type": "message"}, 150.0)  # keeps the conversation active
            await store.sweep(150.0)  # finds it again
            assert await store.sweep(160.0) == 1
            assert [a.seq for a in await store.read("c1", 0, 10, 0.0)] == [2]

    asyncio.run(scenario())


def test_a_reader_that_leaves_before_its_subscription_is_confirmed_holds_up_no_later_one(redis_url: str) -> None:
    async def scenario() -> None:
        async with _opened(redis_url) as store:
            await store.create_conversation("c1", "bot", 0.0)
            first = store.broker.subscribe("c1")
            first.close()  # before Redis confirmed it
            await asyncio.sleep(0.3)
            second = store.broker.subscribe("c1")
            started = time.monotonic()
            await second.ready()
            assert time.monotonic() - started < 2 and not second.lagged
            await store.append("c1", {"type": "message"}, 1.0)
            assert await second.get(5) is not None
            second.close()

    asyncio.run(scenario())


def test_streams_follow_a_cluster_through_the_loss_of_the_node_they_listened_on(tmp_path: Path) -> None:
    settings = ("--cluster-require-full-coverage", "no", "--cluster-node-timeout", "1000")
    with redis_cluster(tmp_path / "cluster", 3, *settings) as url:
        # in a process of its own: redis-py's cluster client leaves unclosed the connections it opens while it
        # rediscovers the cluster after a node's loss (NodesManager.initialize), and they would be reported here
        done = subprocess.run(
            [sys.executable, "-m", "tests.storage._cluster_node_loss", url],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_a_server_that_refuses_scripts_across_slots_gets_its_indexes_apart(redis_cluster_url: str) -> None:
    """A `redis://` URL naming one node of a cluster stands for a proxy that shards keys behind one address."""

    async def scenario() -> None:
        probe = _store(redis_cluster_url)
        await probe.open()
        client: Any = probe.client
        node = client.get_node_from_key(probe._keys("c1")[0])  # the node that holds conversation c1
        await probe.close()
        store = RedisStore(f"redis://{node.host}:{node.port}/0", RETENTION, TTL, prefix=probe.prefix)
        await store.open()
        try:
            assert store._in_script
            assert await store.create_conversation("c1", "bot", 1.0)  # CROSSSLOT, then again without the indexes
            assert not store._in_script
            assert (await store.append("c1", {"type": "message"}, 2.0)).seq == 1
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_broker_reaches_cluster_nodes_by_ipv6_address_too() -> None:
    cluster = RedisCluster.__new__(RedisCluster)
    cluster.get_nodes = lambda: [SimpleNamespace(host="::1", port=7001), SimpleNamespace(host="10.0.0.2", port=7002)]  # type: ignore[method-assign]
    broker = RedisBroker("rediss+cluster://:pw@[::1]:7000?ssl_cert_reqs=none", "openline")
    broker.attach(cluster)
    assert broker._node_urls() == [
        "rediss://:pw@[::1]:7000?ssl_cert_reqs=none",
        "rediss://:pw@[::1]:7001?ssl_cert_reqs=none",
        "rediss://:pw@10.0.0.2:7002?ssl_cert_reqs=none",
    ]
