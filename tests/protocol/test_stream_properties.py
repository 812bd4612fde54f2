"""Properties of the 3.0 stream's loop (api/stream.py `StreamApi._send_events`, with protocol/stream.py's cursor):
whatever the broker does to live events (drop, repeat, reorder, delay, lag), the stream sends every stored
activity after its watermark exactly once, in order, each frame's watermark its last activity's position.

The real loop runs against a scripted subscription (the broker's side), a store held in a list (the channel's
`read`, in small pages) and a socket that keeps the frames it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from openline.api.stream import StreamApi
from openline.protocol.stream import Step, StreamCursor
from openline.storage.base import Event, StoredActivity
from tests.protocol._strategies import PROPERTY

PAGE = 3  # the replay's page size: small, so a replay takes several pages
HIDDEN = "conversationUpdate"  # stored and counted by the watermark, never shown on a stream (v3.HIDDEN_TYPES)

# what happens next: the store appends an activity (its event is queued), or the broker hands the stream the
# queued event at an index (taken out, or left in to come again), or loses one, or loses track (lag), or passes
# on a typing activity (no position)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from(["message", HIDDEN])),
        st.tuples(st.sampled_from(["deliver", "repeat", "drop"]), st.integers(min_value=0, max_value=20)),
        st.tuples(st.sampled_from(["lag", "typing"]), st.just(0)),
    ),
    max_size=60,
)


class ScriptDone(Exception):
    """The script is played out: the stream's loop is stopped."""


def _activity(seq: int, kind: str) -> dict[str, Any]:
    return {"type": kind, "id": f"c|{seq:07d}"}


@dataclass
class Script:
    """The conversation's store and the broker's subscription, played by `actions` as the stream reads them."""

    store: list[dict[str, Any]]
    steps: list[tuple[str, Any]]
    queued: list[int] = field(default_factory=list)
    typing: int = 0
    lagged: bool = False
    woken_at_end: bool = False

    async def ready(self) -> None:
        pass

    async def get(self, within: float | None = None) -> Event | None:
        while self.steps:
            action, arg = self.steps.pop(0)
            if action == "append":
                self.store.append(_activity(len(self.store) + 1, arg))
                self.queued.append(len(self.store))
            elif action == "lag":  # the broker dropped what it held, and says so
                self.queued.clear()
                self.lagged = True
                return None
            elif action == "typing":
                self.typing += 1
                return Event(None, {"type": "typing"})
            elif self.queued:
                seq = self.queued[arg % len(self.queued)]
                if action != "repeat":
                    self.queued.remove(seq)
                if action != "drop":
                    return Event(seq, self.store[seq - 1])
        if not self.woken_at_end:  # a later event, or a reconnect from the watermark, reads the rest
            self.woken_at_end = True
            self.lagged = True
            return None
        raise ScriptDone

    async def read(self, conversation: Any, after_seq: int, limit: int) -> list[StoredActivity]:
        """The channel's read: the stored activities after `after_seq`, at most `limit`."""
        return [StoredActivity(seq, self.store[seq - 1]) for seq in range(after_seq + 1, len(self.store) + 1)][:limit]


class Socket:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))


@dataclass(frozen=True)
class _Conversation:
    id: str = "c"


def _run(script: Script, after: int) -> list[dict[str, Any]]:
    api = StreamApi(cast(Any, None), cast(Any, script), cast(Any, None), keepalive=30.0, page_size=PAGE)
    socket = Socket()

    async def main() -> None:
        with contextlib.suppress(ScriptDone):
            await api._send_events(cast(Any, socket), cast(Any, _Conversation()), after, cast(Any, script))

    asyncio.run(main())
    return socket.frames


@given(st.lists(st.sampled_from(["message", HIDDEN]), max_size=10), st.integers(min_value=0, max_value=10), actions)
@PROPERTY
def test_every_activity_after_the_watermark_is_sent_once_in_order(
    stored: list[str], watermark: int, steps: list[tuple[str, Any]]
) -> None:
    script = Script([_activity(seq, kind) for seq, kind in enumerate(stored, start=1)], list(steps))
    after = min(watermark, len(stored))
    frames = _run(script, after)

    numbered = [frame for frame in frames if "watermark" in frame]
    sent = [int(a["id"].rpartition("|")[2]) for frame in numbered for a in frame["activities"]]
    shown = [seq for seq in range(after + 1, len(script.store) + 1) if script.store[seq - 1]["type"] != HIDDEN]
    assert sent == shown  # every one after the watermark, once, in order; none hidden
    marks = [int(frame["watermark"]) for frame in numbered]
    assert marks == sorted(set(marks)), "watermarks only go forward"
    for frame in numbered:
        last = frame["activities"][-1]
        assert int(frame["watermark"]) >= int(last["id"].rpartition("|")[2])
    assert all(frame["activities"] for frame in frames), "no empty frame (those are the keep-alives' alone)"
    unnumbered = [frame for frame in frames if "watermark" not in frame]
    assert [a["type"] for frame in unnumbered for a in frame["activities"]] == ["typing"] * script.typing


@given(st.integers(min_value=0, max_value=10**6))
@PROPERTY
def test_unnumbered_events_are_always_sent(after: int) -> None:
    assert StreamCursor(after).step(None) is Step.SEND_UNNUMBERED
