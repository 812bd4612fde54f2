"""A Microsoft 365 Agents SDK for JS 1.8 agent (tests/js/agents_bot.js) authenticating both ways with openline.

The agent is the SDK's quickstart (`AgentApplication` + `startServer`, an echo on message) with settings only,
in environment variables (agents-sdk.md §2.2, §3.2 option A); openline knows it by an app id and a sidecar
secret, with no app password at all. What is proven:

1. Inbound, `CLIENTID` + `AUTHORITYENDPOINT={openline}/adfs` make the agent accept openline's channel tokens
   (it reads the keys at `{openline}/adfs/discovery/v2.0/keys`, trusting openline's CA by `NODE_EXTRA_CA_CERTS`);
   outbound, `AUTHTYPE=EntraAuthSideCar` + `SIDECARBASEURL={openline}/sidecar/<secret>` get it its access token
   from openline's sidecar API (once: the SDK caches it across turns). Its echoes reach a Direct Line 3.0
   client. openline refuses this bot's connector calls without a token (checked), so a stored reply carried
   openline's token.
2. With a wrong sidecar secret in `SIDECARBASEURL` (the sidecar mode's "wrong password"), the sidecar answers
   404 "Unknown sidecar secret (check SIDECARBASEURL)", the agent fails its turn with 500, and the client's POST
   answers 502 `BotRejectedActivity` saying the sidecar was asked for a token with a secret that is no bot's
   (openline blames the one bot that has a sidecar secret); the message is stored, no reply is.
3. Channel tokens the agent must refuse, POSTed by the test straight to its /api/messages with a valid activity
   whose serviceUrl is openline's: forged (another RSA key, under openline's kid), expired (600 s ago, past the
   SDK's 300 s clock tolerance; openline's real key), for another audience (openline's key), and none at all.
   Each gets 401 and no reply reaches openline; the same activity with a good token is answered.

Shared with the other SDKs' tests: tests/e2e/_bot_auth.py.
"""

from __future__ import annotations

import re
import secrets

import pytest

from openline.devcert import DevCert
from tests.e2e import _bot_auth
from tests.e2e._bot_auth import Stack
from tests.e2e._js import JS_DIR, node_with_packages
from tests.e2e.harness import BOT_ID, Openline, Process, Processes

AGENT_SCRIPT = JS_DIR / "agents_bot.js"
APP_ID = "agents-js-app-id"
SETTINGS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"  # the SDK also reads Connections__serviceConnection__...
# openline's access log redacts the sidecar secret in the path
SIDECAR_CALL = re.compile(r'"GET /sidecar/[^/" ]+/AuthorizationHeaderUnauthenticated/default\?[^" ]*" (\d{3})')


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with tests/js/node_modules installed."""
    return node_with_packages("the Agents SDK for JS bot authentication tests")


def _start(procs: Processes, dev_cert: DevCert, node: str, *, agent_secret: str | None = None) -> Stack:
    """openline over https with the agent as its bot (app id and sidecar secret, no password), and the agent.

    `agent_secret`: the sidecar secret the agent is configured with, when it is not openline's.
    """
    sidecar_secret = secrets.token_urlsafe(32)

    def launch(public_url: str, port: int) -> Process:
        # what the README shows Agents SDK JS developers, and the port startServer reads
        env = {
            "PORT": str(port),
            f"{SETTINGS}CLIENTID": APP_ID,
            f"{SETTINGS}AUTHORITYENDPOINT": f"{public_url}/adfs",
            f"{SETTINGS}AUTHTYPE": "EntraAuthSideCar",
            f"{SETTINGS}SIDECARBASEURL": f"{public_url}/sidecar/{agent_secret or sidecar_secret}",
            "NODE_EXTRA_CA_CERTS": str(dev_cert.ca_cert),
        }
        return procs.process("agent", [node, str(AGENT_SCRIPT)], env=env)

    return _bot_auth.start(procs, dev_cert, launch, app_id=APP_ID, password=None, sidecar_secret=sidecar_secret)


def sidecar_statuses(service: Openline) -> list[int]:
    """The statuses of the sidecar token requests in openline's access log, in order."""
    return [int(status) for status in SIDECAR_CALL.findall(service.stderr)]


# --- 1. settings only: the agent's replies reach a 3.0 client -------------------------------------------------


def test_agent_with_settings_only_replies_to_a_3_0_client(procs: Processes, dev_cert: DevCert, node: str) -> None:
    stack = _start(procs, dev_cert, node)
    cid = stack.dl.start()

    for text in ("hello", "second"):
        sent = stack.dl.send(cid, text)
        assert sent["id"].startswith(cid + "|"), sent
    assert stack.dl.transcript(cid) == [
        ("user1", "hello"),
        (BOT_ID, "echo: hello"),
        ("user1", "second"),
        (BOT_ID, "echo: second"),
    ]

    # the replies carried openline's token: this bot's connector calls are refused without one
    _bot_auth.assert_connector_refuses_anonymous(stack, cid)

    # inbound keys from {authority}/discovery/v2.0/keys; one sidecar token for every turn; no MSAL, no password
    log = stack.service.stderr
    assert '"GET /adfs/discovery/v2.0/keys" 200' in log, log
    assert sidecar_statuses(stack.service) == [200], log
    assert "/adfs/oauth2/token" not in log and "/.well-known/openid-configuration" not in log, log
    assert "Error" not in stack.bot.stderr, stack.bot.stderr


# --- 2. a wrong sidecar secret: the client's POST fails, no reply -----------------------------------------------


def test_wrong_sidecar_secret_fails_the_post_and_stores_no_reply(
    procs: Processes, dev_cert: DevCert, node: str
) -> None:
    stack = _start(procs, dev_cert, node, agent_secret=secrets.token_urlsafe(32))
    # openline blames the unknown sidecar secret on the one bot that has a sidecar secret
    _bot_auth.assert_refused_turn(stack, status=500, refusal=_bot_auth.ASKED_SIDECAR_WITH_WRONG_SECRET)

    # why: openline's sidecar refused the secret (404, its title saying what to check), the agent failed its turn
    assert sidecar_statuses(stack.service), stack.service.stderr
    assert set(sidecar_statuses(stack.service)) == {404}, stack.service.stderr
    refused = "Sidecar returned error status 404: Unknown sidecar secret (check SIDECARBASEURL)"
    assert refused in stack.bot.stderr, stack.bot.stderr


# --- 3. channel tokens the agent must refuse ----------------------------------------------------------------------


def test_agent_refuses_forged_expired_and_foreign_channel_tokens(
    procs: Processes, dev_cert: DevCert, node: str
) -> None:
    stack = _start(procs, dev_cert, node)
    answers = _bot_auth.refuse_bad_channel_tokens(stack, control_reply="echo: control")
    seen = {name: (answer.status_code, answer.json() if answer.content else None) for name, answer in answers.items()}
    assert seen == {
        "forged": (401, {"jwt-auth-error": "invalid signature"}),
        "expired": (401, {"jwt-auth-error": "jwt expired"}),
        "foreign audience": (401, {"jwt-auth-error": "Audience mismatch"}),
        "no token": (401, {"jwt-auth-error": "authorization header not found"}),
        "control": (200, None),
    }
