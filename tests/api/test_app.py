"""Service-wide HTTP behaviour: health, unknown routes and methods, trailing slashes, CORS."""

from __future__ import annotations

import pytest

from tests.api.conftest import REC_SECRET, Service


def test_healthz(service: Service) -> None:
    r = service.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_index_names_the_service(service: Service) -> None:
    body = service.http.get("/").json()
    assert body["service"] == "openline" and {"id": "rec", "name": "Recording Bot"} in body["bots"]


def test_unknown_routes_answer_in_the_api_shape(service: Service) -> None:
    r = service.http.get("/api/nothing/here", headers=service.auth(REC_SECRET))
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound" and r.json()["error"]["statusCode"] == 404
    r = service.http.delete("/api/conversations", headers=service.auth(REC_SECRET))
    assert r.status_code == 405 and r.json()["error"]["code"] == "NotSupported"
    assert r.headers["allow"] == "POST"
    r = service.http.get("/v3/nothing")
    assert r.status_code == 404 and r.json() == {"error": {"code": "NotFound", "message": r.json()["error"]["message"]}}


@pytest.mark.parametrize("suffix", ["/", ""])
def test_trailing_slashes_are_tolerated(service: Service, suffix: str) -> None:
    auth = service.auth(REC_SECRET)
    r = service.http.post("/api/conversations" + suffix, headers=auth)
    assert r.status_code == 200
    conv = r.json()["conversationId"]
    token = r.json()["token"]
    assert (
        service.http.post(f"/api/conversations/{conv}/messages{suffix}", headers=auth, json={"text": "x"}).status_code
        == 204
    )
    assert service.http.get(f"/api/conversations/{conv}/messages{suffix}", headers=auth).status_code == 200
    assert service.http.post("/api/tokens/conversation" + suffix, headers=auth).status_code == 200
    assert service.http.get(f"/api/tokens/{conv}/renew{suffix}", headers=service.auth(token)).status_code == 200
    assert (
        service.http.post(f"/v3/conversations/{conv}/activities{suffix}", json={"type": "message"}).status_code == 200
    )


def test_cors_preflight_and_error_responses(service: Service) -> None:
    r = service.http.options(
        "/api/conversations",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://app.example")
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = service.http.post("/api/conversations", headers={"Origin": "https://app.example"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"


def test_the_echo_bot_only_answers_this_service(service: Service) -> None:
    activity = {
        "type": "message",
        "id": "x|1",
        "serviceUrl": "http://127.0.0.1:9/elsewhere",
        "conversation": {"id": "x"},
        "from": {"id": "u"},
        "recipient": {"id": "echobot"},
        "text": "relay this",
    }
    assert service.http.post("/echobot/api/messages", json=activity).status_code == 403
    assert service.http.post("/echobot/api/messages", content=b"[1]").status_code == 400
