"""Restarting openline (SIGKILL or SIGTERM) on the same SQLite data dir loses nothing that was acknowledged."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openline.config import ECHO_BOT_ID
from openline.echobot import WELCOME
from tests.api._servers import LoopThread, RecordingBot, bound_socket
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


def test_a_delivery_cut_by_sigkill_is_made_when_the_client_retries(procs: Processes) -> None:
    """The client's activity was stored, the bot was being called, openline was killed: the retry delivers it."""
    loop = LoopThread()
    bot = RecordingBot(pause_seconds=60.0)  # holds the first delivery until openline is gone
    try:
        endpoint = loop.serve(bot.app(), bound_socket()) + "/api/messages"
        data_dir = procs.tmp_path / "data"
        args = ("--secret", SECRET, "--data-dir", str(data_dir), "--bot", endpoint, "--bot-timeout", "1")
        first = procs.openline(*args)
        auth = {"Authorization": f"Bearer {SECRET}"}
        activity = {
            "type": "message",
            "from": {"id": "u1"},
            "text": "pause, then the crash",
            "channelData": {"clientActivityID": "k-crash"},
        }
        with httpx.Client(base_url=first.url + "/v3/directline", headers=auth, timeout=20) as http:
            conv = http.post("/conversations", json={"user": {"id": "u1"}}).json()["conversationId"]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                cut = pool.submit(http.post, f"/conversations/{conv}/activities", json=activity)
                first.wait_until(lambda: bool(bot.of(conv, "message")), "the bot receiving the activity")
                assert first.kill() == -9
                with pytest.raises(httpx.TransportError):
                    cut.result(10)
        (held,) = bot.of(conv, "message")
        bot.pause_seconds = 0.0

        second = procs.openline(*args, port=first.port)
        with httpx.Client(base_url=second.url + "/v3/directline", headers=auth, timeout=20) as http:
            retry = http.post(f"/conversations/{conv}/activities", json=activity)
            assert retry.status_code == 200, retry.text
            assert retry.json() == {"id": held["id"]}, "the activity stored before the crash"
            again = http.post(f"/conversations/{conv}/activities", json=activity)
            assert again.json() == {"id": held["id"]}
            texts = [a.get("text") for a in http.get(f"/conversations/{conv}/activities").json()["activities"]]
        delivered = bot.of(conv, "message")
        assert [a["id"] for a in delivered] == [held["id"], held["id"]], "delivered again once, after the restart"
        assert texts.count("pause, then the crash") == 1
        assert texts.count("echo: pause, then the crash") == 1
    finally:
        loop.run(bot.release())
        loop.stop()


def _post_one(http: httpx.Client, api: str, conversation: str, n: int, text: str) -> tuple[int, str | None]:
    """One post of client `n` in its API: (status, the 3.0 id when there is one). Each carries its text as its
    clientActivityID too."""
    channel_data = {"clientActivityID": text}
    if api == "v1":
        message = {"from": f"user{n}", "text": text, "channelData": channel_data}
        r = http.post(f"/api/conversations/{conversation}/messages", json=message)
        return r.status_code, None
    activity = {"type": "message", "from": {"id": f"user{n}"}, "text": text, "channelData": channel_data}
    if api == "v3":
        r = http.post(f"/v3/directline/conversations/{conversation}/activities", json=activity)
    else:
        files = [
            ("activity", ("blob", json.dumps(activity), "application/vnd.microsoft.activity")),
            ("file", ("note.txt", text.encode(), "text/plain")),
        ]
        r = http.post(f"/v3/directline/conversations/{conversation}/upload?userId=user{n}", files=files)
    return r.status_code, r.json()["id"] if r.status_code == 200 else None


def test_sigkill_under_load_loses_no_acknowledged_activity(procs: Processes) -> None:
    """Clients of both APIs posting and uploading at once share group commits; killing the process mid-load
    loses none of their 2xx, and stores none twice."""
    data_dir = procs.tmp_path / "data"
    first = _serve(procs, data_dir)
    headers = {"Authorization": f"Bearer {SECRET}"}
    apis = ("v3", "v1", "v3-upload")
    acknowledged: list[tuple[str, str, str, str | None]] = []  # (api, conversation, text, 3.0 id)
    stop = threading.Event()

    def client(n: int) -> None:
        api = apis[n % len(apis)]
        with httpx.Client(base_url=first.url, headers=headers, timeout=10) as http:
            start = "/api/conversations" if api == "v1" else "/v3/directline/conversations"
            conversation = http.post(start).json()["conversationId"]
            i = 0
            while not stop.is_set():
                text = f"client {n} message {i}"
                try:
                    status, activity_id = _post_one(http, api, conversation, n, text)
                except httpx.HTTPError:
                    return  # the process is gone
                if status in (200, 204):
                    acknowledged.append((api, conversation, text, activity_id))
                i += 1

    with concurrent.futures.ThreadPoolExecutor(18) as pool:
        clients = [pool.submit(client, n) for n in range(18)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.kill() == -9
        stop.set()
        for c in clients:
            c.result()
    assert len(acknowledged) >= 300
    assert {api for api, *_ in acknowledged} == set(apis)

    second = _serve(procs, data_dir, port=first.port)
    with httpx.Client(base_url=second.url + "/v3/directline", headers=headers, timeout=10) as http:
        stored: dict[str, list[dict[str, Any]]] = {}
        for conversation in {c for _, c, _, _ in acknowledged}:
            activities: list[dict[str, Any]] = []
            watermark = None
            while True:
                params = {"watermark": watermark} if watermark else {}
                page = http.get(f"/conversations/{conversation}/activities", params=params).json()
                if not page["activities"]:
                    break
                activities += page["activities"]
                watermark = page["watermark"]
            stored[conversation] = activities
            assert [int(a["id"].rsplit("|", 1)[1]) for a in activities] == list(range(1, len(activities) + 1))
            texts = [a.get("text") for a in activities if a["from"]["id"].startswith("user")]
            assert len(texts) == len(set(texts)), "an activity stored twice"
        for api, conversation, text, activity_id in acknowledged:
            (activity,) = [a for a in stored[conversation] if a.get("text") == text]  # present, once
            assert activity_id in (None, activity["id"])
            assert activity["channelData"]["clientActivityID"] == text
            # the echo bot answered inside the delivery, before the 2xx: its reply is there too
            replies = [a for a in stored[conversation] if a.get("replyToId") == activity["id"]]
            assert [a["text"] for a in replies] == [f"echo: {text}"]
            if api == "v3-upload":
                (attachment,) = activity["attachments"]
                assert http.get(attachment["contentUrl"]).content == text.encode(), "the upload's file is there"
