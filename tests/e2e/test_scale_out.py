"""Three openline processes sharing one Redis serve one conversation space (`--store redis://`).

Each instance has its own data directory and port, as separate machines behind a load balancer would. The real
botframework-directlinejs client streams from A and posts through B; B's public URL is C's, so the botbuilder
bot's replies (sent to the serviceUrl B gave it) land on C, as a load balancer may route them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.harness import HTTP_TIMEOUT, SECRET, Openline, Processes, free_port
from tests.e2e.test_directlinejs import check_run, exchange, generate_token, message, run_client, scenario, seq_of
from tests.e2e.test_directlinejs import node as node  # the fixture
from tests.redis_servers import RedisServer


@dataclass
class Cluster:
    a: Openline
    b: Openline
    c: Openline
    redis: RedisServer
    store: str
    bot_errors_expected: bool = False  # an instance killed under the bot's feet fails the turns it had


def _instance(
    procs: Processes, name: str, bot_endpoint: str, store: str, public_url: str | None, port: int
) -> Openline:
    args = [
        *("--bot", bot_endpoint, "--secret", SECRET, "--store", store),
        *("--data-dir", str(procs.tmp_path / f"data-{name}")),
        *("--stream-keepalive", "1"),
    ]
    if public_url is not None:
        args += ["--public-url", public_url]
    return procs.openline(*args, port=port, wait=False)


@pytest.fixture
def cluster(procs: Processes, tmp_path: Path) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path / "redis", None, "--appendonly", "yes", "--appendfsync", "always")
    redis.start()
    try:
        store = f"{redis.url}?prefix=scale-{uuid.uuid4().hex[:8]}"
        bot = procs.bot(wait=False)
        port_a, port_b, port_c = free_port(), free_port(), free_port()
        a = _instance(procs, "a", bot.endpoint, store, None, port_a)
        # B's public URL is C's: the serviceUrl B gives the bot leads to C
        b = _instance(procs, "b", bot.endpoint, store, f"http://127.0.0.1:{port_c}", port_b)
        c = _instance(procs, "c", bot.endpoint, store, None, port_c)
        bot.wait_ready()
        for instance in (a, b, c):
            instance.wait_ready()
        running = Cluster(a, b, c, redis, store)
        yield running
        if not running.bot_errors_expected:
            assert "on_turn_error" not in bot.stderr, bot.stderr
    finally:
        redis.stop()


def _v3(instance: Openline) -> str:
    return instance.url + "/v3/directline"


def _all_activities(instance: Openline, conversation_id: str, credential: str) -> list[dict[str, Any]]:
    """Every activity of the conversation, read page by page from `instance` (3.0 GET /activities)."""
    out: list[dict[str, Any]] = []
    watermark = ""
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        while True:
            r = http.get(
                f"{_v3(instance)}/conversations/{conversation_id}/activities",
                params={"watermark": watermark} if watermark else {},
                headers={"Authorization": f"Bearer {credential}"},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            if not body["activities"]:
                return out
            out += body["activities"]
            watermark = body["watermark"]


def test_a_client_streaming_from_one_instance_posting_through_another_sees_everything_once(
    cluster: Cluster, node: str
) -> None:
    user = "dl_scale_user"
    run = run_client(
        node,
        scenario(
            cluster.a,
            web_socket=True,
            secret=SECRET,
            postDomain=_v3(cluster.b),
            steps=[
                *exchange(user, "one", "c-1"),
                *exchange(user, "two", "c-2"),
                *exchange(user, "three", "c-3"),
            ],
        ),
    )
    check_run(run, run.done["conversationId"], True, cluster.a)
    conversation_id = run.done["conversationId"]
    posts = [e for e in run.of("http") if e["method"] == "POST" and e["url"].endswith("/activities")]
    assert posts and all(e["url"].startswith(cluster.b.url) for e in posts), "the posts went through B"
    streams = [e for e in run.of("ws") if e["state"] == "open"]
    assert streams and all(e["url"].startswith(cluster.a.url.replace("http", "ws")) for e in streams)
    messages = [a for a in run.activities if a.get("type") == "message"]
    texts = [a.get("text") for a in messages]
    expected = ["one", f"Welcome, {user}!", "echo: one", "two", "echo: two", "three", "echo: three"]
    assert texts == expected, run.describe()
    seqs = [seq_of(a, conversation_id) for a in run.activities]
    assert seqs == sorted(set(seqs)), f"each activity once, in order: {seqs}"
    # what each instance reads is the same transcript
    transcripts = [_all_activities(i, conversation_id, SECRET) for i in (cluster.a, cluster.b, cluster.c)]
    assert transcripts[0] == transcripts[1] == transcripts[2]
    assert [a["id"] for a in transcripts[0] if a.get("type") == "message"] == [a["id"] for a in messages]


def test_a_token_from_one_instance_works_on_another(cluster: Cluster, node: str) -> None:
    issued = generate_token(cluster.b, {"id": "dl_token_user"})
    run = run_client(
        node,
        scenario(cluster.a, web_socket=True, token=issued["token"], steps=exchange("dl_token_user", "hi", "t-1")),
    )
    assert run.done["conversationId"] == issued["conversationId"]
    check_run(run, issued["conversationId"], True, cluster.a)
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        refreshed = http.post(
            _v3(cluster.c) + "/tokens/refresh", headers={"Authorization": f"Bearer {issued['token']}"}
        )
    assert refreshed.status_code == 200, refreshed.text


def test_a_retry_on_another_instance_is_recognised(cluster: Cluster) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        auth = {"Authorization": f"Bearer {SECRET}"}
        started = http.post(_v3(cluster.a) + "/conversations", headers=auth)
        assert started.status_code == 201, started.text
        conversation_id = started.json()["conversationId"]
        activity = message("dl_retry_user", "once", "retry-1")
        ids = []
        for instance in (cluster.b, cluster.c, cluster.a):
            r = http.post(f"{_v3(instance)}/conversations/{conversation_id}/activities", headers=auth, json=activity)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
    assert len(set(ids)) == 1, f"one activity for the three posts: {ids}"
    deadline = time.monotonic() + 10
    while True:
        texts = [a.get("text") for a in _all_activities(cluster.c, conversation_id, SECRET)]
        if "echo: once" in texts or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert texts.count("once") == 1 and texts.count("echo: once") == 1, texts


def test_kill_9_of_an_instance_under_load_loses_nothing_acknowledged(cluster: Cluster, node: str) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        started = http.post(_v3(cluster.b) + "/conversations", headers={"Authorization": f"Bearer {SECRET}"})
        assert started.status_code == 201, started.text
    conversation_id = started.json()["conversationId"]
    acknowledged: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def post_forever(instance: Openline, worker: int) -> None:
        with httpx.Client(timeout=HTTP_TIMEOUT) as http:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"w{worker}-{n}"
                try:
                    r = http.post(
                        f"{_v3(instance)}/conversations/{conversation_id}/activities",
                        headers={"Authorization": f"Bearer {SECRET}"},
                        json=message(f"dl_load_{worker}", text, f"load-{worker}-{n}"),
                    )
                except httpx.HTTPError:
                    continue  # the instance is gone: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acknowledged.append(text)

    workers = [
        threading.Thread(target=post_forever, args=(instance, i), daemon=True)
        for i, instance in enumerate([cluster.a, cluster.a, cluster.b, cluster.c])
    ]
    for w in workers:
        w.start()
    while len(acknowledged) < 40:
        time.sleep(0.02)
    cluster.bot_errors_expected = True  # the bot's replies to A break off
    cluster.a.kill()  # SIGKILL, mid-conversation
    time.sleep(1.0)
    stop.set()
    for w in workers:
        w.join(HTTP_TIMEOUT)
    # a client that streamed from A reconnects to B with its watermark: it gets everything after it, once
    stored = _all_activities(cluster.c, conversation_id, SECRET)
    texts = [a.get("text") for a in stored]
    missing = [t for t in acknowledged if t not in texts]
    assert not missing, f"acknowledged but not stored: {missing}"
    seqs = [seq_of(a, conversation_id) for a in stored]
    assert seqs == sorted(set(seqs))
    middle = seqs[len(seqs) // 2]
    run = run_client(
        node,
        scenario(
            cluster.b,
            web_socket=True,
            secret=SECRET,
            conversationId=conversation_id,
            watermark=str(middle),
            steps=[{"op": "wait", "activities": [{"id": stored[-1]["id"]}], "settleMs": 500}],
        ),
    )
    resumed = [seq_of(a, conversation_id) for a in run.activities]
    assert resumed == [s for s in seqs if s > middle], "everything after the watermark, once, in order"


def test_redis_restarted_with_aof_keeps_everything_acknowledged(cluster: Cluster) -> None:
    auth = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        started = http.post(_v3(cluster.a) + "/conversations", headers=auth)
        conversation_id, stream_url = started.json()["conversationId"], started.json()["streamUrl"]
        sent = []
        for n in range(20):
            instance = (cluster.a, cluster.b, cluster.c)[n % 3]
            r = http.post(
                f"{_v3(instance)}/conversations/{conversation_id}/activities",
                headers=auth,
                json=message("dl_aof_user", f"aof-{n}", f"aof-{n}"),
            )
            assert r.status_code == 200, r.text
            sent.append(f"aof-{n}")
        cluster.redis.stop(kill=True)  # appendfsync always: every acknowledged write is on disk
        down = http.post(
            f"{_v3(cluster.a)}/conversations/{conversation_id}/activities",
            headers=auth,
            json=message("dl_aof_user", "while down", "aof-down"),
        )
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "ServiceUnavailable" and down.headers["retry-after"] == "1"
        # a stream is refused likewise, in the error shape, before the upgrade
        with pytest.raises(InvalidStatus) as refused:
            connect(stream_url, open_timeout=HTTP_TIMEOUT).close()
        assert refused.value.response.status_code == 503
        cluster.redis.start()
        deadline = time.monotonic() + 15
        while True:  # the instances reconnect on their own
            try:
                texts = [a.get("text") for a in _all_activities(cluster.b, conversation_id, SECRET)]
                break
            except (AssertionError, httpx.HTTPError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert [t for t in sent if t not in texts] == []
        r = http.post(
            f"{_v3(cluster.c)}/conversations/{conversation_id}/activities",
            headers=auth,
            json=message("dl_aof_user", "after", "aof-after"),
        )
        assert r.status_code == 200, r.text
