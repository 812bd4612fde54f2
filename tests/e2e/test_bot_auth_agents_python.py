"""Bot authentication both ways with a Microsoft 365 Agents SDK for Python 1.9 agent (tests/e2e/agents_bot.py).

The agent is the SDK's quickstart (AgentApplication on aiohttp, MsalConnectionManager,
load_configuration_from_env) with one change, the one agents-sdk.md §2.1 allows: the
SDK's inbound middleware only fetches keys from Microsoft's hosts, so a 40-line
replacement validates openline's channel tokens against openline's JWKS. Outbound
is settings only: CLIENTID / CLIENTSECRET / TENANTID / AUTHORITY={public-url}/adfs
and the CA bundle in SSL_CERT_FILE and REQUESTS_CA_BUNDLE.

What is proven, against a real openline over https with the bot's app id configured
(so openline signs every call to the agent, and its connector API refuses any reply
without a token openline issued to that app id):

1. With the right settings, the agent accepts openline's channel tokens, gets
   its access token from openline's token endpoint with MSAL, and its echo reaches a
   Direct Line 3.0 client, on the first turn and on the next (MSAL's cached token).
   The same reply without that token is refused by openline (401).
2. With a wrong app password, MSAL's token request fails, the agent answers 500,
   and the 3.0 client's POST fails with 502 BotRejectedActivity whose message says
   the bot asked for a token with a wrong app password; no reply is stored.
3. A forged (another RSA key, openline's kid), an expired (10 minutes ago, beyond the
   300 s leeway; openline's key), a foreign-audience (openline's key) and no channel
   token at all, POSTed by the test to the agent with a valid activity for an existing
   conversation, are refused (401) and no reply reaches openline; the same activity
   with a token minted like openline's (openline's key, right claims) is answered
   202 and its echo arrives, so the refusals are the token's alone.

Shared with the other SDKs' tests: tests/e2e/_bot_auth.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openline.devcert import DevCert
from tests.e2e import _bot_auth
from tests.e2e._bot_auth import APP_PASSWORD, WRONG_PASSWORD, Stack
from tests.e2e.harness import BOT_ID, Process, Processes

AGENT_SCRIPT = Path(__file__).resolve().parent / "agents_bot.py"
APP_ID = "agents-python-app-id"
SETTINGS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def _start(procs: Processes, dev_cert: DevCert, agent_password: str = APP_PASSWORD) -> Stack:
    """openline with the bot's app id and password, and the agent configured with `agent_password`."""

    def launch(public_url: str, port: int) -> Process:
        env = {
            "PORT": str(port),
            # outbound: MSAL's client credentials against openline's token endpoint (settings only)
            SETTINGS + "CLIENTID": APP_ID,
            SETTINGS + "CLIENTSECRET": agent_password,
            SETTINGS + "TENANTID": "openline",
            SETTINGS + "AUTHORITY": f"{public_url}/adfs",
            "SSL_CERT_FILE": str(dev_cert.bundle),
            "REQUESTS_CA_BUNDLE": str(dev_cert.bundle),
            # inbound: the replacement middleware of agents_bot.py
            "OPENLINE_ISSUER": public_url,
            "OPENLINE_JWKS_URL": f"{public_url}/v1/.well-known/keys",
        }
        return procs.process("agent", [sys.executable, str(AGENT_SCRIPT)], env=env)

    return _bot_auth.start(procs, dev_cert, launch, app_id=APP_ID)


def test_agent_accepts_channel_tokens_and_replies_with_its_own(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert)
    cid = stack.dl.start("hello")
    assert stack.dl.transcript(cid) == [("user1", "hello"), (BOT_ID, "echo: hello")], (
        "the echo got through openline's connector API, which refuses a reply without the bot's access token"
    )
    stack.dl.send(cid, "again")
    assert stack.dl.transcript(cid)[2:] == [("user1", "again"), (BOT_ID, "echo: again")]

    # the same reply without the agent's token is refused by openline's connector API
    _bot_auth.assert_connector_refuses_anonymous(stack, cid)
    assert len(stack.dl.transcript(cid)) == 4

    # from openline: its JWKS fetched once by the middleware, one token for both turns (MSAL's cache)
    assert stack.service.stderr.count('"GET /v1/.well-known/keys" 200') == 1, stack.service.stderr
    assert stack.service.stderr.count('"POST /adfs/oauth2/token" 200') == 1, stack.service.stderr
    assert "channel token refused" not in stack.bot.stderr
    assert "on_turn_error" not in stack.bot.stderr, stack.bot.stderr
    assert "wrong app password" not in stack.service.stderr


def test_wrong_password_fails_the_post_with_a_clear_error(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert, agent_password=WRONG_PASSWORD)
    # the agent answers 500 when MSAL's token request fails
    _bot_auth.assert_refused_turn(stack, status=500, refusal=_bot_auth.ASKED_WITH_WRONG_PASSWORD)
    assert "invalid_client" in stack.bot.stderr, "MSAL's error, as the agent logged it"


def test_agent_refuses_forged_expired_and_foreign_tokens(procs: Processes, dev_cert: DevCert) -> None:
    stack = _start(procs, dev_cert)
    answers = _bot_auth.refuse_bad_channel_tokens(stack, control_reply="echo: control")
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "forged": 401,
        "expired": 401,
        "foreign audience": 401,
        "no token": 401,
        "control": 202,
    }, {name: answer.text for name, answer in answers.items()}
    # the agent does refuse a call without a token (no ANONYMOUS_ALLOWED): openline's token is what lets it in
    assert answers["no token"].json() == {"error": "Authorization header not found"}
    refused = stack.bot.stderr
    assert "InvalidSignatureError" in refused and "ExpiredSignatureError" in refused, refused
    assert "InvalidAudienceError" in refused, refused
