"""The SQLite store's batched deletions: the retention sweep (expired rows, idle conversations) and the rows
of deleted conversations, a short transaction at a time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from openline.storage.sqlite_schema import connect, transaction

# Rows deleted per sweep transaction: small enough that appends queued behind a sweep wait milliseconds.
SWEEP_BATCH = 500
# Bytes of uploaded files deleted per transaction (at least one file): `secure_delete` overwrites each freed
# page, about 2 ms per MB here, so a batch of 500 large uploads would hold writes for seconds.
FILE_BATCH_BYTES = 4 * 1024 * 1024


def _delete_files(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> int:
    """Delete files matching `where` (a condition on `files`), up to SWEEP_BATCH or FILE_BATCH_BYTES of them."""
    # length() of a blob reads its size from the record header, not the blob itself
    rows = conn.execute(f"SELECT rowid, length(data) FROM files WHERE {where} LIMIT ?", (*args, SWEEP_BATCH)).fetchall()
    chosen: list[int] = []
    size = 0
    for rowid, length in rows:
        if chosen and size + length > FILE_BATCH_BYTES:
            break
        chosen.append(rowid)
        size += length
    conn.executemany("DELETE FROM files WHERE rowid = ?", [(r,) for r in chosen])
    return len(chosen)


def _empty_batch(conn: sqlite3.Connection, conversation_id: str) -> int:
    """Delete one batch of a conversation's activities, files or delivery records; 0 when none are left."""
    n = conn.execute(
        "DELETE FROM activities WHERE conversation_id = ? AND seq IN"
        " (SELECT seq FROM activities WHERE conversation_id = ? ORDER BY seq LIMIT ?)",
        (conversation_id, conversation_id, SWEEP_BATCH),
    ).rowcount
    if n:
        return n
    n = _delete_files(conn, "conversation_id = ?", (conversation_id,))
    if n:
        return n
    return conn.execute(
        "DELETE FROM deliveries WHERE conversation_id = ? AND activity_id IN"
        " (SELECT activity_id FROM deliveries WHERE conversation_id = ? LIMIT ?)",
        (conversation_id, conversation_id, SWEEP_BATCH),
    ).rowcount


def purge_batch(conn: sqlite3.Connection, conversation_id: str) -> int | None:
    """Delete one batch of the rows left of a deleted conversation (its conversations row is gone already); the
    count deleted, or None once none are left (its tombstone is then marked purged). One transaction."""
    with transaction(conn):
        n = _empty_batch(conn, conversation_id)
        if n:
            return n
        conn.execute("DELETE FROM members WHERE conversation_id = ?", (conversation_id,))
        conn.execute("UPDATE tombstones SET purged = 1 WHERE id = ?", (conversation_id,))
        return None


def sweep_batch(conn: sqlite3.Connection, now: float, retention: float, conversation_ttl: float) -> int | None:
    """Delete one batch of expired rows; the count of items deleted, or None when nothing is left.

    Counts activities, files, deliveries and conversations (not members, nor the rows of deleted conversations
    a crash left, nor forgotten tombstones), like `MemoryStore`.
    """
    cutoff = now - retention
    with transaction(conn):
        n = conn.execute(
            "DELETE FROM activities WHERE (conversation_id, seq) IN"
            " (SELECT conversation_id, seq FROM activities WHERE stored_at < ? LIMIT ?)",
            (cutoff, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        n = _delete_files(conn, "created_at < ?", (cutoff,))
        if n:
            return n
        n = conn.execute(
            "DELETE FROM deliveries WHERE (conversation_id, activity_id) IN"
            " (SELECT conversation_id, activity_id FROM deliveries WHERE at < ? LIMIT ?)",
            (cutoff, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        # a deletion cut short (a crash between its batches) is finished first; then tombstones are forgotten
        row = conn.execute("SELECT id FROM tombstones WHERE purged = 0 LIMIT 1").fetchone()
        if row is not None:
            if not _empty_batch(conn, row[0]):
                conn.execute("DELETE FROM members WHERE conversation_id = ?", (row[0],))
                conn.execute("UPDATE tombstones SET purged = 1 WHERE id = ?", (row[0],))
            return 0
        if conn.execute("DELETE FROM tombstones WHERE until < ? AND purged = 1", (now,)).rowcount:
            return 0
        row = conn.execute(
            "SELECT id FROM conversations WHERE last_active < ? ORDER BY last_active LIMIT 1",
            (now - conversation_ttl,),
        ).fetchone()
        if row is None:
            return None
        # An idle conversation is emptied a batch at a time, and each batch checks (in its own
        # transaction) that it is still idle; the last one deletes its members and the row.
        (conversation_id,) = row
        n = _empty_batch(conn, conversation_id)
        if n:
            return n
        conn.execute("DELETE FROM members WHERE conversation_id = ?", (conversation_id,))
        conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return 1


def scrub_if_alone(path: Path) -> bool:
    """After a process of its own deleted from the database and closed it (`openline conversation delete`):
    rewrite the file (VACUUM, see `SqliteStore`) unless another process has it open; True when it did.

    SQLite deletes the WAL file when the last connection to a database closes (after copying it into the file),
    so a WAL file still there means another process has it open: a running service, which noticed the change
    (`SqliteStore.changed_elsewhere`) and scrubs the file at its next sweep, while a VACUUM here would hold its
    writes for as long as the rewrite takes. Blocking: run it off an event loop.
    """
    if path.with_name(path.name + "-wal").exists():
        return False
    conn = connect(path)
    try:
        conn.execute("VACUUM")  # through the WAL, which the close below copies into the file and deletes
    finally:
        conn.close()
    return True
