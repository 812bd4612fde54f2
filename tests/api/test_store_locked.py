"""Another process holding the SQLite file's write lock while openline serves (`openline conversation delete`, a
backup tool): /healthz, reads and streams are answered meanwhile; every write waits up to `sqlite_busy.LOCK_WAIT`,
then answers 503 in its API's error shape with Retry-After, having stored nothing; once the lock is free, all works.

In process (`serve`) on a SQLite store, the lock held by a process of the test's own (tests/sqlite_lock.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from openline.storage import sqlite_commit
from openline.storage.sqlite import SqliteStore
from tests.api._v3 import V3, stream
from tests.api.conftest import Service, serve
from tests.api.test_store_down import READS, WRITES, _conversations, _ok, _unavailable
from tests.sqlite_lock import LockHolder

# Longer than the default, so that the reads made while the writes wait are surely made before the 503s, on a
# loaded machine too (the reads take milliseconds; this is a margin, not a target).
LOCK_WAIT = 6.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = Path(tmp_path_factory.mktemp("data"))
    with serve(data, store=f"sqlite:///{data / 'locked.sqlite3'}") as running:
        yield running


def _path(service: Service) -> Path:
    store = service.services.store
    assert isinstance(store, SqliteStore)
    return store.path


def test_a_locked_file_answers_reads_at_once_and_writes_503_then_recovers(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_commit, "LOCK_WAIT", LOCK_WAIT)
    v3 = V3(service)
    convs = _conversations(service)
    acknowledged = WRITES["v3 activity"](service, convs)
    assert acknowledged.status_code == 200
    before = service.stored(convs["v3"])
    start = v3.start()
    with stream(start["streamUrl"]) as open_stream, LockHolder(_path(service)) as lock:
        with ThreadPoolExecutor(len(WRITES)) as pool:
            writes = {name: pool.submit(call, service, convs) for name, call in WRITES.items()}
            # while the writes wait for the lock, the service answers everything else
            assert service.http.get("/healthz").json() == {"status": "ok"}
            for name, call in READS.items():
                r = call(service, convs)
                assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
            again = v3.get(f"/conversations/{start['conversationId']}", params={"watermark": "-"}).json()
            with stream(again["streamUrl"]):  # a stream can be opened
                pass
            waiting = [name for name, write in writes.items() if not write.done()]
            assert waiting == list(WRITES), "the writes were answered before the reads"
            answers: dict[str, httpx.Response] = {name: write.result() for name, write in writes.items()}
        for name, r in answers.items():
            _unavailable(r, name, "the service's store cannot be reached; retry")
        assert service.http.get("/healthz").status_code == 200
        lock.release()
        assert service.stored(convs["v3"]) == before  # the writes answered 503 stored nothing, then or later
        for name, call in WRITES.items():
            r = call(service, convs)
            assert _ok(r), f"{name}: {r.status_code} {r.text}"
        # the stream opened before the lock stayed served: what is posted now arrives on it
        v3.say(start["conversationId"], "after the lock")
        texts: list[str] = []
        while "after the lock" not in texts:
            texts += [a.get("text", "") for a in open_stream.frame(10)["activities"]]
    assert acknowledged.json()["id"] in [a["id"] for a in service.stored(convs["v3"])]
