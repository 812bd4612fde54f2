"""Schemathesis against the OpenAPI document (what /openapi.json serves) on a real server over loopback: no 500,
no hang, every answer as the document says.

Every documented HTTP operation is fuzzed with valid and invalid inputs (schemathesis' positive and negative
modes), carrying the credential its API takes; path parameters are sometimes the ids of a real conversation,
so requests get past "not found". A stateful run then follows the document's links (start a conversation,
then read, post and upload in it). Bounded: a fixed number of examples each, well within ~90 s.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
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


def credentials(path: str) -> dict[str, str]:
    """The Authorization each API takes: the secret, or (to renew, refresh) the real conversation's token; the
    connector's bots have no app id, so they call without one."""
    if path.endswith("/renew") or path == "/v3/directline/tokens/refresh":
        return {"Authorization": f"Bearer {KNOWN['token']}"}
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
    """The generated path parameters, or the same with the real ids the service knows."""
    if not path_parameters:
        return st.just(path_parameters)
    real = {name: KNOWN[name] for name in path_parameters if name in KNOWN}
    return st.sampled_from([path_parameters, {**path_parameters, **real}]) if real else st.just(path_parameters)


# the document as served (tests/api/test_openapi.py checks that /openapi.json is exactly this), without what HTTP
# cannot fuzz: the WebSocket upgrades
DOCUMENT = build_document()
WEBSOCKETS = [op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values() if "x-websocket" in op]
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(operation_id=WEBSOCKETS)
schema.hook(flatmap_path_parameters)


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented(case: Any, fuzzed: Service, served: set[tuple[str, str]]) -> None:
    if (case.method.upper(), case.operation.path) not in served:
        return  # documented for a route another part of the work mounts (see tests/api/_routes.py)
    case.call_and_validate(base_url=fuzzed.url, headers=credentials(case.path), checks=CHECKS, timeout=TIMEOUT)


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
            return {"base_url": fuzzed.url, "headers": credentials(case.path), "timeout": TIMEOUT}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Conversations.run(settings=STATEFUL)


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
