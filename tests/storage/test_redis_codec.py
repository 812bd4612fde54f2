"""The Redis backend's pure parts: URLs, and the byte forms of entries, delivery records, files and messages."""

from __future__ import annotations

import dataclasses

from openline.storage import redis_codec as codec
from openline.storage.base import Delivery, Event, StoredFile


def test_urls_keep_their_password_out_of_messages_and_their_prefix_out_of_redis_py() -> None:
    assert codec.redacted("rediss://:hunter2@redis.example.com:6380/1") == "rediss://***@redis.example.com:6380/1"
    assert codec.redacted("redis://user:pw@h:1/0?prefix=x") == "redis://***@h:1/0?prefix=x"
    assert codec.redacted("redis://h:1/0") == "redis://h:1/0"
    assert codec.split_prefix("redis://h:1/0?prefix=team&socket_timeout=5") == (
        "redis://h:1/0?socket_timeout=5",
        "team",
    )
    assert codec.split_prefix("redis://h:1/0") == ("redis://h:1/0", None)
    assert codec.split_prefix("unix:///run/redis.sock?prefix=a&db=1") == ("unix:///run/redis.sock?db=1", "a")
    assert codec.node_url("rediss+cluster://:pw@h:7000") == "rediss://:pw@h:7000"
    assert codec.is_cluster_url("redis+cluster://h:7000") and not codec.is_cluster_url("redis://h")


def test_every_key_of_a_conversation_shares_its_hash_tag() -> None:
    keys = codec.conversation_keys("openline", "a{b}c")
    assert len(keys) == len(codec.PARTS) and all(k.startswith("openline:{a{b}c}:") for k in keys)
    assert codec.channel_of("openline", "x").startswith("openline:{x}:")


def test_messages_carry_what_was_published() -> None:
    entry = b"12.5|1700000000123|bot|" + codec.body_of({"type": "message", "id": "dropped", "text": "hi|there"})
    appended = codec.parse_message("conv", b"A7|" + entry)
    assert appended.seq == 7 and appended.origin == "bot"
    assert appended.activity == {
        "type": "message",
        "text": "hi|there",
        "id": "conv|0000007",
        "timestamp": "2023-11-14T22:13:20.123Z",
    }
    record = Delivery("conv|0000007", 3.25, 502, 1.5, "bot_unreachable", "x|y\nz", {"type": "typing"}, "failed", 2)
    raw = codec.delivery_record(record)
    assert codec.parse_delivery("conv|0000007", raw) == record
    aid = b"conv|t|odd:id"
    reported = codec.parse_message("conv", b"D%d:" % len(aid) + aid + raw)
    assert reported.delivery == dataclasses.replace(record, activity_id=aid.decode())
    typing = Event(None, {"type": "typing"}, "client")
    assert codec.parse_message("conv", codec.event_message(typing)) == typing
    removal = Event(None, {"id": "conv|0000002"}, "bot", removed=True)
    assert codec.parse_message("conv", codec.event_message(removal)) == removal
    gone = Event(None, None, gone=True)
    assert codec.parse_message("conv", codec.event_message(gone)) == gone


def test_files_keep_their_bytes() -> None:
    f = StoredFile("f1", "conv", "a\nb.png", "image/png", b"\x00\n|\xff", 9.5)
    assert codec.parse_file("conv", "f1", codec.file_value(f)) == f
