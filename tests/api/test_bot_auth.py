"""Bot authentication over HTTP: the metadata and keys, the token endpoint, the sidecar, channel tokens sent to
bots, and the connector API refusing every caller that does not act for the conversation's bot, on every route."""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from openline.auth.bot_keys import KeyFile
from openline.config import BotConfig
from tests.api._connector import error
from tests.api._v3 import V3
from tests.api.conftest import ADMIN_SECRET, DOWN_SECRET, REC_SECRET, Service, serve

APP_ID = "auth-app-id"
PASSWORD = "auth-password-0123456789"
NEW_PASSWORD = "auth-password-rotated-0123"
OTHER_APP_ID = "other-app-id"
OTHER_PASSWORD = "other-password-0123456789"
SIDECAR = "sidecar-secret-0123456789abcdef0123456789"
AUTH_SECRET = "auth-dl-secret-0123456789"
OTHER_SECRET = "other-dl-secret-0123456789"
BOTFRAMEWORK_SCOPE = "https://api.botframework.com/.default"


def auth_bots(endpoint: str) -> tuple[BotConfig, ...]:
    """Two bots with app ids, at the recording bot's endpoint (which answers for every bot)."""
    return (
        BotConfig("authbot", "Auth Bot", endpoint, (AUTH_SECRET,), APP_ID, (PASSWORD, NEW_PASSWORD), SIDECAR),
        BotConfig("otherbot", "Other Bot", endpoint, (OTHER_SECRET,), OTHER_APP_ID, (OTHER_PASSWORD,)),
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """openline with the usual bots (no app id) and the two bots with app ids; the recording bot knows both."""
    with serve(Path(tmp_path_factory.mktemp("data")), auth_bots) as running:
        running.bot.credentials.update({"authbot": (APP_ID, PASSWORD), "otherbot": (OTHER_APP_ID, OTHER_PASSWORD)})
        yield running


def token_request(service: Service, **form: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", "scope": BOTFRAMEWORK_SCOPE, **form}
    return service.http.post("/adfs/oauth2/token", data=body)


def access_token(service: Service, app_id: str = APP_ID, password: str = PASSWORD) -> str:
    r = token_request(service, client_id=app_id, client_secret=password)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwks(service: Service, path: str = "/v1/.well-known/keys") -> dict[str, Any]:
    r = service.http.get(path)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def verify_with_jwks(service: Service, token: str, audience: str) -> dict[str, Any]:
    """The claims of a token checked as a bot SDK checks it: the JWKS key of its kid, RS256, audience, issuer."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks(service)["keys"] if k["kid"] == kid)
    public = jwt.PyJWK(key).key
    claims: dict[str, Any] = jwt.decode(
        token, public, algorithms=["RS256"], audience=audience, issuer=service.services.config.public_url
    )
    return claims


def auth_conversation(service: Service, secret: str = AUTH_SECRET) -> str:
    v3 = V3(service, secret)
    conv: str = v3.start()["conversationId"]
    return conv


# -- discovery ---------------------------------------------------------------------------------------


def test_the_openid_metadata_names_the_keys_and_each_key_is_endorsed_for_directline(service: Service) -> None:
    public = service.services.config.public_url
    r = service.http.get("/v1/.well-known/openidconfiguration")
    assert r.status_code == 200
    metadata = r.json()
    assert metadata["issuer"] == public
    assert metadata["jwks_uri"] == f"{public}/v1/.well-known/keys"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = jwks(service)["keys"]
    assert keys and all(k["kty"] == "RSA" and k["kid"] and k["n"] and k["e"] == "AQAB" for k in keys)
    assert all(k["endorsements"] == ["directline"] for k in keys)
    assert "d" not in keys[0] and "p" not in keys[0], "only public parts"
    # the JS Agents SDK reads the same keys at {authorityEndpoint}/discovery/v2.0/keys
    assert jwks(service, "/adfs/discovery/v2.0/keys") == jwks(service)


def test_the_authority_discovery_document_has_what_msal_requires(service: Service) -> None:
    public = service.services.config.public_url
    r = service.http.get("/adfs/.well-known/openid-configuration")
    assert r.status_code == 200
    document = r.json()
    assert document["token_endpoint"] == f"{public}/adfs/oauth2/token"
    assert document["authorization_endpoint"] == f"{public}/adfs/oauth2/authorize"
    assert document["jwks_uri"] == f"{public}/adfs/discovery/v2.0/keys"
    assert document["issuer"] == f"{public}/adfs"
    authorize = service.http.get("/adfs/oauth2/authorize", params={"response_type": "code"})
    assert authorize.status_code == 400 and authorize.json()["error"] == "unsupported_response_type"


# -- the token endpoint ------------------------------------------------------------------------------


def test_a_bot_gets_an_access_token_with_its_app_id_and_password(service: Service) -> None:
    r = token_request(service, client_id=APP_ID, client_secret=PASSWORD, client_info="1")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == body["ext_expires_in"] == 3600
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    claims = verify_with_jwks(service, body["access_token"], "https://api.botframework.com")
    assert claims["azp"] == claims["appid"] == APP_ID


def test_every_password_of_a_rotation_works_and_http_basic_too(service: Service) -> None:
    assert access_token(service, APP_ID, NEW_PASSWORD)
    basic = base64.b64encode(f"{APP_ID}:{PASSWORD}".encode()).decode()
    r = service.http.post(
        "/adfs/oauth2/token",
        data={"grant_type": "client_credentials", "scope": BOTFRAMEWORK_SCOPE},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200, r.text
    public = service.services.config.public_url
    r = token_request(service, client_id=APP_ID, client_secret=PASSWORD, scope=f"{public}/.default openid profile")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"client_id": APP_ID, "client_secret": "wrong-password-0123456789"}, 401, "invalid_client"),
        ({"client_id": APP_ID, "client_secret": ""}, 401, "invalid_client"),
        ({"client_id": APP_ID}, 401, "invalid_client"),
        ({"client_id": "nobody", "client_secret": PASSWORD}, 400, "unauthorized_client"),
        ({"client_secret": PASSWORD}, 400, "invalid_request"),
        ({"client_id": APP_ID, "client_secret": PASSWORD, "grant_type": "password"}, 400, "unsupported_grant_type"),
        (
            {"client_id": APP_ID, "client_secret": PASSWORD, "scope": "https://graph.microsoft.com/.default"},
            400,
            "invalid_scope",
        ),
        ({"client_id": APP_ID, "client_secret": PASSWORD, "scope": ""}, 400, "invalid_scope"),
        ({"client_id": OTHER_APP_ID, "client_secret": PASSWORD}, 401, "invalid_client"),
    ],
)
def test_a_refused_token_request_gets_an_msal_shaped_error(
    service: Service, form: dict[str, str], status: int, code: str
) -> None:
    r = token_request(service, **form)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code
    assert body["error_description"].startswith("AADSTS") and body["error_codes"] == [
        int(body["error_description"][6:].split(":")[0])
    ]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    assert PASSWORD not in r.text


def test_a_token_request_that_is_not_a_form_is_refused(service: Service) -> None:
    r = service.http.post("/adfs/oauth2/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = service.http.post(
        "/adfs/oauth2/token",
        content=b"grant_type=client_credentials&" + b"x" * 20000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"
    r = service.http.post(
        "/adfs/oauth2/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_a_token_request_with_two_ways_of_authenticating_is_refused(service: Service) -> None:
    basic = base64.b64encode(f"{OTHER_APP_ID}:{OTHER_PASSWORD}".encode()).decode()
    r = service.http.post(
        "/adfs/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "scope": BOTFRAMEWORK_SCOPE,
            "client_id": APP_ID,
            "client_secret": PASSWORD,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


@pytest.mark.parametrize(
    "scope",
    ["https://api.botframework.com", "https://api.botframework.com//.default", "https://API.botframework.com/.default"],
)
def test_only_the_offered_scopes_are_granted(service: Service, scope: str) -> None:
    r = token_request(service, client_id=APP_ID, client_secret=PASSWORD, scope=scope)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text


def test_errors_of_the_token_authority_and_the_sidecar_keep_their_own_shapes(service: Service) -> None:
    r = service.http.get("/adfs/oauth2/token")
    assert r.status_code == 405 and set(r.json()) == {"error", "error_description"}
    r = service.http.get("/adfs/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "invalid_request"
    r = service.http.post(f"/sidecar/{SIDECAR}/AuthorizationHeaderUnauthenticated/default")
    assert r.status_code == 405 and r.json()["status"] == 405 and "title" in r.json()


@pytest.mark.parametrize("path", ["/v1/.well-known/keys%2F", "/v3/conversations%2F", "/healthz%2F"])
def test_a_path_ending_in_an_encoded_slash_is_not_found_never_redirected(service: Service, path: str) -> None:
    r = service.http.get(path, headers={"Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers, r.headers


# -- the sidecar -------------------------------------------------------------------------------------


def test_the_sidecar_gives_the_bot_an_authorization_header_that_opens_its_conversations(service: Service) -> None:
    path = f"/sidecar/{SIDECAR}/AuthorizationHeaderUnauthenticated/default"
    r = service.http.get(
        path,
        params={"optionsOverride.Scopes": "https://api.botframework.com", "optionsOverride.RequestAppToken": "true"},
    )
    assert r.status_code == 200, r.text
    header = r.json()["authorizationHeader"]
    assert header.startswith("Bearer ")
    conv = auth_conversation(service)
    r = service.http.post(
        f"/v3/conversations/{conv}/activities",
        json={"type": "message", "text": "hi"},
        headers={"Authorization": header},
    )
    assert r.status_code == 200, r.text


def test_a_wrong_sidecar_secret_finds_nothing_and_is_blamed_on_the_one_bot_with_a_sidecar(service: Service) -> None:
    before = time.time() - 1
    r = service.http.get("/sidecar/not-the-secret-0123456789abcdef0123/AuthorizationHeaderUnauthenticated/default")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json" and r.json()["status"] == 404
    assert "SIDECARBASEURL" in r.json()["title"], "the Agents SDK logs the title only"
    refusal = service.services.bot_authority.recent_refusal("authbot", before)
    assert refusal is not None and "sidecar" in refusal
    bad_scope = service.http.get(
        f"/sidecar/{SIDECAR}/AuthorizationHeaderUnauthenticated/default",
        params={"optionsOverride.Scopes": "https://graph.microsoft.com"},
    )
    assert bad_scope.status_code == 400


# -- channel → bot -----------------------------------------------------------------------------------


def test_calls_to_a_bot_with_an_app_id_carry_a_channel_token_both_sdk_families_accept(service: Service) -> None:
    conv = auth_conversation(service)
    v3 = V3(service, AUTH_SECRET)
    v3.say(conv, "hello")
    i, activity = next((i, a) for i, a in enumerate(service.bot.received) if a.get("text") == "hello")
    authorization = service.bot.headers[i]["authorization"]
    scheme, token = authorization.split(" ")
    assert scheme == "Bearer"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] and header["typ"] == "JWT"
    claims = verify_with_jwks(service, token, APP_ID)
    assert claims["serviceurl"] == activity["serviceUrl"]
    assert claims["iss"] == service.services.config.public_url
    assert {"nbf", "iat", "exp"} <= set(claims) and claims["exp"] - claims["iat"] == 3600
    assert not {"ver", "appid", "azp", "tid"} & set(claims), "would make it a skill or agent token"
    # the reply the bot sent with its access token reached the conversation
    assert [a.get("text") for a in v3.activities(conv)["activities"]][-1] == "echo: hello"


def test_calls_to_a_bot_without_an_app_id_carry_no_authorization(service: Service) -> None:
    v3 = V3(service)
    conv = v3.start()["conversationId"]
    v3.say(conv, "plain")
    i = next(i for i, a in enumerate(service.bot.received) if a.get("text") == "plain")
    assert "authorization" not in service.bot.headers[i]


def test_a_bot_refusing_the_channel_token_is_a_clear_error_for_the_client_and_the_inspector(
    service: Service,
) -> None:
    conv = auth_conversation(service)
    v3 = V3(service, AUTH_SECRET)
    r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": "deny"})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "BotRejectedActivity"
    assert "refused openline's credentials (HTTP 401)" in r.json()["error"]["message"]
    inspected = service.http.get(f"/admin/conversations/{conv}", headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
    assert inspected.status_code == 200, inspected.text
    assert "refused openline's credentials" in inspected.text


def test_a_bot_with_a_wrong_password_fails_its_turn_and_the_client_is_told_why(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    conv = auth_conversation(service)
    service.bot.credentials["authbot"] = (APP_ID, "not-the-password-0123456789")
    try:
        v3 = V3(service, AUTH_SECRET)
        r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u1"}, "text": "x"})
    finally:
        service.bot.credentials["authbot"] = (APP_ID, PASSWORD)
    assert r.status_code == 502, r.text
    assert "a token request for its app id came with a wrong app password" in r.json()["error"]["message"]
    assert service.bot.token_answers[-1] == 401
    logged = [r.getMessage() for r in caplog.records if r.name == "openline.delivery"]
    assert any("wrong app password" in line for line in logged), "the log says what the client is told"
    assert [a.get("text") for a in v3.activities(conv)["activities"] if a["from"]["id"] == "authbot"] == []


# -- bot → channel: the connector API ----------------------------------------------------------------


def _routes(conv: str, activity_id: str) -> list[tuple[str, str, Any]]:
    """Every connector route that acts on one conversation, and creating one for the bot: (method, path, body)."""
    c, a = urllib.parse.quote(conv, safe=""), urllib.parse.quote(activity_id, safe="")
    message = {"type": "message", "text": "intruder"}
    return [
        (
            "POST",
            "/v3/conversations",
            {"bot": {"id": "authbot"}, "members": [{"id": "u7"}]},
        ),
        ("POST", f"/v3/conversations/{c}/activities", message),
        ("POST", f"/v3/conversations/{c}/activities/{a}", message),
        ("PUT", f"/v3/conversations/{c}/activities/{a}", message),
        ("DELETE", f"/v3/conversations/{c}/activities/{a}", None),
        ("POST", f"/v3/conversations/{c}/activities/history", {"activities": [message]}),
        ("GET", f"/v3/conversations/{c}/members", None),
        ("GET", f"/v3/conversations/{c}/activities/{a}/members", None),
        ("GET", f"/v3/conversations/{c}/members/u1", None),
        ("GET", f"/v3/conversations/{c}/pagedmembers", None),
        ("DELETE", f"/v3/conversations/{c}/members/u1", None),
        ("POST", f"/v3/conversations/{c}/attachments", {"type": "text/plain", "originalBase64": "aGk="}),
    ]


def _call(service: Service, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return service.http.request(method, path, json=body, headers=headers)


def _foreign_token(service: Service, private_key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
    """An access token with some claims changed, signed by openline's own key (so only the claims are wrong),
    or by `private_key` under openline's key id (a forgery)."""
    keys = KeyFile(service.services.config.data_dir).read()
    assert keys is not None
    signing = keys.signing_key(time.time())
    now = int(time.time())
    base = {
        "iss": service.services.config.public_url,
        "aud": "https://api.botframework.com",
        "azp": APP_ID,
        "appid": APP_ID,
        "nbf": now - 5,
        "iat": now,
        "exp": now + 600,
    }
    key = private_key or signing.private_key
    return jwt.encode({**base, **claims}, key, "RS256", headers={"kid": signing.kid, "typ": "at+jwt"})


def test_the_connector_refuses_every_caller_not_acting_for_the_conversations_bot_on_every_route(
    service: Service,
) -> None:
    conv = auth_conversation(service)
    v3 = V3(service, AUTH_SECRET)
    user_activity = v3.say(conv, "mine")
    forged = _foreign_token(service, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    now = int(time.time())
    channel_token = service.services.bot_authority.tokens.channel_token(APP_ID, "http://x/")
    refused: dict[str, tuple[dict[str, str], int]] = {
        "no credential": ({}, 401),
        "not bearer": ({"Authorization": f"Basic {PASSWORD}"}, 401),
        "garbage": (bearer("abc.def.ghi"), 401),
        "forged": (bearer(forged), 401),
        "expired": (bearer(_foreign_token(service, nbf=now - 4000, iat=now - 4000, exp=now - 400)), 401),
        "wrong audience": (bearer(_foreign_token(service, aud="https://graph.microsoft.com")), 401),
        "wrong issuer": (bearer(_foreign_token(service, iss="https://api.botframework.com")), 401),
        "unknown app id": (bearer(_foreign_token(service, azp="nobody")), 401),
        "a channel token": (bearer(channel_token), 401),
        "a Direct Line secret": (bearer(AUTH_SECRET), 401),
        "another bot's token": (bearer(access_token(service, OTHER_APP_ID, OTHER_PASSWORD)), 403),
    }
    before = len(service.stored(conv))
    for method, path, body in _routes(conv, user_activity):
        for what, (headers, status) in refused.items():
            r = _call(service, method, path, body, headers)
            assert r.status_code == status, f"{what}: {method} {path} -> {r.status_code} {r.text}"
            assert r.json()["error"]["code"] == ("Unauthorized" if status == 401 else "Forbidden"), r.text
    assert len(service.stored(conv)) == before, "nothing was stored by a refused call"
    for what, (headers, _) in refused.items():  # listing: a token that proves nothing gets nothing
        if what not in ("no credential", "another bot's token"):
            r = _call(service, "GET", "/v3/conversations", None, headers)
            assert r.status_code == 401, f"{what}: GET /v3/conversations -> {r.status_code} {r.text}"
    r = _call(service, "GET", f"/v3/conversations/{urllib.parse.quote(conv, safe='')}/members", None, {})
    assert r.headers["www-authenticate"] == 'Bearer realm="openline"', "RFC 6750: what to send"
    # and the bot's own token opens them all
    own = bearer(access_token(service))
    for method, path, body in _routes(conv, user_activity):
        r = _call(service, method, path, body, own)
        assert r.status_code in (200, 201, 404), f"{method} {path} -> {r.status_code} {r.text}"
        assert r.status_code != 404 or "member" in path, r.text


def test_a_bot_lists_and_creates_only_its_own_conversations(service: Service) -> None:
    mine = auth_conversation(service)
    theirs = auth_conversation(service, OTHER_SECRET)
    open_conv = V3(service).start()["conversationId"]
    auth_headers = bearer(access_token(service))

    def listed(headers: dict[str, str]) -> set[str]:
        ids: set[str] = set()
        token: str | None = None
        while True:
            params = {"continuationToken": token} if token else {}
            r = service.http.get("/v3/conversations", headers=headers, params=params)
            assert r.status_code == 200, r.text
            ids |= {c["id"] for c in r.json()["conversations"]}
            token = r.json()["continuationToken"]
            if not token:
                return ids

    assert mine in listed(auth_headers) and theirs not in listed(auth_headers) and open_conv not in listed(auth_headers)
    other = listed(bearer(access_token(service, OTHER_APP_ID, OTHER_PASSWORD)))
    assert theirs in other and mine not in other
    anonymous = listed({})
    assert open_conv in anonymous and mine not in anonymous and theirs not in anonymous

    created = service.http.post("/v3/conversations", json={"members": [{"id": "u9"}]}, headers=auth_headers)
    assert created.status_code == 201, created.text
    assert service.loop.run(service.services.store.get_conversation(created.json()["id"])).bot_id == "authbot"
    for_other = service.http.post("/v3/conversations", json={"bot": {"id": "otherbot"}}, headers=auth_headers)
    error(for_other, 403, "Forbidden")
    anonymous_for_auth = service.http.post("/v3/conversations", json={"bot": {"id": "authbot"}})
    error(anonymous_for_auth, 401, "Unauthorized")


def test_an_access_token_is_refused_once_it_has_expired(service: Service) -> None:
    token = access_token(service)
    conv = auth_conversation(service)
    assert service.http.get(f"/v3/conversations/{conv}/members", headers=bearer(token)).status_code == 200
    service.clock.offset = 3601
    r = service.http.get(f"/v3/conversations/{conv}/members", headers=bearer(token))
    assert "expired" in error(r, 401, "Unauthorized")


def test_with_require_bot_auth_no_call_is_accepted_without_a_token(tmp_path: Path) -> None:
    bots = (BotConfig("authbot", "Auth Bot", "http://127.0.0.1:9/api/messages", (REC_SECRET,), APP_ID, (PASSWORD,)),)
    with serve(tmp_path, bots=bots, require_bot_auth=True) as running:
        r = running.http.get("/v3/conversations")
        assert "Authorization header is missing" in error(r, 401, "Unauthorized")
        assert running.http.get("/v3/conversations", headers=bearer(access_token(running))).status_code == 200


def test_a_refused_upload_is_remembered_for_the_delivery_and_an_unreachable_bot_is_not_explained_by_it(
    service: Service,
) -> None:
    conv = auth_conversation(service)
    before = time.time() - 1
    body = {"type": "text/plain", "originalBase64": "aGk="}
    r = service.http.post(f"/v3/conversations/{urllib.parse.quote(conv, safe='')}/attachments", json=body)
    assert r.status_code == 401
    refusal = service.services.bot_authority.recent_refusal("authbot", before)
    assert refusal is not None and "attachment upload" in refusal
    # a bot that cannot be reached never had the activity: no refusal is offered as the reason
    down = V3(service, DOWN_SECRET)
    down_conv = down.start()["conversationId"]
    service.services.bot_authority.note_refusal("down", "something seen")
    r = down.post(f"/conversations/{down_conv}/activities", json={"type": "message", "from": {"id": "u"}, "text": "x"})
    assert r.status_code == 502 and "something seen" not in r.text


def test_a_running_service_picks_up_a_rotation_and_old_tokens_keep_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openline.app

    monkeypatch.setattr(openline.app, "KEY_RELOAD_INTERVAL", 0.05)
    with serve(tmp_path, auth_bots) as running:
        old_token = access_token(running)
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        _, new = KeyFile(tmp_path).rotate(0)
        deadline = time.monotonic() + 5
        while new.kid not in {k["kid"] for k in jwks(running)["keys"]}:
            assert time.monotonic() < deadline, "the new key was not published"
            time.sleep(0.05)
        new_token = access_token(running, OTHER_APP_ID, OTHER_PASSWORD)
        assert jwt.get_unverified_header(new_token)["kid"] == new.kid != old_kid
        conv = auth_conversation(running)
        r = running.http.get(
            f"/v3/conversations/{urllib.parse.quote(conv, safe='')}/members", headers=bearer(old_token)
        )
        assert r.status_code == 200, "a token signed before the rotation works until it expires"


def test_wrong_credentials_cannot_flood_the_log(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(30):
        assert (
            token_request(service, client_id=OTHER_APP_ID, client_secret="wrong-password-0123456789").status_code == 401
        )
        service.http.get("/sidecar/wrong-secret-0123456789abcdef0123/AuthorizationHeaderUnauthenticated/x")
    warnings = [r.getMessage() for r in caplog.records if r.name == "openline.botauth"]
    assert len(warnings) <= 2, warnings
    assert "wrong-password" not in caplog.text and "wrong-secret" not in caplog.text
