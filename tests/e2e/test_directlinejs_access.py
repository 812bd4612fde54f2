"""Access rules with the real botframework-directlinejs client (under Node, tests/js/dl_client.js): a bot with
enhanced authentication and a trusted origin, the client sending a browser page's `Origin` on every REST call and on
the WebSocket handshake (the driver's `origin` option).

The token is made by a server (the secret, no Origin) with `trustedOrigins`, as the hosted service's docs show; the
client then runs as a page on that origin would: the bot's welcome for the token's `dl_` user arrives at the start,
and whatever `from.id` the page posts with, the activity is the token's user's. From another origin, or with the
secret in the page, the client cannot connect (403: FailedToConnect).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e._js import node_with_packages
from tests.e2e.harness import HTTP_TIMEOUT, SECRET, Openline, Processes
from tests.e2e.test_directlinejs import (
    FAILED_TO_CONNECT,
    TRANSPORTS,
    check_run,
    exchange,
    jwt_claims,
    run_client,
    scenario,
    start_with_welcome,
    welcome,
)

PAGE = "https://chat.example"
FOREIGN = "https://evil.example"


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages("the botframework-directlinejs access tests")


@pytest.fixture
def service(procs: Processes) -> Iterator[Openline]:
    """The botbuilder bot behind openline, the bot with enhanced authentication and one trusted origin."""
    bot = procs.bot(wait=False)
    args = ["--bot", bot.endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data")]
    access = ["--enhanced-auth", "--trusted-origins", PAGE]
    service = procs.openline(*args, *access, "--stream-keepalive", "1", wait=False)
    bot.wait_ready()
    service.wait_ready()
    yield service
    assert "on_turn_error" not in bot.stderr, bot.stderr


def _server_token(service: Openline, body: dict[str, Any]) -> dict[str, Any]:
    """What the page's own server does: exchange the secret for a token (no Origin: not from a browser)."""
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        r = http.post(
            service.url + "/v3/directline/tokens/generate", headers={"Authorization": f"Bearer {SECRET}"}, json=body
        )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.mark.parametrize("web_socket", TRANSPORTS)
def test_the_tokens_user_is_used_and_welcomed_at_the_start(node: str, service: Openline, web_socket: bool) -> None:
    generated = _server_token(service, {"trustedOrigins": [PAGE]})
    cid = generated["conversationId"]
    user = jwt_claims(generated["token"])["user"]
    assert user.startswith("dl_")
    # the page posts as the random user id Web Chat makes up when it does not read the token (r_...)
    run = run_client(
        node,
        scenario(
            service,
            web_socket=web_socket,
            token=generated["token"],
            origin=PAGE,
            steps=[welcome(user), *exchange("r_madeup", "hello from the page", "client-a")],
        ),
    )
    check_run(run, cid, web_socket, service)
    rest = start_with_welcome(run, cid, user)  # the welcome came first: before the page posted anything
    (echo,) = [a for a in rest.activities if a.get("text") == "hello from the page"]
    assert echo["from"]["id"] == user, run.describe()
    assert [a["text"] for a in rest.activities if a["from"]["id"] != user] == ["echo: hello from the page"]
    # every token DLJS was given keeps the user and the trusted origin
    final = jwt_claims(run.done["token"])
    assert (final["user"], final["origins"]) == (user, [PAGE])


def _refused(run_events: Any, path: str) -> None:
    statuses = [e["status"] for e in run_events.of("status")]
    assert FAILED_TO_CONNECT in statuses, run_events.describe()
    calls = run_events.http("POST", path)
    assert calls and calls[0]["status"] == 403, run_events.describe()
    assert not run_events.of("ws"), "no stream was opened"


def test_another_origin_cannot_connect(node: str, service: Openline) -> None:
    assert f"browsers only from {PAGE}" in service.stdout and "enhanced authentication" in service.stdout
    generated = _server_token(service, {"trustedOrigins": [PAGE]})
    run = run_client(
        node,
        scenario(
            service, web_socket=True, token=generated["token"], origin=FOREIGN, steps=[{"op": "sleep", "ms": 1500}]
        ),
    )
    _refused(run, r"/conversations")


def test_the_secret_cannot_be_used_from_a_page(node: str, service: Openline) -> None:
    run = run_client(
        node,
        scenario(service, web_socket=True, secret=SECRET, origin=PAGE, steps=[{"op": "sleep", "ms": 1500}]),
    )
    _refused(run, r"/conversations")
