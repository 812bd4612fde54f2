"""The SQLite file locked by another process (`openline conversation delete`, a backup): how long each kind of
connection waits for the lock, and how a lock that stays taken is told (`StoreUnavailable`, never a 500).

The connections the event loop's thread uses never wait inside SQLite (busy timeout 0): a write that finds the
lock taken gives the loop back and tries again (`sqlite_commit.GroupCommit`), up to `LOCK_WAIT`. Work on a thread
may wait in SQLite, which blocks only its thread: `THREAD_BUSY_MS` while it holds the writer connection (writes
wait meanwhile), SQLite's own timeout (`sqlite_schema.connect`) at start-up.
"""

from __future__ import annotations

import sqlite3

# Seconds the loop's writes wait, in all, for a lock another process holds, before they fail with
# StoreUnavailable (503): that process's deletions take milliseconds; a lock held longer is something else.
LOCK_WAIT = 3.0
# The pauses between two tries: the first, growing twice as long up to the last.
FIRST_PAUSE, LAST_PAUSE = 0.002, 0.1
# Milliseconds exclusive work (sweeps, VACUUM, truncating checkpoints) waits on its thread for a lock, writes
# waiting meanwhile: enough for this process's readers (microseconds); a retried sweep or checkpoint loses nothing.
THREAD_BUSY_MS = 250


def is_busy(error: BaseException) -> bool:
    """Whether `error` (or the error it was caused by) is SQLITE_BUSY or SQLITE_LOCKED: a lock is taken."""
    cause: BaseException | None = error
    while cause is not None:
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return True
        cause = cause.__cause__
    return False


def never_wait(conn: sqlite3.Connection) -> None:
    """Make `conn` answer SQLITE_BUSY at once when a lock is taken (for a connection used on the loop's thread)."""
    conn.execute("PRAGMA busy_timeout = 0")


def wait_on_thread(conn: sqlite3.Connection) -> None:
    """Let `conn` wait up to `THREAD_BUSY_MS` for a lock (while a thread, not the loop, uses it)."""
    conn.execute(f"PRAGMA busy_timeout = {THREAD_BUSY_MS:d}")
