"""Small HTTP helpers shared by the API modules: JSON responses, bounded body reads, JSON decoding."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from openline.protocol.errors import ErrorKind, ServiceError

# pages and APIs for this service's own pages only: never any CORS header, so other sites cannot read them
PRIVATE_PATHS = ("/admin", "/inspect", "/web/")
# what bots call (the connector API, bot attachments, the echo bot's endpoint): bots are not browsers, so no
# CORS either, and a web page cannot use a visitor's browser to post there
NO_CORS_PATHS = (
    *PRIVATE_PATHS,
    "/v3/conversations",
    "/v3/attachments",
    "/echobot/",
    # bot authentication: metadata, keys, the token endpoint and the sidecar (bots and their SDKs only)
    "/v1/.well-known/",
    "/adfs/",
    "/sidecar/",
    "/metrics",  # Prometheus scrapers, not browsers
)

MIN_BODY_RATE = 500  # bytes per second a body must average, beyond its first allowance (see read_body)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")


async def read_body(request: Request, limit: int, idle_seconds: float) -> bytes:
    """The request body, refusing (TOO_LARGE) as soon as it is known to exceed `limit` bytes.

    A client that pauses longer than `idle_seconds` while sending it gets
    REQUEST_TIMEOUT (408), as does a `Content-Length` larger than what comes,
    and so does one slower than `MIN_BODY_RATE` on average beyond that first
    allowance (each byte received extends the time the body may take, as
    Apache's `RequestReadTimeout ... MinRate` does): a trickle cannot hold a
    connection for ever.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServiceError(ErrorKind.MALFORMED, "invalid Content-Length")
        if int(declared) > limit:
            raise ServiceError(ErrorKind.TOO_LARGE, f"the body is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + idle_seconds
    while True:
        wait = min(idle_seconds, deadline - loop.time())
        try:
            if wait <= 0:
                raise TimeoutError
            async with asyncio.timeout(wait):
                message = await request.receive()
        except TimeoutError:
            raise ServiceError(
                ErrorKind.REQUEST_TIMEOUT,
                f"the body came too slowly (pauses of {idle_seconds:g} s at most, {MIN_BODY_RATE} bytes/s on average)",
            ) from None
        if message["type"] == "http.disconnect":
            # nothing was stored; the answer goes nowhere, but the request ends as a client error, not a crash
            raise ServiceError(ErrorKind.MALFORMED, "the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        deadline += len(chunk) / MIN_BODY_RATE
        if size > limit:
            raise ServiceError(ErrorKind.TOO_LARGE, f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def decode_json(body: bytes, what: str = "the body") -> Any:
    """Parsed JSON; MALFORMED with a readable reason otherwise."""
    if not body.strip():
        raise ServiceError(ErrorKind.MALFORMED, f"{what} is empty; a JSON object is expected")
    try:
        return _decode(body)
    except RecursionError:
        raise ServiceError(ErrorKind.MALFORMED, f"{what} is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise ServiceError(ErrorKind.MALFORMED, f"{what} is not valid JSON: {e}") from None


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def decode_optional_json(body: bytes, what: str = "the body") -> Any:
    """Parsed JSON, or None for an empty body (clients that send no body at all)."""
    return decode_json(body, what) if body.strip() else None
