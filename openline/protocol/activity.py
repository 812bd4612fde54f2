"""Shaping Bot Framework v3 activities: positions, timestamps, inbound and bot-sent normalisation.

Activities are plain JSON objects (dicts) and unknown fields are never dropped;
these functions only set the fields the channel owns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import activity_id

Activity = dict[str, Any]
Account = dict[str, Any]
Attachment = dict[str, Any]

CHANNEL_ID = "directline"
# activity types that are pushed to streams but never stored (no sequence, no watermark)
EPHEMERAL_TYPES = frozenset({"typing"})


# the last second formatted, "2026-11-21T19:44:27.": activities come many to a second, strftime is slow
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")


def format_timestamp(ms: int) -> str:
    """UTC ISO-8601 with millisecond precision: `2026-11-21T19:44:27.123Z`."""
    global _last_second
    second, millis = divmod(ms, 1000)
    cached, prefix = _last_second
    if second != cached:
        prefix = dt.datetime.fromtimestamp(second, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second = (second, prefix)
    return f"{prefix}{millis:03d}Z"


def next_timestamp_ms(now_ms: int, last_ms: int) -> int:
    """The timestamp of the next activity: now, but strictly after the previous one."""
    return max(now_ms, last_ms + 1)


def assign_position(activity: Activity, conversation_id: str, seq: int, ts_ms: int) -> Activity:
    """Set the fields that depend on the activity's place in the conversation (in place)."""
    activity["id"] = activity_id(conversation_id, seq)
    activity["timestamp"] = format_timestamp(ts_ms)
    return activity


def assign_ephemeral(activity: Activity, conversation_id: str, token: str, ts_ms: int) -> Activity:
    """Give an unstored activity an id (`conv|t...`, never a sequence number) and a timestamp (in place)."""
    activity["id"] = f"{conversation_id}|t{token}"
    activity["timestamp"] = format_timestamp(ts_ms)
    return activity


def attach_files(activity: Activity, files: list[Attachment]) -> Activity:
    """Attach stored files (`{contentType, contentUrl, name}`) to an activity (in place).

    A file fills the first attachment entry with its `name` that has no
    `contentUrl` or `content` yet (the client's own entry: it keeps its
    thumbnail and metadata, and its `contentType` when it gave one); files
    without such an entry are added after the existing attachments.
    """
    attachments = activity.get("attachments")
    if not isinstance(attachments, list):
        attachments = activity["attachments"] = []
    for file in files:
        for i, entry in enumerate(attachments):
            if (
                isinstance(entry, dict)
                and entry.get("name") == file["name"]
                and not entry.get("contentUrl")
                and entry.get("content") is None
            ):
                attachments[i] = {**file, **{k: v for k, v in entry.items() if v is not None}}
                attachments[i]["contentUrl"] = file["contentUrl"]
                break
        else:
            attachments.append(dict(file))
    return activity


DELETION_EVENT = "messageDelete"


def deletion(conversation_id: str, activity_id: str, bot: Account, ts_ms: int) -> Activity:
    """What streams are told when the bot deletes an activity: an `event` named `messageDelete` with the deleted id.

    Clients replace the activity with that id by it (Web Chat and directlinejs
    dedupe by id), and Web Chat renders no `event`: the message disappears
    without a trace. A `messageDelete` activity type would do the same but
    makes Web Chat log "No renderer for activity of type" errors.
    """
    return {
        "type": "event",
        "name": DELETION_EVENT,
        "id": activity_id,
        "timestamp": format_timestamp(ts_ms),
        "channelId": CHANNEL_ID,
        "conversation": {"id": conversation_id},
        "from": bot,
    }


_MAX_CLIENT_KEY = 256


def client_key(activity: Activity) -> str | None:
    """The client's own id for the activity (Web Chat's `channelData.clientActivityID`), if it gave one as a string.

    A client that sends the same activity again (a retry) sends the same key.
    One over 256 characters is refused (MALFORMED) rather than silently not
    making the post a retry.
    """
    channel_data = activity.get("channelData")
    key = channel_data.get("clientActivityID") if isinstance(channel_data, dict) else None
    if not isinstance(key, str) or not key:
        return None
    if len(key) > _MAX_CLIENT_KEY:
        raise ServiceError(
            ErrorKind.MALFORMED, f"channelData.clientActivityID is longer than {_MAX_CLIENT_KEY} characters"
        )
    return key


def account(id_: str, name: str | None = None, role: str | None = None) -> Account:
    """A ChannelAccount with only the fields given."""
    acc: Account = {"id": id_}
    if name is not None:
        acc["name"] = name
    if role is not None:
        acc["role"] = role
    return acc


def _take_over(activity: Activity, conversation_id: str) -> None:
    """Replace what the channel owns: the sender's id, timestamp, serviceUrl, channelId and conversation."""
    activity.pop("id", None)
    activity.pop("timestamp", None)
    activity.pop("serviceUrl", None)
    activity["channelId"] = CHANNEL_ID
    activity["conversation"] = {"id": conversation_id}


def check_user_id(user_id: str, bot: Account) -> None:
    """Refuse (MALFORMED) a user id a client chose that is the bot's own (in any letter case).

    A client that could post as the bot's id would be shown to everyone, and
    taken by other clients (which tell the bot by `from.id`), as the bot.
    """
    if user_id.casefold() == str(bot["id"]).casefold():
        raise ServiceError(ErrorKind.MALFORMED, f"{user_id!r} is the bot's id: a client posts as a user")


def from_client(activity: Activity, conversation_id: str, bot: Account, *, user: Account | None = None) -> Activity:
    """Stamp the channel-owned fields of an activity a client sent (in place).

    Whatever the client sent, the sender is a user: `from.role` is "user", and
    a `from.id` that is the bot's is refused (MALFORMED, see `check_user_id`).
    `user` (a user-bound credential) forces the sender's id, and its name when
    the client gave none; the rest of the client's `from` is kept. The client's
    id, timestamp, channelId, conversation and recipient are replaced.
    """
    sender = activity.get("from")
    sender = dict(sender) if isinstance(sender, dict) else {}
    if user is not None:
        sender["id"] = user["id"]
        if user.get("name") and not sender.get("name"):
            sender["name"] = user["name"]
    if isinstance(sender.get("id"), str):
        check_user_id(sender["id"], bot)
    sender["role"] = "user"
    activity["from"] = sender
    _take_over(activity, conversation_id)
    activity["recipient"] = bot
    return activity


# fields clients and the 1.1 projection read, with the JSON type each must have when present
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "attachments": list,
    "entities": list,
    "channelData": dict,
    "suggestedActions": dict,
    "recipient": dict,
    "replyToId": str,
    "locale": str,
    "membersAdded": list,
    "membersRemoved": list,
}


def check_type(activity: dict[str, Any]) -> None:
    """An activity's `type`: MISSING when absent or blank, MALFORMED when not a string (`{"type": 5}`)."""
    type_ = activity.get("type")
    if type_ is None or (isinstance(type_, str) and not type_.strip()):
        raise ServiceError(ErrorKind.MISSING, "the activity has no 'type'")
    if not isinstance(type_, str):
        raise ServiceError(ErrorKind.MALFORMED, f"the activity's 'type' must be a string, not {type(type_).__name__}")


def check_fields(activity: Activity) -> None:
    """Refuse (MALFORMED) an activity whose well-known fields have the wrong JSON type."""
    for name, expected in _FIELD_TYPES.items():
        value = activity.get(name)
        if value is not None and not isinstance(value, expected):
            raise ServiceError(ErrorKind.MALFORMED, f"'{name}' has the wrong type")
    for i, attachment in enumerate(activity.get("attachments") or ()):
        if not isinstance(attachment, dict):
            raise ServiceError(ErrorKind.MALFORMED, f"attachments[{i}] must be an object")
    for name in ("membersAdded", "membersRemoved"):
        for i, member in enumerate(activity.get(name) or ()):
            if not isinstance(member, dict) or not isinstance(member.get("id"), str):
                raise ServiceError(ErrorKind.MALFORMED, f"{name}[{i}] must be a ChannelAccount with a string 'id'")


def from_bot(activity: Any, conversation_id: str, bot: Account, reply_to_id: str | None) -> Activity:
    """Validate and stamp an activity a bot sent through the connector API (in place).

    The sender is always the bot the conversation belongs to; `replyToId` comes
    from the route when the body has none.
    """
    if not isinstance(activity, dict):
        raise ServiceError(ErrorKind.MALFORMED, "the activity must be a JSON object")
    check_type(activity)
    check_fields(activity)
    sender = activity.get("from")
    name = sender.get("name") if isinstance(sender, dict) else None
    activity["from"] = account(bot["id"], name if isinstance(name, str) and name else bot.get("name"), "bot")
    _take_over(activity, conversation_id)
    if reply_to_id and not activity.get("replyToId"):
        activity["replyToId"] = reply_to_id
    return activity


def service_url(public_url: str) -> str:
    """The `serviceUrl` bots are given: the public URL with one trailing `/`, as the hosted service sends it.

    Bots that join it with `/v3/...` ask for `//v3/...`, which the connector API serves too.
    """
    return public_url.rstrip("/") + "/"


def for_bot(activity: Activity, public_url: str) -> Activity:
    """The copy of a stored activity that is POSTed to the bot (adds `serviceUrl`, see `service_url`)."""
    return {**activity, "serviceUrl": service_url(public_url)}


def members_added(
    conversation_id: str,
    event_id: str,
    ts_ms: int,
    bot: Account,
    sender: Account,
    added: list[Account],
    locale: str | None = None,
) -> Activity:
    """The `conversationUpdate` that tells the bot `added` joined the conversation."""
    activity: Activity = {
        "type": "conversationUpdate",
        "id": event_id,
        "timestamp": format_timestamp(ts_ms),
        "channelId": CHANNEL_ID,
        "conversation": {"id": conversation_id},
        "from": sender,
        "recipient": bot,
        "membersAdded": added,
    }
    if locale:
        activity["locale"] = locale
    return activity
