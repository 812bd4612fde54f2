"""The web pages: the chat page at /, its same-origin token endpoint, Web Chat's script, the inspector's sign-in."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openline import __version__
from openline.app import build_services, create_app
from openline.auth.admin import SESSION_COOKIE, SESSION_TTL
from openline.config import WEBCHAT_CDN, BotConfig
from openline.echobot import WELCOME
from tests.api._servers import bound_socket
from tests.api._v3 import V3, claims
from tests.api.conftest import ADMIN_SECRET, ECHO_SECRET, TOKEN_TTL, Service

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FOREIGN = "https://evil.example"
ODD_NAME = '</script><script>alert("owned")</script><!-- & \u2028'
WEBCHAT_JS = b"/* not really Web Chat */ window.WebChat = { renderWebChat: function () {} };\n"


def _serve(service: Service, **changes: Any) -> str:
    """Another openline on the fixture's loop: the fixture's config with `changes`; its base URL."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = dataclasses.replace(service.services.config, port=port, public_url=f"http://127.0.0.1:{port}", **changes)
    return service.loop.serve(create_app(config, build_services(config, service.clock)), sock)


@pytest.fixture(scope="module")
def no_page(service: Service) -> Iterator[httpx.Client]:
    """An openline with the chat page turned off."""
    with httpx.Client(base_url=_serve(service, web_page=False), timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def local_webchat(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An openline serving Web Chat from a file, whose one bot has a name made to break out of a script element."""
    script = tmp_path_factory.mktemp("webchat") / "webchat.js"
    script.write_bytes(WEBCHAT_JS)
    bots = (BotConfig("echobot", ODD_NAME, None, (ECHO_SECRET,)),)
    with httpx.Client(base_url=_serve(service, webchat_file=script, bots=bots), timeout=10) as http:
        yield http


@pytest.fixture
def browser(service: Service) -> Iterator[httpx.Client]:
    """A client with its own cookie jar (the fixture's shared client must not carry a session)."""
    with httpx.Client(base_url=service.url, timeout=10) as http:
        yield http


def _page_config(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="openline-config" type="application/json">(.*?)</script>', page, re.S)
    assert match, page
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body == {"error": {"code": code, "message": body["error"]["message"]}}


def _token(service: Service, **kw: Any) -> httpx.Response:
    return service.http.post("/web/token", **kw)


# the chat page


def test_the_page_is_for_browsers(service: Service) -> None:
    r = service.http.get("/", headers={"Accept": BROWSER})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"
    assert '<main id="webchat"' in r.text and "/web/static/chat.js" in r.text
    config = _page_config(r.text)
    assert config == {
        "webchatUrl": WEBCHAT_CDN,
        "webchatFromFile": False,
        "bots": [
            {"id": "echobot", "name": "Echo Bot"},
            {"id": "rec", "name": "Recording Bot"},
            {"id": "down", "name": "Down Bot"},
        ],
        "version": __version__,
    }
    assert "secret" not in r.text.lower(), "the page holds no secret"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, */*"])
def test_the_page_is_json_for_everyone_else(service: Service, accept: str | None) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    r = service.http.get("/", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["service"] == "openline"


def test_without_the_page_slash_is_json_and_there_are_no_tokens(no_page: httpx.Client) -> None:
    for accept in (BROWSER, "*/*"):
        r = no_page.get("/", headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json()["service"] == "openline"
    _error(no_page.post("/web/token"), 404, "NotFound")
    _error(no_page.post("/web/token", json={"bot": "echobot"}), 404, "NotFound")
    # the inspector does not depend on the page
    assert no_page.get("/inspect").status_code == 401
    assert no_page.get("/web/static/inspect.js").status_code == 200


# the token endpoint


def test_a_token_for_a_fresh_conversation_with_a_random_user(service: Service) -> None:
    r = _token(service)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"conversationId", "token", "expires_in", "user", "bot"}
    assert body["expires_in"] == TOKEN_TTL
    assert body["bot"] == {"id": "echobot", "name": "Echo Bot"}, "the first bot by default"
    user = body["user"]
    assert set(user) == {"id"} and re.fullmatch(r"dl_[A-Za-z0-9]{16}", user["id"])
    payload = claims(body["token"])
    assert payload["conv"] == body["conversationId"] and payload["bot"] == "echobot"
    assert payload["user"] == user["id"], "a string: Web Chat takes the claim as the user id"
    other = _token(service).json()
    assert other["conversationId"] != body["conversationId"] and other["user"]["id"] != user["id"]


def test_a_token_for_a_chosen_bot(service: Service) -> None:
    r = _token(service, json={"bot": "rec"})
    assert r.status_code == 200, r.text
    assert r.json()["bot"] == {"id": "rec", "name": "Recording Bot"}
    assert claims(r.json()["token"])["bot"] == "rec"


@pytest.mark.parametrize("body", [{"bot": "nosuch"}, {"bot": ""}, {"bot": 5}, {"bot": ["rec"]}])
def test_a_token_for_an_unknown_bot_is_404(service: Service, body: dict[str, Any]) -> None:
    _error(_token(service, json=body), 404, "NotFound")


def test_a_token_from_a_bad_body_is_400(service: Service) -> None:
    _error(_token(service, content=b"{oops", headers={"Content-Type": "application/json"}), 400, "BadArgument")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "same"},
        {"Origin": "same", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_the_token_endpoint_answers_its_own_page(service: Service, headers: dict[str, str]) -> None:
    if headers.get("Origin") == "same":
        headers = {**headers, "Origin": service.url}
    r = _token(service, headers=headers)
    assert r.status_code == 200, r.text
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": FOREIGN},
        {"Origin": "http://localhost:1"},
        {"Origin": "null"},
        {"Origin": "http://[x"},  # no URL parser can read it: a 500 before
        {"Origin": FOREIGN, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_the_token_endpoint_refuses_other_sites(service: Service, headers: dict[str, str]) -> None:
    r = _token(service, headers=headers)
    _error(r, 403, "Forbidden")
    assert "access-control-allow-origin" not in r.headers


def test_the_same_origin_port_matters(service: Service) -> None:
    port = int(service.url.rpartition(":")[2])
    _error(_token(service, headers={"Origin": f"http://127.0.0.1:{port + 1}"}), 403, "Forbidden")


def test_the_token_starts_a_conversation_with_the_echo_bot(service: Service) -> None:
    session = _token(service, headers={"Origin": service.url}).json()
    conv, user = session["conversationId"], session["user"]["id"]
    v3 = V3(service, session["token"])
    started = v3.start()
    assert started["conversationId"] == conv
    posted = v3.send(conv, {"type": "message", "from": {"id": "someone-else"}, "text": "hello"})
    activities = v3.activities(conv)["activities"]
    assert [(a["from"]["id"], a.get("text")) for a in activities] == [
        ("echobot", WELCOME),
        (user, "hello"),
        ("echobot", "echo: hello"),
    ]
    assert activities[1]["id"] == posted and activities[2]["replyToId"] == posted
    # the token is for this conversation only
    assert v3.get("/conversations/nosuch/activities").status_code in (403, 404)


# CORS


def test_private_paths_get_no_cors_headers(service: Service) -> None:
    origin = {"Origin": FOREIGN}
    bearer = {"Authorization": f"Bearer {ADMIN_SECRET}", **origin}
    responses = [
        service.http.post("/web/token", headers=origin),
        service.http.post("/web/token", headers={"Origin": service.url}),
        service.http.get("/web/static/chat.js", headers=origin),
        service.http.get("/web/nothing", headers=origin),
        service.http.get("/admin/status", headers=bearer),
        service.http.get("/admin/conversations", headers=bearer),
        service.http.get("/admin/conversations", headers=origin),
        service.http.get("/inspect", headers=origin),
        service.http.get("/inspect", headers=bearer),
        service.http.post("/inspect/login", headers=origin, data={"secret": ADMIN_SECRET}),
        service.http.options("/web/token", headers={**origin, "Access-Control-Request-Method": "POST"}),
        service.http.options(
            "/admin/status",
            headers={
                **origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        ),
    ]
    assert [r.status_code for r in responses] == [403, 200, 200, 404, 200, 200, 401, 401, 200, 403, 405, 405]
    for r in responses:
        assert not any(h.startswith("access-control-") for h in r.headers), (r.request.url, r.headers)


def test_public_apis_keep_their_cors_headers(service: Service) -> None:
    r = service.http.post(
        "/v3/directline/conversations", headers={"Origin": FOREIGN, "Authorization": f"Bearer {ECHO_SECRET}"}
    )
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "*"
    r = service.http.options(
        "/v3/directline/conversations",
        headers={
            "Origin": FOREIGN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] in ("*", FOREIGN)
    assert service.http.get("/healthz", headers={"Origin": FOREIGN}).headers["access-control-allow-origin"] == "*"


# Web Chat's script and the static files


def test_webchat_file_is_served(local_webchat: httpx.Client) -> None:
    r = local_webchat.get("/web/webchat.js")
    assert r.status_code == 200 and r.content == WEBCHAT_JS
    assert r.headers["content-type"].startswith("text/javascript")
    config = _page_config(local_webchat.get("/", headers={"Accept": BROWSER}).text)
    assert config["webchatUrl"] == "/web/webchat.js" and config["webchatFromFile"] is True


def test_no_webchat_file_without_the_option(service: Service) -> None:
    _error(service.http.get("/web/webchat.js"), 404, "NotFound")


@pytest.mark.parametrize(
    ("name", "content_type", "marker"),
    [
        ("chat.js", "text/javascript", "/web/token"),
        ("inspect.js", "text/javascript", "/admin/"),
        ("style.css", "text/css", "{"),
    ],
)
def test_static_files(service: Service, name: str, content_type: str, marker: str) -> None:
    r = service.http.get(f"/web/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == content_type
    assert r.headers["x-content-type-options"] == "nosniff"
    assert marker in r.text


@pytest.mark.parametrize("name", ["nope.js", "chat.html", "login.html", "__init__.py", "..%2Fapp.py", "%2e%2e"])
def test_unknown_static_files_are_404(service: Service, name: str) -> None:
    assert service.http.get(f"/web/static/{name}").status_code == 404


def test_the_page_keeps_bot_names_inside_its_script(local_webchat: httpx.Client) -> None:
    page = local_webchat.get("/", headers={"Accept": BROWSER}).text
    assert "alert" in page
    assert page.count("</script>") == 2, "only the page's own script elements end"
    assert "<!--" not in page and "<script>" not in page
    assert _page_config(page)["bots"] == [{"id": "echobot", "name": ODD_NAME}]
    # the odd name stays a name for the token endpoint too
    assert local_webchat.post("/web/token").json()["bot"]["name"] == ODD_NAME


# the inspector's sign-in


def _login(http: httpx.Client, secret: str, **headers: str) -> httpx.Response:
    return http.post("/inspect/login", data={"secret": secret}, headers=headers)


def test_the_inspector_asks_for_the_secret(service: Service) -> None:
    r = service.http.get("/inspect")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/inspect/login"' in r.text and 'name="secret"' in r.text
    assert "content-security-policy" in r.headers
    assert "__ERROR__" not in r.text


def test_the_inspector_opens_with_the_bearer_secret(service: Service) -> None:
    r = service.http.get("/inspect", headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
    assert r.status_code == 200 and "/web/static/inspect.js" in r.text
    assert service.http.get("/inspect", headers={"Authorization": f"Bearer {ECHO_SECRET}"}).status_code == 401


def test_sign_in_and_out_from_an_unreadable_origin_are_refused(browser: httpx.Client) -> None:
    assert _login(browser, ADMIN_SECRET, Origin="http://[x").status_code == 403  # a 500 before
    assert browser.post("/inspect/logout", headers={"Origin": "http://[x"}).status_code == 403


def test_a_wrong_secret_is_refused(browser: httpx.Client) -> None:
    for secret in ("wrong-secret-0123456789", "", ECHO_SECRET):
        r = _login(browser, secret)
        assert r.status_code == 401 and "That is not the admin secret." in r.text
        assert "set-cookie" not in r.headers
    assert browser.get("/inspect").status_code == 401


def test_sign_in_sets_a_strict_http_only_session_and_sign_out_clears_it(browser: httpx.Client) -> None:
    r = _login(browser, ADMIN_SECRET)
    assert r.status_code == 303 and r.headers["location"] == "/inspect"
    cookie = r.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")}
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    assert attributes["max-age"] == f"Max-Age={SESSION_TTL}"
    assert "secure" not in attributes, "plain http on loopback"
    assert ADMIN_SECRET not in cookie
    page = browser.get("/inspect")
    assert page.status_code == 200 and "openline inspector" in page.text and 'action="/inspect/logout"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # the same session opens the admin API
    assert browser.get("/admin/status").status_code == 200
    out = browser.post("/inspect/logout")
    assert out.status_code == 303 and out.headers["location"] == "/inspect"
    assert (
        out.headers["set-cookie"].startswith(f'{SESSION_COOKIE}=""') or "max-age=0" in out.headers["set-cookie"].lower()
    )
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get("/inspect").status_code == 401
    assert browser.get("/admin/status").status_code == 401


def test_sign_in_behind_a_tls_proxy_sets_a_secure_cookie(browser: httpx.Client) -> None:
    r = _login(browser, ADMIN_SECRET, **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


def test_the_secret_may_come_with_surrounding_spaces(browser: httpx.Client) -> None:
    assert _login(browser, f"  {ADMIN_SECRET}\n").status_code == 303


def test_sign_in_from_the_own_page_is_allowed(browser: httpx.Client, service: Service) -> None:
    assert _login(browser, ADMIN_SECRET, Origin=service.url).status_code == 303


@pytest.mark.parametrize("headers", [{"Origin": FOREIGN}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}])
def test_sign_in_and_out_from_another_site_is_refused(browser: httpx.Client, headers: dict[str, str]) -> None:
    r = _login(browser, ADMIN_SECRET, **headers)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert browser.get("/inspect").status_code == 401
    assert browser.post("/inspect/logout", headers=headers).status_code == 403


def test_sign_in_needs_the_form(browser: httpx.Client) -> None:
    r = browser.post("/inspect/login", json={"secret": ADMIN_SECRET})
    assert r.status_code == 400 and "set-cookie" not in r.headers
    r = browser.post(
        "/inspect/login",
        content=b"secret=" + b"x" * 20000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and "set-cookie" not in r.headers  # past max_form_bytes
    r = browser.post(
        "/inspect/login", content=b"secret=%ff%fe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 401
    assert browser.post("/inspect/login").status_code == 400


def test_a_forged_or_foreign_session_is_refused(service: Service) -> None:
    for value in ("1.x", f"{int(service.clock()) + 3600}.AAAA", ADMIN_SECRET, ""):
        cookie = {"Cookie": f"{SESSION_COOKIE}={value}"}
        assert service.http.get("/inspect", headers=cookie).status_code == 401
        _error(service.http.get("/admin/status", headers=cookie), 401, "Unauthorized")


def test_a_session_expires(browser: httpx.Client, service: Service) -> None:
    assert _login(browser, ADMIN_SECRET).status_code == 303
    service.clock.offset = SESSION_TTL + 1
    assert browser.get("/inspect").status_code == 401


def test_a_rebound_name_is_not_this_service(service: Service) -> None:
    # DNS rebinding: a site's own name, resolved to this machine, sends an Origin that matches Host
    rebound = {"Origin": "http://rebind.example:3000", "Host": "rebind.example:3000"}
    _error(service.http.post("/web/token", headers=rebound), 403, "Forbidden")


def test_behind_a_proxy_the_public_url_is_this_service(service: Service) -> None:
    # a proxy that rewrites Host and adds no X-Forwarded-Host: the Origin is the public URL's
    public = service.services.config.public_url
    answer = service.http.post("/web/token", headers={"Origin": public, "Host": "backend.internal:8080"})
    assert answer.status_code == 200, answer.text


def test_names_that_cannot_be_rebound_match_host(service: Service) -> None:
    port = service.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"192.0.2.7:{port}", f"[::1]:{port}"):
        answer = service.http.post("/web/token", headers={"Origin": f"http://{host}", "Host": host})
        assert answer.status_code == 200, (host, answer.text)


def test_the_chat_page_may_only_be_framed_by_this_service(service: Service) -> None:
    answer = service.http.get("/", headers={"Accept": "text/html"})
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]
