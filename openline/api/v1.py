"""Direct Line API 1.1 (`/api/...`): tokens, conversations, messages and uploads.

Decoding and encoding only; the rules live in `service.channel` and the wire
mapping in `protocol.v1`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import decode_json, json_response, media_type, read_body
from openline.api._upload import read_upload
from openline.auth.access import USER_PREFIX
from openline.auth.credentials import Authenticator, Principal
from openline.config import Config
from openline.protocol import activity as act
from openline.protocol import v1
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import InvalidWatermark, new_conversation_id, new_user_id, parse_watermark
from openline.protocol.multipart import (
    Part,
    clean_media_type,
)
from openline.service.channel import Channel
from openline.service.files import Files

_JSON_TYPES = ("", "application/json", "text/json")


class V1Api:
    def __init__(self, config: Config, auth: Authenticator, channel: Channel, files: Files) -> None:
        self.config = config
        self.auth = auth
        self.channel = channel
        self.files = files

    def routes(self) -> list[Route]:
        return [
            Route("/api/tokens/conversation", self.generate_token, methods=["POST"]),
            Route("/api/tokens", self.generate_token, methods=["GET"]),
            Route("/api/tokens/{conversation_id}/renew", self.renew_token, methods=["GET", "POST"]),
            Route("/api/conversations", self.start_conversation, methods=["POST"]),
            Route("/api/conversations/{conversation_id}/messages", self.get_messages, methods=["GET"]),
            Route("/api/conversations/{conversation_id}/messages", self.post_message, methods=["POST"]),
            Route("/api/conversations/{conversation_id}/upload", self.upload, methods=["POST"]),
        ]

    def _principal(self, request: Request) -> Principal:
        return self.auth.principal(request.headers.get("authorization"), request.headers.get("origin"))

    async def generate_token(self, request: Request) -> Response:
        """A token for a new conversation id; neither starts the conversation nor calls the bot. With enhanced
        authentication it names a `dl_` user made for it (1.1 requests name none)."""
        principal = self._principal(request)
        principal.require_secret()
        user = self.auth.access.token_user(principal.bot_id, None)
        issued = self.auth.tokens.issue(principal.bot_id, new_conversation_id(), user)
        return json_response(issued.token)

    async def renew_token(self, request: Request) -> Response:
        """A new token for the same conversation, user and trusted origins; the old one stays valid until its own
        expiry. NOT_FOUND for a conversation an operator deleted."""
        conversation_id = request.path_params["conversation_id"]
        principal = self._principal(request)
        if principal.is_secret:
            raise ServiceError(ErrorKind.FORBIDDEN, "renew needs the conversation's token, not the secret")
        principal.require_conversation(conversation_id)
        await self.channel.require_not_deleted(conversation_id)
        issued = self.auth.tokens.issue(principal.bot_id, conversation_id, principal.user, principal.origins)
        return json_response(issued.token)

    async def start_conversation(self, request: Request) -> Response:
        """Open a conversation (a new one for a secret, the token's own for a token) and contact the bot.

        Idempotent for a token: a second start answers 200 with the same id and
        does not contact the bot again. The body, if any, is ignored. When the
        user is known (a token naming one; with enhanced authentication, a
        `dl_` user made for a secret's conversation) the bot hears at once that
        the user joined, as on 3.0.
        """
        principal = self._principal(request)
        conversation_id = principal.conversation_id or new_conversation_id()
        user = principal.user if not principal.is_secret else self.auth.access.token_user(principal.bot_id, None)
        await self.channel.start(principal.bot_id, conversation_id, user=user)
        issued = self.auth.tokens.issue(principal.bot_id, conversation_id, user, principal.origins)
        return json_response(
            {"conversationId": conversation_id, "token": issued.token, "expires_in": issued.expires_in}
        )

    async def get_messages(self, request: Request) -> Response:
        """Messages after the watermark (all retained history without one), one page at a time."""
        conversation = await self.channel.conversation(self._principal(request), request.path_params["conversation_id"])
        try:
            after = parse_watermark(request.query_params.get("watermark"))
        except InvalidWatermark as e:
            raise ServiceError(ErrorKind.BAD_WATERMARK, str(e)) from None
        if after > conversation.last_seq:
            raise ServiceError(
                ErrorKind.BAD_WATERMARK,
                f"watermark {after} is ahead of the conversation (its last is {conversation.last_seq})",
            )
        limit = self.config.page_size
        while True:
            page = await self.channel.read(conversation, after, limit)
            body = v1.message_set(conversation.id, ((s.seq, s.activity) for s in page), after)
            # a page of activities 1.1 does not show (events, typing) must not end a client's paging early
            if body["messages"] or len(page) < limit:
                return json_response(body)
            after = page[-1].seq

    def _sender(self, principal: Principal, claimed: str | None) -> str:
        """The sender's id: the one a message claims, else a new one (`dl_` with enhanced authentication, which
        also refuses a claimed one without it). A token naming a user overrides both (see `post_from_client`)."""
        if principal.user is not None:
            return principal.user["id"]
        if claimed is None:
            return (USER_PREFIX if self.auth.access.enhanced(principal.bot_id) else "") + new_user_id()
        self.auth.access.check_user_id(principal.bot_id, claimed)
        return claimed

    async def post_message(self, request: Request) -> Response:
        """Send one message; answers 204 once the bot accepted it (500 ServiceError if it did not).

        A token naming a user sends as that user, whatever the message's `from`.
        """
        principal = self._principal(request)
        conversation = await self.channel.conversation(principal, request.path_params["conversation_id"])
        body = await read_body(request, self.config.max_message_bytes, self.config.body_timeout)
        message = _decode_message(body, media_type(request))
        user_id = self._sender(principal, v1.client_user_id(message))
        activity = v1.message_to_activity(message, user_id, self.channel.public_url)
        key = act.client_key(activity)
        await self.channel.post_from_client(conversation, activity, user=principal.user, client_key=key)
        return Response(status_code=204)

    async def upload(self, request: Request) -> Response:
        """Upload files (raw body, or multipart with an optional message part) and send them as one message."""
        principal = self._principal(request)
        conversation = await self.channel.conversation(principal, request.path_params["conversation_id"])
        body = await read_body(request, self.config.max_upload_bytes, self.config.body_timeout)
        message, uploads = read_upload(request, body, _is_message_part, "message", self.config.max_upload_parts)
        if not uploads:
            raise ServiceError(ErrorKind.MISSING, "the upload has no file: send a file part, or the file as the body")
        claimed = v1.client_user_id(message) or (request.query_params.get("userId") or "").strip() or None
        user_id = self._sender(principal, claimed)
        activity = v1.message_to_activity(message if message is not None else {}, user_id, self.channel.public_url)
        files = self.files.attach_uploads(conversation, activity, uploads)
        key = act.client_key(activity)
        await self.channel.post_from_client(conversation, activity, files, user=principal.user, client_key=key)
        return Response(status_code=204)


def _decode_message(body: bytes, content_type: str) -> Any:
    """A posted message: JSON (also `text/json`), or form fields (`text`, `from`) as the Swagger allows."""
    if content_type == "application/x-www-form-urlencoded" and not body.lstrip().startswith(b"{"):
        try:
            fields = urllib.parse.parse_qs(body.decode(), strict_parsing=True, max_num_fields=32)
        except (UnicodeDecodeError, ValueError):
            raise ServiceError(ErrorKind.MALFORMED, "the form body cannot be parsed") from None
        return {key: values[-1] for key, values in fields.items()}
    if (
        content_type in _JSON_TYPES
        or content_type.endswith("+json")
        or content_type == "application/x-www-form-urlencoded"
    ):
        return decode_json(body)
    raise ServiceError(ErrorKind.UNSUPPORTED_MEDIA, f"{content_type} is not supported: send application/json")


def _is_message_part(part: Part) -> bool:
    return clean_media_type(part.content_type) == v1.MESSAGE_PART_TYPE
