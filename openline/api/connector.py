"""The Bot Connector v3 API bots call on `serviceUrl`: activities, members, conversations (and attachments).

Bots post here while the service's own POST to them is still open; nothing
here waits on that call. Ids in paths arrive URL-encoded (`conv%7C0000001`) and
are decoded by the server before routing. Beyond the official Direct Line
service, activities can be updated (PUT) and deleted; the attachment routes
live in `connector_attachments.py` and are mounted with these.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import decode_json, json_response, read_body
from openline.api.connector_attachments import ConnectorAttachmentsApi
from openline.auth.bot_auth import BotAuthority, BotCaller
from openline.config import Config
from openline.protocol import activity as act
from openline.protocol import connector as wire
from openline.service.connector import BotConnector
from openline.service.files import Files

CONVERSATIONS_PAGE = 100


class ConnectorApi:
    def __init__(self, config: Config, connector: BotConnector, files: Files, authority: BotAuthority) -> None:
        self.config = config
        self.connector = connector
        self.files = files
        self.authority = authority

    def routes(self) -> list[Route]:
        base = "/v3/conversations/{conversation_id}"
        activity = base + "/activities/{activity_id}"
        member = base + "/members/{member_id:path}"
        return [
            Route("/v3/conversations", self.get_conversations, methods=["GET"]),
            Route("/v3/conversations", self.create_conversation, methods=["POST"]),
            Route(base + "/activities", self.send_to_conversation, methods=["POST"]),
            # before the reply route, which would take "history" for an activity id
            Route(base + "/activities/history", self.send_conversation_history, methods=["POST"]),
            Route(activity, self.reply_to_activity, methods=["POST"]),
            Route(activity, self.update_activity, methods=["PUT"]),
            Route(activity, self.delete_activity, methods=["DELETE"]),
            Route(activity + "/members", self.activity_members, methods=["GET"]),
            Route(base + "/members", self.members, methods=["GET"]),
            Route(base + "/pagedmembers", self.paged_members, methods=["GET"]),
            Route(member, self.member, methods=["GET"]),
            Route(member, self.delete_member, methods=["DELETE"]),
            *ConnectorAttachmentsApi(self.config, self.files, self.authority).routes(),
        ]

    def _caller(self, request: Request) -> BotCaller:
        """Who calls: checked before the body is read (401 for a token that proves nothing)."""
        return self.authority.caller(request.headers.get("authorization"))

    async def _body(self, request: Request, what: str) -> Any:
        # bots may inline content (cards, data: URLs): a limit of their own, larger than a client's message
        return decode_json(await read_body(request, self.config.max_connector_bytes, self.config.body_timeout), what)

    # -- activities ---------------------------------------------------------------------------------

    async def _post(self, request: Request, reply_to_id: str | None) -> Response:
        caller = self._caller(request)
        activity = await self._body(request, "the activity")
        conversation_id = request.path_params["conversation_id"]
        activity_id = await self.connector.post_from_bot(caller, conversation_id, activity, reply_to_id)
        return json_response({"id": activity_id})

    async def send_to_conversation(self, request: Request) -> Response:
        return await self._post(request, None)

    async def reply_to_activity(self, request: Request) -> Response:
        return await self._post(request, request.path_params["activity_id"])

    async def update_activity(self, request: Request) -> Response:
        """Replace a stored activity (same id and timestamp); streams are told. The official service answers 405."""
        caller = self._caller(request)
        activity = await self._body(request, "the activity")
        params = request.path_params
        conversation_id, activity_id = params["conversation_id"], params["activity_id"]
        activity_id = await self.connector.replace_from_bot(caller, conversation_id, activity_id, activity)
        return json_response({"id": activity_id})

    async def delete_activity(self, request: Request) -> Response:
        """Remove a stored activity; streams get an `event` named `messageDelete`. The official service answers 405."""
        params = request.path_params
        await self.connector.delete_from_bot(self._caller(request), params["conversation_id"], params["activity_id"])
        return Response(status_code=200)

    async def send_conversation_history(self, request: Request) -> Response:
        """Store a Transcript `{"activities": [...]}`; answers the id of the last activity stored ("" for none)."""
        caller = self._caller(request)
        activities = wire.history_activities(await self._body(request, "the transcript"))
        last_id = await self.connector.history_from_bot(caller, request.path_params["conversation_id"], activities)
        return json_response({"id": last_id})

    # -- members ------------------------------------------------------------------------------------

    async def members(self, request: Request) -> Response:
        caller = self._caller(request)
        return json_response(await self.connector.members(caller, request.path_params["conversation_id"]))

    async def activity_members(self, request: Request) -> Response:
        """The members of the conversation the activity belongs to (404 for an activity it never had)."""
        params = request.path_params
        caller = self._caller(request)
        return json_response(await self.connector.members(caller, params["conversation_id"], params["activity_id"]))

    async def member(self, request: Request) -> Response:
        params = request.path_params
        caller = self._caller(request)
        return json_response(await self.connector.member(caller, params["conversation_id"], params["member_id"]))

    async def paged_members(self, request: Request) -> Response:
        """`?pageSize=` (1-500, default 200) and `?continuationToken=` (from the previous page; null at the end)."""
        caller = self._caller(request)
        query = request.query_params
        page_size = wire.parse_page_size(query.get("pageSize"))
        offset = wire.parse_member_token(query.get("continuationToken"))
        conversation_id = request.path_params["conversation_id"]
        page, next_offset = await self.connector.paged_members(caller, conversation_id, page_size, offset)
        token = wire.member_token(next_offset) if next_offset is not None else None
        return json_response({"members": page, "continuationToken": token})

    async def delete_member(self, request: Request) -> Response:
        params = request.path_params
        caller = self._caller(request)
        await self.connector.remove_member_from_bot(caller, params["conversation_id"], params["member_id"])
        return Response(status_code=200)

    # -- conversations ------------------------------------------------------------------------------

    async def get_conversations(self, request: Request) -> Response:
        """The calling bot's conversations with their members, 100 a page (another bot's are never listed)."""
        caller = self._caller(request)
        after = wire.parse_conversations_token(request.query_params.get("continuationToken"))
        page, next_after = await self.connector.bot_conversations(caller, after, CONVERSATIONS_PAGE)
        token = wire.conversations_token(*next_after) if next_after is not None else None
        conversations = [{"id": conversation_id, "members": members} for conversation_id, members in page]
        return json_response({"conversations": conversations, "continuationToken": token})

    async def create_conversation(self, request: Request) -> Response:
        """A conversation the bot starts: 201 ConversationResourceResponse `{id, activityId?, serviceUrl}`."""
        caller = self._caller(request)
        parameters = wire.parse_conversation_parameters(await self._body(request, "the conversation parameters"))
        conversation_id, activity_id = await self.connector.create_from_bot(caller, parameters)
        body = {"id": conversation_id, "serviceUrl": act.service_url(self.config.public_url)}
        if activity_id is not None:
            body["activityId"] = activity_id
        return json_response(body, 201)
