"""`openline serve` without --secret: a secret is generated on first start, shown once, and kept in the data dir."""

from __future__ import annotations

import json
import stat

from openline.config import ECHO_BOT_ID
from tests.e2e.harness import DirectLine, Processes, summary

GENERATED = "generated Direct Line secret"


def test_generated_secret_is_shown_once_and_kept(procs: Processes) -> None:
    data_dir = procs.tmp_path / "data"
    secrets_file = data_dir / "secrets.json"

    first = procs.openline("--data-dir", str(data_dir))
    stored = json.loads(secrets_file.read_text())
    assert list(stored) == [ECHO_BOT_ID]
    secret = stored[ECHO_BOT_ID]
    assert isinstance(secret, str) and len(secret) >= 32
    assert stat.S_IMODE(secrets_file.stat().st_mode) & 0o077 == 0, "secrets.json is readable by its owner only"
    lines = first.stdout.splitlines()
    notice = [i for i, line in enumerate(lines) if GENERATED in line]
    assert len(notice) == 1, first.stdout
    assert lines[notice[0] + 1].strip() == secret, "the secret is printed on the line after the notice"
    assert secret not in first.stderr

    with DirectLine(first.url, secret) as dl:
        cid = dl.start()["conversationId"]
        dl.send(cid, "hi")
        assert dl.http.post("/conversations", headers={"Authorization": "Bearer not-the-secret"}).status_code == 403
    first.stop_gracefully()

    second = procs.openline("--data-dir", str(data_dir))
    assert GENERATED not in second.stdout and secret not in second.stdout, "the secret is shown on first start only"
    assert secret not in second.stderr
    assert json.loads(secrets_file.read_text()) == stored

    with DirectLine(second.url, secret) as dl:
        messages, _ = dl.read_all(cid)
        assert summary(messages)[0] == ("user1", "hi")
        assert dl.start()["conversationId"] != cid
