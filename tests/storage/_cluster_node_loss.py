"""Run by test_redis_store.py in a process of its own: a stream follows a Redis Cluster through the loss of the
node its instance's pub/sub connection listened on. Usage: python -m tests.storage._cluster_node_loss URL"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from typing import Any

import redis.asyncio as aioredis

from openline.storage.redis import RedisStore


async def main(url: str) -> None:
    prefix = f"loss-{uuid.uuid4().hex[:8]}"
    writer, reader_side = RedisStore(url, 100.0, 1000.0, prefix=prefix), RedisStore(url, 100.0, 1000.0, prefix=prefix)
    seed_port = int(url.rsplit(":", 1)[1])
    await writer.open()
    await reader_side.open()
    try:
        # a conversation whose keys live on another node than the one the broker first listens on
        client: Any = writer.client
        cid = next(
            c
            for c in (f"conv{i}" for i in range(1000))
            if client.get_node_from_key(writer._keys(c)[0]).port != seed_port
        )
        await writer.create_conversation(cid, "bot", 0.0)
        reader = reader_side.broker.subscribe(cid)
        await reader.ready()
        seed = aioredis.Redis(port=seed_port)
        with contextlib.suppress(Exception):  # the connection drops as the node stops
            await seed.shutdown(nosave=True)
        await seed.aclose()
        got = await reader.get(15)  # woken to re-read: what was published meanwhile is in the store
        assert got is None and reader.lagged, (got, reader.lagged)
        reader.lagged = False
        stored = await writer.append(cid, {"type": "message"}, 1.0)
        event = await reader.get(10)
        assert event is not None and event.seq == stored.seq, "live again through another node"
        reader.close()
    finally:
        await writer.close()
        await reader_side.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
