"""Parsing upload bodies: `multipart/form-data` into parts that keep their own headers.

Starlette's form parser turns parts without a filename into plain strings and
drops their content type, but Direct Line tells the message part from the file
parts by exactly that content type; this parser keeps name, filename, content
type and data of every part. Pure: bytes in, parts out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from openline.protocol.errors import ErrorKind, ServiceError


@dataclass(frozen=True, slots=True)
class Part:
    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes


def _text(value: bytes | None) -> str | None:
    """Header bytes as text: UTF-8 (what browsers send), else Latin-1 (HTTP's historic charset)."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def disposition(header: str | bytes | None) -> tuple[str | None, str | None]:
    """(name, filename) from a Content-Disposition header value (either may be None).

    A str is taken as the server decoded it (Latin-1), so its original bytes, and
    with them a UTF-8 filename, are recovered.
    """
    if not header:
        return None, None
    raw = header
    if isinstance(header, str):
        try:
            raw = header.encode("latin-1")
        except UnicodeEncodeError:
            raw = header.encode("utf-8")
    _, params = parse_options_header(raw)
    return _text(params.get(b"name")), _text(params.get(b"filename"))


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def clean_media_type(value: str | None) -> str:
    """A media type safe to store and serve back (`type/subtype`, lower case), else application/octet-stream."""
    media_type = (value or "").split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.fullmatch(media_type) else "application/octet-stream"


def clean_filename(value: str | None) -> str:
    """A file name safe in a URL path segment and a header: the last path component, no control characters."""
    name = re.split(r"[/\\]", value or "")[-1]
    name = _UNSAFE_IN_NAME.sub("", name).strip()
    return name[:200] if name.strip(".") else "file"


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a `multipart/form-data` Content-Type, or None when it is not multipart.

    MALFORMED for a multipart one without a boundary, or for text no HTTP header can hold (not Latin-1).
    """
    try:
        raw = content_type.encode("latin-1")
    except UnicodeEncodeError:
        raise ServiceError(ErrorKind.MALFORMED, "the Content-Type is not Latin-1 text") from None
    media_type, params = parse_options_header(raw)
    if media_type != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServiceError(ErrorKind.MALFORMED, "multipart/form-data without a boundary")
    return bytes(boundary)


def parse_multipart(body: bytes, boundary: bytes, max_parts: int = 64) -> list[Part]:
    """All parts of a complete multipart body; raises MALFORMED when it is not one, TOO_LARGE past `max_parts`."""
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    field: list[bytes] = []
    value: list[bytes] = []
    chunks: list[bytes] = []

    def on_part_begin() -> None:
        headers.clear()
        chunks.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        headers[b"".join(field).lower()] = b"".join(value)
        field.clear()
        value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks.append(data[start:end])

    def on_part_end() -> None:
        if len(parts) >= max_parts:
            raise ServiceError(ErrorKind.TOO_LARGE, f"more than {max_parts} parts in one upload")
        name, filename = disposition(headers.get(b"content-disposition"))
        content_type = _text(headers.get(b"content-type"))
        parts.append(Part(name, filename, content_type.strip() if content_type else None, b"".join(chunks)))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except ServiceError:
        raise
    except Exception as e:  # the parser raises several error types for broken bodies
        raise ServiceError(ErrorKind.MALFORMED, f"the multipart body cannot be parsed: {e}") from None
    if parser.state not in (MultipartState.END, MultipartState.END_BOUNDARY):
        raise ServiceError(ErrorKind.MALFORMED, "the multipart body is incomplete (no closing boundary)")
    if not parts:
        raise ServiceError(ErrorKind.MALFORMED, "the multipart body has no parts")
    return parts
