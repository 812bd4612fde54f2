"""The OpenAPI document: a valid OpenAPI 3.1 document, served at /openapi.json, naming exactly the app's routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from openline.api.openapi import build_document
from openline.api.openapi_schemas import SCHEMAS
from tests.api._routes import served_operations
from tests.api.conftest import ADMIN_SECRET, ECHO_SECRET, Service, serve


@pytest.fixture(scope="module")
def every_route(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with every optional route mounted: the chat page, a local Web Chat script, the echo bot."""
    data = Path(tmp_path_factory.mktemp("data"))
    script = data / "webchat.js"
    script.write_text("// web chat")
    with serve(data, web_page=True, webchat_file=script) as running:
        yield running


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_document_names_exactly_the_app_routes(every_route: Service) -> None:
    served = served_operations(every_route)
    assert {("POST", "/echobot/api/messages"), ("GET", "/web/webchat.js"), ("POST", "/web/token")} <= served
    documented = _documented(build_document())
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented operations the app does not serve"


def test_the_document_is_served_without_a_credential(every_route: Service) -> None:
    r = every_route.http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == build_document()
    assert every_route.http.get("/openapi.json").content == r.content  # built once


def test_errors_are_documented_in_the_shape_of_their_api() -> None:
    paths = build_document()["paths"]

    def error_ref(path: str, method: str, status: str) -> str:
        schema = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        return str(schema["$ref"]).rsplit("/", 1)[-1]

    assert error_ref("/api/conversations/{conversation_id}/messages", "get", "404") == "ErrorMessage"
    assert error_ref("/attachments/{conversation_id}/{file_id}/{name}", "get", "404") == "ErrorMessage"
    assert error_ref("/v3/directline/conversations/{conversation_id}/activities", "get", "404") == "ErrorResponse"
    assert error_ref("/v3/conversations/{conversation_id}/activities", "post", "404") == "ErrorResponse"
    assert error_ref("/admin/status", "get", "401") == "ErrorResponse"
    assert error_ref("/adfs/oauth2/token", "post", "400") == "OAuthError"


def test_every_direct_line_client_route_documents_rate_limits_and_origins() -> None:
    for path, item in build_document()["paths"].items():
        if not path.startswith(("/api/", "/v3/directline/")):  # the stream upgrade included
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"], (method, path)


def _valid(body: Any, component: str) -> None:
    root = {"$ref": f"#/components/schemas/{component}", "components": {"schemas": SCHEMAS}}
    jsonschema.Draft202012Validator(root).validate(body)


def test_activities_are_documented_as_sent_nulls_included(every_route: Service) -> None:
    # found by the fuzzer: an activity keeps `"text": null` and the like as sent, and the document said string
    auth = every_route.auth(ECHO_SECRET)
    conv = every_route.http.post("/v3/directline/conversations", headers=auth).json()["conversationId"]
    activity = {"type": "event", "from": {"id": "u1"}, "text": None, "channelData": None, "attachments": None}
    r = every_route.http.post(f"/v3/directline/conversations/{conv}/activities", headers=auth, json=activity)
    assert r.status_code == 200, r.text
    r = every_route.http.get(f"/v3/directline/conversations/{conv}/activities", headers=auth)
    assert any(a.get("text", "") is None for a in r.json()["activities"])
    _valid(r.json(), "ActivitySet")
    r = every_route.http.get(f"/admin/conversations/{conv}", headers=every_route.auth(ADMIN_SECRET))
    _valid(r.json(), "AdminConversation")


@pytest.mark.parametrize(
    "body",
    [{"bot": {"id": ""}}, {"bot": {"id": " "}}, {"bot": {"id": "echobot"}, "members": [{"id": ""}]}],
)
def test_blank_account_ids_are_refused_and_documented_so(every_route: Service, body: dict[str, Any]) -> None:
    # found by the fuzzer once it reached createConversation: the document allowed "" where the code says 400
    r = every_route.http.post("/v3/conversations", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingProperty", r.text
    with pytest.raises(jsonschema.ValidationError):
        _valid(body, "ConversationParameters")
    _valid({"bot": {"id": "echobot"}, "members": [{"id": "u1"}]}, "ConversationParameters")
