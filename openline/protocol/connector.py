"""Wire values of the Bot Connector API beyond plain activities: pure parsing and formatting, no I/O.

- `ConversationParameters` (bot-created conversations) and the `Transcript` of
  `activities/history`, checked into small value types.
- `AttachmentData` (bot uploads): base64 strings decoded, sizes bounded, name and
  type made safe to serve back.
- Attachment ids, `{conversationId}~{key}`: `~` is URL-safe (RFC 3986
  unreserved) and never in a base62 id, and the key is 22 random base62
  characters (about 130 bits), so the id both locates the file and is the
  capability to read it. The conversation part is split at the last `~`.
- Continuation tokens: for members, the decimal offset of the next member; for
  the conversation list, base64url of the JSON `[botId, lastConversationId]`
  the next page continues after (opaque to bots).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import msgspec

from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.multipart import clean_filename, clean_media_type

ATTACHMENT_ID_SEPARATOR = "~"
ATTACHMENT_VIEWS = ("original", "thumbnail")
MEMBERS_PAGE_DEFAULT = 200
MEMBERS_PAGE_MAX = 500
_MAX_OFFSET_DIGITS = 9
_BASE64_TRANSLATION = str.maketrans("-_", "+/")


def _bad(message: str) -> ServiceError:
    return ServiceError(ErrorKind.MALFORMED, message)


def _optional(body: dict[str, Any], name: str, expected: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, expected):
        raise _bad(f"'{name}' must be {what}")
    return value


def _channel_account(value: Any, where: str) -> act.Account:
    """A ChannelAccount with a non-empty string `id` (the other fields are kept)."""
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object")
    member_id = value.get("id")
    if not isinstance(member_id, str) or not member_id.strip():
        raise ServiceError(ErrorKind.MISSING, f"{where} has no 'id'")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise _bad(f"{where}.name must be a string")
    return value


# -- conversations the bot creates, history it sends ------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewConversation:
    """What `POST /v3/conversations` asks for: the bot (None: the only one configured), members, a first activity."""

    bot_id: str | None
    members: list[act.Account]
    activity: dict[str, Any] | None


def parse_conversation_parameters(body: Any) -> NewConversation:
    """Check a ConversationParameters object.

    `isGroup`, `topicName`, `tenantId` (`tenantID` from the Python SDK) and
    `channelData` are type-checked but have no effect on a Direct Line conversation.
    """
    if not isinstance(body, dict):
        raise _bad("the conversation parameters must be a JSON object")
    _optional(body, "isGroup", bool, "true or false")
    _optional(body, "topicName", str, "a string")
    _optional(body, "tenantId", str, "a string")
    _optional(body, "tenantID", str, "a string")
    _optional(body, "channelData", dict, "an object")
    bot = body.get("bot")
    bot_id = _channel_account(bot, "'bot'")["id"] if bot is not None else None
    raw_members = _optional(body, "members", list, "an array of ChannelAccounts") or []
    members = [_channel_account(m, f"members[{i}]") for i, m in enumerate(raw_members)]
    activity = body.get("activity")
    if activity is not None and not isinstance(activity, dict):
        raise _bad("'activity' must be an object")
    return NewConversation(bot_id, members, activity)


def history_activities(body: Any) -> list[Any]:
    """The `activities` of a Transcript object (each is checked when it is stamped)."""
    if not isinstance(body, dict):
        raise _bad("the transcript must be a JSON object with 'activities'")
    activities = body.get("activities")
    if activities is None:
        raise ServiceError(ErrorKind.MISSING, "the transcript has no 'activities'")
    if not isinstance(activities, list):
        raise _bad("'activities' must be an array")
    return activities


def from_history(activity: Any, conversation_id: str, bot: act.Account) -> act.Activity:
    """Stamp an activity of a transcript like one the bot sent (in place), but keep its own `from`.

    A transcript replays what others said too, so the sender stays; an activity
    without one is the bot's. `from`, when present, must be a ChannelAccount.
    """
    sender = activity.get("from") if isinstance(activity, dict) else None
    if sender is not None:
        sender = _channel_account(sender, "'from'")
    stamped = act.from_bot(activity, conversation_id, bot, None)
    if sender is not None:
        stamped["from"] = sender
    return stamped


# -- attachments ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachmentData:
    """A bot's upload, decoded: a file (its views `original` and optionally `thumbnail`)."""

    name: str
    content_type: str
    original: bytes
    thumbnail: bytes | None

    def views(self) -> dict[str, bytes]:
        views = {"original": self.original}
        if self.thumbnail is not None:
            views["thumbnail"] = self.thumbnail
        return views


def decode_base64(value: Any, name: str) -> bytes:
    """Bytes from a base64 string (standard or URL-safe alphabet, padding optional, line breaks ignored)."""
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a base64 string")
    compact = "".join(value.split()).translate(_BASE64_TRANSLATION)
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"'{name}' is not valid base64") from None


def parse_attachment_data(body: Any, max_bytes: int) -> AttachmentData:
    """Check and decode an AttachmentData object; TOO_LARGE when the decoded views add up to over `max_bytes`."""
    if not isinstance(body, dict):
        raise _bad("the attachment data must be a JSON object")
    name = _optional(body, "name", str, "a string")
    content_type = _optional(body, "type", str, "a string")
    if body.get("originalBase64") is None:
        raise ServiceError(ErrorKind.MISSING, "the attachment data has no 'originalBase64'")
    original = decode_base64(body["originalBase64"], "originalBase64")
    encoded_thumbnail = body.get("thumbnailBase64")
    thumbnail = decode_base64(encoded_thumbnail, "thumbnailBase64") if encoded_thumbnail is not None else None
    if len(original) + len(thumbnail or b"") > max_bytes:
        raise ServiceError(ErrorKind.TOO_LARGE, f"the attachment is larger than the limit of {max_bytes} bytes")
    return AttachmentData(clean_filename(name), clean_media_type(content_type), original, thumbnail)


def max_attachment_body(max_bytes: int) -> int:
    """The largest AttachmentData body that can hold `max_bytes` of files (base64 plus room for the rest)."""
    return 4 * -(-max_bytes // 3) + 16 * 1024


def attachment_id(conversation_id: str, key: str) -> str:
    return f"{conversation_id}{ATTACHMENT_ID_SEPARATOR}{key}"


def parse_attachment_id(value: str) -> tuple[str, str] | None:
    """(conversation id, key) of an attachment id, or None when it is not one this service issues."""
    conversation_id, sep, key = value.rpartition(ATTACHMENT_ID_SEPARATOR)
    if not sep or not conversation_id or not key or not key.isascii() or not key.isalnum():
        return None
    return conversation_id, key


def attachment_file_id(key: str, view: str) -> str:
    """The store's file id of one view of an attachment."""
    return f"{key}.{view}"


# -- paging -----------------------------------------------------------------------------------------


def parse_count(raw: str | None, default: int, most: int, name: str) -> int:
    """A count in a query parameter (also the admin API's `limit`): absent or empty → `default`; else 1 to `most`."""
    if raw is None or not raw.strip():
        return default
    # the length bound first: int() of thousands of digits raises
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(most))) or not 1 <= int(raw) <= most:
        raise _bad(f"{name} must be a whole number from 1 to {most}")
    return int(raw)


def parse_page_size(raw: str | None) -> int:
    """`pageSize` of `pagedmembers`."""
    return parse_count(raw, MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX, "pageSize")


def parse_member_token(raw: str | None) -> int:
    """The offset a members continuation token stands for (absent or empty: 0)."""
    if raw is None or not raw.strip():
        return 0
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_OFFSET_DIGITS):
        raise _bad("invalid continuationToken: pass the token of the previous page")
    return int(raw)


def member_token(offset: int) -> str:
    return str(offset)


def conversations_token(bot_id: str, after_id: str) -> str:
    """The token of a conversation-list page that continues with `bot_id`'s conversations after `after_id`."""
    return base64.urlsafe_b64encode(msgspec.json.encode([bot_id, after_id])).decode().rstrip("=")


def parse_conversations_token(raw: str | None) -> tuple[str, str] | None:
    """(bot id, conversation id to continue after) of a conversation-list token; None for the first page."""
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        bot_id, after_id = msgspec.json.decode(decoded, type=tuple[str, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise _bad("invalid continuationToken: pass the token of the previous page") from None
    return bot_id, after_id
