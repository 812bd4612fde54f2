"""Bot authentication both ways with a botbuilder-js 4.23 bot (CloudAdapter, tests/js/botbuilder_bot.js).

openline serves https and knows the bot's app id and password, so it signs every POST to the bot and refuses
the bot's connector calls unless they carry a token from its own token endpoint. Proven here:

1. With the README's settings (environment variables, plus the small credentials factory that gives msal-node
   `knownAuthorities`), the bot accepts openline's channel tokens, gets its own token from `P/adfs`, and its
   replies reach a Direct Line 3.0 client. A reply can only have been stored with a valid bot token: the same
   connector call without one is refused (checked too).
2. With a wrong app password the bot's token request is refused; the client's POST answers 502
   `BotRejectedActivity` saying that the bot asked for a token with a wrong app password, and no reply is stored.
3. Channel tokens that are forged (another RSA key under openline's `kid`), expired (10 minutes ago, past the
   300 s clock tolerance), for another app id or missing are refused by the bot (500 for the forged one, 401 for
   the others), and nothing reaches the conversation; the same POST with a good token (the control) is answered
   200 and echoed.

Shared with the other SDKs' tests: tests/e2e/_bot_auth.py.
"""

from __future__ import annotations

import pytest

from openline.devcert import DevCert
from tests.e2e import _bot_auth
from tests.e2e._bot_auth import APP_PASSWORD, OTHER_APP_ID, WRONG_PASSWORD, Stack, botbuilder_settings
from tests.e2e._js import JS_DIR, node_with_packages
from tests.e2e.harness import BOT_ID, Process, Processes

BOT_SCRIPT = JS_DIR / "botbuilder_bot.js"
APP_ID = "0b7c6f43-5d1e-4c1b-9b55-botbuilder-js"


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages("the botbuilder-js bot authentication tests")


def _start(procs: Processes, dev_cert: DevCert, node: str, password: str = APP_PASSWORD) -> Stack:
    """openline (https, the bot's app id and right password) and the botbuilder-js bot given `password`."""

    def launch(public_url: str, port: int) -> Process:
        # what the README tells a botbuilder-js bot: environment variables only (the factory reads two of them)
        env = botbuilder_settings(public_url, APP_ID, password)
        env |= {"NODE_EXTRA_CA_CERTS": str(dev_cert.ca_cert), "PORT": str(port)}
        return procs.process("botbuilder-js", [node, str(BOT_SCRIPT)], env=env)

    return _bot_auth.start(procs, dev_cert, launch, app_id=APP_ID)


def test_replies_reach_the_client(procs: Processes, dev_cert: DevCert, node: str) -> None:
    stack = _start(procs, dev_cert, node)
    cid = stack.dl.start("hi")
    assert stack.dl.transcript(cid) == [
        ("user1", "hi"),
        (BOT_ID, "Hello and welcome!"),
        (BOT_ID, "Echo: hi"),
    ], "the welcome (to conversationUpdate) and the echo were sent with the bot's own token"

    # the token was not optional: the same connector call without one is refused
    _bot_auth.assert_connector_refuses_anonymous(stack, cid)
    assert "onTurnError" not in stack.bot.stderr, stack.bot.stderr

    # a second turn reuses the bot's token: one token request for three replies
    stack.dl.send(cid, "again")
    assert stack.dl.transcript(cid)[-2:] == [("user1", "again"), (BOT_ID, "Echo: again")]
    assert "onTurnError" not in stack.bot.stderr, stack.bot.stderr
    assert stack.service.stderr.count('"POST /adfs/oauth2/token') == 1, stack.service.stderr


def test_wrong_password_is_a_clear_error(procs: Processes, dev_cert: DevCert, node: str) -> None:
    stack = _start(procs, dev_cert, node, password=WRONG_PASSWORD)
    # CloudAdapter answers 500 when its onTurnError's own replies fail too
    _bot_auth.assert_refused_turn(stack, status=500, refusal=_bot_auth.ASKED_WITH_WRONG_PASSWORD)
    assert "invalid_client" in stack.bot.stderr, stack.bot.stderr  # msal-node's error, in the bot's onTurnError


def test_bad_channel_tokens_are_refused(procs: Processes, dev_cert: DevCert, node: str) -> None:
    stack = _start(procs, dev_cert, node)
    answers = _bot_auth.refuse_bad_channel_tokens(stack, control_reply="Echo: control")
    # each for the intended reason; a forged signature gives 500, as jsonwebtoken's error is no AuthenticationError
    assert {name: (answer.status_code, answer.text) for name, answer in answers.items()} == {
        "forged": (500, "invalid signature"),
        "expired": (401, "The token has expired"),
        "foreign audience": (401, f"Unauthorized. Invalid AppId passed on token: {OTHER_APP_ID}"),
        "no token": (401, "Unauthorized Access. Request is not authorized"),
        "control": (200, ""),
    }
