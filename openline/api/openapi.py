"""The OpenAPI 3.1 document of every HTTP route (`GET /openapi.json`), built from one table of operations.

Each operation names its method, path, credential, body and answers; error answers get the error shape of
the API their path belongs to, taken from `api.errors.error_document` itself, so the document cannot
disagree with the code about it. WebSocket routes (the 3.0 stream, the admin live feed) are described as the
GET of their upgrade (101, or an error before it) and marked `x-websocket`. tests/api/test_openapi.py
checks the table against the app's routes; tests/fuzz/ checks the answers against the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline import __version__
from openline.api._http import json_response
from openline.api.errors import error_document
from openline.api.openapi_schemas import SCHEMAS, Schema, ref
from openline.protocol.errors import ErrorKind

PATH = "/openapi.json"
_JSON = "application/json"

# credentials (see README.md: Direct Line, the bot side, the admin API)
Security = list[dict[str, list[str]]]
DIRECT_LINE: Security = [{"directLine": []}]
ADMIN: Security = [{"adminSecret": []}, {"adminSession": []}]
METRICS: Security = [{"adminSecret": []}, {"metricsToken": []}]
BOT: Security = [{"botToken": []}, {}]  # no credential: bots without an app id, unless --require-bot-auth
PUBLIC: Security = [{}]

_SECURITY_SCHEMES: dict[str, Schema] = {
    "directLine": {
        "type": "http",
        "scheme": "bearer",
        "description": "A bot's Direct Line secret, or a conversation token (the `BotConnector` scheme works too).",
    },
    "adminSecret": {"type": "http", "scheme": "bearer", "description": "The admin secret."},
    "adminSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "openline_admin",
        "description": "The inspector's session cookie, set by `POST /inspect/login`.",
    },
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "The metrics token, when one is set."},
    "botToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /adfs/oauth2/token` (bots with an app id).",
    },
}

_DESCRIPTIONS = {
    400: "The request or its body cannot be understood.",
    401: "No credential, or an unreadable Authorization header.",
    403: "A credential not valid for this, or a request from an origin the credential does not trust.",
    404: "No such conversation, activity, member or file (or it has expired).",
    408: "The body came too slowly.",
    413: "The body is larger than the limit.",
    415: "The body's media type is not accepted.",
    429: "Too many requests from this credential or to this conversation; retry after `Retry-After`.",
    431: "The request line and headers are larger than the limit.",
    500: "The bot failed (Direct Line 1.1 answers every bot failure so).",
    502: "The bot refused the activity or could not be reached.",
    503: "The store cannot be reached, or every connection is in use; retry after `Retry-After`.",
    504: "The bot did not answer in time.",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "When to retry.", "schema": {"type": "string"}},
}

# the errors any request may get (the server's header limit, the store away)
_ALWAYS = (431, 503)
_CLIENT = (401, 403, 429)  # every Direct Line client route (rate limits, trusted origins)
_BODY = (400, 408, 413)  # every route that reads a body


def _error_schema(path: str) -> Schema:
    """The error shape of `path`: the component whose shape `error_document` answers there."""
    _, body = error_document(path, ErrorKind.NOT_FOUND, "")
    error = body.get("error")
    if isinstance(error, dict):
        return ref("ErrorMessage" if "statusCode" in error else "ErrorResponse")
    if isinstance(error, str):
        return ref("OAuthError")
    return ref("Problem")


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _empty(description: str) -> Schema:
    return {"description": description}


def _html(description: str) -> Schema:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _binary(description: str, media: str = "*/*") -> Schema:
    return {"description": description, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}


def _query(name: str, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}}


ORIGIN: Schema = {
    "name": "Origin",
    "in": "header",
    "required": False,
    "description": "Browsers send it; it must name this service (see `api/_origin.py`).",
    "schema": {"type": "string"},
}
# how the service ends a WebSocket (RFC 6455 §7.4 codes; api/_ws.py, server.py)
_CLOSE_CODES = {
    "1000": "the conversation is gone, or the client left",
    "1001": "the service is stopping: reconnect (to another instance)",
    "1007": "a client frame that is not UTF-8",
    "1008": "refused where an HTTP answer cannot be sent",
    "1009": "a client frame over the limit",
    "1011": "an unexpected error in the service",
    "1013": "the store cannot be reached: reconnect later",
}
WATERMARK = _query("watermark", "The watermark of the last answer (absent or empty: from the beginning).")


@dataclass(frozen=True)
class Op:
    """One operation: `errors` are statuses answered in the path's error shape, on top of `_ALWAYS`."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    security: Security
    responses: dict[int, Schema]
    errors: tuple[int, ...] = ()
    body: Schema | None = None
    parameters: tuple[Schema, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> Schema:
        error = _error_schema(self.path)
        responses: dict[str, Schema] = {str(status): answer for status, answer in self.responses.items()}
        for status in sorted({*self.errors, *_ALWAYS}):
            answer = _json(error, _DESCRIPTIONS[status])
            if status in (429, 503):  # a 429 always says when (see api/_ratelimit.py)
                answer["headers"] = {"Retry-After": {**_RETRY_AFTER["Retry-After"], "required": status == 429}}
            responses.setdefault(str(status), answer)
        path_parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_names(self.path)
        ]
        operation: Schema = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
            "security": self.security,
            "responses": dict(sorted(responses.items())),
        }
        if path_parameters or self.parameters:
            operation["parameters"] = [*path_parameters, *self.parameters]
        if self.body is not None:
            operation["requestBody"] = self.body
        operation.update(self.extra)
        return operation


def _path_names(path: str) -> list[str]:
    return [segment[1:-1] for segment in path.split("/") if segment.startswith("{")]


def _body(schema: Schema, required: bool = True, media: str = _JSON) -> Schema:
    return {"required": required, "content": {media: {"schema": schema}}}


def _links(target: dict[str, str], parameter: str, expression: str) -> Schema:
    return {name: {"operationId": op, "parameters": {parameter: expression}} for name, op in target.items()}


_V3_CONVERSATION_LINKS = _links(
    {
        "GetActivities": "v3GetActivities",
        "PostActivity": "v3PostActivity",
        "Upload": "v3Upload",
        "Reconnect": "v3Reconnect",
    },
    "conversation_id",
    "$response.body#/conversationId",
)
_V1_CONVERSATION_LINKS = _links(
    {"GetMessages": "v1GetMessages", "PostMessage": "v1PostMessage", "Upload": "v1Upload"},
    "conversation_id",
    "$response.body#/conversationId",
)
_CONNECTOR_LINKS = _links(
    {
        "SendToConversation": "connectorSendToConversation",
        "Members": "connectorMembers",
        "PagedMembers": "connectorPagedMembers",
        "UploadAttachment": "connectorUploadAttachment",
    },
    "conversation_id",
    "$response.body#/id",
)
_UPLOAD_BODY: Schema = {
    "required": True,
    "description": "multipart/form-data (files, and at most one JSON part), or one file as the raw body.",
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _direct_line_v1() -> list[Op]:
    tag, conv = "Direct Line 1.1", "/api/conversations/{conversation_id}"
    token = {200: _json(ref("V1Token"), "A token for one conversation, as a JSON string.")}
    return [
        Op("POST", "/api/tokens/conversation", "v1GenerateToken", "A token for a new conversation", tag,
           DIRECT_LINE, token, _CLIENT),
        Op("GET", "/api/tokens", "v1GenerateTokenLegacy", "A token for a new conversation (legacy)", tag,
           DIRECT_LINE, token, _CLIENT),
        Op("GET", "/api/tokens/{conversation_id}/renew", "v1RenewToken", "A new token for the token's conversation",
           tag, DIRECT_LINE, token, _CLIENT),
        Op("POST", "/api/tokens/{conversation_id}/renew", "v1RenewTokenPost", "The same, by POST", tag,
           DIRECT_LINE, token, _CLIENT),
        Op("POST", "/api/conversations", "v1StartConversation", "Start a conversation (the bot is told)", tag,
           DIRECT_LINE, {200: _json(ref("V1Conversation"), "The conversation, with a token for it.")},
           (*_CLIENT, 404, 500)),
        Op("GET", conv + "/messages", "v1GetMessages", "Messages after the watermark", tag, DIRECT_LINE,
           {200: _json(ref("V1MessageSet"), "One page of messages and the new watermark.")},
           (*_CLIENT, 400, 404), parameters=(WATERMARK,)),
        Op("POST", conv + "/messages", "v1PostMessage", "Send a message; answered once the bot took it", tag,
           DIRECT_LINE, {204: _empty("The bot accepted the message.")},
           (*_CLIENT, *_BODY, 404, 415, 500),
           body={"required": True, "content": {
               _JSON: {"schema": ref("V1MessageIn")},
               "text/json": {"schema": ref("V1MessageIn")},
               "application/x-www-form-urlencoded": {"schema": ref("V1MessageIn")},
           }}),
        Op("POST", conv + "/upload", "v1Upload", "Upload files, sent as one message", tag, DIRECT_LINE,
           {204: _empty("The bot accepted the message with the files.")},
           (*_CLIENT, *_BODY, 404, 500), body=_UPLOAD_BODY,
           parameters=(_query("userId", "The sender, when no message part names one."),)),
    ]  # fmt: skip


def _direct_line_v3() -> list[Op]:
    tag, base = "Direct Line 3.0", "/v3/directline"
    conv = base + "/conversations/{conversation_id}"
    conversation = _json(ref("Conversation"), "The conversation id and a token for it.")
    parameters = _body(ref("TokenParameters"), required=False)
    bot_errors = (502, 504)
    return [
        Op("POST", base + "/tokens/generate", "v3GenerateToken", "A token for a new conversation", tag,
           DIRECT_LINE, {200: conversation}, (*_CLIENT, *_BODY), body=parameters),
        Op("POST", base + "/tokens/refresh", "v3RefreshToken", "A new token for the token's conversation", tag,
           DIRECT_LINE, {200: conversation}, _CLIENT),
        Op("POST", base + "/conversations", "v3StartConversation", "Start a conversation", tag, DIRECT_LINE,
           {201: {**conversation, "links": _V3_CONVERSATION_LINKS},
            200: {**_json(ref("Conversation"), "The token's conversation, started before."),
                  "links": _V3_CONVERSATION_LINKS}},
           (*_CLIENT, *_BODY, 404, *bot_errors), body=parameters),
        Op("GET", conv, "v3Reconnect", "A new token and stream URL for a conversation", tag, DIRECT_LINE,
           {200: conversation}, (*_CLIENT, 400, 404), parameters=(WATERMARK,)),
        Op("GET", conv + "/activities", "v3GetActivities", "Activities after the watermark", tag, DIRECT_LINE,
           {200: _json(ref("ActivitySet"), "One page of activities and the new watermark.")},
           (*_CLIENT, 404), parameters=(WATERMARK,)),
        Op("POST", conv + "/activities", "v3PostActivity", "Send an activity; answered once the bot took it", tag,
           DIRECT_LINE, {200: _json(ref("ResourceResponse"), "The activity's id.")},
           (*_CLIENT, *_BODY, 404, *bot_errors), body=_body(ref("ClientActivity"))),
        Op("POST", conv + "/upload", "v3Upload", "Upload files, sent as one activity", tag, DIRECT_LINE,
           {200: _json(ref("ResourceResponse"), "The activity's id.")},
           (*_CLIENT, *_BODY, 404, *bot_errors), body=_UPLOAD_BODY,
           parameters=(_query("userId", "The sender, when the activity part names none."),)),
        Op("GET", conv + "/stream", "v3Stream", "The WebSocket stream of a conversation", tag,
           [{"streamToken": []}],
           {101: _empty("Switching to the WebSocket: text frames of ActivitySets, and empty keep-alives.")},
           (400, 401, 403, 404, 429),
           parameters=(_query("t", "The stream token, from the streamUrl.", True), WATERMARK),
           extra={"x-websocket": {"frames": ref("ActivitySet"), "closeCodes": _CLOSE_CODES}}),
    ]  # fmt: skip


def _connector() -> list[Op]:
    tag, conv = "Bot Connector", "/v3/conversations/{conversation_id}"
    activity = conv + "/activities/{activity_id}"
    member = conv + "/members/{member_id}"
    resource = {200: _json(ref("ResourceResponse"), "The activity's id.")}
    members = {200: _json({"type": "array", "items": ref("ChannelAccount")}, "The conversation's members.")}
    auth = (401, 403)
    write = (*auth, *_BODY, 404)
    return [
        Op("GET", "/v3/conversations", "connectorGetConversations", "The bot's conversations, 100 a page", tag,
           BOT, {200: _json(ref("ConversationsResult"), "One page.")}, (*auth, 400),
           parameters=(_query("continuationToken", "From the previous page."),)),
        Op("POST", "/v3/conversations", "connectorCreateConversation", "Start a conversation with users", tag,
           BOT, {201: {**_json(ref("ConversationResourceResponse"), "The new conversation."),
                       "links": _CONNECTOR_LINKS}},
           (*write,), body=_body(ref("ConversationParameters"))),
        Op("POST", conv + "/activities", "connectorSendToConversation", "Send an activity", tag, BOT, resource,
           write, body=_body(ref("BotActivity"))),
        Op("POST", conv + "/activities/history", "connectorSendHistory", "Store a transcript", tag, BOT,
           {200: _json(ref("ResourceResponse"), "The id of the last activity stored (\"\" for none).")},
           write, body=_body(ref("Transcript"))),
        Op("POST", activity, "connectorReplyToActivity", "Reply to an activity", tag, BOT, resource, write,
           body=_body(ref("BotActivity"))),
        Op("PUT", activity, "connectorUpdateActivity", "Replace an activity (streams are told)", tag, BOT,
           resource, write, body=_body(ref("BotActivity"))),
        Op("DELETE", activity, "connectorDeleteActivity", "Delete an activity (streams are told)", tag, BOT,
           {200: _empty("Deleted.")}, (*auth, 404)),
        Op("GET", activity + "/members", "connectorActivityMembers", "The members, for an activity", tag, BOT,
           members, (*auth, 404)),
        Op("GET", conv + "/members", "connectorMembers", "The conversation's members", tag, BOT, members,
           (*auth, 404)),
        Op("GET", conv + "/pagedmembers", "connectorPagedMembers", "The members, a page at a time", tag, BOT,
           {200: _json(ref("PagedMembersResult"), "One page.")}, (*auth, 400, 404),
           parameters=(_query("pageSize", "1 to 500 (default 200)."),
                       _query("continuationToken", "From the previous page."))),
        Op("GET", member, "connectorMember", "One member", tag, BOT,
           {200: _json(ref("ChannelAccount"), "The member.")}, (*auth, 404)),
        Op("DELETE", member, "connectorDeleteMember", "Remove a member", tag, BOT, {200: _empty("Removed.")},
           (*auth, 400, 404)),
        Op("POST", conv + "/attachments", "connectorUploadAttachment", "Upload a file for the conversation", tag,
           BOT, {200: _json(ref("ResourceResponse"), "The attachment id.")}, write,
           body=_body(ref("AttachmentData"))),
        Op("GET", "/v3/attachments/{attachment_id}", "connectorAttachmentInfo", "What an attachment holds", tag,
           PUBLIC, {200: _json(ref("AttachmentInfo"), "Its name, type and views.")}, (404,)),
        Op("GET", "/v3/attachments/{attachment_id}/views/{view_id}", "connectorAttachmentView",
           "One view of an attachment (original, thumbnail)", tag, PUBLIC, {200: _binary("The file.")}, (404,)),
    ]  # fmt: skip


def _admin() -> list[Op]:
    tag, conv = "Admin", "/admin/conversations/{conversation_id}"
    limit = _query("limit", "How many (see README.md: The admin API).")
    return [
        Op("GET", "/admin/status", "adminStatus", "The service and its bots", tag, ADMIN,
           {200: _json(ref("AdminStatus"), "The status.")}, (401, 403)),
        Op("GET", "/admin/conversations", "adminConversations", "The most recently active conversations", tag,
           ADMIN, {200: _json(ref("AdminConversations"), "Their summaries.")}, (400, 401, 403),
           parameters=(limit,)),
        Op("GET", conv, "adminConversation", "One conversation's transcript", tag, ADMIN,
           {200: _json(ref("AdminConversation"), "Its summary and its last entries.")}, (400, 401, 403, 404),
           parameters=(limit,)),
        Op("DELETE", conv, "adminDeleteConversation", "Delete a conversation: its activities, files and records",
           tag, ADMIN, {204: _empty("Deleted.")}, (401, 403, 404)),
        Op("GET", conv + "/live", "adminLive", "The live transcript (WebSocket)", tag, ADMIN,
           {101: _empty("Switching to the WebSocket: JSON text frames, a snapshot then one change per event.")},
           (400, 401, 403, 404), parameters=(limit, ORIGIN),
           extra={"x-websocket": {"frames": {"type": "object"}, "closeCodes": _CLOSE_CODES}}),
        Op("GET", "/metrics", "metrics", "Prometheus metrics", tag, METRICS,
           {200: {"description": "The Prometheus text format.",
                  "content": {"text/plain": {"schema": {"type": "string"}}}}}, (401, 403)),
    ]  # fmt: skip


def _bot_auth() -> list[Op]:
    tag = "Bot authentication"
    metadata = {200: _json(ref("OpenIdMetadata"), "The OpenID metadata.")}
    keys = {200: _json(ref("Jwks"), "The signing keys.")}
    token_error = {
        status: _json(ref("OAuthError"), text)
        for status, text in ((400, "The request is refused."), (401, "The client is not authenticated."))
    }
    problem = {"content": {"application/problem+json": {"schema": ref("Problem")}, _JSON: {"schema": ref("Problem")}}}
    return [
        Op("GET", "/v1/.well-known/openidconfiguration", "channelOpenIdMetadata",
           "What botbuilder reads to check openline's tokens", tag, PUBLIC, metadata),
        Op("GET", "/v1/.well-known/keys", "channelKeys", "The keys of the tokens openline sends bots", tag,
           PUBLIC, keys),
        Op("GET", "/adfs/.well-known/openid-configuration", "authorityMetadata",
           "The token authority's discovery document (MSAL)", tag, PUBLIC, metadata),
        Op("GET", "/adfs/discovery/v2.0/keys", "authorityKeys", "The token authority's keys", tag, PUBLIC, keys),
        Op("POST", "/adfs/oauth2/token", "botToken", "An access token for a bot (client credentials)", tag,
           [{}, {"clientBasic": []}], {200: _json(ref("AccessToken"), "The token."), **token_error},
           (408, 413), body=_body(ref("TokenRequest"), media="application/x-www-form-urlencoded")),
        Op("GET", "/adfs/oauth2/authorize", "botAuthorize", "Not offered: always an error", tag, PUBLIC,
           {400: _json(ref("OAuthError"), "Use the client credentials grant.")}),
        Op("GET", "/sidecar/{secret}/AuthorizationHeaderUnauthenticated/{service_name}", "sidecarToken",
           "The Entra auth sidecar API (the secret in the path is the credential)", tag, PUBLIC,
           {200: _json(ref("SidecarAnswer"), "The header to send."),
            400: {"description": "A scope that is not offered.", **problem},
            404: {"description": "No bot has this sidecar secret.", **problem}},
           parameters=(_query("optionsOverride.Scopes", "The one resource to ask for."),)),
    ]  # fmt: skip


def _service() -> list[Op]:
    tag = "Service"
    own = "Only from this service's own pages (`Origin` checked)."
    return [
        Op("GET", "/", "index", "The chat page (Accept: text/html), else what this service is", tag, PUBLIC,
           {200: {"description": "The service; or the chat page for browsers when it is enabled.",
                  "content": {_JSON: {"schema": ref("ServiceIndex")}, "text/html": {"schema": {"type": "string"}}}}}),
        Op("GET", "/healthz", "health", "Whether the store can be reached and the service takes clients", tag,
           PUBLIC, {200: _json(ref("Health"), "The store answers."),
                    503: _json({"oneOf": [ref("Health"), ref("ErrorResponse")]},
                               "The service is stopping, or the store cannot be reached (or every connection is"
                               " in use: the error shape).")}),
        Op("GET", PATH, "openapi", "This document", tag, PUBLIC, {200: _json({"type": "object"}, "OpenAPI 3.1.")}),
        Op("GET", "/attachments/{conversation_id}/{file_id}/{name}", "download", "An uploaded file (signed link)",
           tag, PUBLIC, {200: _binary("The file; only images are inline.")}, (403, 404),
           parameters=(_query("e", "Expiry (Unix seconds)."), _query("s", "Signature."))),
        Op("POST", "/web/token", "webToken", "A token for the chat page (with --web-page)", tag, PUBLIC,
           {200: _json(ref("WebToken"), own)}, (*_BODY, 403, 404),
           body=_body({"type": "object", "properties": {"bot": {"type": "string"}}}, required=False),
           parameters=(ORIGIN,)),
        Op("GET", "/web/webchat.js", "webchatScript", "The local copy of Web Chat (with --webchat-file)", tag,
           PUBLIC, {200: _binary("The script.", "text/javascript")}, (404,)),
        Op("GET", "/web/static/{name}", "webAsset", "A file of the pages", tag, PUBLIC,
           {200: _binary("The file.", "text/*")}, (404,)),
        Op("GET", "/inspect", "inspectPage", "The inspector page", tag, [{}, *ADMIN],
           {200: _html("The inspector."), 401: _html("The sign-in form.")}),
        Op("POST", "/inspect/login", "inspectLogin", "Sign in with the admin secret (an HTML form)", tag, PUBLIC,
           {303: _empty("Signed in: the session cookie, and to /inspect."),
            400: _html("Not the form."), 401: _html("Not the admin secret."), 403: _html(own),
            413: _html("The form is larger than the limit.")},
           body=_body({"type": "object", "properties": {"secret": {"type": "string"}}},
                      media="application/x-www-form-urlencoded"), parameters=(ORIGIN,)),
        Op("POST", "/inspect/logout", "inspectLogout", "Sign out", tag, PUBLIC,
           {303: _empty("The cookie removed, and to /inspect."), 403: _html(own)}, parameters=(ORIGIN,)),
        Op("POST", "/echobot/api/messages", "echoBot", "The built-in echo bot's messaging endpoint", tag, PUBLIC,
           {200: _empty("Taken."), 400: _empty("Not an activity."), 403: _empty("Another serviceUrl.")},
           body=_body(ref("Activity")), extra={"x-internal": True}),
    ]  # fmt: skip


def operations() -> list[Op]:
    """Every documented operation, in the document's order."""
    return [*_direct_line_v1(), *_direct_line_v3(), *_connector(), *_admin(), *_bot_auth(), *_service()]


def build_document(ops: Iterable[Op] | None = None) -> Schema:
    """The OpenAPI 3.1 document of `ops` (default: every operation)."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in operations() if ops is None else ops:
        paths.setdefault(op.path, {})[op.method.lower()] = op.document()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "openline",
            "version": __version__,
            "summary": "A self-hosted Bot Framework Direct Line service.",
            "description": (
                "Direct Line 1.1 (`/api`) and 3.0 (`/v3/directline`) for clients, the Bot Connector API"
                " (`/v3/conversations`, `/v3/attachments`) and token authority for bots, the admin API."
                " Errors have the shape of the API their path belongs to."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in operations())],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                **_SECURITY_SCHEMES,
                "streamToken": {"type": "apiKey", "in": "query", "name": "t", "description": "The stream token."},
                "clientBasic": {"type": "http", "scheme": "basic", "description": "The app id and password."},
            },
        },
    }


class OpenApi:
    """`GET /openapi.json`: public (it documents the API, no credential), built once."""

    def __init__(self) -> None:
        self._body: bytes | None = None

    def routes(self) -> list[Route]:
        return [Route(PATH, self.document, methods=["GET"])]

    async def document(self, request: Request) -> Response:
        if self._body is None:
            self._body = bytes(json_response(build_document()).body)
        return Response(self._body, media_type=_JSON, headers={"Cache-Control": "public, max-age=300"})
