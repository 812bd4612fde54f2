"""The web pages: Web Chat at `/` with the same-origin token endpoint it uses, and the inspector at `/inspect`.

The chat page (when enabled) never holds a secret: it asks `POST /web/token`
for a token of a fresh conversation with a random `dl_` user, and that endpoint
answers only requests from the service's own pages. The token is bound to the
page's origin, and refused for a bot whose trusted origins leave that out. The inspector shows a
sign-in form until the admin secret has been given, then the page that reads
the admin API. The pages are plain files of the `openline.web` package.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from openline import __version__
from openline.api._http import decode_optional_json, json_response, media_type, read_body
from openline.api._origin import OriginCheck
from openline.auth.admin import SESSION_COOKIE, SESSION_TTL, AdminAuth
from openline.auth.credentials import Authenticator
from openline.config import Config
from openline.protocol import v3
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import new_conversation_id, random_id
from openline.protocol.origins import origin_of
from openline.service.channel import Channel

Endpoint = Callable[[Request], Awaitable[Response]]
_ASSETS = {"chat.js": "text/javascript", "inspect.js": "text/javascript", "style.css": "text/css"}
_PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"}
# (same-origin: with no-referrer, Chromium sends `Origin: null` on form posts, and the sign-in checks it)
# the inspector shows what users and bots sent: nothing but its own script may run on it
_INSPECT_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Web Chat itself needs inline styles, its script's host and images from anywhere: only framing is restricted
_CHAT_CSP = "frame-ancestors 'self'; object-src 'none'; base-uri 'none'"


def _package_file(name: str) -> str:
    return resources.files("openline.web").joinpath(name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>`, no `<!--`)."""
    return msgspec.json.encode(value).decode().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _is_https(request: Request) -> bool:
    return v3.request_scheme(request.url.scheme, request.headers) == "https"


class WebPages:
    """The chat page and its token endpoint (while the page is enabled), the inspector page and its sign-in."""

    def __init__(
        self,
        config: Config,
        auth: Authenticator,
        admin: AdminAuth,
        channel: Channel,
        index: Endpoint,
        origins: OriginCheck,
    ) -> None:
        self.origins = origins
        self.config = config
        self.auth = auth
        self.admin = admin
        self.channel = channel
        self.index = index
        self._assets = {name: _package_file(name) for name in _ASSETS}
        script = "/web/webchat.js" if config.webchat_file is not None else config.webchat_url
        page_config = {
            "webchatUrl": script,
            "webchatFromFile": config.webchat_file is not None,
            "bots": [{"id": b.id, "name": b.name} for b in channel.bots.values()],
            "version": __version__,
        }
        self._chat = _package_file("chat.html").replace("__OPENLINE_CONFIG__", _script_json(page_config))
        self._inspect = _package_file("inspect.html")
        self._login = _package_file("login.html")

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/inspect", self.inspect_page, methods=["GET"]),
            Route("/inspect/login", self.login, methods=["POST"]),
            Route("/inspect/logout", self.logout, methods=["POST"]),
            Route("/web/static/{name}", self.asset, methods=["GET"]),
        ]
        if not self.config.web_page:
            return [Route("/", self.index, methods=["GET"]), *routes]
        routes += [
            Route("/", self.chat_page, methods=["GET"]),
            Route("/web/token", self.token, methods=["POST"]),
        ]
        if self.config.webchat_file is not None:
            routes.append(Route("/web/webchat.js", self.webchat_file, methods=["GET"]))
        return routes

    # -- the chat page ----------------------------------------------------------------------------

    async def chat_page(self, request: Request) -> Response:
        """The page for browsers; the JSON description of the service for everyone else."""
        if "text/html" not in request.headers.get("accept", ""):
            return await self.index(request)
        return HTMLResponse(self._chat, headers={**_PAGE_HEADERS, "Content-Security-Policy": _CHAT_CSP})

    async def token(self, request: Request) -> Response:
        """A token for a new conversation with a random `dl_` user, for this service's own page only."""
        if not self.origins.own(request):
            raise ServiceError(ErrorKind.FORBIDDEN, "this endpoint serves the service's own chat page only")
        body = decode_optional_json(await read_body(request, self.config.max_form_bytes, self.config.body_timeout))
        bot_id = body.get("bot") if isinstance(body, dict) else None
        bot = next(iter(self.channel.bots.values())) if bot_id is None else self.channel.bot(str(bot_id))
        origin = request.headers.get("origin")
        self.auth.access.check(bot.id, origin, secret=False)
        page = origin_of(origin) if origin is not None else None
        user = {"id": "dl_" + random_id(16)}
        conversation_id = new_conversation_id()
        issued = self.auth.tokens.issue(bot.id, conversation_id, user, (page,) if page else ())
        answer = {
            "conversationId": conversation_id,
            "token": issued.token,
            "expires_in": issued.expires_in,
            "user": user,
            "bot": {"id": bot.id, "name": bot.name},
        }
        return json_response(answer, headers={"Cache-Control": "no-store"})

    async def webchat_file(self, request: Request) -> Response:
        """The local copy of Web Chat's script (NOT_FOUND if the file went away since the start)."""
        if self.config.webchat_file is None or not self.config.webchat_file.is_file():
            raise ServiceError(ErrorKind.NOT_FOUND, "the --webchat-file is no longer there")
        return FileResponse(
            self.config.webchat_file, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._assets:
            raise ServiceError(ErrorKind.NOT_FOUND, f"no such file: {request.url.path}")
        return Response(self._assets[name], media_type=_ASSETS[name], headers=_PAGE_HEADERS)

    # -- the inspector ----------------------------------------------------------------------------

    def _login_page(self, error: str, status: int) -> Response:
        text = self._login.replace("__ERROR__", html.escape(error))
        return HTMLResponse(text, status, headers={**_PAGE_HEADERS, "Content-Security-Policy": _INSPECT_CSP})

    async def inspect_page(self, request: Request) -> Response:
        allowed, _ = self.admin.allows(request.headers.get("authorization"), request.cookies)
        if not allowed:
            return self._login_page("", 401)
        return HTMLResponse(self._inspect, headers={**_PAGE_HEADERS, "Content-Security-Policy": _INSPECT_CSP})

    async def login(self, request: Request) -> Response:
        """Sign in with the admin secret (an HTML form post): a session cookie, then the inspector."""
        if not self.origins.own(request):
            return self._login_page("Sign in from this service's own page.", 403)
        if media_type(request) != "application/x-www-form-urlencoded":
            return self._login_page("Sign in with the form.", 400)
        try:
            body = await read_body(request, self.config.max_form_bytes, self.config.body_timeout)
            form = urllib.parse.parse_qs(body.decode())
        except ServiceError as e:
            if e.kind is ErrorKind.TOO_LARGE:
                return self._login_page("The form is too large.", 413)
            return self._login_page("Sign in with the form.", 400)
        except UnicodeDecodeError:
            return self._login_page("Sign in with the form.", 400)
        secret = (form.get("secret") or [""])[0].strip()
        if not self.admin.is_secret(secret):
            return self._login_page("That is not the admin secret.", 401)
        response = RedirectResponse("/inspect", 303)
        response.set_cookie(
            SESSION_COOKIE,
            self.admin.new_session(),
            max_age=SESSION_TTL,
            path="/",
            httponly=True,
            samesite="strict",
            secure=_is_https(request) or self.config.public_url.startswith("https:"),
        )
        return response

    async def logout(self, request: Request) -> Response:
        """Remove the session cookie from this browser (other sessions end when the admin secret changes)."""
        if not self.origins.own(request):
            return self._login_page("Sign out from this service's own page.", 403)
        response = RedirectResponse("/inspect", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response
