"""Restarting openline (SIGKILL or SIGTERM) on the same SQLite data dir loses nothing that was acknowledged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openline.config import ECHO_BOT_ID
from openline.echobot import WELCOME
from tests.e2e.harness import SECRET, DirectLine, Openline, Processes, seq_of, summary


def _serve(procs: Processes, data_dir: Path, port: int | None = None) -> Openline:
    """openline with the default store (SQLite in the data dir) and the built-in echo bot."""
    return procs.openline("--secret", SECRET, "--data-dir", str(data_dir), port=port)


def _exchange(text: str) -> list[tuple[str, str]]:
    return [("user1", text), (ECHO_BOT_ID, f"echo: {text}")]


def _seqs(messages: list[dict[str, Any]], conversation_id: str) -> list[int]:
    return [seq_of(m, conversation_id) for m in messages]


@pytest.mark.parametrize(("stop", "sent"), [("SIGKILL", 6), ("SIGTERM", 2)])
def test_restart_keeps_acknowledged_messages_and_tokens(procs: Processes, stop: str, sent: int) -> None:
    data_dir = procs.tmp_path / "data"
    first = _serve(procs, data_dir)
    with DirectLine(first.url, SECRET) as dl:
        started = dl.start()
        cid, token = started["conversationId"], started["token"]
        for i in range(sent - 1):
            dl.send(cid, f"message {i}")
        before, _ = dl.read_all(cid)
        expected = [("user1", "message 0"), (ECHO_BOT_ID, WELCOME), (ECHO_BOT_ID, "echo: message 0")]
        for i in range(1, sent - 1):
            expected += _exchange(f"message {i}")
        assert summary(before) == expected
        # the last message: the process is stopped right after its 204
        dl.send(cid, "the last one")
        if stop == "SIGKILL":
            assert first.kill() == -9
        else:
            first.stop_gracefully()

    second = _serve(procs, data_dir, port=first.port)
    with DirectLine(second.url, SECRET) as dl:
        after, watermark = dl.read_all(cid)
        assert summary(after) == expected + _exchange("the last one"), f"lost after {stop}"
        assert after[: len(before)] == before, "same ids, timestamps and texts as before the restart"
        assert _seqs(after, cid) == list(range(1, len(after) + 1))
        assert watermark == str(len(after))

        # the token issued before the restart still works (its signing key is kept in the data dir)
        by_token, token_watermark = dl.read_all(cid, credential=token)
        assert by_token == after and token_watermark == watermark

        # a new message gets the next sequence numbers and an echo (and user1 is not welcomed again)
        dl.send(cid, "after the restart", credential=token)
        news, _ = dl.read_all(cid, watermark)
        assert summary(news) == _exchange("after the restart")
        assert _seqs(news, cid) == [len(after) + 1, len(after) + 2]
