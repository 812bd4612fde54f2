"""The SQLite database file: its schema and migrations, and the connections and transactions the store uses."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# `MIGRATIONS[n]` takes a database from schema version n to n + 1 (`PRAGMA user_version`);
# a new schema version is a new entry at the end, never an edit of an old one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            bot_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_active REAL NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            last_ts_ms INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX conversations_last_active ON conversations (last_active)",
        """CREATE TABLE members (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            member_id TEXT NOT NULL,
            name TEXT,
            position INTEGER NOT NULL,
            PRIMARY KEY (conversation_id, member_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE activities (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            stored_at REAL NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX activities_stored_at ON activities (stored_at)",
        # a rowid table: the rows hold whole uploads, which WITHOUT ROWID tables store badly
        """CREATE TABLE files (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            created_at REAL NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (conversation_id, id)
        )""",
        "CREATE INDEX files_created_at ON files (created_at)",
    ),
    (
        # a client's own id for an activity (Web Chat's clientActivityID): a retried post finds the first one
        "ALTER TABLE activities ADD COLUMN client_key TEXT",
        "CREATE UNIQUE INDEX activities_client_key ON activities (conversation_id, client_key)"
        " WHERE client_key IS NOT NULL",
        "CREATE INDEX conversations_bot ON conversations (bot_id, id)",
    ),
    (
        # who sent each activity, for the inspector; NULL in rows stored before (read as origin None)
        "ALTER TABLE activities ADD COLUMN origin TEXT",
        # what the bot did with each activity sent to it; the body is the whole `Delivery` as JSON
        """CREATE TABLE deliveries (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            activity_id TEXT NOT NULL,
            at REAL NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (conversation_id, activity_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_at ON deliveries (at)",
        "CREATE INDEX deliveries_conversation_at ON deliveries (conversation_id, at)",
    ),
    (
        # whether the bot was told that each member joined: members recorded before were (they were
        # removed again when the bot did not take them)
        "ALTER TABLE members ADD COLUMN announce_state TEXT NOT NULL DEFAULT 'delivered'",
        "ALTER TABLE members ADD COLUMN announce_at REAL NOT NULL DEFAULT 0",
        # each delivery record says where it stands (`Delivery.state`); the records before were all final
        "UPDATE deliveries SET body = CAST(json_set(CAST(body AS TEXT), '$.state',"
        " CASE WHEN json_extract(CAST(body AS TEXT), '$.error') IS NULL THEN 'delivered' ELSE 'failed' END)"
        " AS BLOB)",
    ),
    (
        # the ids of conversations an operator deleted, refused to `create_conversation` until `until`, so that
        # a token issued before the deletion cannot bring one back; `purged` once its rows are all deleted
        # (they go in short batches after its conversations row: see SqliteStore.delete_conversation)
        """CREATE TABLE tombstones (
            id TEXT PRIMARY KEY,
            until REAL NOT NULL,
            purged INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# The writer's page cache, in KiB (SQLite's default is 2 MiB): it keeps the indexes of a large database.
WRITER_CACHE_KB = 32 * 1024


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any error (connections are in autocommit mode otherwise)."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back by itself (e.g. disk full)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; every transaction here is an explicit BEGIN.
    # check_same_thread=False: created on one thread, used on another (never on two at once).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        # WAL + synchronous=NORMAL: a commit is in the WAL file when COMMIT returns, so it survives the
        # process crashing or being killed (kill -9); only an OS crash or power loss can lose the last
        # few commits (never corrupting the file). The WAL also lets the reader run beside the writer.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def open_writer(path: Path, durability: str = "process") -> sqlite3.Connection:
    """The writer's connection: the file created private (0600) if missing, its schema brought up to date.

    `durability` "power" makes every COMMIT wait for an fsync of the WAL (`synchronous = FULL`). The writer
    never checkpoints by itself (`wal_autocheckpoint = 0`): `sqlite_commit.GroupCommit` does it off the loop.

    Raises RuntimeError for a file of a newer schema than this openline knows.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        # conversations and files are private: SQLite gives its -wal and -shm files the database's mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = connect(path)
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # the writer works on the loop's thread: the b-tree pages it walks should be in memory, not a read away
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB:d}")
        if durability == "power":
            conn.execute("PRAGMA synchronous = FULL")
        with transaction(conn):
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path} has schema version {version}; this openline knows up to {SCHEMA_VERSION}")
            for migration in MIGRATIONS[version:]:
                for statement in migration:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    except BaseException:
        conn.close()
        raise
    return conn


def check(path: Path, durability: str = "process") -> None:
    """Open the database as the service will (creating it or bringing its schema up to date), then close it.

    For a start that fails with one clear line: raises OSError naming the file and SQLite's reason when it
    cannot be used (not a database, a directory, a newer schema, a file system that cannot be written).
    Garbage past a valid header is not looked for (that would read the whole file).
    """
    try:
        conn = open_writer(path, durability)
    except (sqlite3.Error, RuntimeError) as e:
        raise OSError(f"the database {path} cannot be used: {e}") from None
    conn.close()


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection (`query_only`) to a database `open_writer` has made."""
    conn = connect(path)
    conn.execute("PRAGMA query_only = ON")
    return conn
