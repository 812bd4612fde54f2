"""Serving uploaded files at their signed, expiring URLs (`/attachments/{conv}/{file}/{name}?e=&s=`).

The URL is the credential. Files are served with `nosniff` and a sandboxing CSP,
and anything but an image is a download, so an uploaded page cannot run as this origin.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openline.auth.signing import UrlSigner
from openline.protocol.errors import ErrorKind, ServiceError
from openline.storage.base import ConversationStore, StoredFile


class AttachmentsApi:
    def __init__(self, store: ConversationStore, signer: UrlSigner, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.signer = signer
        self.clock = clock

    def routes(self) -> list[Route]:
        return [Route("/attachments/{conversation_id}/{file_id}/{name}", self.download, methods=["GET"])]

    async def download(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        file_id = request.path_params["file_id"]
        now = self.clock()
        expires, signature = request.query_params.get("e", ""), request.query_params.get("s", "")
        if not self.signer.valid(conversation_id, file_id, expires, signature, now):
            raise ServiceError(ErrorKind.FORBIDDEN, "the file link is not valid or has expired")
        stored = await self.store.get_file(conversation_id, file_id, now)
        if stored is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "the file does not exist or has expired")
        return file_response(stored)


def file_response(stored: StoredFile) -> Response:
    """A stored file, served so that it cannot run as this origin: only images inline, `nosniff`, a sandbox CSP."""
    inline = stored.content_type.startswith("image/") and stored.content_type != "image/svg+xml"
    filename = urllib.parse.quote(stored.name, safe="")
    headers = {
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{filename}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=3600",
    }
    return Response(stored.data, 200, headers, media_type=stored.content_type)
