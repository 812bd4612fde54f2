"""Schemathesis against the OpenAPI document (what /openapi.json serves) on a real server over loopback: no 500,
no hang, every answer as the document says.

Every documented HTTP operation is fuzzed with valid and invalid inputs (schemathesis' positive and negative
modes), carrying the credential its API takes; path parameters are mostly the ids of a real conversation, so
requests get past "not found", and the calls on it carry its token, which names the user (a secret's post must
name the sender). A stateful run then follows the document's links (start a conversation, then read, post and
upload in it, with the token the start gave). Last, a reach check: each key operation got at least one 2xx
answer, so the fuzzing cannot silently stop reaching the handlers. Bounded: a fixed number of examples each,
about a minute on two cores at the default.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from openline.api.openapi import build_document
from openline.config import BotConfig
from openline.protocol.ratelimit import Rate
from tests.api._routes import served_operations
from tests.api.conftest import ADMIN_SECRET, BOT_TIMEOUT, ECHO_SECRET, Service, serve

# not negative_data_rejection: the service deliberately ignores unknown query parameters and takes null as absent
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    ignored_auth,
    missing_required_header,
]
TIMEOUT = BOT_TIMEOUT * 3 + 10  # a request longer than this hangs (the bot's timeout bounds every answer)
# per operation; OPENLINE_FUZZ_EXAMPLES=500 explores longer (the default keeps the run well within ~90 s)
EXAMPLES = int(os.environ.get("OPENLINE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,  # each run explores afresh; a failure prints the request to reproduce it
)
KNOWN: dict[str, str] = {}  # path parameter -> a real value (filled by the `fuzzed` fixture)
VICTIMS: list[str] = []  # conversations the admin delete may take (the real one must stay for the others)
TOKENS: dict[str, str] = {}  # conversation id -> a token for it that names the user
ANSWERS: dict[str, Counter[int]] = {}  # operationId -> how many answers of each status
# the operations that must reach their handler (a 2xx) at least once in a run (test_the_fuzzing_reaches_the_handlers)
KEY_OPERATIONS = (
    "v3StartConversation", "v3PostActivity", "v3GetActivities", "v3Upload",
    "v1StartConversation", "v1PostMessage", "v1GetMessages",
    "connectorCreateConversation", "connectorSendToConversation", "connectorReplyToActivity",
    "adminConversations", "adminConversation", "adminDeleteConversation",
)  # fmt: skip
BOT_IDS = ("echobot", "rec", "down")  # tests/api/conftest.py's bots; the connector must be told which


def credentials(path: str) -> dict[str, str]:
    """The Authorization each API takes: on a conversation with a known token, that token (it names the user, as
    a secret's post must: ClientActivity in the document); to renew or refresh, the real conversation's token;
    else the secret. The connector's bots have no app id, so they call without one."""
    if path.endswith("/renew") or path == "/v3/directline/tokens/refresh":
        return {"Authorization": f"Bearer {KNOWN['token']}"}
    if path.startswith(("/api/conversations/", "/v3/directline/conversations/")):
        conversation_id = path.split("/")[3 if path.startswith("/api/") else 4]
        if conversation_id in TOKENS:
            return {"Authorization": f"Bearer {TOKENS[conversation_id]}"}
    if path.startswith(("/api/", "/v3/directline/")):
        return {"Authorization": f"Bearer {ECHO_SECRET}"}
    if path.startswith(("/admin/", "/metrics")):
        return {"Authorization": f"Bearer {ADMIN_SECRET}"}
    return {}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service under fuzzing, with one real conversation (an activity, a member, a bot's attachment)."""
    with serve(Path(tmp_path_factory.mktemp("data")), web_page=True) as service:
        auth = credentials("/v3/directline/")
        started = service.http.post("/v3/directline/conversations", headers=auth, json={"user": {"id": "u1"}})
        conv = started.json()["conversationId"]
        message = {"type": "message", "from": {"id": "u1"}, "text": "hi"}
        posted = service.http.post(f"/v3/directline/conversations/{conv}/activities", headers=auth, json=message)
        attachment = service.http.post(
            f"/v3/conversations/{conv}/attachments",
            json={"name": "a.txt", "type": "text/plain", "originalBase64": base64.b64encode(b"hello").decode()},
        )
        assert started.status_code == 201 and posted.status_code == 200 and attachment.status_code == 200
        for _ in range(3):
            victim = service.http.post("/v3/conversations", json={"bot": {"id": "echobot"}})
            assert victim.status_code == 201, victim.text
            VICTIMS.append(victim.json()["id"])
        TOKENS[conv] = started.json()["token"]
        KNOWN.update(
            token=started.json()["token"],
            conversation_id=conv,
            activity_id=posted.json()["id"],
            member_id="u1",
            attachment_id=attachment.json()["id"],
            view_id="original",
            name="chat.js",
        )
        yield service


@pytest.fixture(scope="module")
def served(fuzzed: Service) -> set[tuple[str, str]]:
    return served_operations(fuzzed)


def flatmap_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Mostly the real ids the service knows (three times in four), else the generated path parameters.

    The real ones come first: Hypothesis favours the first of `sampled_from` (and shrinks towards it)."""
    if not path_parameters:
        return st.just(path_parameters)
    real = {name: KNOWN[name] for name in path_parameters if name in KNOWN}
    if not real:
        return st.just(path_parameters)
    if context.operation.definition.raw.get("operationId") == "adminDeleteConversation":
        return st.sampled_from(
            [{**path_parameters, "conversation_id": victim} for victim in VICTIMS] + [path_parameters]
        )
    known = {**path_parameters, **real}
    return st.sampled_from([known, known, known, path_parameters])


def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """The connector's createConversation names one of the bots mostly (the service has several: 400 without
    one, see ConversationParameters); a start of 3.0 mostly names a user, so its token names the user."""
    operation_id = context.operation.definition.raw.get("operationId")
    if not isinstance(body, dict):
        return st.just(body)
    if operation_id == "connectorCreateConversation" and not isinstance(body.get("bot"), dict):
        return st.sampled_from([{**body, "bot": {"id": bot_id}} for bot_id in BOT_IDS[:2]] + [body])
    if operation_id == "v3StartConversation" and "user" not in body:
        return st.sampled_from([{**body, "user": {"id": "u2"}}, body])
    return st.just(body)


# the document as served (tests/api/test_openapi.py checks that /openapi.json is exactly this), without what HTTP
# cannot fuzz: the WebSocket upgrades
DOCUMENT = build_document()
WEBSOCKETS = [op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values() if "x-websocket" in op]
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(operation_id=WEBSOCKETS)
schema.hook(flatmap_path_parameters)
schema.hook(flatmap_body)


def record(case: Any, response: Any) -> None:
    """Count the answer (for the reach check), and keep the token of a conversation a start named a user for."""
    operation_id = case.operation.definition.raw["operationId"]
    ANSWERS.setdefault(operation_id, Counter())[response.status_code] += 1
    if operation_id == "v3StartConversation" and response.status_code == 201 and isinstance(case.body, dict):
        user = case.body.get("user")
        if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"]:
            answer = response.json()
            TOKENS.setdefault(answer["conversationId"], answer["token"])


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented(case: Any, fuzzed: Service, served: set[tuple[str, str]]) -> None:
    if (case.method.upper(), case.operation.path) not in served:
        return  # documented for a route another part of the work mounts (see tests/api/_routes.py)
    on_real_ids(case)
    response = case.call(base_url=fuzzed.url, headers=credentials(case.formatted_path), timeout=TIMEOUT)
    record(case, response)
    case.validate_response(response, checks=CHECKS)


def on_real_ids(case: Any) -> None:
    """The coverage phase (which the hooks above do not reach) varies one part of a request at a time around
    values of its own (conversation "0", bot "0"): where the varied part is not a path parameter, the real ids
    go in, so that its bodies and queries are tried on a real conversation rather than all answered 404."""
    data = case.meta.phase.data if case.meta is not None else None
    if getattr(data, "parameter_location", ParameterLocation.PATH) == "path":
        return  # not the coverage phase, or what it varies is the path
    operation_id = case.operation.definition.raw["operationId"]
    if operation_id == "adminDeleteConversation":
        case.path_parameters = {**case.path_parameters, "conversation_id": VICTIMS[-1]}
    elif case.path_parameters:
        case.path_parameters = {**case.path_parameters, **{k: KNOWN[k] for k in case.path_parameters if k in KNOWN}}
    if operation_id == "connectorCreateConversation" and isinstance(case.body, dict):
        bot = case.body.get("bot")  # several bots: the service must be told which (ConversationParameters)
        if bot is None or (isinstance(bot, dict) and isinstance(bot.get("id"), str) and bot["id"] not in BOT_IDS):
            case.body["bot"] = {**(bot or {}), "id": BOT_IDS[0]}


# the operations the document's links join: a conversation started, then read, written and uploaded to
LINKED = schema.include(
    operation_id_regex=r"^(v3(StartConversation|GetActivities|PostActivity|Upload|Reconnect)"
    r"|v1(StartConversation|GetMessages|PostMessage|Upload)"
    r"|connector(CreateConversation|SendToConversation|Members|PagedMembers|UploadAttachment))$"
)
STATEFUL = settings(FUZZ, max_examples=15, stateful_step_count=6)


def test_linked_operations_answer_as_documented(fuzzed: Service) -> None:
    class Conversations(LINKED.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzzed.url, "headers": credentials(case.formatted_path), "timeout": TIMEOUT}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            record(case, response)
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Conversations.run(settings=STATEFUL)


def test_the_fuzzing_reaches_the_handlers() -> None:
    """Each key operation got a 2xx at least once above: were every request refused before its handler (bad ids,
    bodies the code always refuses), the run would pass and prove nothing. Run with the tests above it."""
    fuzzed = [name for name in KEY_OPERATIONS if name in ANSWERS]
    assert fuzzed == list(KEY_OPERATIONS), "run the whole module: the reach check counts the fuzzing's answers"
    unreached = {name: dict(ANSWERS[name]) for name in KEY_OPERATIONS if not any(200 <= s < 300 for s in ANSWERS[name])}
    assert not unreached, f"operations the fuzzing never got a 2xx from (their answers: {unreached})"


# the Direct Line client operations again, on a service that refuses: a bot with trusted origins and enhanced
# authentication, and rate limits low enough to be reached (429 with Retry-After); requests come with no Origin,
# the trusted one or another, in turn
GUARDED_SECRET = "guarded-secret-0123456789"
TRUSTED = "https://app.example"
ORIGINS = itertools.cycle([{}, {"Origin": TRUSTED}, {"Origin": "https://elsewhere.example"}])
CLIENT = schema.include(tag_regex=r"^Direct Line")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    def guarded_bot(endpoint: str) -> tuple[BotConfig, ...]:
        return (BotConfig("guarded", "Guarded", endpoint, (GUARDED_SECRET,), trusted_origins=(TRUSTED,),
                          enhanced_auth=True),)  # fmt: skip

    data = Path(tmp_path_factory.mktemp("data"))
    with serve(data, guarded_bot, rate_limit=Rate(20, 1.0), conversation_rate_limit=Rate(5, 1.0)) as service:
        yield service


@CLIENT.parametrize()
@settings(FUZZ, max_examples=min(EXAMPLES, 15))
def test_refusals_answer_as_documented(case: Any, guarded: Service) -> None:
    headers = {"Authorization": f"Bearer {GUARDED_SECRET}", **next(ORIGINS)}
    case.call_and_validate(base_url=guarded.url, headers=headers, checks=CHECKS, timeout=TIMEOUT)
