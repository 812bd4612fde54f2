"""How the Redis backend writes things down: store URLs, key and channel names, and the byte forms of entries,
delivery records, files, members and broker messages (their layouts are described in redis_scripts/_common.lua).

Pure code, no I/O: shared by `redis.RedisStore` and `redis_broker.RedisBroker`.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec

from openline.protocol.activity import assign_position
from openline.storage.base import Delivery, Event, Member, StoredActivity, StoredFile

encode = msgspec.json.Encoder().encode
decode_activity = msgspec.json.Decoder(dict[str, Any]).decode
_decode_any = msgspec.json.Decoder().decode

DEFAULT_PREFIX = "openline"  # starts every key, unless the store URL's `?prefix=` names another
# the keys of one conversation, in the order the scripts name them (see redis_scripts/_common.lua)
PARTS = ("c", "a", "k", "m", "f", "d", "at", "ot", "gone")  # the last: the tombstone of a deleted conversation
APPENDED = b"A"  # a broker message the append script published: b"A<seq>|<entry>"
DELIVERY = b"D"  # a delivery report the script that wrote the record published: b"D<length>:<activity id><record>"
EVENT = b"E"  # any other event: b"E<JSON>"


def is_cluster_url(url: str) -> bool:
    """Whether `url` names a Redis Cluster (`redis+cluster://`, `rediss+cluster://`)."""
    return url.split("://", 1)[0] in ("redis+cluster", "rediss+cluster")


def node_url(url: str) -> str:
    """The URL of the one server (or cluster seed node) `url` names, as redis-py reads it."""
    return url.replace("+cluster://", "://", 1) if is_cluster_url(url) else url


def split_prefix(url: str) -> tuple[str, str | None]:
    """The URL without its `prefix` query parameter (openline's, not redis-py's), and that prefix.

    The rest of the URL is kept as written (rebuilding it would turn `unix:///path` into `unix:/path`).
    """
    base, _, query = url.partition("?")
    kept = [item for item in query.split("&") if item and item.partition("=")[0] != "prefix"]
    prefixes = [value for name, value in parse_qsl(query, keep_blank_values=True) if name == "prefix"]
    return base + ("?" + "&".join(kept) if kept else ""), (prefixes[-1] or None) if prefixes else None


def _connection_options() -> frozenset[str]:
    """The query options a Redis URL may carry: what redis-py's connections take."""
    from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection

    names: set[str] = set()
    for kind in (AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection):
        names |= set(inspect.signature(kind.__init__).parameters)
    return frozenset(names - {"self", "args", "kwargs"})


def check_url(url: str) -> None:
    """Refuse (ValueError, saying why) a Redis store URL that redis-py would refuse only when it first connects,
    or would read otherwise than it says: a port or option value it cannot read, a database that is not a
    number, an option no connection takes."""
    from redis.connection import parse_url

    plain, _ = split_prefix(url)
    plain = node_url(plain)
    path = urlsplit(plain).path.strip("/")
    if not plain.startswith("unix://") and path and not path.isdigit():
        raise ValueError(f"{redacted(url)}: the database {path!r} is not a number (redis://HOST:PORT/0)")
    options = parse_url(plain)  # type: ignore[no-untyped-call]  # ValueError: a port or value it cannot read
    unknown = sorted(set(options) - _connection_options() - {"host", "port", "db", "path", "connection_class"})
    if unknown:
        raise ValueError(f"{redacted(url)}: {', '.join(unknown)} is not an option of a Redis connection")


def redacted(url: str) -> str:
    """`url` with its password (and user) replaced by `***`, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def conversation_keys(prefix: str, conversation_id: str) -> list[str]:
    """Every key of a conversation; all share the hash tag `{conversation id}`, so one shard holds them."""
    base = f"{prefix}:{{{conversation_id}}}:"
    return [base + part for part in PARTS]


def channel_of(prefix: str, conversation_id: str) -> str:
    """The pub/sub channel of a conversation's events."""
    return f"{prefix}:{{{conversation_id}}}:events"


def time_text(value: float) -> str:
    """A time as the scripts keep it: Python's shortest exact form of the float."""
    return repr(float(value))


def body_of(activity: dict[str, Any]) -> bytes:
    """An activity as stored: its JSON without the fields its place decides (`id`, `timestamp`).

    Raises msgspec.EncodeError (TypeError, ValueError) for what JSON cannot hold.
    """
    return encode({k: v for k, v in activity.items() if k not in ("id", "timestamp")})


def parse_entry(conversation_id: str, seq: int, entry: bytes) -> StoredActivity:
    """A stored activity from its entry (`stored at|timestamp ms|origin|body`), stamped with its place."""
    _at, ts, origin, body = entry.split(b"|", 3)
    activity = assign_position(decode_activity(body), conversation_id, seq, int(ts))
    return StoredActivity(seq, activity, origin=origin.decode())  # type: ignore[arg-type]


def entry_timestamp(entry: bytes) -> tuple[int, str]:
    """The timestamp (ms) and origin of an entry."""
    _at, ts, origin, _body = entry.split(b"|", 3)
    return int(ts), origin.decode()


def member_name(name: str | None) -> bytes:
    return encode(name)


def member_state(value: bytes) -> str:
    """The announcement state in a member's value (`order|state|at|name JSON`)."""
    return value.split(b"|", 2)[1].decode()


def parse_members(flat: list[bytes]) -> list[Member]:
    """Members from the flat hash (`id, order|state|at|name JSON, ...`), in the order they were added."""
    found = []
    for i in range(0, len(flat), 2):
        order, _state, _at, name = flat[i + 1].split(b"|", 3)
        decoded = _decode_any(name)
        found.append((int(order), Member(flat[i].decode(), decoded if isinstance(decoded, str) else None)))
    found.sort(key=lambda item: item[0])
    return [m for _, m in found]


class _Outcome(msgspec.Struct, omit_defaults=True):
    status: int | None = None
    duration: float = 0.0
    error: str | None = None
    detail: str = ""


_decode_outcome = msgspec.json.Decoder(_Outcome).decode


def delivery_record(delivery: Delivery) -> bytes:
    """`state|at|attempts|outcome JSON\\nactivity JSON`: what the claim scripts read and rewrite."""
    outcome = encode(_Outcome(delivery.status, delivery.duration, delivery.error, delivery.detail))
    head = f"{delivery.state}|{time_text(delivery.at)}|{delivery.attempts}|".encode()
    return head + outcome + b"\n" + encode(delivery.activity)


def parse_delivery(activity_id: str, record: bytes) -> Delivery:
    state, at, attempts, rest = record.split(b"|", 3)
    outcome_json, activity_json = rest.split(b"\n", 1)
    outcome = _decode_outcome(outcome_json)
    activity = _decode_any(activity_json)
    return Delivery(
        activity_id,
        float(at),
        outcome.status,
        outcome.duration,
        outcome.error,
        outcome.detail,
        activity if isinstance(activity, dict) else None,
        state.decode(),  # type: ignore[arg-type]
        int(attempts),
    )


class _FileMeta(msgspec.Struct):
    name: str
    content_type: str
    created_at: float


_decode_file_meta = msgspec.json.Decoder(_FileMeta).decode


def file_value(file: StoredFile) -> bytes:
    """A file as stored: its metadata as JSON, a newline, its bytes."""
    return encode(_FileMeta(file.name, file.content_type, file.created_at)) + b"\n" + file.data


def parse_file(conversation_id: str, file_id: str, value: bytes) -> StoredFile:
    meta, data = value.split(b"\n", 1)
    m = _decode_file_meta(meta)
    return StoredFile(file_id, conversation_id, m.name, m.content_type, data, m.created_at)


class _EventWire(msgspec.Struct, omit_defaults=True):
    activity: dict[str, Any] | None = None
    origin: str = "bot"
    delivery: bytes | None = None  # its `delivery_record`
    activity_id: str = ""
    removed: bool = False
    gone: bool = False


_decode_event = msgspec.json.Decoder(_EventWire).decode


def event_message(event: Event) -> bytes:
    """A broker message for an event without a place (`seq` None): typing, replacements, delivery reports."""
    d = event.delivery
    wire = _EventWire(
        event.activity,
        event.origin,
        delivery_record(d) if d is not None else None,
        d.activity_id if d is not None else "",
        event.removed,
        event.gone,
    )
    return EVENT + encode(wire)


def parse_message(conversation_id: str, message: bytes) -> Event:
    """The event a broker message carries (an appended activity, a delivery report, or `event_message`'s form)."""
    if message[:1] == APPENDED:
        seq, entry = message[1:].split(b"|", 1)
        stored = parse_entry(conversation_id, int(seq), entry)
        return Event(stored.seq, stored.activity, stored.origin or "bot")
    if message[:1] == DELIVERY:
        length, rest = message[1:].split(b":", 1)
        activity_id, record = rest[: int(length)].decode(), rest[int(length) :]
        return Event(None, None, "client", parse_delivery(activity_id, record))
    wire = _decode_event(message[1:])
    delivery = parse_delivery(wire.activity_id, wire.delivery) if wire.delivery is not None else None
    return Event(None, wire.activity, wire.origin, delivery, wire.removed, wire.gone)  # type: ignore[arg-type]
