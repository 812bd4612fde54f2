"""SQLite-only storage tests: the file persists across restarts and a SIGKILL, in WAL mode."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from openline.storage.base import ConversationDeleted, Delivery, Member, StoredFile, StoreFull
from openline.storage.sqlite import SqliteStore
from openline.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from openline.storage.sqlite_sweep import scrub_if_alone
from tests.storage.conformance import T0, Run

REPO = Path(__file__).resolve().parents[2]


def test_data_survives_reopening(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    photo = StoredFile("f1", "c1", "photo.png", "image/png", os.urandom(100_000), T0)

    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        assert run(store.create_conversation("c1", "bot", T0))
        assert run(store.add_member("c1", Member("u1", "Alice")))
        assert run(store.add_member("c1", Member("bot")))
        for i in range(3):
            run(store.append("c1", {"type": "message", "text": f"m{i + 1}"}, T0 + 5, [photo] if i == 0 else []))
        before = run(store.read("c1", 0, 10, T0 + 5))
    finally:
        run(store.close())

    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        conversation = run(store.get_conversation("c1"))
        assert (conversation.bot_id, conversation.created_at) == ("bot", T0)
        assert run(store.members("c1")) == [Member("u1", "Alice"), Member("bot")]
        assert run(store.add_member("c1", Member("u1", "Other"))) is False
        assert run(store.read("c1", 0, 10, T0 + 5)) == before
        assert run(store.get_file("c1", "f1", T0 + 5)) == photo
        # the sequence and the timestamps go on, even with a clock that went back
        fourth = run(store.append("c1", {"type": "message"}, T0)).activity
        assert fourth["id"] == "c1|0000004"
        assert dt.datetime.fromisoformat(fourth["timestamp"]) > dt.datetime.fromisoformat(
            before[-1].activity["timestamp"]
        )
    finally:
        run(store.close())


def test_file_is_wal_with_schema_version(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "missing" / "parents" / "db.sqlite3"
    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        run(store.ping())
    finally:
        run(store.close())
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_refuses_a_newer_schema(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        run(SqliteStore(path, 100, 1000).open())


def test_a_version_2_database_is_migrated(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    body = b'{"type":"message","text":"old","id":"c1|0000001","timestamp":"2023-11-14T22:13:20.000Z"}'
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in itertools.chain.from_iterable(MIGRATIONS[:2]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO conversations (id, bot_id, created_at, last_active, last_seq, last_ts_ms)"
            " VALUES ('c1', 'bot', ?, ?, 1, ?)",
            (T0, T0, int(T0 * 1000)),
        )
        conn.execute(
            "INSERT INTO activities (conversation_id, seq, stored_at, body, client_key) VALUES ('c1', 1, ?, ?, 'k')",
            (T0, body),
        )

    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        (old,) = run(store.read("c1", 0, 10, T0))
        assert (old.seq, old.activity["text"], old.origin) == (1, "old", None)
        again = run(store.append("c1", {"type": "message"}, T0 + 1, client_key="k", origin="bot"))
        assert (again.seq, again.repeated, again.origin) == (1, True, None)
        replaced = run(store.replace("c1", 1, {"type": "message", "text": "edited"}, T0 + 1))
        assert replaced is not None and replaced.origin is None
        assert run(store.append("c1", {"type": "message"}, T0 + 2, origin="bot")).seq == 2
        assert [(a.seq, a.origin) for a in run(store.read("c1", 0, 10, T0 + 2))] == [(1, None), (2, "bot")]
        run(store.add_delivery("c1", Delivery("c1|0000002", T0 + 3, 200, 0.5)))
        assert run(store.deliveries("c1", 0, T0 + 3)) == [Delivery("c1|0000002", T0 + 3, 200, 0.5)]
        summary = run(store.summary("c1", T0 + 3))
        assert summary is not None and (summary.last_active, summary.activity_count) == (T0 + 2, 2)
    finally:
        run(store.close())
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_3_database_is_migrated(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    accepted = Delivery("c1|0000001", T0, 200, 0.5)
    refused = (
        b'{"activity_id":"c1|0000002","at":1700000001.0,"status":500,"duration":0.5,"error":"bot_rejected",'
        b'"detail":"HTTP 500","activity":null}'
    )
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in itertools.chain.from_iterable(MIGRATIONS[:3]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO conversations (id, bot_id, created_at, last_active) VALUES ('c1', 'bot', ?, ?)", (T0, T0)
        )
        conn.execute("INSERT INTO members (conversation_id, member_id, name, position) VALUES ('c1', 'u1', NULL, 1)")
        old = (
            b'{"activity_id":"c1|0000001","at":1700000000.0,"status":200,"duration":0.5,"error":null,'
            b'"detail":"","activity":null}'
        )
        for activity_id, at, body in (("c1|0000001", T0, old), ("c1|0000002", T0 + 1, refused)):
            conn.execute(
                "INSERT INTO deliveries (conversation_id, activity_id, at, body) VALUES ('c1', ?, ?, ?)",
                (activity_id, at, body),
            )

    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        records = run(store.deliveries("c1", 0, T0 + 1))
        assert [(d.activity_id, d.state, d.error) for d in records] == [
            ("c1|0000001", "delivered", None),
            ("c1|0000002", "failed", "bot_rejected"),
        ]
        assert records[0] == accepted
        # members recorded before had been announced (the others were removed again)
        assert run(store.claim_announcement("c1", Member("u1"), T0 + 2, T0)) == (False, "delivered")
        # a retry of the refused activity is delivered again
        assert run(store.claim_delivery("c1", "c1|0000002", T0 + 2, T0))[0]
    finally:
        run(store.close())


@contextlib.contextmanager
def _opened(path: Path, run: Run) -> Iterator[SqliteStore]:
    """A SQLite store on `path` (retention 100 s, conversations 1000 s), closed afterwards."""
    store = SqliteStore(path, 100, 1000)
    run(store.open())
    try:
        yield store
    finally:
        run(store.close())


def _on_disk(path: Path) -> bytes:
    """Everything in the database's files: the database, its WAL and shared-memory index."""
    return b"".join(f.read_bytes() for f in path.parent.glob(path.name + "*") if f.is_file())


def test_expired_and_deleted_data_is_gone_from_every_file_after_a_sweep(tmp_path: Path, run: Run) -> None:
    """Found by scanning the files: no copy of a deleted text or file survives in the database or its WAL."""
    path = tmp_path / "db.sqlite3"
    secret_file = b"FILE-BYTES-" + os.urandom(8).hex().encode() + b"-" * 60_000  # spans overflow pages
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        run(store.create_conversation("c2", "bot", T0 + 90))
        # expiring and kept rows side by side in the same pages, in many versions
        for i in range(50):
            run(store.append("c1", {"type": "message", "text": f"EXPIRING-TEXT-{i:03d}"}, T0))
            run(store.append("c1", {"type": "message", "text": f"KEPT-NEIGHBOUR-{i:03d}"}, T0 + 90))
        run(store.add_file(StoredFile("f1", "c1", "x.bin", "application/octet-stream", secret_file, T0)))
        deleted_by_bot = run(store.append("c2", {"type": "message", "text": "DELETED-BY-THE-BOT"}, T0 + 90))
        run(store.append("c2", {"type": "message", "text": "REPLACED-BY-THE-BOT"}, T0 + 90))
        run(store.append("c2", {"type": "message", "text": "KEPT-TEXT"}, T0 + 90))
        run(store.add_member("c2", Member("u-gone", "REMOVED-MEMBER-NAME")))
        # in the database file itself, as SQLite's automatic checkpoints put it there on a busy service
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        assert b"EXPIRING-TEXT-007" in path.read_bytes() and secret_file[:20] in path.read_bytes()

        assert run(store.delete("c2", deleted_by_bot.seq))
        assert run(store.replace("c2", 2, {"type": "message", "text": "edited"}, T0 + 91)) is not None
        assert run(store.remove_member("c2", "u-gone"))
        assert run(store.sweep(T0 + 150)) > 0  # retention 100 s: c1's activities and file expire

        data = _on_disk(path)
        for gone in (b"EXPIRING-TEXT-", secret_file[:20], b"DELETED-BY-THE-BOT", b"REPLACED-BY", b"REMOVED-MEMBER"):
            assert gone not in data, f"{gone!r} is still on disk"
        assert b"KEPT-TEXT" in data and b"edited" in data and b"KEPT-NEIGHBOUR-007" in data
        assert (tmp_path / "db.sqlite3-wal").stat().st_size == 0, "the WAL was emptied"
        # and the store goes on as before
        run(store.append("c2", {"type": "message", "text": "after"}, T0 + 150))
        assert [a.activity["text"] for a in run(store.read("c2", 0, 10, T0 + 150))] == ["edited", "KEPT-TEXT", "after"]
        assert len(run(store.read("c1", 0, 100, T0 + 150))) == 50


def test_a_bot_delete_alone_is_scrubbed_by_the_next_sweep(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        first = run(store.append("c1", {"type": "message", "text": "SAID-THEN-DELETED"}, T0))
        run(store.append("c1", {"type": "message", "text": "said after"}, T0))
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert run(store.delete("c1", first.seq))
        assert b"SAID-THEN-DELETED" in _on_disk(path), "still in the WAL until the sweep"
        assert run(store.sweep(T0 + 1)) == 0  # nothing expired, but a deletion happened
        assert b"SAID-THEN-DELETED" not in _on_disk(path)


def test_a_conversation_past_its_ttl_is_gone_from_every_file(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("conversation-WITH-A-MARK", "bot", T0))
        run(store.add_member("conversation-WITH-A-MARK", Member("u1", "MEMBER-WITH-A-MARK")))
        run(store.add_delivery("conversation-WITH-A-MARK", Delivery("x", T0, 200, 0.1, activity={"n": "UPDATE-MARK"})))
        assert run(store.sweep(T0 + 1001)) > 0
        data = _on_disk(path)
        assert b"WITH-A-MARK" not in data and b"UPDATE-MARK" not in data


ROWS = 1500


# seeds whose rebalancing leaves fragments that secure_delete misses (found by running without the VACUUM)
@pytest.mark.parametrize("seed", [0, 4])
def test_no_fragment_of_a_deleted_row_survives_rebalanced_pages(tmp_path: Path, run: Run, seed: int) -> None:
    """Many rows of many sizes, then a third deleted and a third replaced: b-tree rebalancing moves rows around,
    and secure_delete alone leaves fragments of some in pages' unused space; the sweep's VACUUM removes them."""
    rng = random.Random(seed)
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        seqs = [
            run(store.append("c1", {"type": "message", "text": f"MARK{i:05d}" + "x" * rng.randint(10, 3000)}, T0)).seq
            for i in range(ROWS)
        ]
        gone = []
        for i, seq in enumerate(seqs):
            if i % 3 == 0:
                assert run(store.delete("c1", seq))
            elif i % 3 == 1:
                assert run(store.replace("c1", seq, {"type": "message", "text": "r"}, T0)) is not None
            gone += [f"MARK{i:05d}"] if i % 3 != 2 else []
        run(store.sweep(T0))
        data = _on_disk(path)
        assert [m for m in gone if m.encode() in data] == []
        assert b"MARK00002" in data and b"MARK01499" in data, "the rows kept are all there"


def test_a_vacuum_runs_at_most_once_per_scrub_interval(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    store = SqliteStore(path, 100, 1000, scrub_interval=3600)
    vacuums: list[float] = []
    vacuum = store._vacuum

    def counted() -> None:
        vacuums.append(T0)
        vacuum()

    store._vacuum = counted  # type: ignore[method-assign]
    run(store.open())
    try:
        run(store.create_conversation("c1", "bot", T0))
        for text in ("one", "two"):
            stored = run(store.append("c1", {"type": "message", "text": text}, T0))
            assert run(store.delete("c1", stored.seq))
            run(store.sweep(T0))
        assert len(vacuums) == 1, "the second deletion waits for the interval (its WAL copy is gone already)"
        assert (tmp_path / "db.sqlite3-wal").stat().st_size == 0
        store._vacuumed_at -= 3600  # an hour later
        run(store.sweep(T0))
        assert len(vacuums) == 2, "due now, though nothing new was deleted"
        run(store.sweep(T0))
        assert len(vacuums) == 2, "nothing left to scrub"
    finally:
        run(store.close())


def test_closed_store_refuses_calls(tmp_path: Path, run: Run) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3", 100, 1000)
    run(store.open())
    run(store.close())
    with pytest.raises(RuntimeError, match="not open"):
        run(store.ping())


_WRITER = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    from openline.storage.sqlite import SqliteStore

    async def main() -> None:
        store = SqliteStore(pathlib.Path(sys.argv[1]), 3600, 3600)
        await store.open()
        await store.create_conversation("c1", "bot", 1000.0)
        for i in range(1, 100_000):  # until killed
            await store.append("c1", {"type": "message", "text": f"m{i}"}, 1000.0, [])
            print("done", i, flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_acknowledged_appends_survive_sigkill(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    acknowledged = 200
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        assert child.stdout is not None
        for i in range(1, acknowledged + 1):
            line = child.stdout.readline()
            assert line == f"done {i}\n", child.stderr.read() if child.stderr else line
        # kill it while it keeps appending: no chance to close or checkpoint anything
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL

    store = SqliteStore(path, 3600, 3600)
    run(store.open())
    try:
        stored = run(store.read("c1", 0, 1_000_000, 1000.0))
    finally:
        run(store.close())
    assert len(stored) >= acknowledged
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1))
    assert [s.activity["text"] for s in stored] == [f"m{s.seq}" for s in stored]


def test_database_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "private" / "db.sqlite3"
    store = SqliteStore(path, 100.0, 1000.0)
    asyncio.run(_open_write_close(store))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def _open_write_close(store: SqliteStore) -> None:
    await store.open()
    try:
        await store.create_conversation("c", "b", 1.0)
        await store.append("c", {"type": "message"}, 1.0)
    finally:
        await store.close()


def test_a_deleted_conversation_is_gone_from_every_file_after_a_sweep(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        run(store.create_conversation("c2", "bot", T0))
        run(store.add_member("c1", Member("u1", "MEMBER-OF-THE-DELETED")))
        run(store.append("c1", {"type": "message", "text": "SAID-IN-THE-DELETED"}, T0, client_key="KEY-OF-IT"))
        run(store.add_file(StoredFile("f1", "c1", "x.bin", "application/octet-stream", b"FILE-OF-THE-DELETED", T0)))
        run(store.add_delivery("c1", Delivery("c1|9", T0, 200, 0.1, activity={"n": "RECORD-OF-THE-DELETED"})))
        run(store.append("c2", {"type": "message", "text": "KEPT-TEXT"}, T0))
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert run(store.delete_conversation("c1", T0, T0 + 60))
        assert run(store.sweep(T0 + 1)) == 0  # nothing expired, but a deletion happened
        data = _on_disk(path)
        assert b"-OF-THE-DELETED" not in data and b"SAID-IN-THE-DELETED" not in data and b"KEY-OF-IT" not in data
        assert b"KEPT-TEXT" in data


def test_a_change_by_another_process_is_noticed_and_forgets_what_was_known(tmp_path: Path, run: Run) -> None:
    """`openline conversation delete` runs in a process of its own: the service notices (`changed_elsewhere`)."""
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        run(store.create_conversation("c2", "bot", T0))
        assert run(store.get_conversation("c1")) is not None  # remembered from now on
        assert not store.changed_elsewhere()
        run(store.append("c2", {"type": "message"}, T0))
        run(store.sweep(T0 + 1))  # its own writes, checkpoints and VACUUM are not another process's
        assert not store.changed_elsewhere()
        run(store.append("c1", {"type": "message", "text": "SAID-BEFORE-THE-ADMIN-CAME"}, T0))
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert store.changed_elsewhere(), "a checkpoint by another connection counts too (harmless)"
        with _opened(path, run) as admin:
            assert run(admin.delete_conversation("c1", T0, T0 + 60))
        assert store.changed_elsewhere()
        assert run(store.get_conversation("c1")) is None
        assert not store.changed_elsewhere()
        # the service scrubs what the other process deleted, as after a deletion of its own
        run(store.sweep(T0 + 2))
        assert b"SAID-BEFORE-THE-ADMIN-CAME" not in _on_disk(path)


def _rows_of(path: Path, conversation_id: str) -> int:
    """Rows of a conversation left in every table, read by another connection."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sum(
            conn.execute(f"SELECT count(*) FROM {table} WHERE conversation_id = ?", (conversation_id,)).fetchone()[0]
            for table in ("activities", "files", "deliveries", "members")
        )


def _big_conversation(store: SqliteStore, run: Run, conversation_id: str, files: int, activities: int) -> None:
    run(store.create_conversation(conversation_id, "bot", T0))
    run(store.add_member(conversation_id, Member("u1")))
    blob = os.urandom(1024 * 1024)
    for i in range(files):
        run(store.add_file(StoredFile(f"f{i}", conversation_id, "big.bin", "application/octet-stream", blob, T0)))
    for i in range(activities):
        run(store.append(conversation_id, {"type": "message", "text": f"m{i}"}, T0, client_key=f"k{i}"))


def test_deleting_a_large_conversation_lets_writes_in_between_its_batches(tmp_path: Path, run: Run) -> None:
    """The review's freeze: one cascading DELETE on the loop's thread held everything while 25 uploads were
    overwritten. Now the conversation is gone at once, and its rows go in batches on the thread, the loop free
    and other writes committed between them."""
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        _big_conversation(store, run, "c1", files=12, activities=1200)  # several batches of each kind
        run(store.create_conversation("c2", "bot", T0))

        async def scenario() -> tuple[bool, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticking = asyncio.create_task(tick())
            deleting = asyncio.create_task(store.delete_conversation("c1", T0, T0 + 60))
            while True:  # the first step commits on the thread
                if await store.deleted("c1", T0):
                    break
                await asyncio.sleep(0)
            assert await store.get_conversation("c1") is None  # gone for every reader at once
            await store.append("c2", {"type": "message", "text": "meanwhile"}, T0)
            done_before = deleting.done()
            assert await deleting
            ticking.cancel()
            return done_before, ticks

        done_before, ticks = run(scenario())
        assert not done_before, "the write did not wait for the whole deletion"
        assert ticks > 10, "the loop ran while the batches did"
        assert _rows_of(path, "c1") == 0
        assert [a.activity["text"] for a in run(store.read("c2", 0, 10, T0))] == ["meanwhile"]


def test_a_long_sweep_lets_writes_in_between_its_batches(tmp_path: Path, run: Run) -> None:
    """A write arriving during a sweep waited for all of its batches (each took the connection again before the
    woken write could): it now waits for one."""
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        _big_conversation(store, run, "c1", files=12, activities=1200)  # expired at T0 + 101
        run(store.create_conversation("c2", "bot", T0 + 101))

        async def scenario() -> bool:
            sweeping = asyncio.create_task(store.sweep(T0 + 101))
            for _ in range(100):  # until its first batch is under way
                await asyncio.sleep(0)
            await store.append("c2", {"type": "message", "text": "meanwhile"}, T0 + 101)
            done_before = sweeping.done()
            assert await sweeping >= 1212
            return done_before

        assert not run(scenario()), "the write did not wait for the whole sweep"


def test_a_deletion_cut_short_is_finished_by_the_sweep_and_keeps_its_id(tmp_path: Path, run: Run) -> None:
    """A crash between the batches: the conversation is gone, its rows wait for the sweep, and its id is not
    given back (even past the tombstone's time) before they are."""
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        _big_conversation(store, run, "c1", files=2, activities=3)
        assert run(store._exclusive(store._tombstone, "c1", T0 + 60))  # the first step alone
    assert _rows_of(path, "c1") > 0
    with _opened(path, run) as store:
        assert run(store.get_conversation("c1")) is None and run(store.deleted("c1", T0))
        assert run(store.get_file("c1", "f0", T0)) is None
        assert run(store.announced("c1", ["u1"])) == set()
        with pytest.raises(ConversationDeleted):
            run(store.create_conversation("c1", "bot", T0 + 61))  # its rows are still there
        run(store.sweep(T0 + 1))
        assert _rows_of(path, "c1") == 0
        assert run(store.deleted("c1", T0 + 1)) and not run(store.deleted("c1", T0 + 61))
        run(store.sweep(T0 + 61))
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM tombstones").fetchone()[0] == 0
        assert run(store.create_conversation("c1", "bot", T0 + 61))


def test_a_deletion_alone_with_the_file_scrubs_it_and_not_beside_a_service(tmp_path: Path, run: Run) -> None:
    """`openline conversation delete` with no service running rewrites the file itself; beside a running service
    (a WAL file is there) it leaves that to the service's next sweep."""
    path = tmp_path / "db.sqlite3"
    with _opened(path, run) as store:
        run(store.create_conversation("c1", "bot", T0))
        run(store.create_conversation("c2", "bot", T0))
        for i in range(50):
            run(store.append("c1", {"type": "message", "text": f"SAID-IN-THE-DELETED-{i}"}, T0))
            run(store.append("c2", {"type": "message", "text": f"KEPT-{i}"}, T0))
    with _opened(path, run) as service:
        with _opened(path, run) as admin:
            assert run(admin.delete_conversation("c1", T0, T0 + 60))
        assert not scrub_if_alone(path), "a service has the file open"
        assert run(service.get_conversation("c1")) is None
    with _opened(path, run) as admin:
        run(admin.create_conversation("c3", "bot", T0))
        run(admin.append("c3", {"type": "message", "text": "SAID-IN-THE-DELETED-TOO"}, T0))
        assert run(admin.delete_conversation("c3", T0, T0 + 60))
    assert scrub_if_alone(path)
    data = _on_disk(path)
    assert b"SAID-IN-THE-DELETED" not in data and b"KEPT-49" in data
    assert not path.with_name(path.name + "-wal").exists()


def test_a_full_database_refuses_writes_with_store_full_until_there_is_room(tmp_path: Path, run: Run) -> None:
    """SQLITE_FULL (here from `max_page_count`, as a full disk gives it) is StoreFull, the write undone; the
    store takes writes again once there is room. tests/e2e/test_store_faults.py fills a real disk."""
    store = SqliteStore(tmp_path / "db.sqlite3", 100, 1000)
    run(store.open())
    try:
        assert run(store.create_conversation("c1", "bot", T0))
        run(store.append("c1", {"type": "message", "text": "before"}, T0))
        conn = store._w  # the writer's connection: its page limit is the "disk"
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        big = StoredFile("f1", "c1", "big.bin", "application/octet-stream", os.urandom(200_000), T0)
        with pytest.raises(StoreFull, match="is full"):
            run(store.append("c1", {"type": "message", "text": "full"}, T0, [big], client_key="k"))
        conn.execute("PRAGMA max_page_count = 1073741823")
        run(store.append("c1", {"type": "message", "text": "full"}, T0, [big], client_key="k"))
        assert [s.activity["text"] for s in run(store.read("c1", 0, 10, T0))] == ["before", "full"]
        assert run(store.get_file("c1", "f1", T0)) == big
    finally:
        run(store.close())
