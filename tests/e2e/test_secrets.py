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


def test_configured_secrets_replace_the_generated_one_and_say_so(procs: Processes) -> None:
    """While --secret is given only it works; the generated secret is kept, refused, and works again without it."""
    data_dir = procs.tmp_path / "data"
    first = procs.openline("--data-dir", str(data_dir))
    generated = json.loads((data_dir / "secrets.json").read_text())[ECHO_BOT_ID]
    first.stop_gracefully()

    configured = "configured-secret-0123456789"
    second = procs.openline("--data-dir", str(data_dir), "--secret", configured)
    assert "its generated Direct Line secret" in second.stderr and "secrets.json" in second.stderr, second.stderr
    assert generated not in second.stderr and configured not in second.stderr + second.stdout
    with DirectLine(second.url, configured) as dl:
        dl.start()
        assert dl.http.post("/conversations", headers={"Authorization": f"Bearer {generated}"}).status_code == 403
    second.stop_gracefully()
    assert json.loads((data_dir / "secrets.json").read_text())[ECHO_BOT_ID] == generated, "kept, unused"

    third = procs.openline("--data-dir", str(data_dir))
    assert "generated Direct Line secret" not in third.stderr + third.stdout
    with DirectLine(third.url, generated) as dl:
        dl.start()
        assert dl.http.post("/conversations", headers={"Authorization": f"Bearer {configured}"}).status_code == 403


def test_a_taken_port_is_reported_before_anything_is_announced(procs: Processes) -> None:
    first = procs.openline("--data-dir", str(procs.tmp_path / "first"))
    second_dir = procs.tmp_path / "second"
    second = procs.openline("--data-dir", str(second_dir), port=first.port, wait=False)
    assert second.popen.wait(20) == 1
    assert second.stdout == "", "no banner, no URLs, no secrets for a server that never listened"
    assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr and "in use" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (second_dir / "secrets.json").exists(), "no secret generated that nobody was shown"
