"""Storage backends behind one interface (`base.ConversationStore`), chosen by URL with `open_store`."""

from __future__ import annotations

from pathlib import Path

from openline.storage.base import ConversationStore


def open_store(url: str | None, data_dir: Path, retention: float, conversation_ttl: float) -> ConversationStore:
    """The store for a `--store` URL: None means SQLite in `data_dir`; `memory://`; `sqlite:///path`."""
    if url is None or url == "":
        from openline.storage.sqlite import SqliteStore

        return SqliteStore(data_dir / "openline.sqlite3", retention, conversation_ttl)
    if url.startswith("memory:"):
        from openline.storage.memory import MemoryStore

        return MemoryStore(retention, conversation_ttl)
    if url.startswith("sqlite:"):
        from openline.storage.sqlite import SqliteStore

        path = url.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise ValueError("sqlite store URL needs a path: sqlite:///var/lib/openline/db.sqlite3")
        return SqliteStore(Path(path), retention, conversation_ttl)
    raise ValueError(f"unknown store URL {url!r}: use memory://, sqlite:///PATH, or leave it unset")
