"""Group commit for the SQLite store: write transactions run on the event loop's thread, many to one COMMIT.

Each write is a short synchronous function of the writer connection (no I/O but SQLite's own, no awaiting).
It runs at once, inside a savepoint of the transaction that is open, so a write that raises undoes only
itself. The transaction commits once the writes that arrived in the same turn of the loop have run, and
only then does each write's caller get its result: acknowledged means committed.

Where the COMMIT runs is the durability setting (see `Durability`):
- "process" (WAL, `synchronous = NORMAL`): a COMMIT writes the WAL and never waits for the disk, so it runs
  on the loop's thread, a few microseconds, with no hand-off to another thread;
- "power" (`synchronous = FULL`): a COMMIT waits for an fsync, so it runs on a thread; writes arriving
  meanwhile queue, and all of them share the next COMMIT and its one fsync.

Work that can take long (retention sweeps, VACUUM, truncating checkpoints) runs with `exclusive` on the
thread, writes waiting meanwhile. The WAL is checkpointed off the loop (an automatic checkpoint would run on
the loop inside a COMMIT and wait for the disk): when it passes `CHECKPOINT_AT`, a connection of its own on
another thread copies it into the database (`PASSIVE`: neither writes nor reads wait), then the little
committed meanwhile is copied and the file emptied with writes held (see `GroupCommit._checkpoint`).

Another process may hold the database's write lock (`openline conversation delete`): the loop never waits for
it inside SQLite. A BEGIN that finds it taken queues its write, and one task tries again with growing pauses,
the loop free in between; the writes of a lock held past `sqlite_busy.LOCK_WAIT` fail (nothing of them written).
The uncontended path does no more than before: one BEGIN per transaction, no sleep, no clock read.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from openline.storage.sqlite_busy import FIRST_PAUSE, LAST_PAUSE, LOCK_WAIT, is_busy, never_wait, wait_on_thread

log = logging.getLogger("openline.storage")
P = ParamSpec("P")
T = TypeVar("T")

Durability = Literal["process", "power"]
"""What an acknowledged write survives: "process" a crash or `kill -9` of openline; "power" also an OS crash
or power loss (an fsync per group commit)."""

DURABILITIES: tuple[Durability, ...] = ("process", "power")

# The WAL's size (bytes) past which a passive checkpoint copies it into the database file; SQLite's own
# automatic checkpoint (1000 pages) would be about the same, but runs inside a COMMIT.
CHECKPOINT_AT = 4 * 1024 * 1024
# Commits between two looks at the WAL's size.
_CHECK_EVERY = 64


class GroupCommit:
    """The writer connection and the transactions on it; see the module docstring.

    Created and used on the event loop's thread. `thread` is a single-thread executor that owns the
    connection whenever `exclusive` work or an off-loop COMMIT runs; `checkpoint` is a connection to the
    same database for the passive checkpoints, used only on `checkpoint_thread`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        durability: Durability,
        thread: ThreadPoolExecutor,
        checkpoint: sqlite3.Connection,
        checkpoint_thread: ThreadPoolExecutor,
        wal: Path,
    ) -> None:
        self._conn = conn
        self._commit_off_loop = durability == "power"
        self._thread = thread
        self._checkpoint_conn = checkpoint
        self._checkpoint_thread = checkpoint_thread
        self._wal = wal
        self._loop = asyncio.get_running_loop()
        # the writes run in the open transaction, waiting for its COMMIT: (their caller's future, result)
        self._batch: list[tuple[asyncio.Future[Any], Any]] | None = None
        self._after: list[Callable[[], None]] = []  # run once the open transaction is committed
        # set while the connection is on `thread` (a COMMIT or exclusive work): writes wait for it
        self._held: asyncio.Future[None] | None = None
        # set while exclusive work waits for the connection or has it: new writes wait for it to end
        self._exclusive_turn: asyncio.Future[None] | None = None
        self._exclusive_waiting = 0
        self._commits = 0
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._closed = False
        # while another process holds the write lock: the writes waiting for it, and the task trying to begin
        self._queued: deque[tuple[asyncio.Future[Any], bool, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
        self._queued = deque()
        self._locked_out: asyncio.Task[None] | None = None
        never_wait(conn)

    @property
    def idle(self) -> bool:
        """No transaction is open and nothing holds the connection: a read on it sees exactly what is committed."""
        return self._batch is None and self._held is None

    async def write(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`fn(*args, **kw)`'s result once its changes are committed; its exception if it raised (its changes undone).

        Raises sqlite3.Error when the COMMIT fails (every write of that transaction is then undone), and
        sqlite3.OperationalError (SQLITE_BUSY) when another process held the write lock `sqlite_busy.LOCK_WAIT`
        seconds (the write was not run). A write whose caller is cancelled still commits.
        """
        return await self._run(True, fn, *args, **kw)

    async def write_statement(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """`write` for a function that executes one statement: SQLite undoes a failed statement by itself."""
        return await self._run(False, fn, *args, **kw)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` (on the loop's thread) once the write running now is committed, before its caller resumes."""
        self._after.append(hook)

    async def _run(self, savepoint: bool, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        # writes wait while the thread has the connection, and while exclusive work waits for its turn: without
        # that, in "power" writes arriving during each COMMIT would start the next one and starve it
        while (turn := self._held if self._held is not None else self._exclusive_turn) is not None:
            await asyncio.shield(turn)
        if self._closed:
            raise RuntimeError("the SQLite store is not open")
        if self._batch is None:
            if self._locked_out is not None:  # another process has the lock: wait with the others
                return await self._when_unlocked(savepoint, fn, args, kw)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                return await self._when_unlocked(savepoint, fn, args, kw)
            self._batch = []
            # after the callbacks already ready, so the writes of this turn of the loop share the COMMIT
            self._loop.call_soon(self._commit)
        result = self._apply(savepoint, fn, args, kw)
        done: asyncio.Future[T] = self._loop.create_future()
        self._batch.append((done, result))
        return await done

    def _apply(self, savepoint: bool, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        """`fn`'s result, run in the open transaction; its exception with its changes (and hooks) undone."""
        conn = self._conn
        hooks = len(self._after)
        if savepoint:
            conn.execute("SAVEPOINT write")
        try:
            result = fn(*args, **kw)
            if savepoint:
                conn.execute("RELEASE write")
        except BaseException as exc:
            del self._after[hooks:]
            self._undo(exc, savepoint)
            raise
        return result

    async def _when_unlocked(
        self, savepoint: bool, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]
    ) -> T:
        """`write`, when another process holds the database's write lock: the write queues, and one task tries
        to begin the transaction again and again, giving the loop back in between (see `sqlite_busy`)."""
        done: asyncio.Future[T] = self._loop.create_future()
        self._queued.append((done, savepoint, fn, args, kw))
        if self._locked_out is None:
            self._locked_out = self._loop.create_task(self._begin_when_unlocked(), name="openline SQLite lock wait")
        return await asyncio.shield(done)  # a write whose caller is cancelled still runs, as on the fast path

    async def _begin_when_unlocked(self) -> None:
        """Begin a transaction once the lock is free and run the queued writes in it; after `LOCK_WAIT` seconds,
        fail them instead (nothing of them is written). A store that is closing waits for it to end."""
        deadline = self._loop.time() + LOCK_WAIT
        pause = FIRST_PAUSE
        error: Exception = sqlite3.OperationalError("database is locked")  # replaced by the last try's
        try:
            while self._queued:
                await asyncio.sleep(pause)
                pause = min(pause * 2, LAST_PAUSE)
                while (turn := self._held if self._held is not None else self._exclusive_turn) is not None:
                    await asyncio.shield(turn)
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        error = exc
                        break
                    if self._loop.time() >= deadline:
                        log.warning("the SQLite database stayed locked %.0f s (by another process): %s", LOCK_WAIT, exc)
                        error = exc
                        break
                    continue
                self._batch = []
                self._loop.call_soon(self._commit)
                while self._queued and self._batch is not None:  # None: SQLite undid it all (see `_undo`)
                    done, savepoint, fn, args, kw = self._queued.popleft()
                    try:
                        result = self._apply(savepoint, fn, args, kw)
                    except Exception as exc:
                        done.set_exception(exc)
                        continue
                    self._batch.append((done, result))
            while self._queued:
                self._queued.popleft()[0].set_exception(error)
        finally:
            self._locked_out = None

    def _undo(self, exc: BaseException, savepoint: bool) -> None:
        """Undo the write that raised `exc`; if SQLite undid the whole transaction by itself, fail its writes too."""
        conn = self._conn
        try:
            if conn.in_transaction:
                if savepoint:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                return
        except sqlite3.Error:
            _rollback(conn)
        lost = sqlite3.OperationalError(f"the transaction was rolled back: {exc}")
        lost.__cause__ = exc  # what it was (a full disk, say) for the store to tell its callers
        self._settle(*self._take_batch(), lost)

    def _take_batch(self) -> tuple[list[tuple[asyncio.Future[Any], Any]], list[Callable[[], None]]]:
        batch, self._batch = self._batch or [], None
        after, self._after = self._after, []
        return batch, after

    def _commit(self) -> None:
        if self._batch is None:  # committed already (by `exclusive`), or undone by a failure
            return
        batch, after = self._take_batch()
        if not self._commit_off_loop:
            self._settle(batch, after, _commit(self._conn))
            return
        held = self._held = self._loop.create_future()
        done = asyncio.wrap_future(self._thread.submit(_commit, self._conn), loop=self._loop)

        def committed(f: asyncio.Future[BaseException | None]) -> None:
            self._release(held)
            self._settle(batch, after, f.result())

        done.add_done_callback(committed)

    def _settle(
        self, batch: list[tuple[asyncio.Future[Any], Any]], after: list[Callable[[], None]], error: BaseException | None
    ) -> None:
        if error is None:
            for hook in after:
                try:
                    hook()
                except Exception:  # the writes are committed: their callers must hear so whatever a hook did
                    log.exception("an after-commit hook failed")
        for future, result in batch:
            if future.done():  # its caller was cancelled; the write is committed (or undone) all the same
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if error is None:
            self._commits += 1
            if self._commits % _CHECK_EVERY == 0:
                self._maybe_checkpoint()

    def _release(self, held: asyncio.Future[None]) -> None:
        self._held = None
        held.set_result(None)

    async def exclusive(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """Run `fn` on the thread, alone with the connection (no transaction open); writes wait until it returns.

        The connection stays held until `fn` returns, even if the caller is cancelled.
        Raises RuntimeError once the store is closing.
        """
        if self._exclusive_turn is None:
            self._exclusive_turn = self._loop.create_future()
        self._exclusive_waiting += 1
        try:
            await self._quiesce()
            if self._closed:
                raise RuntimeError("the SQLite store is not open")
            return await self._hold(_waiting_for_locks, self._conn, functools.partial(fn, *args, **kw))
        finally:
            self._exclusive_waiting -= 1
            if self._exclusive_waiting == 0 and self._exclusive_turn is not None:
                self._exclusive_turn.set_result(None)
                self._exclusive_turn = None

    async def _quiesce(self) -> None:
        """Until no transaction is open and nothing holds the connection."""
        while True:
            if self._held is not None:
                await asyncio.shield(self._held)
            elif self._batch is not None:
                self._commit()
            else:
                return

    async def _hold(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        held = self._held = self._loop.create_future()
        work: ThreadFuture[T] = self._thread.submit(fn, *args, **kw)
        done = asyncio.wrap_future(work, loop=self._loop)
        done.add_done_callback(lambda _: self._release(held))
        return await asyncio.shield(done)

    @property
    def commit_in_flight(self) -> bool:
        """A COMMIT is running on the thread ("power"): readers may see it before its after-commit hooks ran."""
        return self._held is not None and self._batch is None and self._commit_off_loop

    def _maybe_checkpoint(self) -> None:
        if self._checkpoint_task is not None or self._closed:
            return
        if _wal_size(self._wal) < CHECKPOINT_AT:
            return
        self._checkpoint_task = self._loop.create_task(self._checkpoint(), name="openline SQLite checkpoint")

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database and empty it, holding writes for as short a time as possible.

        A passive checkpoint on its own thread copies what is committed while writes go on. Under steady writes
        a commit nearly always lands meanwhile, so SQLite never gets to start the WAL over and it would grow
        without end: the tail is then copied, and the file truncated, with writes held (`exclusive`).
        A checkpoint that fails is tried again at the next look; nothing committed is lost either way.
        """
        try:
            await asyncio.wrap_future(self._checkpoint_thread.submit(_passive_checkpoint, self._checkpoint_conn))
            if _wal_size(self._wal) >= CHECKPOINT_AT and not self._closed:
                await self.exclusive(_truncating_checkpoint, self._conn)
        except Exception as exc:
            if self._closed:  # closing refuses the exclusive part: the next start checkpoints
                pass
            elif is_busy(exc):  # another process holds a lock the checkpoint needs: expected, not a fault
                log.warning("a WAL checkpoint found the database locked; it is tried again later: %s", exc)
            else:
                log.exception("a WAL checkpoint failed; it is tried again later")
        finally:
            self._checkpoint_task = None

    async def close(self, fn: Callable[[], None]) -> None:
        """Refuse writes from now on, commit what is pending, then run `fn` (closing the connections) on the thread."""
        self._closed = True
        if self._checkpoint_task is not None:
            await asyncio.shield(self._checkpoint_task)  # it skips its exclusive part once closed
        if self._locked_out is not None:  # the writes queued for another process's lock get their chance
            await asyncio.shield(self._locked_out)
        await self._quiesce()
        await self._hold(fn)


def _waiting_for_locks(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    """`work()` on the thread, the connection allowed to wait for locks meanwhile (see `sqlite_busy`)."""
    wait_on_thread(conn)
    try:
        return work()
    finally:
        never_wait(conn)


def _commit(conn: sqlite3.Connection) -> BaseException | None:
    """COMMIT; on failure roll back and return the error (for every write of the transaction). Never raises."""
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        return exc
    return None


def _rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction; a rollback that fails too leaves SQLite to undo it (it does, at the next BEGIN)."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _passive_checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _truncating_checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _wal_size(wal: Path) -> int:
    try:
        return os.stat(wal).st_size
    except OSError:
        return 0
