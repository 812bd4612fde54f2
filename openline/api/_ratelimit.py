"""ASGI middleware: the rate limits of the Direct Line client APIs (1.1 `/api/...`, 3.0 `/v3/directline/...`).

Every request of those APIs that carries a valid credential takes a token from
the bucket of its credential (a secret or token, kept as a digest) and from the
bucket of the conversation it acts on (`protocol.ratelimit`); the bot's
connector routes, file downloads, the pages and `/healthz` are not counted, nor
are requests whose credential the route will refuse anyway (so a flood of bad
credentials makes no buckets). Over a limit:

- polling (`GET .../activities` in 3.0, `GET .../messages` in 1.1) is answered
  200 with no activities and the caller's own watermark: botframework-directlinejs
  stops polling for good on any error there (spec 3.0 §5 item 5), so the poller
  keeps its pace and simply gets nothing new until the limit allows;
- a 3.0 stream upgrade is refused 429;
- everything else is answered 429 in the API's error shape with `Retry-After`:
  seconds (RFC 9110), except for botframework-directlinejs (its `x-ms-bot-agent`
  header names `directlinejs`), which reads the value as milliseconds
  (`Observable.timer(Number(retryAfter))` in its ajax wrapper) and gets the same
  wait in milliseconds, so that it waits as long as it should before failing the call.

The counts are this process's own: several instances on one Redis each count alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from openline.api._http import json_response
from openline.api.errors import error_document
from openline.auth.credentials import Authenticator, Principal, credential_of
from openline.auth.tokens import STREAM_AUDIENCE
from openline.protocol import v1, v3
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import InvalidWatermark, parse_watermark
from openline.protocol.ratelimit import RateLimiter, retry_after_milliseconds, retry_after_seconds

_COUNTED = ("/v3/directline/", "/api/")
_V3_CONVERSATION = re.compile(r"/v3/directline/conversations/([^/]+)(?:/.*)?")
_V1_CONVERSATION = re.compile(r"/api/(?:conversations/([^/]+)/.*|tokens/([^/]+)/renew)")
_V3_POLL = re.compile(r"/v3/directline/conversations/([^/]+)/activities")
_V1_POLL = re.compile(r"/api/conversations/([^/]+)/messages")
_DIRECTLINEJS = "directlinejs"  # in its x-ms-bot-agent: "DirectLine/3.0 (directlinejs[; custom] VERSION)"


class RateLimits:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, auth: Authenticator, clock: Callable[[], float]) -> None:
        self.app = app
        self.limiter = limiter
        self.auth = auth
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] not in ("http", "websocket")
            or not path.startswith(_COUNTED)
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        keys = self._keys(scope, path)
        wait = self.limiter.acquire(*keys, self.clock()) if keys is not None else 0.0
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).send_denial_response(_refusal(scope, path, wait))
            return
        if scope["method"] == "GET" and (_V3_POLL.fullmatch(path) or _V1_POLL.fullmatch(path)):
            # never a 429 here; a 1.1 watermark the route refuses (400) goes on to be refused
            await (_empty_poll(scope, path) or self.app)(scope, receive, send)
            return
        await _refusal(scope, path, wait)(scope, receive, send)

    def _keys(self, scope: Scope, path: str) -> tuple[str | None, str | None] | None:
        """The credential's and the conversation's keys; None when the credential is not valid (not counted)."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")  # a credential the access rules refuse from it is refused by the route too
        try:
            if scope["type"] == "websocket":
                credential = QueryParams(scope.get("query_string", b"")).get("t") or ""
                claims = self.auth.tokens.verify(credential, STREAM_AUDIENCE)
                self.auth.access.check(claims.bot_id, origin, secret=False, token_origins=claims.origins)
                principal = Principal(claims.bot_id, claims.conversation_id)
            else:
                header = headers.get("authorization")
                principal = self.auth.principal(header, origin)
                credential = credential_of(header)  # the same secret or token under either scheme
        except ServiceError:
            return None
        conversation = _conversation_in(path) or principal.conversation_id
        if principal.conversation_id not in (None, conversation):
            return None  # a token of another conversation: the route refuses it (403)
        digest = hashlib.sha256(credential.encode()).hexdigest()[:32]
        return digest, (f"{principal.bot_id}\x00{conversation}" if conversation is not None else None)


def _conversation_in(path: str) -> str | None:
    if match := _V3_CONVERSATION.fullmatch(path):
        return match.group(1)
    if match := _V1_CONVERSATION.fullmatch(path):
        return match.group(1) or match.group(2)
    return None


def _refusal(scope: Scope, path: str, wait: float) -> Response:
    """429 in the API's error shape, with `Retry-After`, and CORS headers a browser client can read it with."""
    headers = Headers(scope=scope)
    seconds = retry_after_seconds(wait)
    retry_after = str(seconds)
    if _DIRECTLINEJS in headers.get("x-ms-bot-agent", "").lower():
        retry_after = str(retry_after_milliseconds(wait))  # read as milliseconds: the same wait
    extra = {"Retry-After": retry_after}
    if "origin" in headers:
        # this middleware answers before the CORS one: without these a browser sees status 0, not the 429
        extra |= {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}
    message = f"too many requests for this credential or conversation: retry after {seconds} seconds"
    status, body = error_document(path, ErrorKind.THROTTLED, message)
    return json_response(body, status, extra)


def _empty_poll(scope: Scope, path: str) -> Response | None:
    """The answer to a throttled poll: no activities (messages) and the caller's own watermark, as when nothing
    is new; None for a 1.1 watermark the route refuses (400) anyway."""
    raw = QueryParams(scope.get("query_string", b"")).get("watermark")
    if _V3_POLL.fullmatch(path):
        try:
            after = parse_watermark(raw)
        except InvalidWatermark:
            after = 0  # as the route reads it: from the beginning
        body = v3.activity_set([], after)
    elif match := _V1_POLL.fullmatch(path):
        try:
            body = v1.message_set(match.group(1), [], parse_watermark(raw))
        except InvalidWatermark:
            return None
    else:
        return None  # not a poll
    cors = {"Access-Control-Allow-Origin": "*", "Vary": "Origin"} if "origin" in Headers(scope=scope) else None
    return json_response(body, 200, cors)
