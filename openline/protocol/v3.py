"""Direct Line 3.0 wire shapes: request parameters, ActivitySets, Conversation answers, stream URLs.

Request bodies are read the way the official (Newtonsoft) service binds them:
property names in any letter case, every body optional. Clients never see
`conversationUpdate`; `typing` is shown on streams only.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openline.protocol.activity import Account, Activity, account
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import format_watermark

ACTIVITY_PART_TYPE = "application/vnd.microsoft.activity"
EPHEMERAL_TYPES = frozenset({"typing"})
HIDDEN_TYPES = frozenset({"conversationUpdate"})
_MAX_ID = 256


@dataclass(frozen=True, slots=True)
class StartParameters:
    """What a client may say when it asks for a token or starts a conversation."""

    user: Account | None = None
    locale: str | None = None
    trusted_origins: tuple[str, ...] = ()


def _field(body: Mapping[str, Any], name: str) -> Any:
    """`body[name]` matched in any letter case (the exact spelling wins)."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _text(value: Any, what: str, limit: int = _MAX_ID) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ServiceError(ErrorKind.MALFORMED, f"{what} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise ServiceError(ErrorKind.MALFORMED, f"{what} is longer than {limit} characters")
    return value or None


def start_parameters(body: Any) -> StartParameters:
    """`TokenParameters` / the start body: `{user: {id, name}, locale, trustedOrigins}`; None for no body.

    `{}` and `{"user": {}}` (what botframework-directlinejs sends) name no user.
    """
    if body is None:
        return StartParameters()
    if not isinstance(body, dict):
        raise ServiceError(ErrorKind.MALFORMED, "the body must be a JSON object")
    user: Account | None = None
    raw_user = _field(body, "user")
    if raw_user is not None:
        if not isinstance(raw_user, dict):
            raise ServiceError(ErrorKind.MALFORMED, "'user' must be an object")
        user_id = _text(_field(raw_user, "id"), "user.id")
        if user_id is not None:
            user = account(user_id, _text(_field(raw_user, "name"), "user.name"))
    locale = _text(_field(body, "locale"), "locale", 64)
    origins = _field(body, "trustedOrigins")
    if origins is not None and (not isinstance(origins, list) or not all(isinstance(o, str) for o in origins)):
        raise ServiceError(ErrorKind.MALFORMED, "'trustedOrigins' must be a list of strings")
    return StartParameters(user, locale, tuple(origins or ()))


def shown_in_history(activity: Activity) -> bool:
    """Whether GET .../activities returns the activity."""
    type_ = activity.get("type")
    return type_ not in HIDDEN_TYPES and type_ not in EPHEMERAL_TYPES


def shown_on_stream(activity: Activity) -> bool:
    return activity.get("type") not in HIDDEN_TYPES


def activity_set(activities: Iterable[Activity], watermark: int | None) -> dict[str, Any]:
    """An ActivitySet; without a watermark (ephemeral activities, replacements) the key is left out."""
    body: dict[str, Any] = {"activities": list(activities)}
    if watermark is not None:
        body["watermark"] = format_watermark(watermark)
    return body


def conversation_answer(
    conversation_id: str, token: str, expires_in: int, stream_url: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"conversationId": conversation_id, "token": token, "expires_in": expires_in}
    if stream_url is not None:
        body["streamUrl"] = stream_url
    return body


def request_scheme(scheme: str, headers: Mapping[str, str]) -> str:
    """The scheme the client used: the first `X-Forwarded-Proto` (a proxy's), else the request's own."""
    return headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() or scheme


def websocket_base(public_url: str | None, scheme: str, host: str | None, headers: Mapping[str, str]) -> str:
    """`ws(s)://host[:port]` for stream URLs.

    `public_url` (configured) wins; otherwise the request's `X-Forwarded-Proto`
    and `X-Forwarded-Host` (first values), else its own scheme and Host.
    """
    if public_url:
        parts = urllib.parse.urlsplit(public_url)
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path.rstrip("/")
    else:
        forwarded_host = headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme = request_scheme(scheme, headers)
        netloc = forwarded_host or headers.get("host", "") or host or "localhost"
        path = ""
    ws_scheme = "wss" if scheme in ("https", "wss") else "ws"
    return f"{ws_scheme}://{netloc}{path}"


def stream_url(base: str, conversation_id: str, watermark: str, stream_token: str) -> str:
    query = urllib.parse.urlencode({"watermark": watermark, "t": stream_token})
    return f"{base}/v3/directline/conversations/{urllib.parse.quote(conversation_id, safe='')}/stream?{query}"
