"""SQLite-only storage tests: the file persists across restarts and a SIGKILL, in WAL mode."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openline.storage.base import Member, StoredFile
from openline.storage.sqlite import SCHEMA_VERSION, SqliteStore
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
