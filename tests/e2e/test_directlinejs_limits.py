"""Rate limits against the real botframework-directlinejs client (under Node, tests/js/dl_client.js).

openline runs with a conversation limit of 6 requests, refilled at one a second; DLJS polls (every 1.7 s) and
posts one activity after another for a few seconds. What the client must see: polling goes on through the
throttling (throttled polls get 200 and nothing new, never an error that would stop DLJS's poller for good),
every accepted activity and the bot's answers arrive, refused ones are not stored, and once the limit has
refilled a post goes through again.

And the `Retry-After`: DLJS waits it (read as milliseconds, which openline sends it) with `Observable.timer`,
which DLJS never adds to rxjs 5 itself. As published, the wait throws a TypeError, so a refused post emits
"retry" at once (Web Chat: send failed, the user may resend) and a refused start is retried after DLJS's
request timeout (20 s by default) instead of failing for good; with the timer present (an app that imports
`rxjs/add/observable/timer`, or a fixed DLJS) a refused post fails with its 429 after waiting the
`Retry-After`. Both are tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e._js import node_with_packages
from tests.e2e.harness import HTTP_TIMEOUT, SECRET, Openline, Processes
from tests.e2e.test_directlinejs import (
    ENDED,
    EXPIRED_TOKEN,
    FAILED_TO_CONNECT,
    ONLINE,
    Run,
    message,
    run_client,
    scenario,
)

RATE = "6/6s"  # a burst of 6, then one a second
POLL_MS = 1700  # not a multiple of the refill's second: the polls meet the flood at different moments
FLOOD_MS = 6000
GAP_MS = 20  # between two posts of the flood: a token refilled is taken within a few milliseconds
SLACK_MS = 3000  # how much longer than its Retry-After a refused post may take to fail (a loaded machine)


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with tests/js/node_modules installed."""
    return node_with_packages("the botframework-directlinejs rate limit tests")


@pytest.fixture
def throttled(procs: Processes) -> Iterator[Openline]:
    bot = procs.bot(wait=False)
    args = ["--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data")]
    service = procs.openline(*args, "--conversation-rate-limit", RATE, wait=False)
    bot.wait_ready()
    service.wait_ready()
    yield service
    assert "on_turn_error" not in bot.stderr, bot.stderr


def _seq(activity_id: str) -> int:
    match = re.fullmatch(r".+\|(\d{7})", activity_id)
    assert match, activity_id
    return int(match.group(1))


def _watermark_of(url: str) -> int:
    match = re.search(r"[?&]watermark=(\d*)", url)
    return int(match.group(1)) if match and match.group(1) else 0


def _flood(node: str, service: Openline, rxjs_timer: bool) -> tuple[Run, list[dict[str, Any]], list[dict[str, Any]]]:
    """DLJS polling while it floods the conversation, then posting once the limit refilled: the run, the
    accepted posts and the refused ones (each with the 429 it got, as `answer`)."""
    steps: list[dict[str, Any]] = [
        {
            "op": "flood",
            "activity": message("u1", "flood ", "flood"),
            "durationMs": FLOOD_MS,
            "max": 1000,
            "gapMs": GAP_MS,
        },
        {"op": "sleep", "ms": 4000},  # the polls take one token every 1.7 s, the limit gives one a second
        {"op": "post", "activity": message("u1", "after", "after")},
        {"op": "wait", "activities": [{"text": "echo: after"}]},
    ]
    options = {"secret": SECRET, "pollingInterval": POLL_MS, "rxjsTimer": rxjs_timer, "steps": steps}
    run = run_client(node, scenario(service, web_socket=False, **options))
    why = run.describe()

    # the run: Online to the end, the refilled limit let "after" through (a failed post fails the run)
    assert FAILED_TO_CONNECT not in run.statuses and EXPIRED_TOKEN not in run.statuses, why
    assert run.statuses[-1] == ENDED, why

    results = run.of("postResult")
    accepted = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] != 200]
    assert accepted and refused, f"the flood must be accepted, then throttled\n{why}"
    answers = [e for e in run.http("POST", r"/conversations/[^/]+/activities") if e["status"] != 200]
    assert [a["status"] for a in answers] == [429] * len(refused), why
    for answer, result in zip(answers, refused, strict=True):
        assert 0 < int(answer["retryAfter"]) <= 1000, f"milliseconds, at most the refill of one\n{why}"
        result["answer"] = answer

    # polling never failed, and went on through the throttling: a poll sent after an accepted post had been
    # answered brought nothing newer than its watermark (throttled), and later polls brought the activities
    polls = run.http("GET", r"/conversations/[^/]+/activities\?watermark=\d*")
    assert polls and all(p["status"] == 200 for p in polls), why
    throttled_polls = [
        p
        for p in polls
        if p["count"] == 0
        and any(r["endedAt"] < p["sentAt"] and _seq(r["id"]) > _watermark_of(p["url"]) for r in accepted)
    ]
    assert throttled_polls, f"no poll was throttled\n{why}"
    assert any(p["sentAt"] > throttled_polls[0]["endedAt"] and p["count"] > 0 for p in polls), why

    # nothing accepted is lost: every accepted post and the bot's echo of it reached the client; nothing refused
    texts = [a.get("text") for a in run.activities]
    for result in accepted:
        assert result["text"] in texts and f"echo: {result['text']}" in texts, why
    assert not any(r["text"] in texts for r in refused), why
    return run, accepted, refused


def test_directlinejs_as_published_fails_a_throttled_post_at_once_and_keeps_polling(
    node: str, throttled: Openline
) -> None:
    run, _, refused = _flood(node, throttled, rxjs_timer=False)
    # DLJS's missing Observable.timer: the 429 becomes a TypeError, which postActivity turns into "retry"
    assert {r["status"] for r in refused} == {"retry"}, run.describe()


def test_directlinejs_with_the_rxjs_timer_waits_the_retry_after_then_fails(node: str, throttled: Openline) -> None:
    run, _, refused = _flood(node, throttled, rxjs_timer=True)
    why = run.describe()
    assert {r["status"] for r in refused} == {429}, why
    for result in refused:
        retry_after = int(result["answer"]["retryAfter"])
        waited = result["endedAt"] - result["answer"]["endedAt"]  # from the 429's arrival to the post's failure
        assert retry_after - 50 <= waited <= retry_after + SLACK_MS, why


@pytest.fixture
def secret_limited(procs: Processes) -> Iterator[Openline]:
    bot = procs.bot(wait=False)
    args = ["--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data")]
    service = procs.openline(*args, "--rate-limit", "2/4s", wait=False)
    bot.wait_ready()
    service.wait_ready()
    yield service


def test_a_throttled_start_is_retried_by_directlinejs_until_it_connects(node: str, secret_limited: Openline) -> None:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        generate = secret_limited.url + "/v3/directline/tokens/generate"
        answers = [http.post(generate, headers={"Authorization": f"Bearer {SECRET}"}).status_code for _ in range(3)]
    assert answers == [200, 200, 429]  # the secret's bucket is empty: the next token comes in 2 s
    steps = [{"op": "wait", "activities": [{"text": "Welcome, u1!"}]}]
    options = {"secret": SECRET, "userId": "u1", "timeout": 1500, "steps": steps}
    run = run_client(node, scenario(secret_limited, web_socket=True, **options))
    why = run.describe()
    starts = run.http("POST", "/conversations")
    assert starts[0]["status"] == 429 and starts[-1]["status"] == 201, why
    assert FAILED_TO_CONNECT not in run.statuses and ONLINE in run.statuses, why
