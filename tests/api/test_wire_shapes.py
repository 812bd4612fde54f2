"""Wire shapes real clients and bots read: serviceUrl and how bots join it, CORS preflights, error shapes."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest

from openline.api._paths import normal_raw_path
from openline.protocol import activity as act
from tests.api._v3 import V3
from tests.api.conftest import ECHO_SECRET, REC_SECRET, Service

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (b"/", b"/"),
        (b"//", b"/"),
        (b"//v3/conversations/c/activities", b"/v3/conversations/c/activities"),
        (b"/v3//conversations///c/activities/", b"/v3/conversations/c/activities"),
        (b"/api/conversations/", b"/api/conversations"),
        (b"/v3/conversations/c/members/a%2F%2Fb", b"/v3/conversations/c/members/a%2F%2Fb"),
        (b"/v3/conversations/c/members/a%2F", b"/v3/conversations/c/members/a%2F"),
    ],
)
def test_normal_raw_path(raw: bytes, normal: bytes) -> None:
    assert normal_raw_path(raw) == normal


@pytest.mark.parametrize(
    ("public_url", "service_url"),
    [
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000/"),
        ("https://chat.example.com/", "https://chat.example.com/"),
        ("https://example.com/directline", "https://example.com/directline/"),
        ("https://example.com/directline//", "https://example.com/directline/"),
    ],
)
def test_service_url_is_the_hosted_form(public_url: str, service_url: str) -> None:
    assert act.service_url(public_url) == service_url
    assert act.for_bot({"type": "message"}, public_url)["serviceUrl"] == service_url


def test_the_bot_gets_service_url_with_one_trailing_slash(service: Service) -> None:
    conv = service.start()["conversationId"]
    (update,) = service.bot.of(conv, "conversationUpdate")
    assert update["serviceUrl"] == service.url + "/"
    # the recording bot joins it with "/v3/...": its replies reach the conversation
    assert service.send(conv, {"from": "u1", "text": "hi"}).status_code == 204
    assert [m["text"] for m in service.all_messages(conv)] == ["hi", "welcome u1", "echo: hi"]


@pytest.mark.parametrize("join", ["{base}v3/conversations/{conv}", "{base}/v3/conversations/{conv}"])
def test_the_connector_api_answers_both_ways_of_joining_service_url(service: Service, join: str) -> None:
    """`serviceUrl + "v3/..."` (hosted form) and `serviceUrl + "/v3/..."` (the doubled slash) reach one route."""
    conv = service.start()["conversationId"]
    base = service.url + "/"
    url = join.format(base=base, conv=urllib.parse.quote(conv))
    sent = service.http.post(url + "/activities", json={"type": "message", "text": "joined"})
    assert sent.status_code == 200, sent.text
    reply_to = urllib.parse.quote(sent.json()["id"], safe="")
    assert service.http.post(f"{url}/activities/{reply_to}", json={"type": "message", "text": "r"}).status_code == 200
    assert service.http.get(url + "/members").status_code == 200
    assert service.http.get(f"{url}/activities/{reply_to}/members").status_code == 200
    edited = service.http.put(f"{url}/activities/{reply_to}", json={"type": "message", "text": "edited"})
    assert edited.status_code == 200
    assert service.http.delete(f"{url}/activities/{reply_to}").status_code == 200
    created = service.http.post(base + "/v3/conversations", json={"bot": {"id": "rec"}})
    assert created.status_code == 201 and created.json()["serviceUrl"] == base


def test_doubled_slashes_reach_the_client_apis_too(service: Service) -> None:
    auth = service.auth(REC_SECRET)
    r = service.http.post(service.url + "//api//conversations", headers=auth)
    assert r.status_code == 200
    conv = r.json()["conversationId"]
    assert service.http.get(f"{service.url}//v3/directline/conversations/{conv}//activities", headers=auth).is_success


# -- CORS ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/conversations", "/v3/directline/conversations", "/healthz"])
def test_a_preflight_asking_for_any_header_is_allowed(service: Service, path: str) -> None:
    asked = "authorization, content-type, x-ms-bot-agent, x-custom-tracing, traceparent, x-ms-conversation-id"
    r = service.http.options(path, headers={**PREFLIGHT, "Access-Control-Request-Headers": asked})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-headers"] == asked
    assert "POST" in r.headers["access-control-allow-methods"]


@pytest.mark.parametrize(("path", "shape"), [("/api/conversations", "1.1"), ("/v3/directline/conversations", "3.0")])
def test_a_preflight_for_a_method_no_route_serves_is_refused_in_the_api_shape(
    service: Service, path: str, shape: str
) -> None:
    r = service.http.options(path, headers={**PREFLIGHT, "Access-Control-Request-Method": "PATCH"})
    assert r.status_code == 405 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert "PATCH" in error["message"]
    if shape == "1.1":
        assert error["code"] == "NotSupported" and error["statusCode"] == 405
    else:
        assert error["code"] == "BadArgument" and "statusCode" not in error
    assert r.headers["access-control-allow-origin"] == "*"


def test_a_preflight_from_a_public_site_into_a_private_network_is_refused_in_the_api_shape(service: Service) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"}
    r = service.http.options("/v3/directline/conversations", headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "Forbidden"
    assert "access-control-allow-private-network" not in r.headers


@pytest.mark.parametrize(
    "path",
    [
        "/admin/status",
        "/v3/conversations",
        "/v3/conversations/c/activities",
        "//v3/conversations/c/activities",
        "/v3/attachments/c~k",
        "/echobot/api/messages",
    ],
)
def test_no_cors_on_the_pages_admin_and_bot_routes(service: Service, path: str) -> None:
    """Bots are not browsers: a web page cannot use a visitor's browser to call the connector API."""
    r = service.http.options(service.url + path, headers=PREFLIGHT)
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert r.json()["error"]["code"] == "BadArgument"
    posted = service.http.post(service.url + path, headers={"Origin": "https://evil.example"}, json={"type": "message"})
    assert "access-control-allow-origin" not in posted.headers


# -- a client is never the bot ---------------------------------------------------------------------------------


def _refused(r: httpx.Response, code: str = "BadArgument") -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


@pytest.mark.parametrize("sender", ["rec", "REC", "Rec"])
def test_a_client_cannot_post_as_the_bot(service: Service, sender: str) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    for role in ("bot", "user", None):
        activity = {"type": "message", "from": {"id": sender, "role": role}, "text": "I am the bot"}
        _refused(v3.post(f"/conversations/{conv}/activities", json=activity))
    typing = {"type": "typing", "from": {"id": sender, "role": "bot"}}
    _refused(v3.post(f"/conversations/{conv}/activities", json=typing))
    _refused(
        v3.post(f"/conversations/{conv}/upload?userId={sender}", content=b"x", headers={"Content-Type": "text/plain"})
    )
    _refused(service.send(conv, {"from": sender, "text": "I am the bot"}), "MalformedData")
    upload = service.http.post(
        f"/api/conversations/{conv}/upload?userId={sender}", content=b"x", headers=service.auth(REC_SECRET)
    )
    _refused(upload, "MalformedData")
    assert [a.get("text") for a in service.stored(conv)] == [], "nothing was stored"
    assert service.bot.of(conv, "message") == [] and service.bot.of(conv, "typing") == []


def test_whatever_a_client_sends_it_is_stored_and_shown_as_a_user(service: Service) -> None:
    v3 = V3(service)
    started = v3.start()
    conv = started["conversationId"]
    v3.send(conv, {"type": "message", "from": {"id": "u1", "role": "bot", "name": "Recording Bot"}, "text": "hi"})
    assert service.send(conv, {"from": "u2", "text": "hi 1.1"}).status_code == 204
    senders = [a["from"] for a in service.stored(conv) if a.get("text", "").startswith("hi")]
    assert senders == [{"id": "u1", "role": "user", "name": "Recording Bot"}, {"id": "u2", "role": "user"}]
    delivered = [a["from"]["role"] for a in service.bot.of(conv, "message")]
    assert delivered == ["user", "user"]


def test_no_token_or_conversation_for_a_user_who_is_the_bot(service: Service) -> None:
    v3 = V3(service)
    _refused(v3.post("/tokens/generate", json={"user": {"id": "rec"}}))
    _refused(v3.post("/conversations", json={"user": {"id": "REC", "name": "x"}}))
    assert v3.post("/conversations", json={"user": {"id": "rec-fan"}}).status_code == 201


# -- odd activities ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("members", [5, "x", [5], [{"name": "no id"}], [{"id": 7}], {"id": "u2"}])
def test_members_lists_of_the_wrong_shape_are_refused(service: Service, members: object) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    activity = {"type": "conversationUpdate", "from": {"id": "u1"}, "membersAdded": members}
    _refused(v3.post(f"/conversations/{conv}/activities", json=activity))
    _refused(v3.post(f"/conversations/{conv}/activities", json={**activity, "membersRemoved": members}))
    bot = service.http.post(
        f"/v3/conversations/{conv}/activities", json={"type": "conversationUpdate", "membersAdded": members}
    )
    _refused(bot)


def test_the_echo_bot_survives_what_clients_may_send_it(service: Service) -> None:
    v3 = V3(service, ECHO_SECRET)
    conv = v3.start()["conversationId"]
    many = [{"id": f"u{i}"} for i in range(100)]
    r = v3.post(
        f"/conversations/{conv}/activities",
        json={"type": "conversationUpdate", "from": {"id": "u1"}, "membersAdded": many},
    )
    assert r.status_code == 200, r.text
    texts = [a.get("text") for a in v3.activities(conv)["activities"]]
    assert len([t for t in texts if t and t.startswith("Welcome")]) <= 2, "one welcome per update, not one per member"


def test_a_client_activity_id_too_long_to_be_a_retry_key_is_refused(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    activity = {"type": "message", "from": {"id": "u1"}, "text": "x", "channelData": {"clientActivityID": "k" * 257}}
    _refused(v3.post(f"/conversations/{conv}/activities", json=activity))
    _refused(
        service.send(conv, {"from": "u1", "text": "x", "channelData": {"clientActivityID": "k" * 257}}), "MalformedData"
    )
    ok = {**activity, "channelData": {"clientActivityID": "k" * 256}}
    assert v3.post(f"/conversations/{conv}/activities", json=ok).status_code == 200
