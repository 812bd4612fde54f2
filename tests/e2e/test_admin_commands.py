"""The admin commands as an operator runs them, beside a running `openline serve`, on SQLite and on Redis.

`openline secret new|list|revoke`: a secret made while the service runs is accepted within the bound, both stay
valid, a revoked one is refused (on Redis by every instance). `openline conversation list|show|export|delete`:
the store read directly, a deletion ends the conversation's open stream, an export is an Emulator transcript.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from openline.config import ECHO_BOT_ID
from openline.storage.sqlite import SqliteStore
from tests.e2e.harness import HTTP_TIMEOUT, Openline, Processes, _child_env

PICKUP = 20.0  # seconds allowed for what the service promises within 2 (a loaded test machine runs late)


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m openline *args`, as an operator runs it (no OPENLINE_* from the test's environment)."""
    command = [sys.executable, "-m", "openline", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=_child_env(), check=False)


def ok(*args: str) -> str:
    done = admin(*args)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def refused(code: int, *args: str) -> str:
    """The one-line message of a command that must fail with `code`."""
    done = admin(*args)
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openline: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def eventually(check: Callable[[], bool], what: str, within: float = PICKUP) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.2)


@pytest.fixture(params=["sqlite", "redis"])
def store_args(request: pytest.FixtureRequest) -> list[str]:
    """The `--store` flags of the service and the commands: SQLite in the data directory, or a Redis prefix."""
    if request.param == "sqlite":
        return []
    url = request.getfixturevalue("redis_url")
    return ["--store", f"{url}?prefix=admin-{uuid.uuid4().hex[:8]}"]


def _serve(procs: Processes, data_dir: Path, store_args: list[str]) -> Openline:
    return procs.openline("--data-dir", str(data_dir), *store_args)


def _starts(service: Openline, secret: str) -> int:
    """The status of a Direct Line 3.0 conversation start with the secret."""
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        return http.post(service.url + "/v3/directline/conversations", headers=headers).status_code


def _starting(service: Openline, secret: str, status: int) -> Callable[[], bool]:
    return lambda: _starts(service, secret) == status


def _new_secret(where: list[str]) -> tuple[str, str]:
    """(id, secret) of a secret made with `openline secret new`."""
    out = ok("secret", "new", "--bot", ECHO_BOT_ID, *where).splitlines()
    assert out[0].startswith("new Direct Line secret ") and "shown once" in out[0], out
    return out[0].split()[4], out[1].strip()


def test_secret_rotation_without_downtime(procs: Processes, store_args: list[str]) -> None:
    data_a, data_b = procs.tmp_path / "a", procs.tmp_path / "b"
    a = _serve(procs, data_a, store_args)
    generated = json.loads((data_a / "secrets.json").read_text())[ECHO_BOT_ID]
    where = ["--data-dir", str(data_a), *store_args]
    listed = ok("secret", "list", *where)
    assert "generated on the first start" in listed and generated not in listed, "ids, never the secrets"
    # a second instance on the same Redis (its own data directory) accepts what the first one does
    services = [a, _serve(procs, data_b, store_args)] if store_args else [a]

    new_id, new = _new_secret(where)
    for service in services:
        eventually(_starting(service, new, 201), f"the new secret is accepted by {service.url}")
        assert _starts(service, generated) == 201, "the old one stays valid meanwhile"
    listed = ok("secret", "list", "--bot", ECHO_BOT_ID, *where)
    assert new_id in listed and "made by openline secret new" in listed and new not in listed

    old_id = next(line.split()[0] for line in listed.splitlines() if "generated" in line)
    assert "revoked" in ok("secret", "revoke", "--bot", ECHO_BOT_ID, old_id, *where)
    for service in services:
        eventually(_starting(service, generated, 403), f"the revoked secret is refused by {service.url}")
        assert _starts(service, new) == 201
    assert old_id not in ok("secret", "list", *where)

    # the last secret is kept unless forced; unknown bots and secrets are one-line errors
    assert "last secret" in refused(1, "secret", "revoke", "--bot", ECHO_BOT_ID, new_id, *where)
    assert "no bot 'nobody'" in refused(1, "secret", "new", "--bot", "nobody", *where)
    assert "no secret" in refused(1, "secret", "revoke", "--bot", ECHO_BOT_ID, "00000000", *where)
    assert _starts(a, new) == 201

    # a restart keeps the secrets as they are now: no secret is generated again
    a.stop_gracefully()
    again = _serve(procs, data_a, store_args)
    assert "generated Direct Line secret" not in again.stdout
    assert _starts(again, new) == 201 and _starts(again, generated) == 403


def test_configured_secrets_are_listed_but_not_revocable(procs: Processes, tmp_path: Path) -> None:
    config = tmp_path / "openline.toml"
    data_dir = tmp_path / "data"
    config.write_text(
        f'data_dir = "{data_dir}"\n[[bots]]\nid = "helper"\nname = "Helper"\nsecrets = ["configured-0123456789"]\n'
    )
    service = procs.openline("--config", str(config))
    listed = ok("secret", "list", "--config", str(config))
    assert "bot 'helper':" in listed and "configured" in listed and "configured-0123456789" not in listed
    configured_id = listed.splitlines()[1].split()[0]
    assert "configured" in refused(1, "secret", "revoke", "--bot", "helper", configured_id, "--config", str(config))
    _, made = _new_secret_for("helper", config)
    eventually(_starting(service, made, 201), "a made secret beside a configured one")
    assert _starts(service, "configured-0123456789") == 201


def _new_secret_for(bot: str, config: Path) -> tuple[str, str]:
    out = ok("secret", "new", "--bot", bot, "--config", str(config)).splitlines()
    return out[0].split()[4], out[1].strip()


def _conversation(service: Openline, secret: str) -> tuple[str, str, list[dict[str, Any]]]:
    """A conversation with a message and its echo: (id, stream URL, its activities as GET returns them)."""
    headers = {"Authorization": f"Bearer {secret}"}
    base = service.url + "/v3/directline/conversations"
    with httpx.Client(timeout=HTTP_TIMEOUT, headers=headers) as http:
        start = http.post(base, json={"user": {"id": "u1", "name": "Ann"}}).json()
        conv = start["conversationId"]
        said = {"type": "message", "from": {"id": "u1", "name": "Ann"}, "text": "hello there"}
        assert http.post(f"{base}/{conv}/activities", json=said).status_code == 200
        activities: list[dict[str, Any]] = http.get(f"{base}/{conv}/activities").json()["activities"]
    assert [a.get("text") for a in activities if a["type"] == "message"][-2:] == ["hello there", "echo: hello there"]
    return conv, start["streamUrl"], activities


def test_conversations_are_listed_shown_exported_and_deleted(procs: Processes, store_args: list[str]) -> None:
    data_dir = procs.tmp_path / "data"
    service = _serve(procs, data_dir, store_args)
    secret = json.loads((data_dir / "secrets.json").read_text())[ECHO_BOT_ID]
    where = ["--data-dir", str(data_dir), *store_args]
    conv, stream_url, activities = _conversation(service, secret)
    other, _, _ = _conversation(service, secret)

    listed = ok("conversation", "list", *where).splitlines()
    assert listed[0].split()[0] == "conversation"
    rows = {line.split()[0]: line.split() for line in listed[1:]}
    assert set(rows) == {conv, other} and rows[conv][1] == ECHO_BOT_ID and rows[conv][-1] == str(len(activities))
    assert len(ok("conversation", "list", "--limit", "1", *where).splitlines()) == 2
    assert "no bot 'nobody'" in refused(1, "conversation", "list", "--bot", "nobody", *where)

    shown = ok("conversation", "show", conv, *where)
    assert "hello there" in shown and "echo: hello there" in shown and "Ann" in shown
    as_json = json.loads(ok("conversation", "show", conv, "--json", *where))
    assert [s["activity"] for s in as_json["activities"]] == activities
    assert {"id": "u1", "name": "Ann"} in as_json["conversation"]["members"]

    # the export is what the Emulator opens: every activity, in order, user and bot told apart by role
    transcript_file = procs.tmp_path / "conversation.transcript"
    ok("conversation", "export", conv, "-o", str(transcript_file), *where)
    transcript = json.loads(transcript_file.read_text())
    assert [a["id"] for a in transcript] == [a["id"] for a in activities]
    assert [a.get("text") for a in transcript] == [a.get("text") for a in activities]
    said = next(a for a in transcript if a.get("text") == "hello there")
    echo = next(a for a in transcript if a.get("text") == "echo: hello there")
    assert (said["from"]["role"], said["recipient"]["role"]) == ("user", "bot")
    assert (echo["from"]["role"], echo["recipient"]["role"]) == ("bot", "user")
    assert all(a["conversation"]["id"] == conv and a["recipient"]["id"] for a in transcript)
    assert json.loads(ok("conversation", "export", conv, *where)) == transcript, "to standard output alike"

    # a deletion while a client streams the conversation: the stream ends, everything of it is gone
    with connect(stream_url, open_timeout=10, close_timeout=2) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["activities"]
        assert "deleted conversation" in ok("conversation", "delete", conv, *where)
        deadline = time.monotonic() + PICKUP
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=max(0.1, deadline - time.monotonic()))
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=HTTP_TIMEOUT, headers=headers) as http:
        base = service.url + "/v3/directline/conversations"
        assert http.get(f"{base}/{conv}/activities").status_code == 404
        assert http.post(f"{base}/{conv}/activities", json={"type": "message"}).status_code == 404
        assert http.get(f"{base}/{other}/activities").status_code == 200, "the other conversation is untouched"
    assert "no conversation" in refused(1, "conversation", "show", conv, *where)
    assert "no conversation" in refused(1, "conversation", "delete", conv, *where)
    assert "no conversation" in refused(1, "conversation", "export", conv, *where)
    assert [line.split()[0] for line in ok("conversation", "list", *where).splitlines()[1:]] == [other]


def test_a_deletion_with_the_service_stopped_leaves_nothing_on_disk(procs: Processes) -> None:
    """SQLite: beside a running service the command leaves the rewrite of the file to the service's next sweep;
    with none running it rewrites the file itself, since nothing else would until the service starts again."""
    data_dir = procs.tmp_path / "data"
    service = _serve(procs, data_dir, [])
    secret = json.loads((data_dir / "secrets.json").read_text())[ECHO_BOT_ID]
    where = ["--data-dir", str(data_dir)]
    beside, _, _ = _conversation(service, secret)
    alone, _, _ = _conversation(service, secret)
    out = ok("conversation", "delete", beside, *where)
    assert "deleted conversation" in out and "running service rewrites" in out
    service.stop_gracefully()
    database = data_dir / "openline.sqlite3"
    assert b"hello there" in b"".join(f.read_bytes() for f in data_dir.glob("openline.sqlite3*"))  # the other's
    out = ok("conversation", "delete", alone, *where)
    assert "deleted conversation" in out and f"rewrote {database}" in out
    assert b"hello there" not in b"".join(f.read_bytes() for f in data_dir.glob("openline.sqlite3*"))


def test_stores_that_cannot_be_used_are_one_line_errors(tmp_path: Path) -> None:
    assert "no database" in refused(1, "conversation", "list", "--data-dir", str(tmp_path / "none"))
    assert not (tmp_path / "none").exists(), "nothing is made where nothing was"
    assert "memory://" in refused(1, "conversation", "list", "--store", "memory://")
    assert "cannot open the store" in refused(1, "conversation", "list", "--store", "redis://127.0.0.1:1/0")
    assert "store" in refused(2, "conversation", "list", "--store", "bogus://x")
    (tmp_path / "d").mkdir()
    assert "no bot" in refused(1, "secret", "new", "--bot", "nobody", "--data-dir", str(tmp_path / "d"))


async def _make_database(path: Path) -> None:
    store = SqliteStore(path, 3600, 3600)
    await store.open()
    await store.close()


def test_wrong_arguments_are_one_line_errors_and_write_nothing(tmp_path: Path, redis_url: str) -> None:
    """A data directory that is not there, a limit past the bound, a bot no one configured: one line, exit 1,
    and no file made (review of a new user's first tries)."""
    missing = tmp_path / "missing"
    for command in ("list", "new"):
        assert "no data directory" in refused(1, "secret", command, "--bot", "echobot", "--data-dir", str(missing))
    assert not missing.exists(), "nothing is made where nothing was"
    data = tmp_path / "data"
    data.mkdir()
    ok("secret", "new", "--bot", "echobot", "--data-dir", str(data))
    asyncio.run(_make_database(data / "openline.sqlite3"))  # as a service's first start does
    ok("conversation", "list", "--data-dir", str(data))
    assert "--limit" in refused(1, "conversation", "list", "--data-dir", str(data), "--limit", "9" * 20)
    assert "no bot 'nosuch'" in refused(1, "conversation", "list", "--data-dir", str(data), "--bot", "nosuch")
    # on Redis the commands change Redis's copy of the secrets: nothing of the service lands where they run
    empty = tmp_path / "empty"
    empty.mkdir()
    store = ["--store", f"{redis_url}?prefix=fresh-{uuid.uuid4().hex[:8]}", "--data-dir", str(empty)]
    ok("secret", "new", "--bot", "echobot", *store)
    assert list(empty.iterdir()) == [], "no signing key, bot keys or secrets written beside the command"
    assert len([line for line in ok("secret", "list", "--bot", "echobot", *store).splitlines() if line.strip()]) >= 2
