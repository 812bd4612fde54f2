"""The service's failure kinds, and how each API renders them (status, code, body).

The service raises `ServiceError(kind, message)`; each API surface turns the
kind into its own status code and error body, so one rule (say, "expired
token") has one meaning and each wire format keeps its own vocabulary.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(enum.Enum):
    MALFORMED = "malformed"  # the body or a parameter cannot be understood
    MISSING = "missing"  # a required property is absent
    UNAUTHORIZED = "unauthorized"  # no credential, or an unreadable Authorization header
    FORBIDDEN = "forbidden"  # a credential that is wrong, or not valid for this operation/conversation
    TOKEN_EXPIRED = "token_expired"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    BAD_WATERMARK = "bad_watermark"
    REQUEST_TIMEOUT = "request_timeout"  # the client sent its headers or body too slowly
    HEADERS_TOO_LARGE = "headers_too_large"
    OVERLOADED = "overloaded"  # every connection the service allows is in use
    THROTTLED = "throttled"  # over a rate limit (rate_limit, conversation_rate_limit): 429 with Retry-After
    BOT_REJECTED = "bot_rejected"  # the bot answered with an error status
    BOT_UNREACHABLE = "bot_unreachable"  # connection refused, DNS, reset ...
    BOT_TIMEOUT = "bot_timeout"
    INTERNAL = "internal"


class ServiceError(Exception):
    """A failure with a kind every API knows how to answer."""

    def __init__(self, kind: ErrorKind, message: str, inner_status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.inner_status = inner_status  # the status a peer (the bot) answered, when it caused the failure


# Direct Line 1.1: codes from the Swagger's ErrorMessage enum; every bot failure is
# 500 ServiceError, as the Swagger and the "Send a message" article say.
_V1: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.MALFORMED: (400, "MalformedData"),
    ErrorKind.MISSING: (400, "MissingProperty"),
    ErrorKind.UNAUTHORIZED: (401, "NotAllowed"),
    ErrorKind.FORBIDDEN: (403, "NotAllowed"),
    ErrorKind.TOKEN_EXPIRED: (403, "NotAllowed"),
    ErrorKind.NOT_FOUND: (404, "NotFound"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "NotSupported"),
    ErrorKind.TOO_LARGE: (413, "MalformedData"),
    ErrorKind.UNSUPPORTED_MEDIA: (415, "NotSupported"),
    ErrorKind.BAD_WATERMARK: (400, "InvalidRange"),
    ErrorKind.REQUEST_TIMEOUT: (408, "MalformedData"),
    ErrorKind.HEADERS_TOO_LARGE: (431, "MalformedData"),
    ErrorKind.OVERLOADED: (503, "Internal"),
    # spec 1.1 §4.14 suggests ServiceError or NotAllowed: ServiceError, since NotAllowed reads as a credential problem
    ErrorKind.THROTTLED: (429, "ServiceError"),
    ErrorKind.BOT_REJECTED: (500, "ServiceError"),
    ErrorKind.BOT_UNREACHABLE: (500, "ServiceError"),
    ErrorKind.BOT_TIMEOUT: (500, "ServiceError"),
    ErrorKind.INTERNAL: (500, "Internal"),
}

# Direct Line 3.0 and the Bot Connector API the bot calls: ErrorResponse {"error": {"code", "message"}}.
_V3: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.MALFORMED: (400, "BadArgument"),
    ErrorKind.MISSING: (400, "MissingProperty"),
    ErrorKind.UNAUTHORIZED: (401, "Unauthorized"),
    ErrorKind.FORBIDDEN: (403, "Forbidden"),
    ErrorKind.TOKEN_EXPIRED: (403, "TokenExpired"),
    ErrorKind.NOT_FOUND: (404, "NotFound"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "BadArgument"),
    ErrorKind.TOO_LARGE: (413, "BadArgument"),
    ErrorKind.UNSUPPORTED_MEDIA: (415, "BadArgument"),
    ErrorKind.BAD_WATERMARK: (400, "BadArgument"),
    ErrorKind.REQUEST_TIMEOUT: (408, "RequestTimeout"),
    ErrorKind.HEADERS_TOO_LARGE: (431, "BadArgument"),
    ErrorKind.OVERLOADED: (503, "ServiceUnavailable"),
    ErrorKind.THROTTLED: (429, "Throttled"),  # spec 3.0 §status codes: "429 Throttled. May carry Retry-After."
    ErrorKind.BOT_REJECTED: (502, "BotRejectedActivity"),
    ErrorKind.BOT_UNREACHABLE: (502, "BotUnavailable"),
    ErrorKind.BOT_TIMEOUT: (504, "BotTimeout"),
    ErrorKind.INTERNAL: (500, "InternalError"),
}


def v1_error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """Status and `ErrorMessage` body of the 1.1 API."""
    status, code = _V1[kind]
    return status, {"error": {"code": code, "message": message, "statusCode": status}}


def v3_error(kind: ErrorKind, message: str, inner_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """Status and `ErrorResponse` body of Direct Line 3.0 and the Bot Connector API.

    `inner_status`, the bot's own status when it caused the failure, becomes
    `innerHttpError.statusCode` (the bot's body is logged, never shown).
    """
    status, code = _V3[kind]
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_status is not None:
        error["innerHttpError"] = {"statusCode": inner_status}
    return status, {"error": error}


def oauth_error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """Status and body of an error at the bots' token authority (`/adfs/...`), in OAuth2's shape (RFC 6749 §5.2)."""
    status = _V3[kind][0]
    if status == 401:
        code = "invalid_client"
    elif status == 503:
        code = "temporarily_unavailable"
    elif status >= 500:
        code = "server_error"
    else:
        code = "invalid_request"
    return status, {"error": code, "error_description": message}


def problem_error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """Status and RFC 9457 problem body of an error on the sidecar token API (`/sidecar/...`), its own shape."""
    status, code = _V3[kind]
    return status, {"type": "about:blank", "title": code, "status": status, "detail": message}


def v3_code(kind_value: str) -> str:
    """The 3.0 error code of an `ErrorKind` value (kept as text in delivery records); the value if unknown."""
    try:
        return _V3[ErrorKind(kind_value)][1]
    except ValueError:
        return kind_value


def kind_of_status(status: int) -> ErrorKind:
    """The kind of a framework-level HTTP error (unknown route, wrong method, ...)."""
    return {
        400: ErrorKind.MALFORMED,
        408: ErrorKind.REQUEST_TIMEOUT,
        401: ErrorKind.UNAUTHORIZED,
        403: ErrorKind.FORBIDDEN,
        404: ErrorKind.NOT_FOUND,
        405: ErrorKind.METHOD_NOT_ALLOWED,
        413: ErrorKind.TOO_LARGE,
        415: ErrorKind.UNSUPPORTED_MEDIA,
        429: ErrorKind.THROTTLED,
        431: ErrorKind.HEADERS_TOO_LARGE,
        503: ErrorKind.OVERLOADED,
    }.get(status, ErrorKind.MALFORMED if status < 500 else ErrorKind.INTERNAL)
