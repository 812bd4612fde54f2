"""Direct Line API 3.0 (`/v3/directline/...`): tokens, conversations, activities and uploads.

Decoding and encoding only; the rules live in `service.channel`, the wire
shapes in `protocol.v3`, and the WebSocket stream in `api.stream`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import decode_json, decode_optional_json, json_response, read_body
from openline.api._upload import read_upload
from openline.auth.credentials import Authenticator, Principal
from openline.config import Config
from openline.protocol import activity as act
from openline.protocol import v3
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import InvalidWatermark, format_watermark, new_conversation_id, parse_watermark
from openline.protocol.multipart import (
    Part,
    clean_media_type,
)
from openline.service.channel import Channel
from openline.service.files import Files
from openline.storage.base import Conversation

BASE = "/v3/directline"


class V3Api:
    def __init__(self, config: Config, auth: Authenticator, channel: Channel, files: Files) -> None:
        self.config = config
        self.auth = auth
        self.channel = channel
        self.files = files

    def routes(self) -> list[Route]:
        conversation = BASE + "/conversations/{conversation_id}"
        return [
            Route(BASE + "/tokens/generate", self.generate_token, methods=["POST"]),
            Route(BASE + "/tokens/refresh", self.refresh_token, methods=["POST"]),
            Route(BASE + "/conversations", self.start_conversation, methods=["POST"]),
            Route(conversation, self.reconnect, methods=["GET"]),
            Route(conversation + "/activities", self.get_activities, methods=["GET"]),
            Route(conversation + "/activities", self.post_activity, methods=["POST"]),
            Route(conversation + "/upload", self.upload, methods=["POST"]),
        ]

    def _principal(self, request: Request) -> Principal:
        return self.auth.principal(request.headers.get("authorization"), request.headers.get("origin"))

    async def _parameters(self, request: Request) -> v3.StartParameters:
        body = await read_body(request, self.config.max_message_bytes, self.config.body_timeout)
        return v3.start_parameters(decode_optional_json(body))

    def _answer(
        self,
        request: Request,
        bot_id: str,
        conversation_id: str,
        user: act.Account | None,
        watermark: str | None,
        origins: tuple[str, ...],
    ) -> dict[str, Any]:
        """A Conversation: a new token for the conversation and, unless `watermark` is None, a stream URL; both
        carry the trusted `origins` of the token (see `auth.access`)."""
        issued = self.auth.tokens.issue(bot_id, conversation_id, user, origins)
        stream_url = None
        if watermark is not None:
            base = v3.websocket_base(
                self.config.public_url if self.config.public_url_given else None,
                request.url.scheme,
                request.url.netloc,
                request.headers,
            )
            stream_token = self.auth.tokens.issue_stream(bot_id, conversation_id, origins).token
            stream_url = v3.stream_url(base, conversation_id, watermark, stream_token)
        return v3.conversation_answer(conversation_id, issued.token, issued.expires_in, stream_url)

    async def generate_token(self, request: Request) -> Response:
        """A token for a new conversation id (with the user and trusted origins, if given); does not start it or
        call the bot. With enhanced authentication the user must start with `dl_`, and one is made when none is
        given (`auth.access`)."""
        principal = self._principal(request)
        principal.require_secret()
        parameters = await self._parameters(request)
        bot_id = principal.bot_id
        user = self.auth.access.token_user(bot_id, parameters.user)
        self.channel.check_user(bot_id, user)
        origins = self.auth.access.token_origins(bot_id, parameters.trusted_origins)
        return json_response(self._answer(request, bot_id, new_conversation_id(), user, None, origins))

    async def refresh_token(self, request: Request) -> Response:
        """A new token with the same conversation, user and trusted origins; the old one stays valid until its own
        expiry. NOT_FOUND for a conversation an operator deleted."""
        principal = self._principal(request)
        if principal.conversation_id is None:
            raise ServiceError(ErrorKind.FORBIDDEN, "refresh needs a token, not the secret")
        await self.channel.require_not_deleted(principal.conversation_id)
        answer = self._answer(
            request, principal.bot_id, principal.conversation_id, principal.user, None, principal.origins
        )
        return json_response(answer)

    async def start_conversation(self, request: Request) -> Response:
        """Open a conversation: 201 when new, 200 when this token had already started it.

        A token starts its own conversation, a secret a new one. The user comes
        from the token, else from the body (with enhanced authentication, a
        secret's conversation gets a `dl_` user made for it when the body names
        none); when it is known the bot hears at once that the user joined. The
        answer's token keeps the token's trusted origins, or takes the body's
        `trustedOrigins` for a secret. The stream URL replays from the beginning.
        """
        principal = self._principal(request)
        parameters = await self._parameters(request)
        conversation_id = principal.conversation_id or new_conversation_id()
        if principal.is_secret:
            user = self.auth.access.token_user(principal.bot_id, parameters.user)
            origins = self.auth.access.token_origins(principal.bot_id, parameters.trusted_origins)
        else:
            user, origins = principal.user or parameters.user, principal.origins
        created = await self.channel.start(principal.bot_id, conversation_id, user=user, locale=parameters.locale)
        if not created:
            # the id of a token, but is the conversation this bot's? (`start` does not change someone else's)
            await self.channel.conversation(principal, conversation_id)
        answer = self._answer(request, principal.bot_id, conversation_id, user, "-", origins)
        return json_response(answer, 201 if created else 200)

    async def reconnect(self, request: Request) -> Response:
        """A fresh token and stream URL for an existing conversation.

        With a watermark the stream replays what follows it ("-": everything);
        without one (or empty) it starts from now. With enhanced authentication
        a secret cannot reconnect: the answer's token would name no user
        (MISSING "Missing user ID", as the hosted service answers).
        """
        principal = self._principal(request)
        if principal.is_secret and self.auth.access.enhanced(principal.bot_id):
            raise ServiceError(
                ErrorKind.MISSING,
                "Missing user ID: this bot uses enhanced authentication; reconnect with the conversation's token",
            )
        conversation = await self.channel.conversation(principal, request.path_params["conversation_id"])
        raw = (request.query_params.get("watermark") or "").strip()
        if raw in ("", "-"):
            watermark = raw or format_watermark(conversation.last_seq)
        else:
            watermark = format_watermark(_strict_watermark(raw, conversation))
        answer = self._answer(request, principal.bot_id, conversation.id, principal.user, watermark, principal.origins)
        return json_response(answer)

    async def get_activities(self, request: Request) -> Response:
        """Activities after the watermark, one page; never `typing` or `conversationUpdate`.

        A watermark this service cannot have issued for this conversation reads
        from the beginning instead of failing: botframework-directlinejs stops
        polling for good on any error here, and clients dedupe by id.
        """
        conversation = await self.channel.conversation(self._principal(request), request.path_params["conversation_id"])
        try:
            after = parse_watermark(request.query_params.get("watermark"))
        except InvalidWatermark:
            after = 0
        if after > conversation.last_seq:
            after = 0
        limit = self.config.page_size
        while True:
            page = await self.channel.read(conversation, after, limit)
            shown = [s.activity for s in page if v3.shown_in_history(s.activity)]
            if page:
                after = page[-1].seq
            # a full page of hidden activities must not look like the end of the history
            if shown or len(page) < limit:
                return json_response(v3.activity_set(shown, after))

    async def post_activity(self, request: Request) -> Response:
        """Send one activity; answers its id once the bot took it (502/504 with the error when it did not)."""
        principal = self._principal(request)
        conversation = await self.channel.conversation(principal, request.path_params["conversation_id"])
        body = await read_body(request, self.config.max_message_bytes, self.config.body_timeout)
        activity = _client_activity(decode_json(body, "the activity"), principal, None)
        self._check_sender(principal, activity)
        posted = await self.channel.post_from_client(
            conversation, activity, user=principal.user, client_key=act.client_key(activity)
        )
        return json_response({"id": posted.id})

    async def upload(self, request: Request) -> Response:
        """Files, with or without an activity part (multipart), or one raw file, sent as one activity."""
        principal = self._principal(request)
        conversation = await self.channel.conversation(principal, request.path_params["conversation_id"])
        body = await read_body(request, self.config.max_upload_bytes, self.config.body_timeout)
        raw_activity, uploads = read_upload(request, body, _is_activity_part, "activity", self.config.max_upload_parts)
        if not uploads and raw_activity is None:
            raise ServiceError(ErrorKind.MISSING, "the upload has neither a file nor an activity")
        if raw_activity is None:
            raw_activity = {"type": "message"}
        elif isinstance(raw_activity, dict) and not raw_activity.get("type"):
            raw_activity["type"] = "message"
        activity = _client_activity(raw_activity, principal, (request.query_params.get("userId") or "").strip())
        self._check_sender(principal, activity)
        files = self.files.attach_uploads(conversation, activity, uploads)
        posted = await self.channel.post_from_client(
            conversation, activity, files, user=principal.user, client_key=act.client_key(activity)
        )
        return json_response({"id": posted.id})

    def _check_sender(self, principal: Principal, activity: act.Activity) -> None:
        """With enhanced authentication, a secret's posts name a `dl_` user (a token's are sent as its user)."""
        sender = activity.get("from")
        if principal.user is None and isinstance(sender, dict) and isinstance(sender.get("id"), str):
            self.auth.access.check_user_id(principal.bot_id, sender["id"])


def _strict_watermark(raw: str, conversation: Conversation) -> int:
    try:
        after = parse_watermark(raw)
    except InvalidWatermark as e:
        raise ServiceError(ErrorKind.BAD_WATERMARK, str(e)) from None
    if after > conversation.last_seq:
        raise ServiceError(
            ErrorKind.BAD_WATERMARK,
            f"watermark {after} is ahead of the conversation (its last is {conversation.last_seq})",
        )
    return after


def _client_activity(activity: Any, principal: Principal, user_id: str | None) -> act.Activity:
    """Check a client's activity: an object with a `type` and a sender (`from.id`, the token's user, or `userId`)."""
    if not isinstance(activity, dict):
        raise ServiceError(ErrorKind.MALFORMED, "the activity must be a JSON object")
    act.check_type(activity)
    act.check_fields(activity)
    sender = activity.get("from")
    if sender is not None and not isinstance(sender, dict):
        raise ServiceError(ErrorKind.MALFORMED, "'from' must be an object")
    if principal.user is None and not (isinstance(sender, dict) and isinstance(sender.get("id"), str) and sender["id"]):
        if not user_id:
            raise ServiceError(ErrorKind.MISSING, "the activity has no 'from.id' (and the token names no user)")
        activity["from"] = {**(sender or {}), "id": user_id}
    return activity


def _is_activity_part(part: Part) -> bool:
    return part.name == "activity" or clean_media_type(part.content_type) == v3.ACTIVITY_PART_TYPE
