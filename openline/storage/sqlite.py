"""SQLite store (the default, `sqlite:///path`): one durable file, WAL mode, for a single-process service.

Writes run on the event loop's thread, many to a COMMIT (`sqlite_commit.GroupCommit`); reads run there too, on
a connection that sees only committed data (the writer's while no transaction is open on it, else a read-only
one). Both are short: SQLite's own work on a file in the page cache, with nothing waiting for the disk (fsyncs
happen in checkpoints, on a thread, and in "power" durability in COMMITs, also on a thread). Sweeps, the rows of a
deleted conversation, VACUUM and truncating checkpoints run on a thread, writes waiting meanwhile (between the
batches of the first two, which are short transactions).

Deleted means unrecoverable: the writer runs with `secure_delete` (freed space is overwritten with zeros),
and each retention sweep that follows a deletion (expired rows, or the bot's deletes and replacements)
ends with a truncating checkpoint, which moves the zeroed pages into the database file and empties the WAL,
where the old page images would otherwise stay readable until a clean stop. `secure_delete` does not reach
every copy (when SQLite rebalances a b-tree, fragments of moved rows can stay in a page's unused space), so
after a deletion the sweep also rewrites the whole database with VACUUM, at most once per `scrub_interval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import msgspec

from openline.protocol import ids
from openline.protocol.activity import assign_position
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
    claimable,
    first_claim,
)
from openline.storage.sqlite_busy import is_busy, never_wait
from openline.storage.sqlite_commit import Durability, GroupCommit
from openline.storage.sqlite_schema import connect, open_reader, open_writer, transaction
from openline.storage.sqlite_sweep import purge_batch, sweep_batch

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("openline.storage")

# A conversation's row as `_summaries` reads it; the parameter is the retention cut-off of the activity count.
_SUMMARY_SELECT = (
    "SELECT id, bot_id, created_at, last_seq, last_active,"
    " (SELECT count(*) FROM activities WHERE conversation_id = conversations.id AND stored_at >= ?)"
    " FROM conversations"
)

# The most conversations `_known` keeps (about 200 bytes each); past it, the older half is forgotten.
_KNOWN_MAX = 20_000

# A truncating checkpoint waits for the reader's current transaction to end: tries, and the pause between them.
_SCRUB_TRIES, _SCRUB_PAUSE = 40, 0.025


def _origin(value: str | None) -> Origin | None:
    """An `origin` column as stored: "client", "bot", or NULL for rows written before schema version 3."""
    return cast("Origin | None", value)


class SqliteStore:
    def __init__(
        self,
        path: Path,
        retention: float,
        conversation_ttl: float,
        scrub_interval: float = 0.0,
        durability: Durability = "process",
    ) -> None:
        """`scrub_interval`: the least seconds between two VACUUMs after deletions (0: at every sweep).

        `durability`: what an acknowledged write survives (see `sqlite_commit.Durability`).
        """
        self.path = path
        self._wal = path.with_name(path.name + "-wal")
        self.retention = retention
        self.conversation_ttl = conversation_ttl
        self.scrub_interval = scrub_interval
        self.durability = durability
        self._vacuumed_at = -math.inf  # time.monotonic() of the last VACUUM
        self._unvacuumed = False  # deleted rows may have left fragments that only a VACUUM removes (see _mark_deleted)
        self._thread: ThreadPoolExecutor | None = None
        self._checkpoint_thread: ThreadPoolExecutor | None = None
        self._commits: GroupCommit | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._cconn: sqlite3.Connection | None = None
        # something was deleted or overwritten since the WAL was last emptied
        self._deleted = False
        # conversations as committed, read 2-3 times per message: kept up to date by the commits that change them
        self._known: dict[str, Conversation] = {}
        self._data_version = 0  # the writer's PRAGMA data_version when opened, then at the last `changed_elsewhere`
        # seconds between two batches of a deletion: another process's writers get the file's lock meanwhile (the
        # admin commands, which delete beside a running service, set it; SQLite's busy handler retries every 0.1 s)
        self.pause_between_batches = 0.0

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def _group(self) -> GroupCommit:
        """The writes' group commit; RuntimeError when the store is not open."""
        if self._commits is None:
            raise RuntimeError("the SQLite store is not open")
        return self._commits

    async def _write(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`fn` run in a write transaction on the loop's thread; returns once it is committed (see GroupCommit).

        Raises StoreFull when the disk is full, StoreUnavailable when the file cannot be written (an I/O error, or
        another process kept it locked `sqlite_busy.LOCK_WAIT` seconds): the write was undone either way.
        """
        try:
            return await self._group.write(fn, *args, **kw)
        except sqlite3.Error as e:
            raise self._unwritable(e) from e

    async def _write_statement(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`_write` for a function that executes one statement (no savepoint needed)."""
        try:
            return await self._group.write_statement(fn, *args, **kw)
        except sqlite3.Error as e:
            raise self._unwritable(e) from e

    def _unwritable(self, error: sqlite3.Error) -> Exception:
        """StoreFull or StoreUnavailable for an error (or the error it was caused by) that says the disk is full
        or cannot be written (SQLITE_FULL, SQLITE_IOERR_*, or SQLITE_BUSY: locked); `error` itself for any other."""
        if is_busy(error):
            return self._locked(error)
        cause: BaseException | None = error
        while cause is not None:
            code = getattr(cause, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL:
                return StoreFull(f"the database {self.path} is full: {cause}")
            if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_IOERR:
                return StoreUnavailable(f"the database {self.path} cannot be written: {cause}")
            cause = cause.__cause__
        return error

    def _locked(self, error: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(f"the database {self.path} is locked (by another process): {error}")

    async def _exclusive(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`fn` run on the thread with the writer connection to itself (long work: sweeps, VACUUM, checkpoints).

        Raises StoreUnavailable when another process kept a lock it needs (`sqlite_busy.THREAD_BUSY_MS`)."""
        try:
            return await self._group.exclusive(fn, *args, **kw)
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise self._locked(e) from e
            raise

    async def _read(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`fn` run at once on the loop's thread, on a connection that sees committed data only (`_r`).

        Raises StoreUnavailable in the rare cases where a read finds the file locked (another process recovering
        or closing it): the loop's connections never wait for a lock (see `sqlite_busy`)."""
        if self._rconn is None:
            raise RuntimeError("the SQLite store is not open")
        try:
            return fn(*args, **kw)
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise self._locked(e) from e
            raise

    @property
    def _w(self) -> sqlite3.Connection:
        assert self._wconn is not None, "the SQLite store is not open"
        return self._wconn

    @property
    def _r(self) -> sqlite3.Connection:
        """The writer's connection when no transaction is open on it (its page cache is warm), else the reader's."""
        assert self._rconn is not None, "the SQLite store is not open"
        if self._commits is not None and self._commits.idle:
            assert self._wconn is not None
            return self._wconn
        return self._rconn

    # -- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openline-sqlite")
        self._checkpoint_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openline-sqlite-checkpoint")
        try:
            self._wconn = await loop.run_in_executor(self._thread, open_writer, self.path, self.durability)
            # the others connect after the schema exists, so they never see a half-made database
            self._rconn = await loop.run_in_executor(self._thread, open_reader, self.path)
            self._cconn = await loop.run_in_executor(self._checkpoint_thread, connect, self.path)
        except BaseException:
            await self.close()
            raise
        never_wait(self._rconn)  # it is used on the loop's thread; GroupCommit does the same for the writer
        if self._wconn.execute("SELECT 1 FROM tombstones WHERE purged = 0 LIMIT 1").fetchone() is not None:
            self._mark_deleted()  # a deletion cut short (a crash): the first sweep finishes it and scrubs the file
        self._commits = GroupCommit(
            self._wconn,
            self.durability,
            self._thread,
            self._cconn,
            self._checkpoint_thread,
            self._wal,
        )
        self._data_version = await self._read(self._version)

    async def close(self) -> None:
        # Writes acknowledged before are committed; those still waiting for their COMMIT get it first.
        loop = asyncio.get_running_loop()
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None
        if self._cconn is not None:
            assert self._checkpoint_thread is not None
            await loop.run_in_executor(self._checkpoint_thread, self._cconn.close)
            self._cconn = None
        if self._wconn is not None:
            if self._commits is not None:
                await self._commits.close(self._wconn.close)
            else:
                assert self._thread is not None
                await loop.run_in_executor(self._thread, self._wconn.close)
            self._wconn = None
        self._commits = None
        for executor in (self._checkpoint_thread, self._thread):
            if executor is not None:
                executor.shutdown(wait=True)  # idle by now: its last job has just returned
        self._checkpoint_thread = self._thread = None

    async def ping(self) -> None:
        await self._read(self._ping)

    def _ping(self) -> None:
        self._r.execute("SELECT 1").fetchone()

    def _version(self) -> int:
        """The writer's `PRAGMA data_version`."""
        assert self._wconn is not None, "the SQLite store is not open"
        version: int = self._wconn.execute("PRAGMA data_version").fetchone()[0]
        return version

    def changed_elsewhere(self) -> bool:
        """Whether another process (`openline conversation delete`) changed the file since the last call (the
        first: since the store opened).

        Then the conversations remembered here are forgotten, and the next sweep scrubs the file as after a
        deletion of its own. A microsecond's work on the loop's thread (SQLite's `PRAGMA data_version`, which
        this process's own commits and checkpoints leave alone); False while a write of this process is open.
        Raises StoreUnavailable when the file is locked (as `_read`).
        """
        if self._wconn is None or self._commits is None or not self._commits.idle:
            return False
        try:
            version = self._version()
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise self._locked(e) from e
            raise
        changed = version != self._data_version
        self._data_version = version
        if changed:
            self._known.clear()
            self._mark_deleted()
        return changed

    # -- conversations and members ----------------------------------------------------------------

    async def create_conversation(self, conversation_id: str, bot_id: str, now: float) -> bool:
        return await self._write_statement(self._create_conversation, conversation_id, bot_id, now)

    def _create_conversation(self, conversation_id: str, bot_id: str, now: float) -> bool:
        # a tombstone whose rows are not all gone yet keeps the id too: they would become the new conversation's
        if self._tombstone_holds(self._w, conversation_id, now):
            raise ConversationDeleted(conversation_id)
        cur = self._w.execute(
            "INSERT OR IGNORE INTO conversations (id, bot_id, created_at, last_active) VALUES (?, ?, ?, ?)",
            (conversation_id, bot_id, now, now),
        )
        return cur.rowcount == 1

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        known = self._known.get(conversation_id)
        # while a "power" COMMIT is on the thread, readers may see its activities before its hooks update `_known`
        if known is not None and not (self._commits is not None and self._commits.commit_in_flight):
            return known
        return await self._read(self._get_conversation, conversation_id)

    def _get_conversation(self, conversation_id: str) -> Conversation | None:
        row = self._r.execute(
            "SELECT bot_id, created_at, last_seq FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            return None
        found = self._known[conversation_id] = Conversation(conversation_id, row[0], row[1], row[2])
        if len(self._known) > _KNOWN_MAX:
            for stale in list(itertools.islice(self._known, _KNOWN_MAX // 2)):
                del self._known[stale]
        return found

    def _advance(self, conversation_id: str, seq: int) -> None:
        """A committed append took `seq`: the known conversation's last sequence follows it."""
        known = self._known.get(conversation_id)
        if known is not None and seq > known.last_seq:
            self._known[conversation_id] = dataclasses.replace(known, last_seq=seq)

    @staticmethod
    def _tombstone_holds(conn: sqlite3.Connection, conversation_id: str, now: float) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM tombstones WHERE id = ? AND (until >= ? OR purged = 0)", (conversation_id, now)
            ).fetchone()
            is not None
        )

    async def deleted(self, conversation_id: str, now: float) -> bool:
        return await self._read(self._deleted_at, conversation_id, now)

    def _deleted_at(self, conversation_id: str, now: float) -> bool:
        return self._tombstone_holds(self._r, conversation_id, now)

    @staticmethod
    def _check_exists(conn: sqlite3.Connection, conversation_id: str) -> None:
        if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise UnknownConversation(conversation_id)

    async def add_member(self, conversation_id: str, member: Member) -> bool:
        return await self._write(self._add_member, conversation_id, member)

    def _add_member(self, conversation_id: str, member: Member) -> bool:
        conn = self._w
        self._check_exists(conn, conversation_id)
        return self._insert_member(conn, conversation_id, member, "delivered", 0.0)

    @staticmethod
    def _insert_member(
        conn: sqlite3.Connection, conversation_id: str, member: Member, state: DeliveryState, at: float
    ) -> bool:
        """Add `member` at the end, its announcement in `state` since `at`; False when the id is there already."""
        cur = conn.execute(
            "INSERT OR IGNORE INTO members (conversation_id, member_id, name, position, announce_state, announce_at)"
            " SELECT ?, ?, ?, coalesce(max(position), 0) + 1, ?, ? FROM members WHERE conversation_id = ?",
            (conversation_id, member.id, member.name, state, at, conversation_id),
        )
        return cur.rowcount == 1

    async def claim_announcement(
        self, conversation_id: str, member: Member, now: float, stale_before: float
    ) -> tuple[bool, DeliveryState]:
        return await self._write(self._claim_announcement, conversation_id, member, now, stale_before)

    def _claim_announcement(
        self, conversation_id: str, member: Member, now: float, stale_before: float
    ) -> tuple[bool, DeliveryState]:
        conn = self._w
        self._check_exists(conn, conversation_id)
        row = conn.execute(
            "SELECT announce_state, announce_at FROM members WHERE conversation_id = ? AND member_id = ?",
            (conversation_id, member.id),
        ).fetchone()
        if row is None:
            self._insert_member(conn, conversation_id, member, "pending", now)
            return True, "pending"
        state: DeliveryState = row[0]
        if not claimable(state, row[1], stale_before):
            return False, state
        conn.execute(
            "UPDATE members SET announce_state = 'pending', announce_at = ?"
            " WHERE conversation_id = ? AND member_id = ?",
            (now, conversation_id, member.id),
        )
        return True, "pending"

    async def announced(self, conversation_id: str, member_ids: Sequence[str]) -> set[str]:
        return await self._read(self._announced, conversation_id, list(member_ids))

    def _announced(self, conversation_id: str, member_ids: list[str]) -> set[str]:
        if not member_ids:
            return set()
        marks = ",".join("?" * len(member_ids))
        rows = self._r.execute(
            f"SELECT member_id FROM members WHERE conversation_id = ? AND member_id IN ({marks})"
            " AND announce_state = 'delivered' AND EXISTS (SELECT 1 FROM conversations WHERE id = ?)",
            (conversation_id, *member_ids, conversation_id),
        ).fetchall()
        return {member_id for (member_id,) in rows}

    async def finish_announcement(self, conversation_id: str, member_id: str, delivered: bool) -> None:
        await self._write_statement(self._finish_announcement, conversation_id, member_id, delivered)

    def _finish_announcement(self, conversation_id: str, member_id: str, delivered: bool) -> None:
        self._w.execute(
            "UPDATE members SET announce_state = ? WHERE conversation_id = ? AND member_id = ?"
            " AND EXISTS (SELECT 1 FROM conversations WHERE id = ?)",
            ("delivered" if delivered else "failed", conversation_id, member_id, conversation_id),
        )

    async def remove_member(self, conversation_id: str, member_id: str) -> bool:
        return await self._write(self._remove_member, conversation_id, member_id)

    def _remove_member(self, conversation_id: str, member_id: str) -> bool:
        conn = self._w
        self._check_exists(conn, conversation_id)
        cur = conn.execute(
            "DELETE FROM members WHERE conversation_id = ? AND member_id = ?", (conversation_id, member_id)
        )
        self._mark_deleted()
        return cur.rowcount == 1

    async def members(self, conversation_id: str) -> list[Member]:
        return await self._read(self._members, conversation_id)

    def _members(self, conversation_id: str) -> list[Member]:
        conn = self._r
        with transaction(conn, "DEFERRED"):  # one snapshot for both queries
            self._check_exists(conn, conversation_id)
            rows = conn.execute(
                "SELECT member_id, name FROM members WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
        return [Member(member_id, name) for member_id, name in rows]

    # -- activities and files ---------------------------------------------------------------------

    async def append(
        self,
        conversation_id: str,
        activity: dict[str, Any],
        now: float,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
        origin: Origin = "client",
    ) -> StoredActivity:
        seq, ts_ms, first = await self._write(self._append, conversation_id, activity, now, files, client_key, origin)
        if first is not None:
            body, first_origin = first
            return StoredActivity(
                seq, msgspec.json.decode(body, type=dict[str, Any]), repeated=True, origin=first_origin
            )
        # The caller's dict is changed on the loop's thread, and only once the activity is committed.
        assign_position(activity, conversation_id, seq, ts_ms)
        return StoredActivity(seq, activity, origin=origin)

    def _append(
        self,
        conversation_id: str,
        activity: dict[str, Any],
        now: float,
        files: Sequence[StoredFile],
        client_key: str | None,
        origin: Origin,
    ) -> tuple[int, int, tuple[bytes, Origin | None] | None]:
        """(seq, timestamp ms, None) of the new activity, or (seq, 0, (body, origin)) of the one with `client_key`."""
        conn = self._w
        if client_key is not None:
            self._check_exists(conn, conversation_id)  # a deleted conversation's rows may still hold the key
            row = conn.execute(
                "SELECT seq, body, origin FROM activities"
                " WHERE conversation_id = ? AND client_key = ? AND stored_at >= ?",
                (conversation_id, client_key, now - self.retention),
            ).fetchone()
            if row is not None:
                return row[0], 0, (bytes(row[1]), _origin(row[2]))
            # an expired row still holding the key would block the new one
            conn.execute(
                "UPDATE activities SET client_key = NULL WHERE conversation_id = ? AND client_key = ?",
                (conversation_id, client_key),
            )
        # one statement takes the next position; its timestamp is protocol.activity.next_timestamp_ms in SQL
        rows = conn.execute(
            "UPDATE conversations SET last_seq = last_seq + 1, last_active = ?,"
            " last_ts_ms = max(?, last_ts_ms + 1) WHERE id = ? RETURNING last_seq, last_ts_ms",
            (now, int(now * 1000), conversation_id),
        ).fetchall()  # fetch everything: the statement must be finished before COMMIT
        if not rows:
            raise UnknownConversation(conversation_id)
        seq, ts_ms = rows[0]
        # an encoding error rolls the whole transaction back, so no sequence number is skipped
        body = msgspec.json.encode(assign_position(dict(activity), conversation_id, seq, ts_ms))
        conn.execute(
            "INSERT INTO activities (conversation_id, seq, stored_at, body, client_key, origin)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, seq, now, body, client_key, origin),
        )
        if files:
            conn.executemany(
                "INSERT OR REPLACE INTO files (conversation_id, id, name, content_type, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(conversation_id, f.id, f.name, f.content_type, f.created_at, bytes(f.data)) for f in files],
            )
        if origin == "client" and client_key is not None:
            self._put_delivery(conn, conversation_id, first_claim(ids.activity_id(conversation_id, seq), now))
        self._group.after_commit(functools.partial(self._advance, conversation_id, seq))
        return seq, ts_ms, None

    async def replace(
        self, conversation_id: str, seq: int, activity: dict[str, Any], now: float, file_ids: Sequence[str] = ()
    ) -> StoredActivity | None:
        found = await self._write(self._replace, conversation_id, seq, activity, now, file_ids)
        if found is None:
            return None
        activity["id"], activity["timestamp"], origin = found
        return StoredActivity(seq, activity, origin=origin)

    def _replace(
        self, conversation_id: str, seq: int, activity: dict[str, Any], now: float, file_ids: Sequence[str]
    ) -> tuple[str, str, Origin | None] | None:
        """The stored activity's (id, timestamp, origin), or None when there is none to replace."""
        conn = self._w
        self._check_exists(conn, conversation_id)
        row = conn.execute(
            "SELECT body, origin FROM activities WHERE conversation_id = ? AND seq = ? AND stored_at >= ?",
            (conversation_id, seq, now - self.retention),
        ).fetchone()
        if row is None:
            return None
        old = msgspec.json.decode(row[0], type=dict[str, Any])
        position = (old["id"], old["timestamp"])
        body = msgspec.json.encode({**activity, "id": position[0], "timestamp": position[1]})
        conn.execute(
            "UPDATE activities SET body = ? WHERE conversation_id = ? AND seq = ?", (body, conversation_id, seq)
        )
        self._mark_deleted()  # the old body
        self._delete_files(conn, conversation_id, file_ids)
        conn.execute("UPDATE conversations SET last_active = max(last_active, ?) WHERE id = ?", (now, conversation_id))
        return position[0], position[1], _origin(row[1])

    async def delete(self, conversation_id: str, seq: int, file_ids: Sequence[str] = ()) -> bool:
        return await self._write(self._delete, conversation_id, seq, file_ids)

    def _delete(self, conversation_id: str, seq: int, file_ids: Sequence[str]) -> bool:
        conn = self._w
        self._check_exists(conn, conversation_id)
        cur = conn.execute("DELETE FROM activities WHERE conversation_id = ? AND seq = ?", (conversation_id, seq))
        if cur.rowcount != 1:
            return False
        self._delete_files(conn, conversation_id, file_ids)
        self._mark_deleted()
        return True

    @staticmethod
    def _delete_files(conn: sqlite3.Connection, conversation_id: str, file_ids: Sequence[str]) -> None:
        conn.executemany(
            "DELETE FROM files WHERE conversation_id = ? AND id = ?", [(conversation_id, f) for f in file_ids]
        )

    async def delete_conversation(self, conversation_id: str, now: float, forget_at: float) -> bool:
        """See `ConversationStore.delete_conversation`. One short transaction deletes the conversations row and
        writes the tombstone (the conversation is gone for every reader at once); then its other rows go in
        batches on the thread (`sqlite_sweep.purge_batch`), writes running between them, so that neither the
        event loop nor other writers wait for a large conversation's files to be overwritten."""
        try:
            found = await self._exclusive(self._tombstone, conversation_id, forget_at)
        except sqlite3.Error as e:
            raise self._unwritable(e) from e
        self._forget(conversation_id)
        if not found:
            return False
        self._mark_deleted()
        try:
            while await self._exclusive(purge_batch, self._w, conversation_id) is not None:
                await self._between_batches(self.pause_between_batches)
        except sqlite3.Error as e:  # a full disk, say: the conversation is gone all the same, and the sweep goes on
            log.warning("the rows of deleted conversation %s are left to the next sweep: %s", conversation_id, e)
        return True

    def _tombstone(self, conversation_id: str, forget_at: float) -> bool:
        """Delete the conversations row alone (not its other rows, as ON DELETE CASCADE would, at length) and
        write the tombstone, in one transaction; False when there is no such conversation."""
        conn = self._w
        conn.execute("PRAGMA foreign_keys = OFF")  # only outside a transaction; exclusive work runs outside one
        try:
            with transaction(conn):
                if conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount != 1:
                    return False
                conn.execute(
                    "INSERT OR REPLACE INTO tombstones (id, until, purged) VALUES (?, ?, 0)",
                    (conversation_id, forget_at),
                )
                return True
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def _forget(self, conversation_id: str) -> None:
        self._known.pop(conversation_id, None)

    async def conversations(self, bot_id: str, after_id: str, limit: int) -> list[Conversation]:
        return await self._read(self._conversations, bot_id, after_id, limit)

    def _conversations(self, bot_id: str, after_id: str, limit: int) -> list[Conversation]:
        rows = self._r.execute(
            "SELECT id, created_at, last_seq FROM conversations WHERE bot_id = ? AND id > ? ORDER BY id LIMIT ?",
            (bot_id, after_id, max(limit, 0)),
        ).fetchall()
        return [Conversation(id_, bot_id, created_at, last_seq) for id_, created_at, last_seq in rows]

    async def add_file(self, file: StoredFile) -> None:
        await self._write(self._add_file, file)

    def _add_file(self, file: StoredFile) -> None:
        conn = self._w
        self._check_exists(conn, file.conversation_id)
        conn.execute(
            "INSERT OR REPLACE INTO files (conversation_id, id, name, content_type, created_at, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (file.conversation_id, file.id, file.name, file.content_type, file.created_at, bytes(file.data)),
        )
        conn.execute(
            "UPDATE conversations SET last_active = max(last_active, ?) WHERE id = ?",
            (file.created_at, file.conversation_id),
        )

    async def read(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        return await self._read(self._read_activities, conversation_id, after_seq, limit, now)

    def _read_activities(self, conversation_id: str, after_seq: int, limit: int, now: float) -> list[StoredActivity]:
        conn = self._r
        with transaction(conn, "DEFERRED"):
            self._check_exists(conn, conversation_id)
            rows = conn.execute(
                "SELECT seq, body, origin FROM activities WHERE conversation_id = ? AND seq > ? AND stored_at >= ?"
                " ORDER BY seq LIMIT ?",
                (conversation_id, after_seq, now - self.retention, max(limit, 0)),
            ).fetchall()
        return [
            StoredActivity(seq, msgspec.json.decode(body, type=dict[str, Any]), origin=_origin(origin))
            for seq, body, origin in rows
        ]

    async def get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        return await self._read(self._get_file, conversation_id, file_id, now)

    def _get_file(self, conversation_id: str, file_id: str, now: float) -> StoredFile | None:
        row = self._r.execute(
            "SELECT name, content_type, data, created_at FROM files"
            " WHERE conversation_id = ? AND id = ? AND created_at >= ?"
            " AND EXISTS (SELECT 1 FROM conversations WHERE id = ?)",
            (conversation_id, file_id, now - self.retention, conversation_id),
        ).fetchone()
        if row is None:
            return None
        name, content_type, data, created_at = row
        return StoredFile(file_id, conversation_id, name, content_type, bytes(data), created_at)

    # -- deliveries and the inspector's listing ----------------------------------------------------

    async def add_delivery(self, conversation_id: str, delivery: Delivery) -> None:
        try:
            await self._write_statement(self._add_delivery, conversation_id, delivery)
        except sqlite3.IntegrityError:  # the conversations row it references is not there
            raise UnknownConversation(conversation_id) from None

    def _add_delivery(self, conversation_id: str, delivery: Delivery) -> None:
        # one write: a record of a later attempt (one that took this over) is left as it is; the rows of a
        # deleted conversation (waiting for their batch) are no record to update
        self._check_exists(self._w, conversation_id)
        self._w.execute(
            "INSERT INTO deliveries (conversation_id, activity_id, at, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (conversation_id, activity_id) DO UPDATE SET at = excluded.at, body = excluded.body"
            " WHERE coalesce(json_extract(CAST(deliveries.body AS TEXT), '$.attempts'), 1) <= ?",
            (
                conversation_id,
                delivery.activity_id,
                delivery.at,
                msgspec.json.encode(delivery),
                delivery.attempts,
            ),
        )

    @staticmethod
    def _delivery(conn: sqlite3.Connection, conversation_id: str, activity_id: str) -> Delivery | None:
        row = conn.execute(
            "SELECT body FROM deliveries WHERE conversation_id = ? AND activity_id = ?", (conversation_id, activity_id)
        ).fetchone()
        return msgspec.json.decode(row[0], type=Delivery) if row is not None else None

    async def renew_claim(self, conversation_id: str, activity_id: str, attempts: int, now: float) -> bool:
        return await self._write(self._renew_claim, conversation_id, activity_id, attempts, now)

    def _renew_claim(self, conversation_id: str, activity_id: str, attempts: int, now: float) -> bool:
        conn = self._w
        self._check_exists(conn, conversation_id)
        known = self._delivery(conn, conversation_id, activity_id)
        if known is None or known.state != "pending" or known.attempts != attempts:
            return False
        self._put_delivery(conn, conversation_id, dataclasses.replace(known, at=now))
        return True

    @staticmethod
    def _put_delivery(conn: sqlite3.Connection, conversation_id: str, delivery: Delivery) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO deliveries (conversation_id, activity_id, at, body) VALUES (?, ?, ?, ?)",
            (conversation_id, delivery.activity_id, delivery.at, msgspec.json.encode(delivery)),
        )

    async def claim_delivery(
        self, conversation_id: str, activity_id: str, now: float, stale_before: float
    ) -> tuple[bool, Delivery]:
        return await self._write(self._claim_delivery, conversation_id, activity_id, now, stale_before)

    def _claim_delivery(
        self, conversation_id: str, activity_id: str, now: float, stale_before: float
    ) -> tuple[bool, Delivery]:
        conn = self._w
        self._check_exists(conn, conversation_id)
        known = self._delivery(conn, conversation_id, activity_id)
        if known is not None and not claimable(known.state, known.at, stale_before):
            return False, known
        claimed = known.claimed(now) if known is not None else first_claim(activity_id, now)
        self._put_delivery(conn, conversation_id, claimed)
        return True, claimed

    async def deliveries(self, conversation_id: str, since: float, now: float) -> list[Delivery]:
        return await self._read(self._deliveries, conversation_id, since, now)

    def _deliveries(self, conversation_id: str, since: float, now: float) -> list[Delivery]:
        conn = self._r
        with transaction(conn, "DEFERRED"):
            self._check_exists(conn, conversation_id)
            rows = conn.execute(
                "SELECT body FROM deliveries WHERE conversation_id = ? AND at >= ? ORDER BY at, activity_id",
                (conversation_id, max(since, now - self.retention)),
            ).fetchall()
        return [msgspec.json.decode(body, type=Delivery) for (body,) in rows]

    async def recent_conversations(self, limit: int, now: float) -> list[ConversationSummary]:
        return await self._read(self._recent_conversations, limit, now)

    def _recent_conversations(self, limit: int, now: float) -> list[ConversationSummary]:
        conn = self._r
        with transaction(conn, "DEFERRED"):  # one snapshot for both queries
            # ordered by the conversations_last_active index
            rows = conn.execute(
                _SUMMARY_SELECT + " ORDER BY last_active DESC, id LIMIT ?",
                (now - self.retention, max(limit, 0)),
            ).fetchall()
            members = conn.execute(
                "SELECT conversation_id, member_id, name FROM members WHERE conversation_id IN"
                " (SELECT id FROM conversations ORDER BY last_active DESC, id LIMIT ?) ORDER BY position",
                (max(limit, 0),),
            ).fetchall()
        return self._summaries(rows, members)

    async def count_conversations(self, now: float) -> int:
        return await self._read(self._count_conversations, now)

    def _count_conversations(self, now: float) -> int:
        # a range of the conversations_last_active index: a few milliseconds for 100k conversations
        row = self._r.execute(
            "SELECT COUNT(*) FROM conversations WHERE last_active >= ?", (now - self.conversation_ttl,)
        ).fetchone()
        return int(row[0])

    async def summary(self, conversation_id: str, now: float) -> ConversationSummary | None:
        return await self._read(self._summary, conversation_id, now)

    def _summary(self, conversation_id: str, now: float) -> ConversationSummary | None:
        conn = self._r
        with transaction(conn, "DEFERRED"):  # one snapshot for both queries
            rows = conn.execute(
                _SUMMARY_SELECT + " WHERE id = ?",
                (now - self.retention, conversation_id),
            ).fetchall()
            members = conn.execute(
                "SELECT conversation_id, member_id, name FROM members WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        found = self._summaries(rows, members)
        return found[0] if found else None

    @staticmethod
    def _summaries(rows: list[Any], members: list[Any]) -> list[ConversationSummary]:
        """Summaries of `rows` (id, bot_id, created_at, last_seq, last_active, activity count), in their order.

        `members` holds (conversation_id, member_id, name) rows in the order the members were added.
        """
        by_conversation: dict[str, list[Member]] = {row[0]: [] for row in rows}
        for conversation_id, member_id, name in members:
            if conversation_id in by_conversation:
                by_conversation[conversation_id].append(Member(member_id, name))
        return [
            ConversationSummary(
                Conversation(id_, bot_id, created_at, last_seq), last_active, count, by_conversation[id_]
            )
            for id_, bot_id, created_at, last_seq, last_active, count in rows
        ]

    # -- retention --------------------------------------------------------------------------------

    async def sweep(self, now: float) -> int:
        # Many short transactions rather than one long one: writes queued meanwhile run between batches.
        removed = 0
        while (n := await self._exclusive(self._sweep_batch, now)) is not None:
            removed += n
            self._known.clear()  # some of them may be gone
            await self._between_batches(0.0)
        if removed:
            self._mark_deleted()
        await self._scrub()
        return removed

    @staticmethod
    async def _between_batches(pause: float) -> None:
        """Between two batches of a long deletion: at least a turn of the loop, or the next batch takes the
        connection before the writes woken by this one's end, which would wait for the whole deletion."""
        await asyncio.sleep(pause)

    def _mark_deleted(self) -> None:
        """Rows were deleted or overwritten: the WAL must be emptied, and a VACUUM is owed."""
        self._deleted = self._unvacuumed = True

    async def _scrub(self) -> None:
        """VACUUM when one is owed and due, then empty the WAL, where deleted rows live on in old page images.

        The next sweep tries again if a reader kept the checkpoint from completing.
        """
        vacuum = self._unvacuumed and time.monotonic() - self._vacuumed_at >= self.scrub_interval
        if vacuum:
            self._unvacuumed = False
            self._vacuumed_at = time.monotonic()
            await self._exclusive(self._vacuum)
        if not (vacuum or self._deleted):
            return
        for _ in range(_SCRUB_TRIES):
            if await self._exclusive(self._checkpoint):
                return
            await asyncio.sleep(_SCRUB_PAUSE)

    def _sweep_batch(self, now: float) -> int | None:
        return sweep_batch(self._w, now, self.retention, self.conversation_ttl)

    def _vacuum(self) -> None:
        self._w.execute("VACUUM")

    def _checkpoint(self) -> bool:
        """A truncating checkpoint; False when a reader's transaction kept it from completing."""
        deleted, self._deleted = self._deleted, False
        busy = self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            self._deleted = self._deleted or deleted
        return not busy


_: type[ConversationStore] = SqliteStore
