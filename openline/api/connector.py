"""The Bot Connector v3 API bots call on `serviceUrl`: send, reply and members.

Bots post here while the service's own POST to them is still open; nothing
here waits on that call. Ids in paths arrive URL-encoded (`conv%7C0000001`) and
are decoded by the server before routing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import decode_json, json_response, read_body
from openline.config import Config
from openline.service.channel import Channel


class ConnectorApi:
    def __init__(self, config: Config, channel: Channel) -> None:
        self.config = config
        self.channel = channel

    def routes(self) -> list[Route]:
        base = "/v3/conversations/{conversation_id}"
        return [
            Route(base + "/activities", self.send_to_conversation, methods=["POST"]),
            Route(base + "/activities/{activity_id}", self.reply_to_activity, methods=["POST"]),
            Route(base + "/members", self.members, methods=["GET"]),
            Route(base + "/activities/{activity_id}/members", self.activity_members, methods=["GET"]),
        ]

    async def _post(self, request: Request, reply_to_id: str | None) -> Response:
        # bots may inline content (cards, data: URLs), so their limit is the upload limit
        body = await read_body(request, self.config.max_upload_bytes)
        activity = decode_json(body, "the activity")
        activity_id = await self.channel.post_from_bot(request.path_params["conversation_id"], activity, reply_to_id)
        return json_response({"id": activity_id})

    async def send_to_conversation(self, request: Request) -> Response:
        return await self._post(request, None)

    async def reply_to_activity(self, request: Request) -> Response:
        return await self._post(request, request.path_params["activity_id"])

    async def members(self, request: Request) -> Response:
        return json_response(await self.channel.members(request.path_params["conversation_id"]))

    async def activity_members(self, request: Request) -> Response:
        """The members of the conversation the activity belongs to (404 for an activity it never had)."""
        params = request.path_params
        return json_response(await self.channel.members(params["conversation_id"], params["activity_id"]))
