"""Properties of openline.protocol.activity: any client or bot activity is stamped or refused with a ServiceError,
and what is stamped carries the channel's fields, never the sender's claims."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from tests.protocol._strategies import PROPERTY, json_values, objects_with

BOT = {"id": "mybot", "name": "My Bot"}
fields = {name: json_values for name in ("text", "attachments", "entities", "channelData", "membersAdded")}
activities = st.builds(
    lambda extra, type_, sender: {**extra, "type": type_, "from": sender},
    objects_with({**fields, "id": st.text(max_size=5), "timestamp": st.text(max_size=5), "recipient": json_values}),
    st.text(min_size=1, max_size=10),
    objects_with({"id": st.text(max_size=8), "name": st.text(max_size=8), "role": st.text(max_size=5)}) | json_values,
)


@given(activities | json_values, st.text(max_size=10) | st.none())
@PROPERTY
def test_any_bot_activity_is_stamped_or_refused(activity: Any, reply_to: str | None) -> None:
    try:
        stamped = act.from_bot(copy.deepcopy(activity), "conv", BOT, reply_to)
    except ServiceError as e:
        assert e.kind in (ErrorKind.MALFORMED, ErrorKind.MISSING)
        return
    assert stamped["from"]["id"] == "mybot" and stamped["from"]["role"] == "bot"
    assert stamped["conversation"] == {"id": "conv"} and stamped["channelId"] == act.CHANNEL_ID
    assert "id" not in stamped and "timestamp" not in stamped


@given(activities, st.none() | st.just({"id": "tokenuser", "name": "T"}))
@example({"type": "message", "from": {"id": "MyBot"}}, None)
@PROPERTY
def test_any_checked_client_activity_is_stamped_as_a_user_or_refused(activity: Any, user: Any) -> None:
    try:
        act.check_fields(activity)
        stamped = act.from_client(copy.deepcopy(activity), "conv", BOT, user=user)
    except ServiceError as e:
        assert e.kind is ErrorKind.MALFORMED
        return
    assert stamped["from"]["role"] == "user" and stamped["recipient"] == BOT
    if user is not None:
        assert stamped["from"]["id"] == "tokenuser"
    elif "id" in stamped["from"]:  # the sender's own id, and never the bot's (in any letter case)
        assert stamped["from"]["id"] == activity["from"]["id"]
        assert str(stamped["from"]["id"]).casefold() != BOT["id"].casefold()
    assert stamped["conversation"] == {"id": "conv"} and "id" not in stamped
