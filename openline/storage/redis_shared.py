"""The data directory's shared files kept in Redis too, so every instance on one Redis signs and accepts alike.

What one instance creates on its first start (the token signing key, the generated Direct Line secrets, the
admin secret, the bot-authentication keys) is published to Redis; every other instance takes Redis's copy
into its own data directory before it reads them. A rotation of the bot keys (`openline keys rotate`, run
against any instance's configuration or data directory) reaches every instance within two key reload
intervals: the instance whose file changed publishes it, the others take it.

Blocking (redis-py's synchronous client): called before the service starts, or on a thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from openline.datadir import write_file
from openline.storage import redis_codec as codec

SHARED_FILES = ("signing.key", "secrets.json", "admin.secret", "bot-keys.json")


def _client(url: str) -> redis.Redis | RedisCluster:
    if codec.is_cluster_url(url):
        return RedisCluster.from_url(codec.node_url(url))
    return redis.Redis.from_url(url)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}:data:{name}"


class SharedFiles:
    """The shared files of a data directory, mirrored in the Redis that `url` names (with its `?prefix=`)."""

    def __init__(self, url: str, data_dir: Path, names: tuple[str, ...] = SHARED_FILES) -> None:
        self.url, prefix = codec.split_prefix(url)
        self.prefix = prefix or codec.DEFAULT_PREFIX
        self.data_dir = data_dir
        self.names = names
        self._synced: dict[str, bytes | None] = {}  # each file as it was at the last pull or sync
        # one client (its pool) for every look: the service looks every few seconds, from worker threads
        self._client: redis.Redis | RedisCluster | None = None
        self._client_lock = threading.Lock()

    def _redis(self) -> redis.Redis | RedisCluster:
        with self._client_lock:
            if self._client is None:
                self._client = _client(self.url)
            return self._client

    def close(self) -> None:
        """Close the connections; a later call opens new ones."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def pull(self) -> list[str]:
        """Replace the local files with Redis's copies where they differ; the names replaced."""
        return self._exchange(publish_changes=False)

    def sync(self, names: tuple[str, ...] | None = None) -> list[str]:
        """Publish a file changed here since the last look (`openline keys rotate --data-dir` against this
        instance's directory), else take Redis's copy where it differs; the names that changed either way.
        `names`: only these of the shared files (default: all)."""
        return self._exchange(publish_changes=True, names=names)

    def _exchange(self, publish_changes: bool, names: tuple[str, ...] | None = None) -> list[str]:
        client = self._redis()
        changed = []
        for name in self.names if names is None else names:
            path = self.data_dir / name
            local = path.read_bytes() if path.exists() else None
            remote = client.get(_key(self.prefix, name))
            if publish_changes and local is not None and local != self._synced.get(name) and local != remote:
                client.set(_key(self.prefix, name), local)
                changed.append(name)
            elif remote is not None and remote != local:
                local = bytes(remote)  # type: ignore[arg-type]
                write_file(path, local)
                changed.append(name)
            self._synced[name] = local
        return changed

    def publish_new(self) -> bool:
        """Give Redis the local files it has no copy of; False when another instance published one first
        (then `pull` takes that one)."""
        client = self._redis()
        first = True
        for name in self.names:
            path = self.data_dir / name
            if path.exists() and not client.set(_key(self.prefix, name), path.read_bytes(), nx=True):
                first = first and client.get(_key(self.prefix, name)) == path.read_bytes()
        return first

    def publish(self, name: str) -> None:
        """Replace Redis's copy of one file with the local one (after a change made here: a key rotation)."""
        self._redis().set(_key(self.prefix, name), (self.data_dir / name).read_bytes())
