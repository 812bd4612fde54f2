"""Bot authentication both ways with a stock botbuilder-python 4.17 bot (CloudAdapter), configured by settings only.

The bot is tests/e2e/botbuilder_bot.py, the official echo sample whose config.py
reads four more settings from the environment (README, "botbuilder Python"):
ConfigurationBotFrameworkAuthentication then trusts openline's OpenID metadata
and issuer for channel tokens, and asks openline's token endpoint (MSAL
authority P/adfs) for its own tokens. openline serves https with the dev
certificate, which the bot trusts through SSL_CERT_FILE and REQUESTS_CA_BUNDLE.

Proven here:
1. openline's channel tokens are accepted by the bot, the bot gets its access
   token from openline, and its replies reach a Direct Line 3.0 client. openline
   knows the bot's app id, so its connector API refuses calls without a valid
   access token (checked): the replies prove the bot's calls carried one.
2. With a wrong app password the bot cannot get a token: the client's POST
   answers 502 BotRejectedActivity saying so, and no reply is stored.
3. Channel tokens openline did not issue for this bot (signed by another RSA
   key, expired, for another app id, or none) are refused by the bot (not 2xx), and
   it sends no reply; a token with the right claims, signed by openline's key,
   is accepted (the control that the forgeries differ only where intended).

The bot without any of these settings and openline's plain `--bot URL` (no app
id, so no Authorization header) is tests/e2e/test_botbuilder.py.

Shared with the other SDKs' tests: tests/e2e/_bot_auth.py.
"""

from __future__ import annotations

import sys

from openline.devcert import DevCert
from tests.e2e import _bot_auth
from tests.e2e._bot_auth import APP_PASSWORD, WRONG_PASSWORD, Stack, botbuilder_settings
from tests.e2e.harness import BOT_ID, BOT_SCRIPT, Process, Processes

APP_ID = "5b1f3e0a-9c2d-4e8f-a7b6-0d1c2e3f4a5b"


def _start(procs: Processes, dev_cert: DevCert, password: str = APP_PASSWORD) -> Stack:
    """openline (https, the bot's app id and right password) and the bot given `password`, both ready."""

    def launch(public_url: str, port: int) -> Process:
        # the README's settings for botbuilder Python, and the dev CA for `requests` (MSAL) and aiohttp
        env = botbuilder_settings(public_url, APP_ID, password)
        env |= {"SSL_CERT_FILE": str(dev_cert.bundle), "REQUESTS_CA_BUNDLE": str(dev_cert.bundle)}
        return procs.process("bot", [sys.executable, str(BOT_SCRIPT), "--port", str(port)], env=env)

    return _bot_auth.start(procs, dev_cert, launch, app_id=APP_ID)


def test_replies_reach_a_30_client_with_auth_both_ways(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert)
    cid = stack.dl.start("hello")

    # the bot's turn ends only after its replies were sent, so they are stored by now
    assert stack.dl.transcript(cid) == [
        ("user1", "hello"),
        (BOT_ID, "Welcome, user1!"),
        (BOT_ID, "echo: hello"),
    ]
    # what made those calls succeed: openline's connector API refuses a caller without the bot's token
    _bot_auth.assert_connector_refuses_anonymous(stack, cid)
    assert "on_turn_error" not in stack.bot.stderr, stack.bot.stderr


def test_wrong_password_the_client_sees_why_and_no_reply_is_stored(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert, password=WRONG_PASSWORD)
    # the sample's aiohttp_error_middleware turns the SDK's PermissionError (no token) into a 401; openline
    # explains it by the refusal it recorded while the bot had the activity
    _bot_auth.assert_refused_turn(stack, status=401, refusal=_bot_auth.ASKED_WITH_WRONG_PASSWORD)
    # the bot's side: it accepted the channel token (its turn ran), then MSAL got openline's invalid_client
    assert "[on_turn_error] unhandled error: Failed to get access token with error: invalid_client" in stack.bot.stderr


def test_channel_tokens_openline_did_not_issue_are_refused(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert)
    answers = _bot_auth.refuse_bad_channel_tokens(stack, control_reply="echo: control")
    # botbuilder-python answers 500 for some refusals (bot-connector.md §3e); its log tells they are the JWT's fault
    assert answers["control"].status_code == 201, answers["control"].text
    assert "jwt.exceptions.InvalidSignatureError: Signature verification failed" in stack.bot.stderr
    assert "jwt.exceptions.ExpiredSignatureError: Signature has expired" in stack.bot.stderr
    assert "on_turn_error" not in stack.bot.stderr, stack.bot.stderr
