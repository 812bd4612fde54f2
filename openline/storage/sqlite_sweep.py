"""The SQLite store's retention sweep: expired rows, and idle conversations, deleted a batch at a time."""

from __future__ import annotations

import sqlite3

from openline.storage.sqlite_schema import transaction

# Rows deleted per sweep transaction: small enough that appends queued behind a sweep wait milliseconds.
SWEEP_BATCH = 500


def sweep_batch(conn: sqlite3.Connection, now: float, retention: float, conversation_ttl: float) -> int | None:
    """Delete one batch of expired rows; the count of items deleted, or None when nothing is left.

    Counts activities, files, deliveries and conversations (not members), like `MemoryStore`.
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
        n = conn.execute(
            "DELETE FROM files WHERE rowid IN (SELECT rowid FROM files WHERE created_at < ? LIMIT ?)",
            (cutoff, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        n = conn.execute(
            "DELETE FROM deliveries WHERE (conversation_id, activity_id) IN"
            " (SELECT conversation_id, activity_id FROM deliveries WHERE at < ? LIMIT ?)",
            (cutoff, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        row = conn.execute(
            "SELECT id FROM conversations WHERE last_active < ? ORDER BY last_active LIMIT 1",
            (now - conversation_ttl,),
        ).fetchone()
        if row is None:
            return None
        # An idle conversation is emptied a batch at a time, and each batch checks (in its own
        # transaction) that it is still idle; the last one deletes its members and the row.
        (conversation_id,) = row
        n = conn.execute(
            "DELETE FROM activities WHERE conversation_id = ? AND seq IN"
            " (SELECT seq FROM activities WHERE conversation_id = ? ORDER BY seq LIMIT ?)",
            (conversation_id, conversation_id, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        n = conn.execute(
            "DELETE FROM files WHERE rowid IN (SELECT rowid FROM files WHERE conversation_id = ? LIMIT ?)",
            (conversation_id, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        n = conn.execute(
            "DELETE FROM deliveries WHERE conversation_id = ? AND activity_id IN"
            " (SELECT activity_id FROM deliveries WHERE conversation_id = ? LIMIT ?)",
            (conversation_id, conversation_id, SWEEP_BATCH),
        ).rowcount
        if n:
            return n
        conn.execute("DELETE FROM members WHERE conversation_id = ?", (conversation_id,))
        conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return 1
