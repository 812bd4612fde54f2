"""CORS for the client APIs (any origin, any request header); none for own pages, admin API and bot routes.

Browser clients (Web Chat, directlinejs) call the Direct Line APIs from other
origins with `Authorization` and custom headers, so every call is preflighted;
any header a preflight asks for is allowed, since credentials travel in
`Authorization`, never in cookies. A preflight that cannot be allowed (a
method no route serves, or a public site reaching into a private network) is
refused in the API's own error shape, like every other answer.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openline.api._http import NO_CORS_PATHS
from openline.api.errors import error_response
from openline.protocol.errors import ErrorKind

ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")


class PublicCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=ALLOWED_METHODS,
            allow_headers=["*"],
            # a browser client reads a 429's or 503's wait only if exposed (botframework-directlinejs does)
            expose_headers=["Retry-After"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(NO_CORS_PATHS):
            await self.app(scope, receive, send)
            return
        if not any(name == b"origin" for name, _ in scope["headers"]):
            # what CORSMiddleware does for a request without Origin (add `Vary: Origin`), without its wrapping
            await self.app(scope, receive, _vary_origin(send))
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = self.cors.preflight_response(request_headers=headers)
            if response.status_code >= 400:
                response = _refusal(path, headers)
            await response(scope, receive, send)
            return
        await self.cors(scope, receive, send)


def _vary_origin(send: Send) -> Send:
    """`send`, with `Origin` added to the response's `Vary` (the answer depends on it: CORS headers or not)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
            vary = [value for name, value in headers if name.lower() == b"vary"]
            if vary:
                headers = [(name, value) for name, value in headers if name.lower() != b"vary"]
            headers.append((b"vary", b", ".join([*vary, b"Origin"])))
            message = {**message, "headers": headers}
        await send(message)

    return sending


def _refusal(path: str, headers: Headers) -> Response:
    method = headers["access-control-request-method"]
    cors = {"Access-Control-Allow-Origin": "*", "Vary": "Origin"}
    if method not in ALLOWED_METHODS:
        allowed = ", ".join(ALLOWED_METHODS)
        return error_response(path, ErrorKind.METHOD_NOT_ALLOWED, f"{method} is not served here ({allowed})", cors)
    # Chrome's Private Network Access: a page of a public site asking to reach this service on a private network
    return error_response(
        path, ErrorKind.FORBIDDEN, "requests from public websites into this private network are refused", cors
    )
