"""What the bot authentication end-to-end tests share, whatever the bot's SDK (tests/e2e/test_bot_auth_*.py).

Each of those tests starts openline over https, knowing its bot by an app id (so openline signs every POST to the
bot, and its connector API refuses the bot's calls without a token openline issued), next to a bot of one SDK; the
SDK's settings and how its bot is started stay in the test file, which hands `start` a `launch` function. This
module gives the rest:

- `start`: the bot and openline side by side on free ports, both ready; a `Stack` of the two.
- `DirectLine3`: the Direct Line 3.0 client playing the user (start a conversation, post, read the transcript).
- `Stack.channel_token` / `Stack.bad_channel_tokens`: channel tokens as openline mints them (signed with its key
  from DATA_DIR/bot-keys.json), and the ones a bot must refuse (forged, expired, foreign audience, none).
- `Stack.post_to_bot`: an activity POSTed straight to the bot's /api/messages, as if openline sent it.
- the checks every SDK's test makes: `assert_connector_refuses_anonymous` (the bot's replies carried a token),
  `assert_refused_turn` (a wrong credential is a clear error for the client, and no reply is stored) and
  `refuse_bad_channel_tokens` (the bot refuses tokens openline did not issue to it, and accepts one it did).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from openline.auth.bot_keys import KeyFile
from openline.devcert import DevCert
from tests.e2e.harness import BOT_ID, HTTP_TIMEOUT, SECRET, Openline, Process, Processes, free_port

APP_PASSWORD = "right-password-0123456789"  # openline's --bot-app-password (≥ 16 characters)
WRONG_PASSWORD = "wrong-password-0123456789"  # what a misconfigured bot asks for its token with
OTHER_APP_ID = "another-app-id"  # the audience of a channel token meant for another bot
CLOCK_TOLERANCE = 300  # seconds of exp/nbf leeway every SDK here allows on a channel token
TOKEN_LIFETIME = 3600  # seconds a channel token of openline's is valid

# what openline's 502 BotRejectedActivity says was seen, after "while it had the activity, "
ASKED_WITH_WRONG_PASSWORD = "a token request for its app id came with a wrong app password"
ASKED_SIDECAR_WITH_WRONG_SECRET = "the sidecar was asked for a token with a secret that is no bot's"

Launch = Callable[[str, int], Process]
"""Starts the bot, given openline's public URL and the port the bot must listen on (the test file's part)."""


def botbuilder_settings(public_url: str, app_id: str, password: str) -> dict[str, str]:
    """The settings of a botbuilder bot (Python or JS, read by ConfigurationBotFrameworkAuthentication) for openline.

    What the README shows (bot-connector.md §3d): the app id and password, openline's OpenID metadata and issuer
    for channel tokens, and openline's token endpoint (MSAL authority P/adfs) for the bot's own tokens.
    """
    return {
        "MicrosoftAppId": app_id,
        "MicrosoftAppPassword": password,
        "ToBotFromChannelOpenIdMetadataUrl": f"{public_url}/v1/.well-known/openidconfiguration",
        "ToBotFromChannelTokenIssuer": public_url,
        "ToChannelFromBotLoginUrl": f"{public_url}/adfs",
        "ToChannelFromBotOAuthScope": "https://api.botframework.com",
    }


class DirectLine3:
    """A Direct Line 3.0 client with the Direct Line secret; one short-lived httpx client a call, nothing to close."""

    def __init__(self, service: Openline) -> None:
        self.base_url = service.url + "/v3/directline"
        self.verify = service.verify

    def _request(self, method: str, path: str, json: Mapping[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {SECRET}"}
        with httpx.Client(base_url=self.base_url, verify=self.verify, timeout=HTTP_TIMEOUT) as http:
            return http.request(method, path, json=json, headers=headers)

    def start(self, *texts: str) -> str:
        """Start a conversation and `send` user1's `texts` in it, in order: its id."""
        response = self._request("POST", "/conversations")
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["conversationId"]
        for text in texts:
            self.send(conversation_id, text)
        return conversation_id

    def post(self, conversation_id: str, text: str) -> httpx.Response:
        """POST a message from user1, whatever the answer."""
        activity = {"type": "message", "from": {"id": "user1"}, "text": text}
        return self._request("POST", f"/conversations/{conversation_id}/activities", activity)

    def send(self, conversation_id: str, text: str) -> dict[str, Any]:
        """POST a message from user1 and check it was delivered (200): the ResourceResponse."""
        response = self.post(conversation_id, text)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def activities(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every activity of the conversation: one page is enough here (3.0 never gives typing, conversationUpdate)."""
        response = self._request("GET", f"/conversations/{conversation_id}/activities")
        assert response.status_code == 200, response.text
        activities: list[dict[str, Any]] = response.json()["activities"]
        return activities

    def transcript(self, conversation_id: str) -> list[tuple[str, str]]:
        """(from.id, text) of every activity of the conversation, whatever its type."""
        return [(a["from"]["id"], a.get("text", "")) for a in self.activities(conversation_id)]


@dataclass
class Stack:
    """openline over https with one bot known by `app_id`, and that bot; `dl` is a 3.0 client of openline."""

    service: Openline
    bot: Process
    endpoint: str  # the bot's /api/messages
    data_dir: Path  # openline's, with bot-keys.json
    app_id: str
    dl: DirectLine3 = field(init=False)

    def __post_init__(self) -> None:
        self.dl = DirectLine3(self.service)

    def channel_token(
        self, *, aud: str | None = None, key: rsa.RSAPrivateKey | None = None, issued: float | None = None
    ) -> str:
        """A channel token as openline mints them (iss, aud, serviceurl, nbf/iat/exp; the kid of openline's key).

        For this bot's app id unless `aud`; signed by openline's signing key unless `key` (the kid stays
        openline's); issued at `issued` (now unless given) and valid for an hour.
        """
        keys = KeyFile(self.data_dir).read()
        assert keys is not None, "openline writes its keys when it starts"
        signing = keys.signing_key(time.time())
        at = int(time.time() if issued is None else issued)
        claims = {
            "iss": self.service.url,
            "aud": self.app_id if aud is None else aud,
            "serviceurl": self.service.url + "/",
            "nbf": at - 5,
            "iat": at,
            "exp": at + TOKEN_LIFETIME,
        }
        return jwt.encode(claims, key or signing.private_key, algorithm="RS256", headers={"kid": signing.kid})

    def bad_channel_tokens(self) -> dict[str, str | None]:
        """The channel tokens the bot must refuse, by name (None: no Authorization header at all)."""
        now = time.time()
        return {
            # signed by another RSA key, under openline's kid
            "forged": self.channel_token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            # openline's key, exp 600 s ago: twice the SDKs' clock tolerance
            "expired": self.channel_token(issued=now - TOKEN_LIFETIME - 2 * CLOCK_TOLERANCE),
            # openline's key, for another bot
            "foreign audience": self.channel_token(aud=OTHER_APP_ID),
            "no token": None,
        }

    def post_to_bot(self, conversation_id: str, text: str, token: str | None) -> httpx.Response:
        """A message POSTed straight to the bot, as openline would send it in the conversation, with `token`."""
        activity = {
            "type": "message",
            "id": str(uuid.uuid4()),
            "channelId": "directline",
            "serviceUrl": self.service.url + "/",
            "from": {"id": "user1", "role": "user"},
            "recipient": {"id": BOT_ID, "role": "bot"},
            "conversation": {"id": conversation_id},
            "text": text,
        }
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.post(self.endpoint, json=activity, headers=headers, timeout=HTTP_TIMEOUT)


def start(
    procs: Processes,
    dev_cert: DevCert,
    launch: Launch,
    *,
    app_id: str,
    password: str | None = APP_PASSWORD,
    sidecar_secret: str | None = None,
) -> Stack:
    """openline, which knows its bot by `app_id` and `password` / `sidecar_secret`, and the bot (`launch`).

    openline only needs the bot's endpoint and the bot only openline's URL, so the two start side by side; this
    returns when openline answers /healthz and the bot listens. openline is started first so that it is stopped
    last: a bot's idle keep-alive https connections to it would hold up its graceful shutdown.
    """
    bot_port = free_port()
    endpoint = f"http://127.0.0.1:{bot_port}/api/messages"
    data_dir = procs.tmp_path / "data"
    # `--option=value`: a secret from secrets.token_urlsafe may begin with "-", which argparse takes for an option
    credentials = [] if password is None else [f"--bot-app-password={password}"]
    credentials += [] if sidecar_secret is None else [f"--bot-sidecar-secret={sidecar_secret}"]
    service = procs.openline(
        *("--bot", endpoint, "--bot-app-id", app_id, *credentials),
        *("--secret", SECRET, "--data-dir", str(data_dir)),
        tls=dev_cert,
        wait=False,  # waited for below, once the bot is starting too
    )
    bot = launch(service.url, bot_port)
    service.wait_ready()
    procs.wait_listening(bot, bot_port)
    return Stack(service, bot, endpoint, data_dir, app_id)


def assert_connector_refuses_anonymous(stack: Stack, conversation_id: str) -> None:
    """The bot's reply, POSTed to openline's connector API without the bot's token, is refused (401) and not stored.

    So a reply of the bot's that was stored carried a token openline issued to it.
    """
    before = stack.dl.activities(conversation_id)
    reply = {"type": "message", "from": {"id": BOT_ID}, "text": "no token"}
    url = f"{stack.service.url}/v3/conversations/{conversation_id}/activities"
    with httpx.Client(verify=stack.service.verify, timeout=HTTP_TIMEOUT) as http:
        anonymous = http.post(url, json=reply)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "Unauthorized", anonymous.text
    assert stack.dl.activities(conversation_id) == before, "the refused reply was not stored"


def assert_refused_turn(stack: Stack, *, status: int, refusal: str) -> None:
    """A bot whose own calls openline refuses (`refusal` says why) fails the client's POST with a clear error.

    A new conversation; user1's "hello" gets 502 BotRejectedActivity whose message gives the bot's `status` and
    what it did wrong while it had the activity; the message is stored, no reply is.
    """
    cid = stack.dl.start()  # the bot fails its conversationUpdate turns too; starting does not depend on them
    response = stack.dl.post(cid, "hello")
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "BotRejectedActivity", error
    assert error["message"] == (
        f"the bot rejected the activity (HTTP {status}): while it had the activity, {refusal}"
    ), error
    assert error["innerHttpError"] == {"statusCode": status}, error
    assert stack.dl.transcript(cid) == [("user1", "hello")], "the message is kept, and no reply was stored"


def refuse_bad_channel_tokens(stack: Stack, *, control_reply: str) -> dict[str, httpx.Response]:
    """POST a message straight to the bot with each of `Stack.bad_channel_tokens`, then with a good one (control).

    Checked: every bad token is refused (not 2xx) and no reply reaches openline; the same message with a token
    minted like openline's is taken (2xx) and answered with `control_reply` alone, so the refusals were the
    tokens' and nothing else's. The bot's answers by token name, the good one's as "control", for the SDK's own
    checks (statuses and reasons).
    """
    cid = stack.dl.start()
    answers = {name: stack.post_to_bot(cid, name, token) for name, token in stack.bad_channel_tokens().items()}
    refused = {name: (answer.status_code, answer.text) for name, answer in answers.items()}
    assert all(not 200 <= status < 300 for status, _ in refused.values()), refused
    # every SDK here answers only after its turn (and its replies) is over: nothing can still be on its way
    assert stack.dl.transcript(cid) == [], "no reply to a refused token reached openline"

    control = stack.post_to_bot(cid, "control", stack.channel_token())
    assert 200 <= control.status_code < 300, control.text
    assert stack.dl.transcript(cid) == [(BOT_ID, control_reply)]
    return {**answers, "control": control}
