"""The attachment operations of the Bot Connector API: a bot uploads a file, and anyone with its id reads it.

`POST /v3/conversations/{id}/attachments` takes an AttachmentData (base64
views `original` and optionally `thumbnail`) and answers `{"id": attachmentId}`;
`GET /v3/attachments/{attachmentId}` describes it and
`GET /v3/attachments/{attachmentId}/views/{viewId}` serves the bytes. The
attachment id (`{conversationId}~{random}`, see `protocol/connector.py`) is the
capability: reads need no credential (uploads need the bot's, like every connector call), so a bot can put
`{serviceUrl}/v3/attachments/{id}/views/original` in an activity for clients.
Files are kept for the retention, like client uploads.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.api._http import decode_json, json_response, read_body
from openline.api.attachments import file_response
from openline.auth.bot_auth import BotAuthority
from openline.config import Config
from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError
from openline.service.files import Files


class ConnectorAttachmentsApi:
    def __init__(self, config: Config, files: Files, authority: BotAuthority) -> None:
        self.config = config
        self.files = files
        self.authority = authority

    def routes(self) -> list[Route]:
        return [
            Route("/v3/conversations/{conversation_id}/attachments", self.upload_attachment, methods=["POST"]),
            Route("/v3/attachments/{attachment_id}", self.attachment_info, methods=["GET"]),
            Route("/v3/attachments/{attachment_id}/views/{view_id}", self.attachment_view, methods=["GET"]),
        ]

    async def upload_attachment(self, request: Request) -> Response:
        caller = self.authority.caller(request.headers.get("authorization"))
        limit = self.config.max_connector_bytes  # of the files, decoded
        body = await read_body(request, wire.max_attachment_body(limit), self.config.body_timeout)
        data = wire.parse_attachment_data(decode_json(body, "the attachment data"), limit)
        attachment_id = await self.files.upload_from_bot(caller, request.path_params["conversation_id"], data)
        return json_response({"id": attachment_id})

    async def attachment_info(self, request: Request) -> Response:
        return json_response(await self.files.attachment_info(request.path_params["attachment_id"]))

    async def attachment_view(self, request: Request) -> Response:
        params = request.path_params
        stored = await self.files.attachment_view(params["attachment_id"], params["view_id"])
        if stored is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "the attachment or view does not exist or has expired")
        return file_response(stored)
