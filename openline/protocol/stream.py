"""Where one WebSocket stream is in its conversation: which events to send, skip or fill from the store.

How this works: a stream first replays the store after its watermark, then
forwards live events from the broker. Live events of stored activities carry
their sequence number; the cursor remembers the last one sent, so an event
already replayed is skipped, and an event past a hole (the broker dropped or
reordered something) tells the stream to read the store up to it first.
Events without a number (typing, replacements, removals) are sent as they come.
"""

from __future__ import annotations

import enum


class Step(enum.Enum):
    SEND = "send"  # the next activity in sequence: send it, then `advance`
    SEND_UNNUMBERED = "send_unnumbered"  # no position: send it without a watermark
    SKIP = "skip"  # already sent
    FILL = "fill"  # a hole before it: read the store after `sent`, then look at the event again


class StreamCursor:
    def __init__(self, after: int) -> None:
        self.sent = after  # the sequence number of the last activity this stream has accounted for

    def step(self, seq: int | None) -> Step:
        if seq is None:
            return Step.SEND_UNNUMBERED
        if seq <= self.sent:
            return Step.SKIP
        if seq == self.sent + 1:
            return Step.SEND
        return Step.FILL

    def advance(self, seq: int) -> None:
        self.sent = max(self.sent, seq)
