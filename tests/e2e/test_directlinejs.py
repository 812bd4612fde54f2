"""The real botframework-directlinejs client (under Node, tests/js/dl_client.js) against openline's Direct Line 3.0 API.

Each test starts the botbuilder bot and openline, then runs the Node driver with a JSON scenario (what to post,
what to wait for) and checks the JSON lines it prints: connection statuses, the activities DLJS emitted, the ids
postActivity() returned, every REST call and WebSocket it made, and its final watermark and token.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e._js import JS_DIR, node_with_packages
from tests.e2e.harness import BOT_ID, HTTP_TIMEOUT, SECRET, Openline, Processes

DRIVER = JS_DIR / "dl_client.js"
DRIVER_TIMEOUT = 45.0  # seconds a driver run may take (it bounds itself: 20 s a step, 40 s in all)
STEP_TIMEOUT_MS = 20_000
SETTLE_MS = 700  # after the last awaited activity, how long the client keeps listening for duplicates
REFRESH_INTERVAL_MS = 2_000  # DLJS's 15-minute token refresh interval, shortened for the refresh test

# connectionStatus values of DLJS
CONNECTING, ONLINE, EXPIRED_TOKEN, FAILED_TO_CONNECT, ENDED = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with tests/js/node_modules installed."""
    return node_with_packages("the botframework-directlinejs tests")


@pytest.fixture
def service(procs: Processes) -> Iterator[Openline]:
    """The botbuilder bot and openline in front of it, with a keep-alive frame every second on 3.0 streams."""
    bot = procs.bot(wait=False)
    args = ["--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data")]
    service = procs.openline(*args, "--stream-keepalive", "1", wait=False)
    bot.wait_ready()
    service.wait_ready()
    yield service
    assert "on_turn_error" not in bot.stderr, bot.stderr


# --- running the driver -----------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one driver run printed, one JSON object a line."""

    events: list[dict[str, Any]]
    stderr: str = ""
    scenario: dict[str, Any] = field(default_factory=dict)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    @property
    def activities(self) -> list[dict[str, Any]]:
        """The activities DLJS emitted that are persisted (typing is not: it has no sequence number)."""
        return [e["activity"] for e in self.of("activity") if e["activity"].get("type") != "typing"]

    @property
    def statuses(self) -> list[int]:
        return [e["status"] for e in self.of("status")]

    @property
    def posted(self) -> list[str]:
        return [e["id"] for e in self.of("posted")]

    @property
    def done(self) -> dict[str, Any]:
        (done,) = self.of("done")
        return done

    def http(self, method: str, path_pattern: str) -> list[dict[str, Any]]:
        """The REST calls with this method whose URL path (after /v3/directline) fully matches the pattern."""
        return [
            e
            for e in self.of("http")
            if e["method"] == method and re.fullmatch(path_pattern, e["url"].split("/v3/directline", 1)[1])
        ]

    def describe(self) -> str:
        lines = "\n".join(json.dumps(e) for e in self.events)
        return f"scenario: {json.dumps(self.scenario)}\n--- driver stdout\n{lines}\n--- driver stderr\n{self.stderr}"


def run_client(node: str, scenario: dict[str, Any]) -> Run:
    """Run tests/js/dl_client.js on the scenario; fail the test with its output if it does not exit 0."""
    scenario = {"timeoutMs": STEP_TIMEOUT_MS, "totalTimeoutMs": 40_000, **scenario}
    try:
        result = subprocess.run(
            [node, str(DRIVER), "-"],
            input=json.dumps(scenario),
            capture_output=True,
            text=True,
            cwd=JS_DIR,
            timeout=DRIVER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the DLJS driver did not exit within {DRIVER_TIMEOUT:g} s\n{e.stdout!r}\n{e.stderr!r}")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    run = Run(events, result.stderr, scenario)
    if result.returncode != 0:
        pytest.fail(f"the DLJS driver exited with {result.returncode}\n{run.describe()}")
    return run


def scenario(service: Openline, *, web_socket: bool, **options: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"domain": service.url + "/v3/directline", "webSocket": web_socket}
    if not web_socket:
        base["pollingInterval"] = 200
    return {**base, **options}


def message(user_id: str, text: str, client_activity_id: str, **fields: Any) -> dict[str, Any]:
    """A message as Web Chat posts it (from, text, locale, channelData.clientActivityID)."""
    return {
        "type": "message",
        "from": {"id": user_id, "role": "user", **fields},
        "text": text,
        "locale": "en-US",
        "channelData": {"clientActivityID": client_activity_id},
    }


def exchange(user_id: str, text: str, client_activity_id: str, **fields: Any) -> list[dict[str, Any]]:
    """Steps: post a message, wait for its echo (matched by clientActivityID) and the bot's echo reply."""
    return [
        {"op": "post", "activity": message(user_id, text, client_activity_id, **fields)},
        {
            "op": "wait",
            "activities": [
                {"text": text, "channelData": {"clientActivityID": client_activity_id}},
                {"text": f"echo: {text}"},
            ],
            "settleMs": SETTLE_MS,
        },
    ]


def welcome(user_id: str) -> dict[str, Any]:
    return {"op": "wait", "activities": [{"type": "message", "text": f"Welcome, {user_id}!"}]}


def generate_token(service: Openline, user: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        response = http.post(
            service.url + "/v3/directline/tokens/generate",
            headers={"Authorization": f"Bearer {SECRET}"},
            json={"user": user},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["token"], str) and isinstance(body["conversationId"], str), body
    return body


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (not verified: the service checks signatures, the test reads claims)."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWT: {token!r}"
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


# --- checks -----------------------------------------------------------------------------------------------------


def seq_of(activity: dict[str, Any], conversation_id: str) -> int:
    """The sequence number of a 3.0 activity id, after checking it is `{conversationId}|{7 digits}`."""
    match = re.fullmatch(re.escape(conversation_id) + r"\|(\d{7})", str(activity.get("id")))
    assert match, f"activity id {activity.get('id')!r} is not '{conversation_id}|<7 digits>'"
    return int(match.group(1))


def summary(activities: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["from"]["id"], a.get("text", "")) for a in activities]


def check_run(run: Run, conversation_id: str, web_socket: bool, service: Openline) -> None:
    """What every run must show: it went Online and then Ended only, every REST call succeeded, the transport."""
    statuses = run.statuses
    assert ONLINE in statuses, run.describe()
    assert statuses[-1] == ENDED, run.describe()
    assert EXPIRED_TOKEN not in statuses and FAILED_TO_CONNECT not in statuses, run.describe()
    failed = [e for e in run.of("http") if not 200 <= e["status"] < 300 and not e.get("aborted")]
    assert not failed, f"REST calls that failed: {failed}\n{run.describe()}"
    assert run.done["conversationId"] == conversation_id
    sockets = [e for e in run.of("ws") if e["state"] == "open"]
    if web_socket:
        assert len(sockets) == 1, f"one WebSocket, opened once\n{run.describe()}"
        ws_base = service.url.replace("http://", "ws://", 1)
        stream = f"{ws_base}/v3/directline/conversations/{conversation_id}/stream?"
        assert sockets[0]["url"].startswith(stream), run.describe()
        assert not [e for e in run.of("ws") if e["state"] == "error"], run.describe()
        assert not run.http("GET", r"/conversations/[^/]+/activities\?.*"), "no polling in WebSocket mode"
    else:
        assert not run.of("ws"), "no WebSocket in polling mode"
        assert len(run.http("GET", rf"/conversations/{re.escape(conversation_id)}/activities\?watermark=.*")) >= 2


def check_exchange(run: Run, conversation_id: str, user_id: str, texts: list[str], client_ids: list[str]) -> None:
    """The activities are (user text, bot echo) pairs, ids consecutive, echoes carrying the post's id and channelData.

    Its activities must be exactly `texts` echoed, in order, with nothing else (the welcome is checked apart).
    """
    activities = run.activities
    expected: list[tuple[str, str]] = []
    for text in texts:
        expected += [(user_id, text), (BOT_ID, f"echo: {text}")]
    assert summary(activities) == expected, run.describe()
    seqs = [seq_of(a, conversation_id) for a in activities]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"ids not consecutive: {seqs}\n{run.describe()}"
    assert run.posted == [a["id"] for a in activities[::2]], "postActivity() gives the id of the user's echo"
    for (user, reply), client_id in zip(zip(activities[::2], activities[1::2], strict=True), client_ids, strict=True):
        assert user["channelData"]["clientActivityID"] == client_id, user
        assert user["type"] == "message" and reply["type"] == "message"
        # botbuilder-python leaves replyToId out on the directline channel (TurnContext.get_conversation_reference)
        assert reply.get("replyToId") in (None, user["id"]), reply
        assert reply["recipient"]["id"] == user_id, reply
    for a in activities:
        assert a["conversation"]["id"] == conversation_id, a
        assert a["channelId"] == "directline", a
        assert isinstance(a.get("timestamp"), str) and a["timestamp"], a
    stamps = [a["timestamp"] for a in activities]
    assert stamps == sorted(stamps), f"timestamps go up: {stamps}"


def start_with_welcome(run: Run, conversation_id: str, user_id: str) -> Run:
    """Check and drop the welcome (the first activity, from the bot), returning a view of the rest."""
    first = run.activities[0]
    assert (first["from"]["id"], first["text"]) == (BOT_ID, f"Welcome, {user_id}!"), run.describe()
    assert first["conversation"]["id"] == conversation_id
    rest = [e for e in run.events if not (e["event"] == "activity" and e["activity"].get("id") == first["id"])]
    return Run(rest, run.stderr, run.scenario)


# --- the tests --------------------------------------------------------------------------------------------------

TRANSPORTS = [pytest.param(True, id="websocket"), pytest.param(False, id="polling")]


@pytest.mark.parametrize("web_socket", TRANSPORTS)
def test_secret_conversation(node: str, service: Openline, web_socket: bool) -> None:
    """A secret and setUserId: welcome on connect, then the user's echo (id, clientActivityID) and the bot's reply."""
    run = run_client(
        node,
        scenario(
            service,
            web_socket=web_socket,
            secret=SECRET,
            userId="user1",
            steps=[welcome("user1"), *exchange("user1", "hello", "client-1")],
        ),
    )
    cid = run.done["conversationId"]
    check_run(run, cid, web_socket, service)
    assert run.http("POST", r"/conversations")[0]["status"] == 201
    assert run.done["token"] == SECRET, "with a secret DLJS keeps using the secret"
    rest = start_with_welcome(run, cid, "user1")
    check_exchange(rest, cid, "user1", ["hello"], ["client-1"])
    assert seq_of(rest.activities[0], cid) == seq_of(run.activities[0], cid) + 1, "no gap after the welcome"
    assert isinstance(run.done["watermark"], str) and run.done["watermark"]


@pytest.mark.parametrize("web_socket", TRANSPORTS)
def test_token_with_user(node: str, service: Openline, web_socket: bool) -> None:
    """A token from /tokens/generate with a user: DLJS starts the token's conversation; the echo is from that user."""
    generated = generate_token(service, {"id": "dl_test1", "name": "Test"})
    claims = jwt_claims(generated["token"])
    assert claims["conv"] == generated["conversationId"] and claims["user"] == "dl_test1", claims
    assert isinstance(generated["expires_in"], int) and generated["expires_in"] > 15 * 60

    run = run_client(
        node,
        scenario(
            service,
            web_socket=web_socket,
            token=generated["token"],
            steps=[welcome("dl_test1"), *exchange("dl_test1", "hi with a token", "client-t")],
        ),
    )
    cid = generated["conversationId"]
    check_run(run, cid, web_socket, service)
    (start,) = run.http("POST", r"/conversations")
    assert start["bearer"] == generated["token"]
    rest = start_with_welcome(run, cid, "dl_test1")
    check_exchange(rest, cid, "dl_test1", ["hi with a token"], ["client-t"])
    assert rest.activities[0]["from"]["id"] == "dl_test1"
    # DLJS took the token of the start response; it is for the same conversation and user
    final = jwt_claims(run.done["token"])
    assert final["conv"] == cid and final["user"] == "dl_test1", final


def test_resume_with_watermark(node: str, service: Openline) -> None:
    """A client ends; new clients (WebSocket, then polling) resume with conversationId and the last watermark."""
    first = run_client(
        node,
        scenario(
            service,
            web_socket=True,
            secret=SECRET,
            userId="user1",
            steps=[welcome("user1"), *exchange("user1", "one", "c-1"), *exchange("user1", "two", "c-2")],
        ),
    )
    cid = first.done["conversationId"]
    check_run(first, cid, True, service)
    check_exchange(start_with_welcome(first, cid, "user1"), cid, "user1", ["one", "two"], ["c-1", "c-2"])
    seen = {a["id"] for a in first.activities}
    last_seq = max(seq_of(a, cid) for a in first.activities)
    watermark = first.done["watermark"]

    for web_socket, text in [(True, "three"), (False, "four")]:
        run = run_client(
            node,
            scenario(
                service,
                web_socket=web_socket,
                secret=SECRET,
                userId="user1",
                conversationId=cid,
                watermark=watermark,
                steps=exchange("user1", text, f"c-{text}"),
            ),
        )
        check_run(run, cid, web_socket, service)
        (reconnect,) = run.http("GET", rf"/conversations/{re.escape(cid)}\?watermark=.*")
        assert reconnect["url"].endswith(f"?watermark={watermark}"), reconnect
        assert not run.http("POST", r"/conversations"), "a resume does not start a conversation"
        # exactly the new activities: none seen before, none missing
        check_exchange(run, cid, "user1", [text], [f"c-{text}"])
        ids = [a["id"] for a in run.activities]
        assert not seen & set(ids), f"replayed activities from before the watermark\n{run.describe()}"
        assert [seq_of(a, cid) for a in run.activities] == [last_seq + 1, last_seq + 2], run.describe()
        assert run.done["watermark"] != watermark
        seen |= set(ids)
        last_seq += 2
        watermark = run.done["watermark"]


def test_token_refresh(node: str, service: Openline) -> None:
    """DLJS's own refresh loop, its 15-minute interval run every 2 s: new tokens, same conversation and user."""
    generated = generate_token(service, {"id": "dl_test1", "name": "Test"})
    cid = generated["conversationId"]
    run = run_client(
        node,
        scenario(
            service,
            web_socket=True,
            token=generated["token"],
            refreshIntervalMs=REFRESH_INTERVAL_MS,
            steps=[
                welcome("dl_test1"),
                {"op": "waitTokenRefresh", "count": 2},
                *exchange("dl_test1", "after refresh", "client-r"),
            ],
        ),
    )
    check_run(run, cid, True, service)
    keepalives = [e for e in run.of("ws") if e["state"] == "keepalive"]
    assert len(keepalives) >= 2, "the stream's empty keep-alive frames (every 1 s) reach DLJS, which ignores them"
    assert run.of("scheduler") == [{"event": "scheduler", "delay": 15 * 60 * 1000, "mappedTo": REFRESH_INTERVAL_MS}], (
        "DLJS scheduled its 15-minute refresh interval on the given scheduler"
    )
    refreshes = [r for r in run.http("POST", r"/tokens/refresh") if not r.get("aborted")]
    assert len(refreshes) >= 2 and all(r["status"] == 200 for r in refreshes), run.describe()
    # the first refresh sends the token of the start response, each next one the token the previous refresh gave
    (start,) = run.http("POST", r"/conversations")
    bearers = [r["bearer"] for r in refreshes]
    new_tokens = [r["responseToken"] for r in refreshes]
    assert bearers == [start["responseToken"], *new_tokens[:-1]], run.describe()
    assert len(set(new_tokens)) == len(new_tokens), "every refresh gives a new token"
    assert generated["token"] not in new_tokens and start["responseToken"] not in new_tokens

    final = run.done["token"]
    assert final == new_tokens[-1], "dl.token is the last refreshed token"
    for token in new_tokens:
        claims = jwt_claims(token)
        assert claims["conv"] == cid, claims
        assert claims["user"] == "dl_test1", claims
        assert claims["exp"] > time.time() + 15 * 60, claims

    # the post went out with a refreshed token, and the conversation carried on
    (post,) = run.http("POST", rf"/conversations/{re.escape(cid)}/activities")
    assert post["bearer"] in new_tokens and post["status"] == 200, post
    check_exchange(start_with_welcome(run, cid, "dl_test1"), cid, "dl_test1", ["after refresh"], ["client-r"])
