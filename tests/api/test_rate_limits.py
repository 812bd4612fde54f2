"""Rate limits over real HTTP: every Direct Line client route counts, 429 with Retry-After in each API's error
shape, polls are never refused, the bot's routes are not counted, and the limit refills.

openline runs with 6 requests a minute per credential and 3 per conversation; each test uses credentials and
conversations of its own (a bot each, see `more_bots`), so the tests do not share buckets. The limits refill
by the service's clock, which the tests move forward instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openline.config import BotConfig
from openline.protocol.ratelimit import Rate
from tests.api.conftest import Service, serve

PER_CREDENTIAL = 6
PER_CONVERSATION = 3
PERIOD = 60.0
BOTS = 40
DLJS_AGENT = "DirectLine/3.0 (directlinejs 0.15.8)"  # what botframework-directlinejs sends as x-ms-bot-agent


def _secret(i: int) -> str:
    return f"limit-secret-{i:02d}-0123456789"


TRUSTED_SECRET = "limit-trusted-secret-0123456789"
TRUSTED = "https://chat.example"


def _bots(endpoint: str) -> tuple[BotConfig, ...]:
    trusted = BotConfig("trusted", "Trusted", endpoint, (TRUSTED_SECRET,), trusted_origins=(TRUSTED,))
    return (*(BotConfig(f"lim{i}", f"Limited {i}", endpoint, (_secret(i),)) for i in range(BOTS)), trusted)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    overrides: dict[str, Any] = {
        "rate_limit": Rate(PER_CREDENTIAL, PERIOD),
        "conversation_rate_limit": Rate(PER_CONVERSATION, PERIOD),
    }
    with serve(Path(tmp_path_factory.mktemp("data")), _bots, **overrides) as running:
        yield running


_next_bot = count()


@pytest.fixture
def secret() -> str:
    """A secret no other test uses: a bucket of its own."""
    return _secret(next(_next_bot))


def _auth(credential: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}", **more}


def _start(service: Service, secret: str) -> tuple[str, str]:
    """A new 3.0 conversation (one request of the secret's): its id and token."""
    r = service.http.post("/v3/directline/conversations", headers=_auth(secret))
    assert r.status_code == 201, r.text
    return r.json()["conversationId"], r.json()["token"]


def _poll(service: Service, conv: str, token: str) -> httpx.Response:
    return service.http.get(f"/v3/directline/conversations/{conv}/activities", headers=_auth(token))


def _say(service: Service, conv: str, token: str, text: str = "hi", **headers: str) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "text": text}
    url = f"/v3/directline/conversations/{conv}/activities"
    return service.http.post(url, headers=_auth(token, **headers), json=activity)


def _throttled_v3(r: httpx.Response) -> int:
    """Check a 3.0 429; its Retry-After in seconds."""
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "Throttled"
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= PERIOD
    assert f"retry after {retry_after} seconds" in error["message"]
    return retry_after


# -- the whole kind: every client route counts ------------------------------------------------------------------


def _file() -> dict[str, Any]:
    return {"files": [("file", ("a.txt", b"hello", "text/plain"))]}


# (method, path with {conv}, credential: "secret" or "token", expected answer when throttled)
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("POST", "/v3/directline/tokens/generate", "secret", {}),
    ("POST", "/v3/directline/tokens/refresh", "token", {}),
    ("POST", "/v3/directline/conversations", "secret", {}),
    ("POST", "/v3/directline/conversations", "token", {}),
    ("GET", "/v3/directline/conversations/{conv}", "token", {}),
    ("GET", "/v3/directline/conversations/{conv}?watermark=-", "secret", {}),
    (
        "POST",
        "/v3/directline/conversations/{conv}/activities",
        "token",
        {"json": {"type": "message", "from": {"id": "u1"}}},
    ),
    ("POST", "/v3/directline/conversations/{conv}/upload?userId=u1", "token", _file()),
    ("POST", "/api/tokens/conversation", "secret", {}),
    ("GET", "/api/tokens", "secret", {}),
    ("GET", "/api/tokens/{conv}/renew", "token", {}),
    ("POST", "/api/tokens/{conv}/renew", "token", {}),
    ("POST", "/api/conversations", "secret", {}),
    ("POST", "/api/conversations", "token", {}),
    ("POST", "/api/conversations/{conv}/messages", "token", {"json": {"text": "x", "from": "u1"}}),
    ("POST", "/api/conversations/{conv}/upload?userId=u1", "token", _file()),
]


@pytest.mark.parametrize(("method", "path", "credential", "kwargs"), ROUTES)
def test_every_client_route_is_limited(
    limited: Service, secret: str, method: str, path: str, credential: str, kwargs: dict[str, Any]
) -> None:
    conv, token = _start(limited, secret)
    used = token if credential == "token" else secret
    url = path.format(conv=conv)
    # use up the bucket of the conversation (all 3: acted on by a token, or named in the path) or else of the
    # secret (5 left)
    conversation = credential == "token" or "{conv}" in path
    for _ in range(PER_CONVERSATION if conversation else PER_CREDENTIAL - 1):
        assert limited.http.request(method, url, headers=_auth(used), **kwargs).status_code < 300
    r = limited.http.request(method, url, headers=_auth(used), **kwargs)
    assert r.status_code == 429, r.text
    if path.startswith("/api/"):
        error = r.json()["error"]
        assert error["code"] == "ServiceError" and error["statusCode"] == 429
        assert f"retry after {r.headers['Retry-After']} seconds" in error["message"]
    else:
        _throttled_v3(r)


def test_the_stream_upgrade_is_limited(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    for _ in range(PER_CONVERSATION - 1):
        assert _poll(limited, conv, token).status_code == 200
    r = limited.http.get(f"/v3/directline/conversations/{conv}", headers=_auth(token))
    stream_url = r.json()["streamUrl"]  # the third request of the conversation
    with pytest.raises(InvalidStatus) as refused:
        connect(stream_url, open_timeout=5).close()
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert b'"code":"Throttled"' in response.body


@pytest.mark.parametrize("api", ["3.0", "1.1"])
def test_a_throttled_poll_gets_nothing_new_and_its_own_watermark(limited: Service, secret: str, api: str) -> None:
    conv, token = _start(limited, secret)
    assert _say(limited, conv, token).status_code == 200
    path = f"/v3/directline/conversations/{conv}/activities" if api == "3.0" else f"/api/conversations/{conv}/messages"
    first = limited.http.get(path, headers=_auth(token))
    assert first.status_code == 200
    items = "activities" if api == "3.0" else "messages"
    assert first.json()[items]
    watermark = first.json()["watermark"]
    polled = [limited.http.get(path, headers=_auth(token), params={"watermark": "0"}) for _ in range(3)]
    assert [r.status_code for r in polled] == [200, 200, 200]
    assert polled[-1].json() == {items: [], "watermark": "0"}, "throttled: the caller's own watermark"
    again = limited.http.get(path, headers=_auth(token, Origin="https://chat.example"), params={"watermark": watermark})
    assert again.status_code == 200 and again.json() == {items: [], "watermark": watermark}
    assert again.headers["Access-Control-Allow-Origin"] == "*"
    limited.clock.offset += PERIOD  # refilled: the poll reads again
    assert limited.http.get(path, headers=_auth(token), params={"watermark": "0"}).json()[items]


def test_a_refused_post_is_not_stored_and_the_limit_refills(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    assert [_say(limited, conv, token, f"m{i}").status_code for i in range(3)] == [200, 200, 200]
    wait = _throttled_v3(_say(limited, conv, token, "refused"))
    assert wait >= PERIOD / PER_CONVERSATION - 1  # one token comes back every 20 s
    assert "refused" not in [a.get("text") for a in limited.stored(conv)]
    limited.clock.offset += PERIOD / PER_CONVERSATION
    assert _say(limited, conv, token, "after").status_code == 200
    assert _say(limited, conv, token, "again").status_code == 429  # one token only came back


def test_directlinejs_gets_the_same_wait_in_milliseconds(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    for i in range(PER_CONVERSATION):
        _say(limited, conv, token, f"m{i}")
    seconds = _throttled_v3(_say(limited, conv, token))
    r = _say(limited, conv, token, **{"x-ms-bot-agent": DLJS_AGENT})
    assert r.status_code == 429
    milliseconds = int(r.headers["Retry-After"])
    assert (seconds - 1) * 1000 < milliseconds <= seconds * 1000
    assert f"retry after {seconds} seconds" in r.json()["error"]["message"]  # the message says seconds still


def test_a_browser_can_read_the_429_and_its_retry_after(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    origin = {"Origin": "https://chat.example"}
    answers = [_say(limited, conv, token, **origin) for _ in range(PER_CONVERSATION + 1)]
    assert answers[0].headers["Access-Control-Expose-Headers"] == "Retry-After"  # on every CORS answer
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]


def test_a_conversation_is_limited_whatever_credential_acts_on_it(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    refreshed = limited.http.post("/v3/directline/tokens/refresh", headers=_auth(token)).json()["token"]
    assert _say(limited, conv, refreshed).status_code == 200
    assert _say(limited, conv, secret).status_code == 200  # the third request on this conversation
    _throttled_v3(_say(limited, conv, token))
    other_conv, other_token = _start(limited, secret)
    assert _say(limited, other_conv, other_token).status_code == 200, "another conversation has its own"


def test_a_credential_is_limited_across_conversations(limited: Service, secret: str) -> None:
    started = [_start(limited, secret) for _ in range(PER_CREDENTIAL)]
    _throttled_v3(limited.http.post("/v3/directline/conversations", headers=_auth(secret)))
    conv, token = started[0]
    assert _say(limited, conv, token).status_code == 200, "the conversation's token is another credential"


def test_bad_credentials_are_refused_as_always_and_not_counted(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(PER_CREDENTIAL * 3):
        assert _say(limited, conv, forged).status_code == 403
        assert _say(limited, conv, "no-such-secret-0123456789").status_code == 403
    assert limited.http.post(f"/v3/directline/conversations/{conv}/activities").status_code == 401
    assert _say(limited, conv, token).status_code == 200, "the conversation's bucket is untouched"


def test_preflights_the_bot_and_healthz_are_not_counted(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    preflight = {"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"}
    for _ in range(PER_CONVERSATION * 2):
        url = f"/v3/directline/conversations/{conv}/activities"
        assert limited.http.options(url, headers=preflight).status_code == 200
        assert limited.http.get("/healthz").status_code == 200
        reply = {"type": "message", "from": {"id": "lim"}, "text": "from the bot"}
        assert limited.http.post(f"/v3/conversations/{conv}/activities", json=reply).status_code == 200
    assert _say(limited, conv, token).status_code == 200


@pytest.mark.parametrize("make", [lambda v: v.replace("/activities", "/messages")])
def test_throttled_1_1_poll_with_a_bad_watermark_is_refused_as_always(
    limited: Service, secret: str, make: Callable[[str], str]
) -> None:
    conv, token = _start(limited, secret)
    path = make(f"/api/conversations/{conv}/activities")
    for _ in range(PER_CONVERSATION):
        assert limited.http.get(path, headers=_auth(token)).status_code == 200
    r = limited.http.get(path, headers=_auth(token), params={"watermark": "nope"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRange"


def test_a_token_on_another_conversation_is_refused_as_always_and_not_counted(limited: Service, secret: str) -> None:
    conv, token = _start(limited, secret)
    other, other_token = _start(limited, secret)
    for _ in range(PER_CREDENTIAL * 2):
        assert _say(limited, other, token).status_code == 403  # never a 429, never counted
    assert _say(limited, conv, token).status_code == 200, "the token's own bucket is untouched"
    assert _say(limited, other, other_token).status_code == 200, "and so is the other conversation's"


def test_one_credential_is_one_bucket_whatever_its_scheme(limited: Service, secret: str) -> None:
    for scheme in ("Bearer", "BotConnector", "bearer") * 2:
        r = limited.http.post("/v3/directline/tokens/generate", headers={"Authorization": f"{scheme} {secret}"})
        assert r.status_code == 200, r.text
    _throttled_v3(limited.http.post("/v3/directline/tokens/generate", headers=_auth(secret)))


def test_a_request_the_access_rules_refuse_is_refused_as_always_and_not_counted(limited: Service) -> None:
    """A bot with trusted origins: a browser on another origin gets 403, however often, and costs no token."""
    conv, token = _start(limited, TRUSTED_SECRET)
    stream_url = limited.http.get(f"/v3/directline/conversations/{conv}", headers=_auth(token)).json()["streamUrl"]
    elsewhere = {"Origin": "https://elsewhere.example"}
    for _ in range(PER_CREDENTIAL * 2):
        assert _say(limited, conv, token, **elsewhere).status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            connect(stream_url, origin="https://elsewhere.example", open_timeout=5).close()  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    # the conversation has had one request (the reconnect; the secret's start named no conversation): two more
    assert [_say(limited, conv, token, Origin=TRUSTED).status_code for _ in range(2)] == [200, 200]
    _throttled_v3(_say(limited, conv, token, Origin=TRUSTED))
