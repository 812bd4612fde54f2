"""A conversation an operator deleted stays deleted: no credential issued before the deletion (a conversation
token, a stream token, a signed file link) reaches it or brings it back, on any route of 1.1, 3.0, the stream,
uploads and the connector, for as long as such a credential lives (the token lifetime and a minute).

On SQLite (the default here) or, with OPENLINE_TEST_STORE=redis, on Redis.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from openline.auth.tokens import STREAM_TTL
from openline.storage.sqlite import SqliteStore
from tests.api._connector import error, quoted
from tests.api._v3 import V3, stream
from tests.api.conftest import ADMIN_SECRET, REC_SECRET, RETENTION, TOKEN_TTL, Service, serve
from tests.api.test_admin import _refused

BEARER = {"Authorization": f"Bearer {ADMIN_SECRET}"}
ON_REDIS = os.environ.get("OPENLINE_TEST_STORE") == "redis"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = Path(tmp_path_factory.mktemp("data"))
    # SQLite in the data directory unless the run is on Redis (then serve's Redis store)
    with serve(data, **({} if ON_REDIS else {"store": None})) as running:
        yield running


def _delete(service: Service, conv: str) -> None:
    r = service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER)
    assert r.status_code == 204, r.text


def _v1_not_found(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "NotFound", "in the 1.1 ErrorMessage shape"


def _updates_for(service: Service, conv: str) -> int:
    return sum(
        1 for a in service.bot.received if a.get("type") == "conversationUpdate" and a["conversation"]["id"] == conv
    )


def _token_conversation(service: Service, user: str = "u1") -> tuple[str, str]:
    """(token, conversation id) of a 3.0 token generated for a new conversation, then started with it."""
    v3 = V3(service)
    generated = v3.post("/tokens/generate", json={"user": {"id": user}}).json()
    token, conv = generated["token"], generated["conversationId"]
    v3.start(credential=token)
    return token, conv


def test_a_3_0_token_of_a_deleted_conversation_reaches_nothing_and_brings_nothing_back(service: Service) -> None:
    """The review's reproduction: delete, then refresh and start with the token (both were 200/201)."""
    v3 = V3(service)
    token, conv = _token_conversation(service)
    said = v3.say(conv, "secret stuff", credential=token)
    upload = v3.post(
        f"/conversations/{conv}/upload?userId=u1", token, files=[("file", ("a.txt", b"FILE", "text/plain"))]
    )
    assert upload.status_code == 200, upload.text
    activities = v3.activities(conv, credential=token)["activities"]
    link = next(a for a in activities if a.get("attachments"))["attachments"][0]["contentUrl"]
    assert httpx.get(link).content == b"FILE"
    stream_url = v3.get(f"/conversations/{conv}", token).json()["streamUrl"]
    updates = _updates_for(service, conv)

    _delete(service, conv)

    error(v3.post("/tokens/refresh", token), 404, "NotFound")
    error(v3.post("/conversations", token), 404, "NotFound")
    error(v3.post("/conversations", token, json={"user": {"id": "u1"}}), 404, "NotFound")
    error(v3.get(f"/conversations/{conv}", token), 404, "NotFound")
    error(v3.get(f"/conversations/{conv}/activities", token), 404, "NotFound")
    error(v3.post(f"/conversations/{conv}/activities", token, json={"type": "message", "text": "x"}), 404, "NotFound")
    error(
        v3.post(f"/conversations/{conv}/upload", token, files=[("file", ("b.txt", b"x", "text/plain"))]),
        404,
        "NotFound",
    )
    status, body = _refused(stream_url)
    assert status == 404 and body["error"]["code"] == "NotFound"
    assert httpx.get(link).status_code == 404
    # the bot replying to it, or uploading to it
    error(
        service.http.post(f"/v3/conversations/{quoted(conv)}/activities/{quoted(said)}", json={"type": "message"}),
        404,
        "NotFound",
    )
    error(
        service.http.post(
            f"/v3/conversations/{quoted(conv)}/attachments",
            json={"type": "text/plain", "name": "a.txt", "originalBase64": "aGk="},
        ),
        404,
        "NotFound",
    )
    error(service.http.get(f"/admin/conversations/{quoted(conv)}", headers=BEARER), 404, "NotFound")
    # the bot was not told of a new conversation, and no id of it is used again
    assert _updates_for(service, conv) == updates
    assert service.loop.run(service.services.store.get_conversation(conv)) is None


def test_a_1_1_token_of_a_deleted_conversation_reaches_nothing_and_brings_nothing_back(service: Service) -> None:
    token = service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET)).json()
    started = service.http.post("/api/conversations", headers=service.auth(token))
    assert started.status_code == 200, started.text
    conv = started.json()["conversationId"]
    sent = service.http.post(
        f"/api/conversations/{conv}/messages", headers=service.auth(token), json={"text": "hi", "from": "u1"}
    )
    assert sent.status_code == 204, sent.text
    updates = _updates_for(service, conv)

    _delete(service, conv)

    for method in ("GET", "POST"):
        _v1_not_found(service.http.request(method, f"/api/tokens/{conv}/renew", headers=service.auth(token)))
    _v1_not_found(service.http.post("/api/conversations", headers=service.auth(token)))
    _v1_not_found(service.http.get(f"/api/conversations/{conv}/messages", headers=service.auth(token)))
    _v1_not_found(
        service.http.post(f"/api/conversations/{conv}/messages", headers=service.auth(token), json={"text": "x"})
    )
    _v1_not_found(
        service.http.post(
            f"/api/conversations/{conv}/upload?userId=u1",
            headers=service.auth(token),
            files=[("file", ("a.txt", b"x", "text/plain"))],
        )
    )
    assert _updates_for(service, conv) == updates


def test_a_token_for_a_conversation_not_started_yet_still_refreshes_and_starts(service: Service) -> None:
    v3 = V3(service)
    generated = v3.post("/tokens/generate", json={"user": {"id": "u1"}}).json()
    token, conv = generated["token"], generated["conversationId"]
    # deleting what does not exist yet is a 404 that leaves no tombstone behind
    error(service.http.delete(f"/admin/conversations/{quoted(conv)}", headers=BEARER), 404, "NotFound")
    refreshed = v3.post("/tokens/refresh", token)
    assert refreshed.status_code == 200, refreshed.text
    assert v3.start(credential=refreshed.json()["token"])["conversationId"] == conv
    v1_token = service.http.post("/api/tokens/conversation", headers=service.auth(REC_SECRET)).json()
    renewed = service.http.get(f"/api/tokens/{_v1_conversation(v1_token)}/renew", headers=service.auth(v1_token))
    assert renewed.status_code == 200, renewed.text
    assert service.http.post("/api/conversations", headers=service.auth(renewed.json())).status_code == 200


def _v1_conversation(token: str) -> str:
    from tests.api._v3 import claims

    conv: str = claims(token)["conv"]
    return conv


def test_the_deletion_ends_a_stream_opened_with_a_token(service: Service) -> None:
    v3 = V3(service)
    token, conv = _token_conversation(service)
    with stream(v3.get(f"/conversations/{conv}?watermark=-", token).json()["streamUrl"]) as s:
        s.frame()  # the welcome
        _delete(service, conv)
        with pytest.raises(ConnectionClosed):
            s.frame()
    error(v3.post("/tokens/refresh", token), 404, "NotFound")


def test_once_the_tombstone_is_forgotten_every_credential_of_before_has_expired(service: Service) -> None:
    v3 = V3(service)
    token, conv = _token_conversation(service)
    _delete(service, conv)
    error(v3.post("/tokens/refresh", token), 404, "NotFound")
    service.clock.offset += TOKEN_TTL + STREAM_TTL + 1
    service.loop.run(service.services.store.sweep(service.clock()))  # forgets the tombstone
    assert not service.loop.run(service.services.store.deleted(conv, service.clock()))
    for r in (v3.post("/tokens/refresh", token), v3.post("/conversations", token)):
        error(r, 403, "TokenExpired")


@pytest.fixture
def sqlite_service(service: Service, tmp_path: Path) -> Iterator[Service]:
    """The module's service when it is on SQLite; on a Redis run, one on SQLite of its own."""
    if not ON_REDIS:
        yield service
        return
    with serve(tmp_path, store=None) as running:
        yield running


def test_a_deletion_by_another_process_keeps_tokens_out_too(sqlite_service: Service) -> None:
    """`openline conversation delete` beside the running service: the tombstone is in the file (SQLite alone:
    another process deletes from the same file)."""
    service = sqlite_service
    v3 = V3(service)
    token, conv = _token_conversation(service)
    v3.say(conv, "hi", credential=token)

    async def delete_elsewhere() -> bool:
        other = SqliteStore(service.services.config.data_dir / "openline.sqlite3", RETENTION, 3600)
        await other.open()
        try:
            now = service.clock()
            return await other.delete_conversation(conv, now, now + TOKEN_TTL + STREAM_TTL)
        finally:
            await other.close()

    assert asyncio.run(delete_elsewhere())
    error(v3.post("/tokens/refresh", token), 404, "NotFound")
    error(v3.post("/conversations", token), 404, "NotFound")
    error(v3.get(f"/conversations/{conv}/activities", token), 404, "NotFound")


def test_the_connector_never_creates_a_conversation_under_a_deleted_id(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are random (about 130 bits), so only a forced one can meet a tombstone: the store refuses it there
    too, and the bot gets an error rather than the deleted conversation."""
    from openline.service import connector

    _, conv = _token_conversation(service)
    _delete(service, conv)
    monkeypatch.setattr(connector, "new_conversation_id", lambda: conv)
    r = service.http.post("/v3/conversations", json={"bot": {"id": "rec"}, "members": [{"id": "u1"}]})
    assert "already taken" in error(r, 500, "InternalError")
    assert service.loop.run(service.services.store.get_conversation(conv)) is None
