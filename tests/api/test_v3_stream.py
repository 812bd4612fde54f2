"""The Direct Line 3.0 WebSocket stream: replay, live push, keep-alives, several sockets, stream tokens."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from openline.auth.bot_auth import BotCaller
from openline.storage.base import Event
from tests.api._v3 import V3, stream
from tests.api.conftest import KEEPALIVE, Service, serve


def _with(url: str, **query: str) -> str:
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query))
    params.update(query)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(params)))


def test_welcome_is_replayed_then_echo_and_reply_arrive_live(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    with stream(start["streamUrl"]) as s:
        welcome = s.frame()
        assert [a["text"] for a in welcome["activities"]] == ["welcome u1"] and welcome["watermark"] == "1"
        posted = v3.say(conv, "hi", channelData={"clientActivityID": "c1"})
        echo = s.frame()
        assert echo["watermark"] == "2"
        assert echo["activities"][0]["id"] == posted and echo["activities"][0]["channelData"] == {
            "clientActivityID": "c1"
        }
        reply = s.frame()
        assert reply["activities"][0]["text"] == "echo: hi" and reply["activities"][0]["replyToId"] == posted
        assert reply["watermark"] == "3"
    # what the stream showed is what GET shows
    assert [a["id"] for a in v3.activities(conv)["activities"]] == [f"{conv}|000000{i}" for i in (1, 2, 3)]


def test_the_echo_reaches_the_stream_before_the_bot_is_called(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    conv = start["conversationId"]
    with stream(start["streamUrl"]) as s:
        # "slow" keeps the bot busy past the timeout: the echo is there long before the 504
        r = v3.post(f"/conversations/{conv}/activities", json={"type": "message", "from": {"id": "u"}, "text": "slow"})
        assert r.status_code == 504
        texts = [a["text"] for a in s.activities(2)]
        assert texts == ["slow", "welcome u"]


def test_keepalives_are_empty_text_frames_and_client_pings_are_ignored(service: Service) -> None:
    start = V3(service).start()
    with connect(start["streamUrl"], open_timeout=5) as ws:
        ws.send("")
        ws.send("   ")
        ws.send(b"\x00binary")
        frames = [ws.recv(timeout=KEEPALIVE * 5) for _ in range(3)]
        assert frames == ["", "", ""]
        ws.send("")
        assert ws.recv(timeout=KEEPALIVE * 5) == ""


def test_several_sockets_all_receive_everything(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    conv = start["conversationId"]
    again = v3.get(f"/conversations/{conv}", params={"watermark": "-"}).json()["streamUrl"]
    with stream(start["streamUrl"]) as a, stream(again) as b, stream(start["streamUrl"]) as c:
        v3.say(conv, "to all", user="u1")
        expected = ["to all", "welcome u1", "echo: to all"]
        for s in (a, b, c):
            got = s.activities(3)
            assert sorted(x["text"] for x in got) == sorted(expected)
            assert [x["id"] for x in got] == sorted(x["id"] for x in got)


def test_typing_goes_to_streams_without_a_watermark(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    with stream(start["streamUrl"]) as s:
        assert s.frame()["watermark"] == "1"
        typing_id = v3.send(conv, {"type": "typing", "from": {"id": "u1"}})
        typing = s.frame()
        assert "watermark" not in typing
        assert typing["activities"][0]["type"] == "typing" and typing["activities"][0]["id"] == typing_id
        assert typing["activities"][0]["timestamp"].endswith("Z")
    assert all(a["type"] != "typing" for a in v3.activities(conv)["activities"])


def test_reconnect_with_a_watermark_replays_exactly_what_follows(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    for text in ("a", "b"):
        v3.say(conv, text)  # welcome 1, a 2, echo 3, b 4, echo 5
    url = v3.get(f"/conversations/{conv}", params={"watermark": "3"}, credential=start["token"]).json()["streamUrl"]
    with stream(url) as s:
        replay = s.frame()
        assert [a["text"] for a in replay["activities"]] == ["b", "echo: b"] and replay["watermark"] == "5"
        assert s.quiet(KEEPALIVE * 2) == []


def test_reconnect_without_a_watermark_starts_from_now(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    v3.say(conv, "old")
    url = v3.get(f"/conversations/{conv}", params={"watermark": ""}).json()["streamUrl"]
    v3.say(conv, "between")  # after the reconnect, before the socket opens: still delivered
    with stream(url) as s:
        assert [a["text"] for a in s.activities(2)] == ["between", "echo: between"]
        v3.say(conv, "new")
        assert [a["text"] for a in s.activities(2)] == ["new", "echo: new"]


def test_replay_of_a_long_history_comes_in_pages_without_gaps(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    conv = start["conversationId"]
    for i in range(7):
        v3.say(conv, f"m{i}")  # 15 activities: a welcome, 7 messages, 7 echoes
    with stream(start["streamUrl"]) as s:
        got = s.activities(15)
    assert [int(a["id"].rsplit("|", 1)[1]) for a in got] == list(range(1, 16))


def test_a_lagging_reader_resyncs_from_the_store(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    conv = start["conversationId"]
    with stream(start["streamUrl"]) as s:
        # a gap the broker never delivered (as after a dropped event): the next event makes the stream re-read
        store = service.services.store
        service.loop.run(store.append(conv, {"type": "message", "text": "unpublished"}, service.clock()))
        v3.say(conv, "after")
        assert [a["text"] for a in s.activities(4)] == ["unpublished", "after", "welcome u1", "echo: after"]


def test_bot_updates_and_deletes_reach_the_stream(service: Service) -> None:
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    connector = service.services.connector
    caller = BotCaller(service.loop.run(service.services.store.get_conversation(conv)).bot_id)
    with stream(start["streamUrl"]) as s:
        welcome_id = s.frame()["activities"][0]["id"]
        service.loop.run(connector.replace_from_bot(caller, conv, welcome_id, {"type": "message", "text": "edited"}))
        updated = s.frame()
        assert "watermark" not in updated
        assert updated["activities"][0]["id"] == welcome_id and updated["activities"][0]["text"] == "edited"
        service.loop.run(connector.delete_from_bot(caller, conv, welcome_id))
        deleted = s.frame()
        removal = deleted["activities"][0]
        assert (removal["type"], removal["name"], removal["id"]) == ("event", "messageDelete", welcome_id)
        assert "watermark" not in deleted
    assert v3.activities(conv)["activities"] == []


def _refused(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=5):
        pass
    return refused.value.response.status_code


def test_stream_tokens_are_checked(service: Service) -> None:
    v3 = V3(service)
    start = v3.start()
    url = start["streamUrl"]
    assert _refused(_with(url, t="")) == 401
    assert _refused(_with(url, t="garbage")) == 403
    assert _refused(_with(url, t=start["token"])) == 403, "a conversation token is not a stream token"
    other = v3.start()["streamUrl"]
    other_token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(other).query))["t"]
    assert _refused(_with(url, t=other_token)) == 403, "a stream token opens its own conversation only"
    assert _refused(_with(url, watermark="zz")) == 400
    service.clock.offset = 61
    assert _refused(url) == 403, "the stream token lives 60 s"
    service.clock.offset = 0
    with stream(url):
        pass


def _refusal(url: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=5):
        pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}")


def test_a_stream_from_past_the_end_is_refused_like_reconnect(service: Service) -> None:
    """A watermark ahead of the conversation would make a stream that skips everything: 400, as reconnect says."""
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    v3.say(conv, "one")  # the welcome, "one", its echo: watermark 3
    url = start["streamUrl"]
    for watermark in ("4", "5000", "999999999999999999"):
        status, body = _refusal(_with(url, watermark=watermark))
        assert status == 400 and body["error"]["code"] == "BadArgument", body
        assert v3.get(f"/conversations/{conv}?watermark={watermark}").status_code == 400
    # at the end: a live stream that gets what comes next
    with stream(_with(url, watermark="3")) as s:
        v3.say(conv, "two")
        assert [a["text"] for a in s.activities(2)] == ["two", "echo: two"]
    with stream(_with(url, watermark="2")) as s:
        assert [a["text"] for a in s.frame()["activities"]] == ["echo: one", "two", "echo: two"]


def test_an_unknown_path_under_the_stream_is_refused(service: Service) -> None:
    start = V3(service).start()
    parts = urllib.parse.urlsplit(start["streamUrl"])
    multimodal = urllib.parse.urlunsplit(parts._replace(path=parts.path + "/multimodal"))
    assert _refused(multimodal) in (403, 404)


def test_keepalives_go_to_quiet_streams_only(service: Service) -> None:
    """A keep-alive follows `stream_keepalive` of quiet; frames sent more often than that leave no room for one."""
    v3 = V3(service)
    start = v3.start({"user": {"id": "u1"}})
    conv = start["conversationId"]
    with stream(start["streamUrl"]) as s:
        s.frame()  # the welcome
        for i in range(8):  # an echo and a reply every KEEPALIVE / 3
            v3.say(conv, f"busy {i}", user="u1")
            s.activities(2)
            time.sleep(KEEPALIVE / 3)
        assert s.keepalives == 0
        s.quiet(KEEPALIVE * 2.5)  # quiet: keep-alives come, one per interval (plus a tick at most)
        assert 1 <= s.keepalives <= 3


def _stuck_client(url: str) -> socket.socket:
    """A WebSocket client that completes the handshake, then never reads again (tiny receive window)."""
    parts = urllib.parse.urlsplit(url)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s


def test_a_client_that_stops_reading_holds_up_its_own_keepalives_only(tmp_path: Path) -> None:
    with serve(tmp_path) as service:
        v3 = V3(service)
        a = v3.start({"user": {"id": "ua"}})
        stuck = _stuck_client(a["streamUrl"])
        try:
            big = {"type": "message", "text": "x" * 20000}
            for _ in range(20):  # straight to the broker: the stream writes until its transport pauses
                for _ in range(100):
                    service.loop.run(service.services.broker.publish(a["conversationId"], Event(None, dict(big))))
                time.sleep(0.05)
            b = v3.start({"user": {"id": "ub"}})
            with stream(b["streamUrl"]) as s:
                s.frame()  # the welcome
                s.quiet(KEEPALIVE * 10)
                assert s.keepalives >= 5
        finally:
            stuck.close()
