"""The SQLite file locked by another process (storage/sqlite_busy.py): the loop goes on meanwhile, writes wait for
the lock a bounded time, then fail with StoreUnavailable having written nothing; everything works once it is free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from openline.storage import sqlite_commit
from openline.storage.base import Member, StoreUnavailable
from openline.storage.sqlite import SqliteStore
from openline.storage.sqlite_commit import Durability
from tests.sqlite_lock import LockHolder
from tests.storage.conformance import T0, Run

DURABILITY = pytest.mark.parametrize("durability", ["process", "power"])
# long enough for the writes of a test to be queued behind the lock (not a timing target: any value works)
SETTLE = 0.05


@asynccontextmanager
async def _open_store(path: Path, durability: Durability = "process") -> AsyncIterator[SqliteStore]:
    """An open SqliteStore (retention 100 s) with conversation c1 and one activity ("before"), closed on the way out."""
    store = SqliteStore(path, 100, 1000, durability=durability)
    await store.open()
    try:
        await store.create_conversation("c1", "bot", T0)
        await store.append("c1", {"text": "before"}, T0)
        yield store
    finally:
        await store.close()


async def _texts(store: SqliteStore) -> list[str]:
    return [a.activity["text"] for a in await store.read("c1", 0, 100, T0)]


@DURABILITY
def test_writes_wait_for_the_lock_while_the_loop_goes_on(tmp_path: Path, run: Run, durability: Durability) -> None:
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path, durability) as store:
            with LockHolder(path) as lock:
                writes = [asyncio.create_task(store.append("c1", {"text": str(i)}, T0)) for i in range(3)]
                await asyncio.sleep(SETTLE)
                # reads are answered while the writes wait: the waiting is not done on the loop's thread
                await store.ping()
                assert await _texts(store) == ["before"]
                assert await store.get_conversation("c1") is not None
                assert not any(w.done() for w in writes)
                await asyncio.to_thread(lock.release)
                stored = await asyncio.gather(*writes)
            assert sorted(s.seq for s in stored) == [2, 3, 4]
            assert await _texts(store) == ["before", "0", "1", "2"]

    run(main())


@DURABILITY
def test_a_lock_held_past_the_bound_fails_the_waiting_writes_and_writes_nothing(
    tmp_path: Path, run: Run, durability: Durability, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_commit, "LOCK_WAIT", 0.3)
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path, durability) as store:
            with LockHolder(path):
                results = await asyncio.gather(
                    store.append("c1", {"text": "during"}, T0),
                    store.add_member("c1", Member("u1")),
                    store.create_conversation("c2", "bot", T0),
                    return_exceptions=True,
                )
                for result in results:
                    assert isinstance(result, StoreUnavailable), result
                    assert "locked" in str(result)
                await store.ping()
                # a write arriving after the others failed waits again, and fails again
                with pytest.raises(StoreUnavailable):
                    await store.append("c1", {"text": "later"}, T0)
            assert await _texts(store) == ["before"]
            assert await store.members("c1") == []
            assert await store.get_conversation("c2") is None
            after = await store.append("c1", {"text": "after"}, T0)
            assert after.seq == 2  # no position was taken by the failed writes
            assert await store.create_conversation("c2", "bot", T0)

    run(main())


def test_a_waiting_write_whose_caller_is_cancelled_still_commits(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path) as store:
            with LockHolder(path) as lock:
                waiting = asyncio.create_task(store.append("c1", {"text": "cancelled"}, T0))
                await asyncio.sleep(SETTLE)
                waiting.cancel()
                await asyncio.to_thread(lock.release)
            await store.append("c1", {"text": "after"}, T0)  # queued behind it, or committed after it
            assert await _texts(store) == ["before", "cancelled", "after"]

    run(main())


def test_closing_gives_the_waiting_writes_their_chance(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path) as store:
            with LockHolder(path) as lock:
                waiting = asyncio.create_task(store.append("c1", {"text": "waiting"}, T0))
                await asyncio.sleep(SETTLE)
                closing = asyncio.create_task(store.close())
                await asyncio.sleep(SETTLE)
                assert not closing.done()
                await asyncio.to_thread(lock.release)
                await closing
            assert (await waiting).seq == 2
        async with _open_store(path) as store:
            assert await _texts(store) == ["before", "waiting", "before"]  # the last: _open_store's again

    run(main())


def test_exclusive_work_under_the_lock_fails_with_store_unavailable_and_holds_nothing_up(
    tmp_path: Path, run: Run
) -> None:
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path) as store:
            with LockHolder(path):
                with pytest.raises(StoreUnavailable, match="locked"):
                    await store.sweep(T0 + 10_000)  # everything has expired by then
                await store.ping()
            assert await _texts(store) == ["before"]
            assert await store.sweep(T0 + 10_000) >= 1
            await store.create_conversation("c1", "bot", T0)
            assert (await store.append("c1", {"text": "again"}, T0)).seq == 1

    run(main())


def test_the_other_process_is_noticed_once_it_has_written(tmp_path: Path, run: Run) -> None:
    """A lock taken and given back without a change is no change; `changed_elsewhere` does not wait for it."""
    path = tmp_path / "db.sqlite3"

    async def main() -> None:
        async with _open_store(path) as store:
            assert not store.changed_elsewhere()
            with LockHolder(path):
                assert not store.changed_elsewhere()
            assert not store.changed_elsewhere()

    run(main())
