"""Fan-out across instances (`Broker` for the Redis store): Redis pub/sub, one connection per process.

How this works: each conversation has a channel (`redis_codec.channel_of`).
The append script publishes every stored activity on it, in the same atomic
step as the write, and the delivery scripts each report they record;
`publish` sends the rest (typing, replacements, removals).

The process subscribes to a channel while it has a local reader of the
conversation, and hands each message to its readers' bounded queues, as
`LocalBroker` does.

A new subscription hears only what is published after Redis confirms it, so
a reader's `ready` waits for that confirmation before it replays the store.
Pub/sub drops messages while a connection is down: the confirmations after a
reconnect mark the channel's readers `lagged` and wake them, and they re-read
the store from their watermark, which fills any gap (a stream's cursor drops
what it already sent).

On Redis Cluster the messages are classic pub/sub, which the cluster passes to
every node: one connection to any node hears every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.maint_notifications import MaintNotificationsConfig

from openline.storage import redis_codec as codec
from openline.storage.base import Broker, Event
from openline.storage.local_broker import QUEUE_SIZE, LocalSubscription, offer

log = logging.getLogger("openline.redis")
_NO_MAINT = MaintNotificationsConfig(enabled=False)  # see redis.py
RECONNECT_DELAY = 0.5  # seconds between attempts to reconnect the pub/sub connection
STOP_WITHIN = 2.0  # seconds a connection's tasks get to end once cancelled


class RedisBroker:
    """Readers of this process, by conversation, fed from Redis pub/sub."""

    def __init__(self, url: str, prefix: str, queue_size: int = QUEUE_SIZE) -> None:
        self._url = codec.node_url(url)
        self._prefix = prefix
        self._queue_size = queue_size
        self._client: aioredis.Redis | RedisCluster | None = None  # publishes; the store's
        self._readers: dict[str, set[LocalSubscription]] = {}  # conversation id -> its readers here
        self._channels: dict[bytes, str] = {}  # channel -> conversation id, for those with readers
        self._awaiting: dict[bytes, int] = {}  # channel -> SUBSCRIBEs sent that Redis has not confirmed yet
        self._commands: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = asyncio.Event()  # set while the pub/sub connection is up and subscribed

    def attach(self, client: aioredis.Redis | RedisCluster) -> None:
        """Publish with the store's client (called when the store opens)."""
        self._client = client

    async def close(self) -> None:
        """Stop listening. Bounded: a shutdown never waits on Redis for more than a few seconds (redis-py can
        swallow a cancellation that lands while it reads or writes)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=3 * STOP_WITHIN)
            if not done:
                log.warning("the Redis pub/sub connection did not close in time; left to the process's end")
            elif not task.cancelled() and task.exception() is not None:
                log.warning("the Redis pub/sub connection ended with %r", task.exception())

    async def publish(self, conversation_id: str, event: Event) -> None:
        """Publish an event without a place. The scripts that write publish the rest themselves, atomically with
        the write, and it is not sent again: an appended activity (with a `seq`: `RedisStore.append`), and a
        delivery report (`add_delivery`, `claim_delivery`)."""
        if event.seq is not None or (event.activity is None and event.delivery is not None):
            return
        if self._client is None:
            raise RuntimeError("the Redis store is not open")
        await self._client.publish(codec.channel_of(self._prefix, conversation_id), codec.event_message(event))

    def subscribe(self, conversation_id: str, *, deliveries: bool = False) -> LocalSubscription:
        subscription = LocalSubscription(self, conversation_id, self._queue_size, deliveries)
        channel = codec.channel_of(self._prefix, conversation_id)
        key = channel.encode()
        readers = self._readers.get(conversation_id)
        if readers is None:
            readers = self._readers[conversation_id] = set()
            self._channels[key] = conversation_id
            self._awaiting[key] = self._awaiting.get(key, 0) + 1
            self._commands.put_nowait(("subscribe", channel))
            self._start()
        if self._awaiting.get(key):
            subscription.awaiting_confirmation()
        readers.add(subscription)
        return subscription

    def unsubscribe(self, conversation_id: str, subscription: LocalSubscription) -> None:
        readers = self._readers.get(conversation_id)
        if readers is None:
            return
        readers.discard(subscription)
        if not readers:
            del self._readers[conversation_id]
            channel = codec.channel_of(self._prefix, conversation_id)
            del self._channels[channel.encode()]
            self._commands.put_nowait(("unsubscribe", channel))

    def subscriber_count(self, conversation_id: str) -> int:
        return len(self._readers.get(conversation_id, ()))

    # -- the pub/sub connection ---------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="openline redis broker")

    def _node_urls(self) -> list[str]:
        """Where the pub/sub connection may go: the URL's server; on a cluster, every node the store's client
        knows of, the URL's first (classic pub/sub reaches every node, so any one will do)."""
        urls = [self._url]
        if isinstance(self._client, RedisCluster):
            parts = urlsplit(self._url)
            userinfo = parts.netloc.rpartition("@")[0]
            for node in self._client.get_nodes():
                host = f"[{node.host}]" if ":" in node.host else node.host  # an IPv6 address
                netloc = f"{userinfo}@{host}:{node.port}" if userinfo else f"{host}:{node.port}"
                url = urlunsplit(parts._replace(netloc=netloc))
                if url not in urls:
                    urls.append(url)
        return urls

    async def _run(self) -> None:
        """Keep one pub/sub connection, subscribed to every channel with readers here, for ever; after a
        failure, the next node of a cluster is tried."""
        attempt = 0
        while True:
            urls = self._node_urls()
            connection: aioredis.Redis | None = None
            pubsub: PubSub | None = None
            try:
                connection = aioredis.Redis.from_url(urls[attempt % len(urls)], maint_notifications_config=_NO_MAINT)
                pubsub = connection.pubsub()
                await self._session(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a node's URL that cannot be used is passed over like a node that is down
                log.warning("Redis pub/sub connection lost (%s); reconnecting", e)
            finally:
                attempt += 1
                self.connected.clear()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(pubsub.aclose(), STOP_WITHIN)  # type: ignore[no-untyped-call]
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.aclose(), STOP_WITHIN)
            await asyncio.sleep(RECONNECT_DELAY)

    async def _session(self, pubsub: PubSub) -> None:
        # the commands queued so far are covered by subscribing to what has readers now
        while not self._commands.empty():
            self._commands.get_nowait()
        self._awaiting = dict.fromkeys(self._channels, 1)
        # a channel of no conversation keeps the connection open while no conversation has readers
        await pubsub.subscribe(f"{self._prefix}:broker", *(c.decode() for c in self._channels))
        self.connected.set()
        tasks = {asyncio.create_task(self._read(pubsub)), asyncio.create_task(self._send_commands(pubsub))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=STOP_WITHIN)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is not None:
                self._dispatch(message)

    async def _send_commands(self, pubsub: PubSub) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            command, channel = await self._commands.get()
            if command == "subscribe":
                await pubsub.subscribe(channel)
            else:
                await pubsub.unsubscribe(channel)
            if task.cancelling():  # redis-py can swallow a cancellation that lands while it sends
                raise asyncio.CancelledError

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if kind == "subscribe":
            # counted even when the channel's readers left before it came: a later reader must not wait for it
            awaiting = self._awaiting.get(channel, 0) - 1
            if awaiting > 0:
                self._awaiting[channel] = awaiting
                return  # an older SUBSCRIBE of the channel (its UNSUBSCRIBE and this one's are still to come)
            self._awaiting.pop(channel, None)
        conversation_id = self._channels.get(channel)
        if conversation_id is None:
            return
        readers = self._readers.get(conversation_id, ())
        if kind == "subscribe":
            for subscription in readers:
                if subscription.confirmed:
                    # subscribed again after a lost connection: what was published meanwhile is in the store only
                    subscription.nudge()
                else:
                    subscription.confirm()
            return
        if kind != "message":
            return
        try:
            event = codec.parse_message(conversation_id, message["data"])
        except Exception:
            log.exception("unreadable event on %s", message["channel"])
            return
        offer(readers, event)


_: type[Broker] = RedisBroker
