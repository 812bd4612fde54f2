"""The store failing under `openline serve`: at start (one clear line, a non-zero exit) and with a full disk.

Subprocesses, since what is tested is the process: its exit status and standard error, and what survives it.
The full disk is real: the data directory is a small tmpfs (we run as root here and in CI), filled by a file
of the test's own, then emptied again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e._js import unavailable
from tests.e2e.harness import HTTP_TIMEOUT, SECRET, Processes
from tests.redis_servers import RedisServer

EXIT_WITHIN = 20.0  # seconds `serve` may take to give up (about half a second here)


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` for the block (mounting needs root: elsewhere the test cannot run)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _cannot_start(procs: Processes, *args: str) -> str:
    """Run `openline serve *args`; check it exits non-zero in time with one line and no traceback: that line."""
    process = procs.openline("--secret", SECRET, *args, wait=False)
    try:
        code = process.popen.wait(EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"openline serve did not exit\n{process.describe()}")
    assert code != 0, process.describe()
    assert "Traceback" not in process.stderr, process.describe()
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openline: cannot start: "), process.describe()
    return lines[0]


def test_a_data_dir_that_is_a_file(procs: Processes) -> None:
    path = procs.tmp_path / "data"
    path.write_text("not a directory")
    assert _cannot_start(procs, "--data-dir", str(path)).endswith(f"the data directory {path} is not a directory")


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("garbage", "file is not a database"),
        ("a directory", "unable to open database file"),
        ("a newer schema", "has schema version 999"),
    ],
)
def test_a_database_that_cannot_be_used(procs: Processes, damage: str, says: str) -> None:
    data = procs.tmp_path / "data"
    data.mkdir()
    database = data / "openline.sqlite3"
    if damage == "garbage":
        database.write_bytes(os.urandom(64 * 1024))
    elif damage == "a directory":
        database.mkdir()
    else:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute("PRAGMA user_version = 999")
    line = _cannot_start(procs, "--data-dir", str(data))
    assert f"the database {database} cannot be used: " in line and says in line


def test_a_data_dir_on_a_read_only_file_system(procs: Processes) -> None:
    with _tmpfs(procs.tmp_path / "mnt", "8m") as mnt:
        data = mnt / "data"
        procs.openline("--secret", SECRET, "--data-dir", str(data)).stop_gracefully()  # every file made
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        line = _cannot_start(procs, "--data-dir", str(data))
        assert f"the database {data / 'openline.sqlite3'} cannot be used: " in line


def test_a_redis_store_that_cannot_be_reached_or_refuses_the_password(procs: Processes) -> None:
    data = str(procs.tmp_path / "data")
    closed = RedisServer(procs.tmp_path / "closed")  # a free port, never started
    line = _cannot_start(procs, "--data-dir", data, "--store", closed.url)
    assert f"the Redis store {closed.url} cannot be used: " in line and "Connection refused" in line
    server = RedisServer(procs.tmp_path / "redis", None, "--requirepass", "the-right-password")
    server.start()
    try:
        wrong = f"redis://:a-wrong-password@127.0.0.1:{server.port}/0"
        line = _cannot_start(procs, "--data-dir", data, "--store", wrong)
        assert "cannot be used: " in line and "a-wrong-password" not in line
        assert "invalid username-password pair" in line or "WRONGPASS" in line, line
        without = _cannot_start(procs, "--data-dir", data, "--store", server.url)
        assert without.endswith("the server asks for a password: give it in the URL (redis://:PASSWORD@HOST:PORT/DB)")
    finally:
        server.stop()


# -- a full disk while serving ----------------------------------------------------------------------------


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of the file system `directory` is on."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    return filler
                block = block[: len(block) // 16 or 1]
    finally:
        os.close(fd)


class Client:
    """The posts of both APIs, by secret, against one `openline serve`."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=HTTP_TIMEOUT)

    def start(self, api: str) -> httpx.Response:
        return self.http.post("/api/conversations" if api == "v1" else "/v3/directline/conversations")

    def post(self, api: str, conv: str, key: str, upload: bool) -> httpx.Response:
        """A message (or an upload with one file) with `key` as its text and clientActivityID."""
        data = {"channelData": {"clientActivityID": key}, "text": key}
        file = ("file", ("photo.png", b"\x89PNG" + os.urandom(16 * 1024), "image/png"))
        if api == "v1":
            message = {"from": "u1", **data}
            if not upload:
                return self.http.post(f"/api/conversations/{conv}/messages", json=message)
            part = ("message", ("", json.dumps(message).encode(), "application/vnd.microsoft.bot.message"))
            return self.http.post(f"/api/conversations/{conv}/upload", files=[file, part])
        activity = {"type": "message", "from": {"id": "u1"}, **data}
        if not upload:
            return self.http.post(f"/v3/directline/conversations/{conv}/activities", json=activity)
        part = ("activity", ("blob", json.dumps(activity), "application/vnd.microsoft.activity"))
        return self.http.post(f"/v3/directline/conversations/{conv}/upload?userId=u1", files=[part, file])

    def texts(self, conv: str) -> list[str]:
        """The text of every activity of the conversation (3.0 reads, page by page)."""
        out: list[str] = []
        watermark = ""
        while True:
            params = {"watermark": watermark} if watermark else {}
            page = self.http.get(f"/v3/directline/conversations/{conv}/activities", params=params).json()
            if not page["activities"]:
                return out
            out += [a.get("text", "") for a in page["activities"]]
            watermark = page["watermark"]


def _refused_for_now(r: httpx.Response, api: str) -> None:
    """503 in the API's error shape, with Retry-After."""
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    error: dict[str, Any] = r.json()["error"]
    if api == "v1":
        assert error == {"code": "Internal", "message": error["message"], "statusCode": 503}
    else:
        assert error == {"code": "ServiceUnavailable", "message": error["message"]}
    assert error["message"] == "the service's store has no room now; retry later"


POSTS = [(api, upload) for api in ("v1", "v3") for upload in (False, True)]


def test_a_full_disk_refuses_writes_with_503_loses_nothing_and_passes_when_room_is_made(procs: Processes) -> None:
    with _tmpfs(procs.tmp_path / "mnt", "12m") as mnt:
        data = mnt / "data"
        args = ("--secret", SECRET, "--data-dir", str(data))
        first = procs.openline(*args)
        client = Client(first.url)
        convs = {api: client.start(api).json()["conversationId"] for api in ("v1", "v3")}
        acknowledged: list[tuple[str, str]] = []  # (conversation, text)
        for api, upload in POSTS:
            key = f"before {api} {upload}"
            assert client.post(api, convs[api], key, upload).status_code in (200, 204)
            acknowledged.append((convs[api], key))

        filler = _fill(mnt)
        for api, upload in POSTS:
            _refused_for_now(client.post(api, convs[api], f"full {api} {upload}", upload), api)
        for api in ("v1", "v3"):
            _refused_for_now(client.start(api), api)
        assert client.http.get("/healthz").status_code == 200, "reads go on"
        assert [t for _, t in acknowledged if t not in client.texts(convs["v3"]) + client.texts(convs["v1"])] == []

        filler.unlink()  # room again: no restart needed
        for api, upload in POSTS:
            key = f"full {api} {upload}"  # the refused post, retried
            r = client.post(api, convs[api], key, upload)
            assert r.status_code in (200, 204), r.text
            acknowledged.append((convs[api], key))
        assert client.start("v3").status_code == 201
        client.http.close()
        first.stop_gracefully()
        # a full disk is the operator's to fix, not openline's: warnings naming the file, never an error
        assert "Traceback" not in first.stderr and " ERROR " not in first.stderr, first.stderr
        assert "openline.sqlite3 is full: database or disk is full" in first.stderr

        second = procs.openline(*args, port=first.port)
        client = Client(second.url)
        for conv in convs.values():
            texts = client.texts(conv)
            mine = [t for c, t in acknowledged if c == conv]
            assert [t for t in texts if t in mine] == mine, "every acknowledged post, once, in order"
        client.http.close()
        second.stop_gracefully()
        with contextlib.closing(sqlite3.connect(data / "openline.sqlite3")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
