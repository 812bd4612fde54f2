"""Reading an upload request, shared by 1.1 and 3.0: multipart with one optional JSON part, or a raw file body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from openline.api._http import decode_json, media_type
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.multipart import (
    Part,
    boundary_of,
    clean_filename,
    clean_media_type,
    disposition,
    parse_multipart,
)
from openline.service.files import Upload


def read_upload(
    request: Request, body: bytes, is_json_part: Callable[[Part], bool], what: str, max_parts: int
) -> tuple[Any, list[Upload]]:
    """The decoded JSON part (None without one) and the files of an upload.

    Multipart: the part `is_json_part` picks holds JSON (at most one: `what`
    names it in errors), every other part is a file. Otherwise a non-empty
    body is one file, named by its Content-Disposition. More than `max_parts` parts: TOO_LARGE.
    """
    content_type = request.headers.get("content-type", "")
    boundary = boundary_of(content_type) if content_type else None
    document: Any = None
    uploads: list[Upload] = []
    if boundary is not None:
        for part in parse_multipart(body, boundary, max_parts):
            if is_json_part(part):
                if document is not None:
                    raise ServiceError(ErrorKind.MALFORMED, f"more than one {what} part in the upload")
                document = decode_json(part.data, f"the {what} part")
            else:
                name = clean_filename(part.filename or part.name)
                uploads.append(Upload(name, clean_media_type(part.content_type), part.data))
    elif body:
        _, filename = disposition(request.headers.get("content-disposition"))
        uploads.append(Upload(clean_filename(filename), clean_media_type(media_type(request)), body))
    return document, uploads
