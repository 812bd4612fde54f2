"""Storage backends behind one interface (`base.ConversationStore`), chosen by URL with `open_store`."""

from __future__ import annotations

from pathlib import Path

from openline.storage.base import Broker, ConversationStore
from openline.storage.local_broker import LocalBroker
from openline.storage.sqlite_commit import Durability

REDIS_SCHEMES = ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://", "unix://")


def parse_store_url(url: str | None) -> tuple[str, Path | None]:
    """The backend ("sqlite", "memory" or "redis") and SQLite path a `--store` URL names; ValueError for
    anything else.

    None or "" means SQLite in the data directory (path None); `memory://`; `sqlite:///path`;
    `redis://[:password@]host:port/db`, `rediss://` (TLS), `redis+cluster://host:port` (Redis Cluster),
    `unix:///path/to/redis.sock`.
    """
    if not url:
        return "sqlite", None
    if url.startswith("memory:"):
        return "memory", None
    if url.startswith(REDIS_SCHEMES) and len(url.split("://", 1)[1]) > 0:
        from openline.storage.redis_codec import check_url

        check_url(url)
        return "redis", None
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//")
        if path.strip():
            return "sqlite", Path(path)
    raise ValueError(
        f"{url!r} is not a store URL: use memory://, sqlite:///PATH, redis://HOST:PORT/DB, rediss://,"
        " redis+cluster://HOST:PORT, or leave it unset"
    )


def open_store(
    url: str | None,
    data_dir: Path,
    retention: float,
    conversation_ttl: float,
    scrub_interval: float = 0.0,
    durability: Durability = "process",
) -> ConversationStore:
    """The store a `--store` URL names (see `parse_store_url`).

    `scrub_interval` and `durability` are SQLite's (see `SqliteStore`).
    """
    kind, path = parse_store_url(url)
    if kind == "redis":
        from openline.storage.redis import RedisStore

        assert url is not None
        return RedisStore(url, retention, conversation_ttl)
    if kind == "memory":
        from openline.storage.memory import MemoryStore

        return MemoryStore(retention, conversation_ttl)
    from openline.storage.sqlite import SqliteStore

    return SqliteStore(path or data_dir / "openline.sqlite3", retention, conversation_ttl, scrub_interval, durability)


def broker_for(store: ConversationStore) -> Broker:
    """The broker that tells a store's readers of its events: the Redis store's own (every instance hears every
    event), else one for this process."""
    from openline.storage.redis import RedisStore

    return store.broker if isinstance(store, RedisStore) else LocalBroker()


def shared_store(store: ConversationStore) -> bool:
    """Whether other instances may change the store meanwhile (Redis): then nothing of it is remembered here."""
    from openline.storage.redis import RedisStore

    return isinstance(store, RedisStore)
