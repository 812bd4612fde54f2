"""Tests for openline.protocol.errors: failure kinds and their 1.1 and connector renderings."""

from __future__ import annotations

import pytest

from openline.protocol.errors import ErrorKind, ServiceError, kind_of_status, v1_error, v3_error

V1_CODES = {
    "MissingProperty",
    "MalformedData",
    "NotFound",
    "ServiceError",
    "Internal",
    "InvalidRange",
    "NotSupported",
    "NotAllowed",
    "BadCertificate",
}
BOT_FAILURES = [ErrorKind.BOT_REJECTED, ErrorKind.BOT_UNREACHABLE, ErrorKind.BOT_TIMEOUT]


def test_service_error_carries_kind_and_message() -> None:
    error = ServiceError(ErrorKind.NOT_FOUND, "no such conversation")
    assert error.kind is ErrorKind.NOT_FOUND
    assert error.message == "no such conversation"
    assert str(error) == "no such conversation"
    assert isinstance(error, Exception)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_has_a_v1_rendering_in_the_errormessage_shape(kind: ErrorKind) -> None:
    status, body = v1_error(kind, "what went wrong")
    assert body == {"error": {"code": body["error"]["code"], "message": "what went wrong", "statusCode": status}}
    assert body["error"]["code"] in V1_CODES
    assert 400 <= status < 600


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_has_a_connector_rendering(kind: ErrorKind) -> None:
    status, body = v3_error(kind, "what went wrong")
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert body["error"]["message"] == "what went wrong"
    assert 400 <= status < 600


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (ErrorKind.MALFORMED, 400, "MalformedData"),
        (ErrorKind.MISSING, 400, "MissingProperty"),
        (ErrorKind.UNAUTHORIZED, 401, "NotAllowed"),
        (ErrorKind.FORBIDDEN, 403, "NotAllowed"),
        (ErrorKind.TOKEN_EXPIRED, 403, "NotAllowed"),
        (ErrorKind.NOT_FOUND, 404, "NotFound"),
        (ErrorKind.BAD_WATERMARK, 400, "InvalidRange"),
        (ErrorKind.UNSUPPORTED_MEDIA, 415, "NotSupported"),
        (ErrorKind.INTERNAL, 500, "Internal"),
    ],
)
def test_v1_mapping_follows_the_spec(kind: ErrorKind, status: int, code: str) -> None:
    assert v1_error(kind, "m") == (status, {"error": {"code": code, "message": "m", "statusCode": status}})


@pytest.mark.parametrize("kind", BOT_FAILURES)
def test_bot_failures_are_500_service_error_in_v1(kind: ErrorKind) -> None:
    status, body = v1_error(kind, "the bot failed")
    assert status == 500
    assert body["error"]["code"] == "ServiceError"
    assert body["error"]["statusCode"] == 500


@pytest.mark.parametrize("kind", BOT_FAILURES)
def test_bot_failures_are_gateway_errors_for_the_connector(kind: ErrorKind) -> None:
    status, _ = v3_error(kind, "m")
    assert status in (502, 504)


def test_connector_token_expired_is_403_token_expired() -> None:
    assert v3_error(ErrorKind.TOKEN_EXPIRED, "m") == (403, {"error": {"code": "TokenExpired", "message": "m"}})


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.MALFORMED),
        (401, ErrorKind.UNAUTHORIZED),
        (403, ErrorKind.FORBIDDEN),
        (404, ErrorKind.NOT_FOUND),
        (405, ErrorKind.METHOD_NOT_ALLOWED),
        (413, ErrorKind.TOO_LARGE),
        (415, ErrorKind.UNSUPPORTED_MEDIA),
        (409, ErrorKind.MALFORMED),
        (422, ErrorKind.MALFORMED),
        (499, ErrorKind.MALFORMED),
        (500, ErrorKind.INTERNAL),
        (502, ErrorKind.INTERNAL),
        (503, ErrorKind.OVERLOADED),
        (408, ErrorKind.REQUEST_TIMEOUT),
        (431, ErrorKind.HEADERS_TOO_LARGE),
    ],
)
def test_kind_of_status(status: int, kind: ErrorKind) -> None:
    assert kind_of_status(status) is kind


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 408, 413, 415, 431, 503])
def test_kind_of_status_round_trips_through_the_renderings(status: int) -> None:
    assert v1_error(kind_of_status(status), "m")[0] == status
    assert v3_error(kind_of_status(status), "m")[0] == status
