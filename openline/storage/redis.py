"""Redis store (`--store redis://`, `rediss://`, `redis+cluster://`): one conversation space for many instances.

How this works: every key of a conversation carries its id as the hash tag
(`openline:{conv}:...`), so each operation on a conversation is one Lua script
(`redis_scripts/*.lua`) on one shard, atomic, and the same code runs on Redis
Cluster. Appending also publishes the activity from inside the script
(`RedisBroker` reads it), so append and publish are one step. Three small
indexes live outside the conversations, each a sorted set updated right after
the script: conversations by last activity (the inspector's list, the idle
sweep), conversations by bot (paging), and conversations with something dated
to sweep. Redis key expiry backs the sweep up: every key of a conversation
expires `conversation_ttl + retention` after its last write.

Times (`now`) are the caller's, kept as the strings Python formats; only the
key expiry uses Redis's own clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterCrossSlotError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from openline.protocol.activity import assign_position
from openline.storage import redis_codec as codec
from openline.storage.base import (
    Conversation,
    ConversationDeleted,
    ConversationStore,
    ConversationSummary,
    Delivery,
    DeliveryState,
    Member,
    Origin,
    StoredActivity,
    StoredFile,
    StoreFull,
    StoreUnavailable,
    UnknownConversation,
)
from openline.storage.redis_broker import RedisBroker

_UNKNOWN = "OPENLINE_UNKNOWN_CONVERSATION"
log = logging.getLogger("openline.redis")
_t = codec.time_text


RECONCILE_SLICE = 200  # active conversations whose sweep index entry each sweep checks
POOL_SIZE = 64  # connections to Redis (to each node of a cluster) per process; more callers wait for one
POOL_WAIT = 10.0  # seconds a caller waits for a free connection before failing


# redis-py 8 asks each new connection for maintenance notifications (Redis Enterprise's), and while it thinks
# them on, its pool hands out connections without checking that the server has not closed them
_NO_MAINT = MaintNotificationsConfig(enabled=False)


def _refusal(error: ResponseError) -> StoreUnavailable | None:
    """What a refusal of a write means for clients: StoreFull when Redis has no room (`maxmemory` reached, or it
    stopped writes because it cannot persist: a full disk), StoreUnavailable when it is a replica (a failover
    under way); None for any other error."""
    if isinstance(error, OutOfMemoryError):
        return StoreFull(f"Redis has no room (maxmemory): {error}")
    if str(error).startswith("MISCONF"):
        return StoreFull(f"Redis refuses writes it cannot persist: {error}")
    if isinstance(error, ReadOnlyError):
        return StoreUnavailable(f"Redis is a read-only replica now: {error}")
    return None


class _Client(aioredis.Redis):
    """One Redis server; a failure to reach it is `StoreUnavailable`, a refused write `_refusal`'s."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (ConnectionError, TimeoutError) as e:
            raise StoreUnavailable(f"Redis cannot be reached: {e}") from e
        except ResponseError as e:
            refused = _refusal(e)
            if refused is None:
                raise
            raise refused from e


class _Cluster(RedisCluster):
    """A Redis Cluster; a failure to reach it is `StoreUnavailable`. Its callers wait for a free connection, as
    `BlockingConnectionPool`'s do (redis-py's cluster client fails with MaxConnectionsError instead): at most
    POOL_SIZE commands in flight."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(POOL_SIZE)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            try:
                return await super().execute_command(*args, **kwargs)
            except (ConnectionError, TimeoutError, ClusterDownError) as e:
                raise StoreUnavailable(f"the Redis Cluster cannot be reached: {e}") from e
            except ResponseError as e:
                refused = _refusal(e)
                if refused is None:
                    raise
                raise refused from e


def connect(url: str) -> aioredis.Redis | RedisCluster:
    """A client for `url` (no connection is made yet): a cluster client for `redis+cluster://`."""
    if codec.is_cluster_url(url):
        return _Cluster.from_url(
            codec.node_url(url),
            max_connections=POOL_SIZE,
            maint_notifications_config=_NO_MAINT,
            # no retries: a script whose reply was lost may have run (an append would be made twice); the caller
            # answers 503 and the client retries, its clientActivityID making that safe
            retry=Retry(NoBackoff(), 0),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_WAIT, maint_notifications_config=_NO_MAINT
    )
    return _Client.from_pool(pool)  # the pool is closed with the client


def _scripts_text() -> dict[str, str]:
    """Each script of redis_scripts/, named by its file, with the shared functions before it."""
    folder = resources.files("openline.storage") / "redis_scripts"
    common = (folder / "_common.lua").read_text()
    return {
        item.name.removesuffix(".lua"): common + "\n" + item.read_text()
        for item in folder.iterdir()
        if item.name.endswith(".lua") and not item.name.startswith("_")
    }


class RedisStore:
    """`ConversationStore` on Redis. `url` is `redis://[:password@]host:port/db`, `rediss://` (TLS) or
    `redis+cluster://host:port` (any node of a Redis Cluster; `rediss+cluster://` with TLS). `prefix` starts
    every key, so several deployments can share one Redis (default: the URL's `?prefix=`, else "openline")."""

    def __init__(self, url: str, retention: float, conversation_ttl: float, prefix: str | None = None) -> None:
        url, prefix_in_url = codec.split_prefix(url)
        prefix = prefix or prefix_in_url or codec.DEFAULT_PREFIX
        self.url = url
        self.retention = retention
        self.conversation_ttl = conversation_ttl
        self.prefix = prefix
        self._redis: aioredis.Redis | RedisCluster | None = None
        self._scripts: dict[str, tuple[str, str]] = {}  # name -> (SHA-1, text)
        self.broker = RedisBroker(url, prefix)
        self._cluster = codec.is_cluster_url(url)
        self._reconcile_cursor = 0

    @property
    def _ttl_ms(self) -> int:
        return int((self.conversation_ttl + self.retention) * 1000)

    @property
    def client(self) -> Any:
        """The open client. Typed Any: redis-py types each reply for both of its decoding modes; here every
        reply is bytes (no `decode_responses`)."""
        if self._redis is None:
            raise RuntimeError("the Redis store is not open")
        return self._redis

    async def open(self) -> None:
        self._redis = connect(self.url)
        await self._redis.ping()
        self._scripts = {
            name: (hashlib.sha1(text.encode()).hexdigest(), text) for name, text in _scripts_text().items()
        }
        self.broker.attach(self._redis)

    async def close(self) -> None:
        await self.broker.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def ping(self) -> None:
        await self.client.ping()

    # -- keys -----------------------------------------------------------------------------------

    def _keys(self, conversation_id: str) -> list[str]:
        return codec.conversation_keys(self.prefix, conversation_id)

    @property
    def _active_key(self) -> str:
        return f"{self.prefix}:active"

    @property
    def _sweep_key(self) -> str:
        return f"{self.prefix}:sweep"

    def _bot_key(self, bot_id: str) -> str:
        return f"{self.prefix}:bot:{bot_id}"

    async def _run(self, script: str, conversation_id: str, *args: Any, indexes: Sequence[str] = ()) -> Any:
        """Run a conversation's script (`indexes`: global keys it also updates, on one Redis only)."""
        try:
            return await self._eval(script, [*self._keys(conversation_id), *indexes], args)
        except ResponseError as e:
            if _UNKNOWN in str(e):
                raise UnknownConversation(conversation_id) from None
            if indexes and (isinstance(e, ClusterCrossSlotError) or "CROSSSLOT" in str(e)):
                # a proxy that shards one URL's keys (Twemproxy, Envoy, Redis Enterprise without the cluster API)
                # refused the script before running it: update the indexes with commands of their own from now on
                log.warning("the Redis server refuses scripts across hash slots: indexes are updated apart")
                self._cluster = True
                return await self._run(script, conversation_id, *args)
            raise

    async def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script by its SHA-1, sending its text when the server (the shard of `keys`) does not have it
        yet. Not redis-py's `Script`: on a cluster it loads a script into every node first, and fails while any
        node is down."""
        sha, text = self._scripts[script]
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(text, len(keys), *keys, *args)

    async def _indexed(self, conversation_id: str, active: float | None = None, dated: float | None = None) -> None:
        """After a conversation's script: its last activity `active` into the activity index (unless the script
        did it), and an item dated `dated` into the sweep index (when the script said it is older than any the
        index knows of)."""
        updates: list[Awaitable[Any]] = []
        if active is not None and not self._in_script:
            updates.append(self.client.zadd(self._active_key, {conversation_id: active}, gt=True))
        if dated is not None:
            updates.append(self._dated(conversation_id, dated))
        if updates:
            await self._update_indexes(conversation_id, *updates)

    async def _update_indexes(self, conversation_id: str, *updates: Awaitable[Any]) -> None:
        """Update the global indexes after a conversation's script (on a cluster they may be on another shard).

        The write is committed by then: an index that cannot be reached is logged, never the caller's failure.
        The sweep's reconciliation restores the sweep index; the idle sweep and the key expiry cover the rest.
        """
        for outcome in await asyncio.gather(*updates, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("the indexes of conversation %s could not be updated: %s", conversation_id, outcome)

    async def _dated(self, conversation_id: str, at: float) -> None:
        """Tell the sweep index that the conversation holds something dated `at` (older than it knew)."""
        await self.client.zadd(self._sweep_key, {conversation_id: at}, lt=True)

    # -- conversations ----------------------------------------------------------------------------

    @property
    def _in_script(self) -> bool:
        """Whether scripts update the global indexes themselves: on one Redis they may touch any key; on a
        cluster only keys of one slot, so the indexes are updated by a command of their own after the script."""
        return not self._cluster

    async def create_conversation(self, conversation_id: str, bot_id: str, now: float) -> bool:
        indexes = (self._active_key, self._bot_key(bot_id)) if self._in_script else ()
        created = await self._run(
            "create_conversation", conversation_id, bot_id, _t(now), self._ttl_ms, conversation_id, indexes=indexes
        )
        if created < 0:
            raise ConversationDeleted(conversation_id)
        if created and not self._in_script:
            await self._update_indexes(
                conversation_id,
                self.client.zadd(self._bot_key(bot_id), {conversation_id: 0}),
                self.client.zadd(self._active_key, {conversation_id: now}, gt=True),
            )
        return bool(created)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        bot, created, seq = await self.client.hmget(self._keys(conversation_id)[0], ["bot", "created", "seq"])
        if bot is None:
            return None
        return Conversation(conversation_id, bot.decode(), float(created), int(seq))

    async def conversations(self, bot_id: str, after_id: str, limit: int) -> list[Conversation]:
        if limit <= 0:
            return []
        key = self._bot_key(bot_id)
        found: list[Conversation] = []
        start = f"({after_id}" if after_id else "-"
        while len(found) < limit:
            ids = await self.client.zrangebylex(key, start, "+", 0, limit - len(found))
            if not ids:
                break
            for raw in ids:
                conversation_id = raw.decode()
                conversation = await self.get_conversation(conversation_id)
                if conversation is None:  # expired in Redis while its index entry stayed
                    await self.client.zrem(key, conversation_id)
                else:
                    found.append(conversation)
            start = f"({ids[-1].decode()}"
        return found

    async def delete_conversation(self, conversation_id: str, now: float, forget_at: float) -> bool:
        keep_ms = max(1, int((forget_at - now) * 1000) + 1)
        bot = await self._run("delete_conversation", conversation_id, _t(forget_at), keep_ms)
        if not bot:
            return False
        # the indexes after the script, as the idle sweep does (they may live on another shard of a cluster)
        await self._update_indexes(
            conversation_id,
            self.client.zrem(self._active_key, conversation_id),
            self.client.zrem(self._sweep_key, conversation_id),
            self.client.zrem(self._bot_key(bot.decode()), conversation_id),
        )
        return True

    async def deleted(self, conversation_id: str, now: float) -> bool:
        kept = await self.client.get(self._keys(conversation_id)[-1])
        return kept is not None and float(kept) >= now

    # -- members ----------------------------------------------------------------------------------

    async def add_member(self, conversation_id: str, member: Member) -> bool:
        return bool(await self._run("add_member", conversation_id, member.id, codec.member_name(member.name)))

    async def claim_announcement(
        self, conversation_id: str, member: Member, now: float, stale_before: float
    ) -> tuple[bool, DeliveryState]:
        claimed, state = await self._run(
            "claim_announcement", conversation_id, member.id, codec.member_name(member.name), _t(now), _t(stale_before)
        )
        return bool(claimed), state.decode()

    async def announced(self, conversation_id: str, member_ids: Sequence[str]) -> set[str]:
        if not member_ids:
            return set()
        values = await self.client.hmget(self._keys(conversation_id)[3], list(member_ids))
        return {
            i for i, v in zip(member_ids, values, strict=True) if v is not None and codec.member_state(v) == "delivered"
        }

    async def finish_announcement(self, conversation_id: str, member_id: str, delivered: bool) -> None:
        await self._run("finish_announcement", conversation_id, member_id, "delivered" if delivered else "failed")

    async def remove_member(self, conversation_id: str, member_id: str) -> bool:
        return bool(await self._run("remove_member", conversation_id, member_id))

    async def members(self, conversation_id: str) -> list[Member]:
        return codec.parse_members(await self._run("members", conversation_id))

    # -- activities -------------------------------------------------------------------------------

    async def append(
        self,
        conversation_id: str,
        activity: dict[str, Any],
        now: float,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
        origin: Origin = "client",
    ) -> StoredActivity:
        # encoded first: an activity that cannot be encoded takes no position and no client key
        body = codec.body_of(activity)
        file_args: list[Any] = []
        for f in files:
            file_args += [f.id, codec.file_value(f)]
        seq, ts_ms, first, index = await self._run(
            "append",
            conversation_id,
            _t(now),
            int(now * 1000),
            origin,
            body,
            client_key or "",
            _t(now - self.retention),
            conversation_id,
            codec.channel_of(self.prefix, conversation_id),
            self._ttl_ms,
            *file_args,
            indexes=(self._active_key,) if self._in_script else (),
        )
        if first:
            repeated = codec.parse_entry(conversation_id, seq, first)
            return StoredActivity(seq, repeated.activity, repeated=True, origin=repeated.origin)
        assign_position(activity, conversation_id, seq, ts_ms)
        await self._indexed(conversation_id, active=now, dated=now if index else None)
        return StoredActivity(seq, activity, origin=origin)

    async def replace(
        self, conversation_id: str, seq: int, activity: dict[str, Any], now: float, file_ids: Sequence[str] = ()
    ) -> StoredActivity | None:
        body = codec.body_of(activity)
        old = await self._run("replace", conversation_id, seq, body, _t(now - self.retention), *file_ids)
        if not old:
            return None
        ts, origin = codec.entry_timestamp(old)
        assign_position(activity, conversation_id, seq, ts)
        return StoredActivity(seq, activity, origin=origin)  # type: ignore[arg-type]

    async def delete(self, conversation_id: str, seq: int, file_ids: Sequence[str] = ()) -> bool:
        return bool(await self._run("delete", conversation_id, seq, *file_ids))

    async def read(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        if limit <= 0:
            await self._run("read", conversation_id, after_seq, 1, _t(now - self.retention))  # exists?
            return []
        flat = await self._run("read", conversation_id, after_seq, limit, _t(now - self.retention))
        return [codec.parse_entry(conversation_id, int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    # -- files ------------------------------------------------------------------------------------

    async def add_file(self, file: StoredFile) -> None:
        conversation_id = file.conversation_id
        index = await self._run(
            "add_file",
            conversation_id,
            file.id,
            codec.file_value(file),
            _t(file.created_at),
            self._ttl_ms,
            conversation_id,
            indexes=(self._active_key,) if self._in_script else (),
        )
        await self._indexed(conversation_id, active=file.created_at, dated=file.created_at if index else None)

    async def get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        value = await self.client.hget(self._keys(conversation_id)[4], file_id)
        if value is None:
            return None
        f = codec.parse_file(conversation_id, file_id, value)
        return f if f.created_at >= now - self.retention else None

    # -- deliveries -------------------------------------------------------------------------------

    async def add_delivery(self, conversation_id: str, delivery: Delivery) -> None:
        index = await self._run(
            "add_delivery",
            conversation_id,
            delivery.activity_id,
            codec.delivery_record(delivery),
            delivery.attempts,
            _t(delivery.at),
            self._ttl_ms,
            codec.channel_of(self.prefix, conversation_id),
        )
        await self._indexed(conversation_id, dated=delivery.at if index else None)

    async def renew_claim(self, conversation_id: str, activity_id: str, attempts: int, now: float) -> bool:
        return bool(await self._run("renew_claim", conversation_id, activity_id, attempts, _t(now)))

    async def claim_delivery(
        self, conversation_id: str, activity_id: str, now: float, stale_before: float
    ) -> tuple[bool, Delivery]:
        claimed, record, index = await self._run(
            "claim_delivery",
            conversation_id,
            activity_id,
            _t(now),
            _t(stale_before),
            codec.channel_of(self.prefix, conversation_id),
        )
        await self._indexed(conversation_id, dated=now if index else None)
        return bool(claimed), codec.parse_delivery(activity_id, record)

    async def deliveries(self, conversation_id: str, since: float, now: float) -> list[Delivery]:
        flat = await self._run("deliveries", conversation_id)
        start = max(since, now - self.retention)
        found = [codec.parse_delivery(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]
        return sorted((d for d in found if d.at >= start), key=lambda d: (d.at, d.activity_id))

    # -- the inspector ----------------------------------------------------------------------------

    async def summary(self, conversation_id: str, now: float) -> ConversationSummary | None:
        found = await self._run("summary", conversation_id, _t(now - self.retention))
        if not found:
            return None
        bot, created, seq, active, count, members = found
        return ConversationSummary(
            Conversation(conversation_id, bot.decode(), float(created), int(seq)),
            float(active),
            int(count),
            codec.parse_members(members),
        )

    async def recent_conversations(self, limit: int, now: float) -> list[ConversationSummary]:
        if limit <= 0:
            return []
        top = await self.client.zrevrange(self._active_key, 0, limit - 1, withscores=True)
        if not top:
            return []
        # ties at the edge sort by id: take every conversation with the last score
        edge = top[-1][1]
        ties = await self.client.zrangebyscore(self._active_key, edge, edge)
        ids = {raw.decode() for raw, _ in top} | {raw.decode() for raw in ties}
        summaries = await asyncio.gather(*(self.summary(i, now) for i in ids))
        gone = [i for i, s in zip(ids, summaries, strict=True) if s is None]
        if gone:
            await self.client.zrem(self._active_key, *gone)
        found = [s for s in summaries if s is not None]
        found.sort(key=lambda s: (-s.last_active, s.conversation.id))
        return found[:limit]

    async def count_conversations(self, now: float) -> int:
        # the index of conversations by last activity: O(log n), whatever their number
        return int(await self.client.zcount(self._active_key, _t(now - self.conversation_ttl), "+inf"))

    # -- retention --------------------------------------------------------------------------------

    async def sweep(self, now: float) -> int:
        """Delete idle conversations, then what is past the retention in the others (see `base.sweep`).

        Nothing in Redis is on disk beyond its own persistence: deleted keys
        leave the RDB snapshot and the AOF at their next rewrite.
        """
        removed = 0
        idle = await self.client.zrangebyscore(self._active_key, "-inf", f"({_t(now - self.conversation_ttl)}")
        for raw in idle:
            conversation_id = raw.decode()
            count, bot, *active = await self._run("drop_idle", conversation_id, _t(now - self.conversation_ttl))
            if count < 0:  # active after all: the index had an old time, which is set right
                await self.client.zadd(self._active_key, {conversation_id: float(active[0])}, gt=True)
                continue
            removed += count
            cleanup: list[Awaitable[Any]] = [
                self.client.zrem(self._active_key, conversation_id),
                self.client.zrem(self._sweep_key, conversation_id),
            ]
            if bot:
                cleanup.append(self.client.zrem(self._bot_key(bot.decode()), conversation_id))
            await asyncio.gather(*cleanup)
        due = await self.client.zrangebyscore(self._sweep_key, "-inf", f"({_t(now - self.retention)}", withscores=True)
        for raw, score in due:
            conversation_id = raw.decode()
            count, oldest = await self._run("sweep", conversation_id, _t(now - self.retention))
            removed += count
            if oldest:
                await self.client.zadd(self._sweep_key, {conversation_id: float(oldest)}, xx=True)
            else:
                await self._eval("forget_swept", [self._sweep_key], [conversation_id, _t(score)])
                # a write meanwhile may have dated the conversation anew while its old time was still in the
                # index (its ZADD ... LT then changed nothing): put it back
                await self._index_oldest(conversation_id)
        await self._reconcile()
        return removed

    async def _index_oldest(self, conversation_id: str) -> None:
        oldest = await self.client.hget(self._keys(conversation_id)[0], "oldest")
        if oldest is not None:
            await self._dated(conversation_id, float(oldest))

    async def _reconcile(self) -> None:
        """Give the sweep index what it missed (an instance that died between a script and its index update):
        a slice of the active conversations each sweep, all of them in turn."""
        self._reconcile_cursor, ids = await self.client.zscan(
            self._active_key, self._reconcile_cursor, count=RECONCILE_SLICE
        )
        for raw, _ in ids:
            await self._index_oldest(raw.decode())


_: type[ConversationStore] = RedisStore
