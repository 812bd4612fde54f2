"""Turning failures into responses in the error shape of the API the request was for.

One place decides the shape by path: `/api/...` and file downloads answer in the
1.1 `ErrorMessage` shape; the bots' token authority (`/adfs/...`) in OAuth2's, the sidecar
token API (`/sidecar/...`) as RFC 9457 problems; Direct Line 3.0 (`/v3/directline/...`), the connector
API (`/v3/...`) and everything else in the `ErrorResponse` shape they share. Unknown routes and wrong methods get the
same treatment, and an unexpected exception becomes a 500 in that shape too.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from openline import request_id
from openline.api._http import NO_CORS_PATHS, json_response
from openline.logs import redact_target
from openline.protocol.errors import (
    ErrorKind,
    ServiceError,
    kind_of_status,
    oauth_error,
    problem_error,
    v1_error,
    v3_error,
)
from openline.storage.base import StoreFull

log = logging.getLogger("openline.api")


def error_document(path: str, kind: ErrorKind, message: str, inner_status: int | None = None) -> tuple[int, Any]:
    """The status and JSON body of an error on `path`, in the shape of the API that path belongs to."""
    if path.startswith(("/api/", "/attachments/")) or path == "/api":
        return v1_error(kind, message)
    if path.startswith("/adfs/"):
        return oauth_error(kind, message)
    if path.startswith("/sidecar/"):
        return problem_error(kind, message)
    return v3_error(kind, message, inner_status)


def error_response(
    path: str,
    kind: ErrorKind,
    message: str,
    headers: dict[str, str] | None = None,
    inner_status: int | None = None,
) -> Response:
    status, body = error_document(path, kind, message, inner_status)
    return json_response(body, status, headers)


_CONNECTOR_PATHS = ("/v3/conversations", "/v3/attachments")


async def on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    headers = None
    if exc.kind is ErrorKind.UNAUTHORIZED and request.url.path.startswith(_CONNECTOR_PATHS):
        headers = {"WWW-Authenticate": 'Bearer realm="openline"'}  # RFC 6750 §3: what the bot must send
    return error_response(request.url.path, exc.kind, exc.message, headers, exc.inner_status)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = kind_of_status(exc.status_code)
    message = {
        ErrorKind.NOT_FOUND: f"no such resource: {request.method} {request.url.path}",
        ErrorKind.METHOD_NOT_ALLOWED: f"{request.method} is not allowed on {request.url.path}",
    }.get(kind, str(exc.detail))
    return error_response(request.url.path, kind, message, dict(exc.headers) if exc.headers else None)


STORE_UNAVAILABLE = "the service's store cannot be reached; retry"  # the detail (hosts, ports) is logged only
STORE_FULL = "the service's store has no room now; retry later"  # likewise (the path)


async def on_store_unavailable(request: Request, exc: Exception) -> Response:
    """503 in the API's error shape, with Retry-After: the store is down, restarting or full, the client retries."""
    log.warning("%s %s: %s", request.method, redact_target(request.url.path), exc)
    message = STORE_FULL if isinstance(exc, StoreFull) else STORE_UNAVAILABLE
    public = not request.url.path.startswith(NO_CORS_PATHS)
    headers = {"Retry-After": "1"}
    if public and "origin" in request.headers:
        headers["Access-Control-Allow-Origin"] = "*"  # outside the CORS middleware, as in on_unexpected
    return error_response(request.url.path, ErrorKind.OVERLOADED, message, headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, redact_target(request.url.path))
    # this handler runs outside the CORS middleware: without the header a browser client sees status 0
    public = not request.url.path.startswith(NO_CORS_PATHS)
    headers = {"Access-Control-Allow-Origin": "*"} if public and "origin" in request.headers else {}
    rid = request_id.current.get()  # likewise outside the layer that adds it to every other answer
    if rid is not None:
        headers["X-Request-Id"] = rid
    return error_response(request.url.path, ErrorKind.INTERNAL, "internal error", headers)
