"""Direct Line 1.1 messages as a projection of stored activities, and back.

A client's 1.1 Message becomes a v3 `message` activity: `from` (a plain string)
becomes `from.id`, `images` and `attachments` become activity attachments.
Reading projects every stored `message` activity back into a 1.1 Message; other
activity types do not exist in 1.1 and are skipped. Bot replies lose what 1.1
cannot show: cards and suggested actions travel in `channelData` (unless the bot
set `channelData` itself, which always passes untouched) and their titles/text
fill an empty `text`.
"""

from __future__ import annotations

import mimetypes
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from openline.protocol.activity import Activity, account
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import format_watermark, message_id_v1

MESSAGE_PART_TYPE = "application/vnd.microsoft.bot.message"
_FALLBACK_IMAGE_TYPE = "image/*"


def _bad(message: str) -> ServiceError:
    return ServiceError(ErrorKind.MALFORMED, message)


def _folded(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Property names folded to lower case: the original service matched them case-insensitively."""
    return {key.lower(): value for key, value in obj.items()}


def _absolute(url: str, base_url: str, where: str) -> str:
    """Relative URLs (1.1 allowed host-relative ones) resolved against the service's public URL.

    MALFORMED for one no URL parser can read (`http://[x`: an unclosed IPv6 host).
    """
    try:
        if not url.startswith(("http://", "https://", "data:")):
            url = urllib.parse.urljoin(base_url.rstrip("/") + "/", url)
        urllib.parse.urlsplit(url)
    except ValueError:
        raise _bad(f"{where} is not a valid URL") from None
    return url


def _image_type(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    guessed, _ = mimetypes.guess_type(path)
    return guessed if guessed and guessed.startswith("image/") else _FALLBACK_IMAGE_TYPE


def client_user_id(message: Any) -> str | None:
    """The `from` of a 1.1 message body, or None when absent, null or empty."""
    if not isinstance(message, Mapping):
        return None
    sender = _folded(message).get("from")
    return sender.strip() if isinstance(sender, str) and sender.strip() else None


def message_to_activity(message: Any, user_id: str, base_url: str) -> Activity:
    """The `message` activity for a 1.1 Message a client posted.

    Validates types (raising MALFORMED/MISSING) and ignores the fields the
    service assigns (`id`, `conversationId`, `created`, `eTag`). `user_id` is the
    sender, chosen by the caller (the message's `from`, or a fresh id).
    """
    if not isinstance(message, Mapping):
        raise _bad("the message must be a JSON object")
    fields = _folded(message)
    sender = fields.get("from")
    if sender is not None and not isinstance(sender, str):
        raise _bad("'from' must be a string (the user id)")
    text = fields.get("text")
    if text is not None and not isinstance(text, str):
        raise _bad("'text' must be a string")
    channel_data = fields.get("channeldata")
    if channel_data is not None and not isinstance(channel_data, dict):
        raise _bad("'channelData' must be a JSON object")
    attachments: list[dict[str, Any]] = []
    images = fields.get("images")
    if images is not None:
        if not isinstance(images, list) or not all(isinstance(u, str) and u for u in images):
            raise _bad("'images' must be an array of URL strings")
        for i, url in enumerate(images):
            absolute = _absolute(url, base_url, f"images[{i}]")
            attachments.append({"contentType": _image_type(absolute), "contentUrl": absolute})
    files = fields.get("attachments")
    if files is not None:
        if not isinstance(files, list):
            raise _bad("'attachments' must be an array of {url, contentType}")
        for i, item in enumerate(files):
            if not isinstance(item, Mapping):
                raise _bad(f"attachments[{i}] must be an object {{url, contentType}}")
            entry = _folded(item)
            url, content_type = entry.get("url"), entry.get("contenttype")
            if not isinstance(url, str) or not url:
                raise ServiceError(ErrorKind.MISSING, f"attachments[{i}].url is missing")
            if content_type is not None and not isinstance(content_type, str):
                raise _bad(f"attachments[{i}].contentType must be a string")
            attachments.append(
                {
                    "contentType": content_type or "application/octet-stream",
                    "contentUrl": _absolute(url, base_url, f"attachments[{i}].url"),
                }
            )
    activity: Activity = {"type": "message", "from": account(user_id, role="user")}
    if text is not None:
        activity["text"] = text
    if attachments:
        activity["attachments"] = attachments
    if channel_data is not None:
        activity["channelData"] = channel_data
    return activity


def _card_text(cards: Iterable[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for card in cards:
        content = card.get("content")
        if isinstance(content, Mapping):
            lines.extend(str(content[k]) for k in ("title", "subtitle", "text") if isinstance(content.get(k), str))
    return "\n".join(line for line in lines if line)


def activity_to_message(conversation_id: str, seq: int, activity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 1.1 Message for a stored activity, or None when 1.1 has no such thing."""
    if activity.get("type") != "message":
        return None
    sender = activity.get("from")
    images: list[str] = []
    files: list[dict[str, str]] = []
    cards: list[Mapping[str, Any]] = []
    raw_attachments = activity.get("attachments")
    for att in raw_attachments if isinstance(raw_attachments, list) else ():
        if not isinstance(att, Mapping):
            continue
        url = att.get("contentUrl")
        content_type = att.get("contentType") or "application/octet-stream"
        if isinstance(url, str) and url:
            if isinstance(content_type, str) and content_type.startswith("image/"):
                images.append(url)
            else:
                files.append({"url": url, "contentType": str(content_type)})
        else:
            cards.append(att)
    text = activity.get("text")
    message: dict[str, Any] = {
        "id": message_id_v1(conversation_id, seq),
        "conversationId": conversation_id,
        "created": activity.get("timestamp"),
        "from": sender.get("id") if isinstance(sender, Mapping) else None,
        "text": text if isinstance(text, str) else None,
        "images": images,
        "attachments": files,
    }
    channel_data = activity.get("channelData")
    if isinstance(channel_data, Mapping):
        message["channelData"] = channel_data
    elif cards or activity.get("suggestedActions"):
        rich: dict[str, Any] = {}
        if cards:
            rich["attachments"] = cards
            if activity.get("attachmentLayout"):
                rich["attachmentLayout"] = activity["attachmentLayout"]
        if activity.get("suggestedActions"):
            rich["suggestedActions"] = activity["suggestedActions"]
        message["channelData"] = rich
    if not message["text"] and cards:
        message["text"] = _card_text(cards) or None
    return message


def message_set(conversation_id: str, page: Iterable[tuple[int, Mapping[str, Any]]], after: int) -> dict[str, Any]:
    """The MessageSet for a page of stored `(seq, activity)` read after watermark `after`.

    The watermark moves to the last activity read, shown or not, so hidden
    activities (events, typing) are not read again; with nothing new it stays.
    """
    messages: list[dict[str, Any]] = []
    last = after
    for seq, activity in page:
        last = max(last, seq)
        message = activity_to_message(conversation_id, seq, activity)
        if message is not None:
            messages.append(message)
    return {"messages": messages, "watermark": format_watermark(last)}
