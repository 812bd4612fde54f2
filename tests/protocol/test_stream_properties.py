"""Properties of openline.protocol.stream: whatever the broker does to live events (drop, repeat, reorder, delay),
a stream sends every stored activity after its watermark exactly once, in order (api/stream.py's loop, modelled)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openline.protocol.stream import Step, StreamCursor
from tests.protocol._strategies import PROPERTY

# what happens next: the store appends one activity (its event is queued), or the broker hands the stream the
# queued event at an index (taken out, or left in to come again), or loses one
actions = st.lists(
    st.one_of(
        st.just(("append", 0)),
        st.tuples(st.sampled_from(["deliver", "repeat", "drop"]), st.integers(min_value=0, max_value=20)),
    ),
    max_size=60,
)


class Stream:
    """The stream's side of api/stream.py: replay from the store, then step through live events."""

    def __init__(self, store: list[int], after: int) -> None:
        self.store = store
        self.cursor = StreamCursor(after)
        self.sent: list[int] = []
        self.replay()

    def replay(self) -> None:
        for seq in self.store:
            if seq > self.cursor.sent:
                self.sent.append(seq)
                self.cursor.advance(seq)

    def event(self, seq: int) -> None:
        step = self.cursor.step(seq)
        if step is Step.FILL:
            self.replay()
            step = self.cursor.step(seq)
        if step is Step.SEND:
            self.cursor.advance(seq)
            self.sent.append(seq)
        else:
            assert step is Step.SKIP


@given(st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10), actions)
@PROPERTY
def test_every_activity_after_the_watermark_is_sent_once_in_order(
    stored: int, watermark: int, steps: list[tuple[str, int]]
) -> None:
    store = list(range(1, stored + 1))
    after = min(watermark, stored)
    stream = Stream(store, after)
    queued: list[int] = []
    for action, index in steps:
        if action == "append":
            store.append(len(store) + 1)
            queued.append(store[-1])
        elif queued:
            seq = queued[index % len(queued)]
            if action != "repeat":
                queued.remove(seq)
            if action != "drop":
                stream.event(seq)
        assert stream.sent == list(range(after + 1, after + 1 + len(stream.sent)))  # in order, no gap, no repeat
    stream.replay()  # a later event, or a reconnect from the watermark, reads the rest
    assert stream.sent == list(range(after + 1, len(store) + 1))


@given(st.integers(min_value=0, max_value=10**6))
@PROPERTY
def test_unnumbered_events_are_always_sent(after: int) -> None:
    assert StreamCursor(after).step(None) is Step.SEND_UNNUMBERED
