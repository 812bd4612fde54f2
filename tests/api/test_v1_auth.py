"""1.1 credentials over HTTP: secrets and tokens, generate/renew/expiry, and the 401/403/404 matrix."""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.conftest import DOWN_SECRET, ECHO_SECRET, REC_SECRET, TOKEN_TTL, Service


def _error(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.json() == {"error": {"code": code, "message": r.json()["error"]["message"], "statusCode": status}}
    assert r.json()["error"]["message"]


def test_generate_token_returns_a_json_string(service: Service) -> None:
    r = service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.text.startswith('"') and isinstance(r.json(), str)


def test_get_tokens_is_an_alias(service: Service) -> None:
    r = service.http.get("/api/tokens", headers=service.auth(REC_SECRET))
    assert r.status_code == 200 and isinstance(r.json(), str)


def test_generate_token_does_not_contact_the_bot(service: Service) -> None:
    before = len(service.bot.received)
    service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET), json={})
    assert len(service.bot.received) == before


def test_generated_token_starts_its_own_conversation_once(service: Service) -> None:
    token = service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET)).json()
    first = service.start(token)
    again = service.start(token)
    assert first["conversationId"] == again["conversationId"]
    assert first["expires_in"] == TOKEN_TTL
    updates = service.bot.of(first["conversationId"], "conversationUpdate")
    assert len(updates) == 1, "a repeated start must not contact the bot again"
    # the caller's own token keeps working, and so does the one the start returned
    for credential in (token, first["token"], again["token"]):
        assert service.messages(first["conversationId"], secret=credential)["messages"] == []


def test_token_cannot_mint_tokens(service: Service) -> None:
    token = service.start()["token"]
    _error(service.http.post("/api/tokens/conversation", headers=service.auth(token)), 403, "NotAllowed")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer a b", "token"])
def test_missing_or_malformed_header_is_401(service: Service, header: str | None) -> None:
    conv = service.start()["conversationId"]
    headers = {"Authorization": header} if header is not None else {}
    for method, path in [
        ("POST", "/api/tokens/conversation"),
        ("GET", "/api/tokens"),
        ("POST", "/api/conversations"),
        ("GET", f"/api/conversations/{conv}/messages"),
        ("POST", f"/api/conversations/{conv}/messages"),
        ("POST", f"/api/conversations/{conv}/upload"),
        ("GET", f"/api/tokens/{conv}/renew"),
    ]:
        _error(service.http.request(method, path, headers=headers), 401, "NotAllowed")


def test_bad_secret_or_token_is_403(service: Service) -> None:
    conv = service.start()["conversationId"]
    for credential in ("not-a-secret", "eyJhbGciOiJIUzI1NiJ9.e30.x"):
        _error(service.http.post("/api/conversations", headers=service.auth(credential)), 403, "NotAllowed")
        _error(
            service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(credential)), 403, "NotAllowed"
        )


@pytest.mark.parametrize("scheme", ["Bearer", "BotConnector", "bearer", "BOTCONNECTOR"])
def test_both_schemes_in_any_case(service: Service, scheme: str) -> None:
    r = service.http.post("/api/conversations", headers=service.auth(REC_SECRET, scheme))
    assert r.status_code == 200
    token = r.json()["token"]
    r = service.http.get(
        f"/api/conversations/{r.json()['conversationId']}/messages", headers=service.auth(token, scheme)
    )
    assert r.status_code == 200


def test_token_is_scoped_to_its_conversation(service: Service) -> None:
    a, b = service.start(), service.start()
    r = service.http.get(f"/api/conversations/{b['conversationId']}/messages", headers=service.auth(a["token"]))
    _error(r, 403, "NotAllowed")
    r = service.send(b["conversationId"], {"from": "u", "text": "x"}, secret=a["token"])
    _error(r, 403, "NotAllowed")


def test_secret_of_another_bot_is_403(service: Service) -> None:
    conv = service.start(ECHO_SECRET)["conversationId"]
    _error(service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(REC_SECRET)), 403, "NotAllowed")


def test_unknown_conversation_is_404(service: Service) -> None:
    for secret in (REC_SECRET, DOWN_SECRET):
        r = service.http.get("/api/conversations/nosuchconversation/messages", headers=service.auth(secret))
        _error(r, 404, "NotFound")
        _error(service.send("nosuchconversation", {"text": "x"}, secret=secret), 404, "NotFound")


def test_token_for_a_conversation_not_started_yet_is_404(service: Service) -> None:
    token = service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET)).json()
    payload = token.split(".")[1]
    conv = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["conv"]
    _error(service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(token)), 404, "NotFound")
    assert service.start(token)["conversationId"] == conv
    assert service.messages(conv, secret=token)["watermark"] == "0"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_renew_gives_a_new_token_and_keeps_the_old_one(service: Service, method: str) -> None:
    start = service.start()
    conv, token = start["conversationId"], start["token"]
    service.clock.offset = 5  # a different second, so a different token even without the jti
    r = service.http.request(method, f"/api/tokens/{conv}/renew", headers=service.auth(token))
    assert r.status_code == 200
    renewed = r.json()
    assert isinstance(renewed, str) and renewed != token
    for credential in (token, renewed):
        assert service.messages(conv, secret=credential)["watermark"] == "0"


def test_renewed_token_outlives_the_old_one(service: Service) -> None:
    start = service.start()
    conv, token = start["conversationId"], start["token"]
    service.clock.offset = TOKEN_TTL - 10
    renewed = service.http.get(f"/api/tokens/{conv}/renew", headers=service.auth(token)).json()
    service.clock.offset = TOKEN_TTL + 10
    _error(service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(token)), 403, "NotAllowed")
    assert service.messages(conv, secret=renewed)["watermark"] == "0"


def test_expired_token_cannot_be_used_or_renewed(service: Service) -> None:
    start = service.start()
    conv, token = start["conversationId"], start["token"]
    service.clock.offset = TOKEN_TTL + 1
    r = service.http.get(f"/api/tokens/{conv}/renew", headers=service.auth(token))
    _error(r, 403, "NotAllowed")
    assert "expired" in r.json()["error"]["message"]
    _error(service.send(conv, {"text": "x"}, secret=token), 403, "NotAllowed")
    # the secret never expires
    assert service.messages(conv)["watermark"] == "0"


def test_renew_rules(service: Service) -> None:
    a, b = service.start(), service.start()
    _error(
        service.http.get(f"/api/tokens/{a['conversationId']}/renew", headers=service.auth(REC_SECRET)),
        403,
        "NotAllowed",
    )
    _error(
        service.http.get(f"/api/tokens/{b['conversationId']}/renew", headers=service.auth(a["token"])),
        403,
        "NotAllowed",
    )


def test_start_with_secret_makes_new_random_conversations(service: Service) -> None:
    ids = {service.start()["conversationId"] for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) >= 20 and i.isalnum() for i in ids)


def test_start_tolerates_any_body(service: Service) -> None:
    for kwargs in ({}, {"json": {}}, {"content": b"not json at all"}, {"json": {"user": {"id": "x"}}}):
        r = service.http.post("/api/conversations", headers=service.auth(REC_SECRET), **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
