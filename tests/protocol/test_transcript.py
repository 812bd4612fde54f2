"""The Emulator's .transcript form of a conversation: roles and recipients filled, nothing else changed."""

from __future__ import annotations

import json
from typing import Any

from botbuilder.schema import Activity

from openline.protocol.transcript import emulator_transcript
from openline.storage.base import Member, StoredActivity


def _emulator_accepts(activities: list[dict[str, Any]]) -> None:
    """What the Emulator's `Conversation.prepTranscriptActivities` and its feed handler read of each activity
    (BotFramework-Emulator, packages/app/main/src/server/state/conversation.ts): a `recipient` with a role, a
    `from` with an id, a `conversation`; and the bot and the user told apart by `recipient.role`."""
    roles = set()
    for activity in json.loads(json.dumps(activities)):
        assert activity["recipient"]["role"] in ("bot", "user") and activity["from"]["id"]
        assert activity["conversation"]["id"]
        if activity["type"] in ("event", "message", "messageReaction", "typing"):
            roles.add(activity["recipient"]["role"])
        parsed = Activity().deserialize(activity)  # botbuilder's own reading of an activity
        assert parsed.from_property.role in ("bot", "user") and parsed.recipient.role in ("bot", "user")
    assert roles == {"bot", "user"}, "the Emulator finds the original bot and user ids by these"


def test_both_directions_get_roles_and_recipients() -> None:
    stored = [
        StoredActivity(
            1, {"type": "conversationUpdate", "id": "c|0000001", "membersAdded": [{"id": "u1"}]}, origin="bot"
        ),
        StoredActivity(
            2,
            {"type": "message", "id": "c|0000002", "from": {"id": "u1", "name": "Ann"}, "text": "hi"},
            origin="client",
        ),
        StoredActivity(
            3,
            {
                "type": "message",
                "id": "c|0000003",
                "from": {"id": "echobot", "name": "Echo"},
                "text": "echo: hi",
                "attachments": [{"contentType": "text/plain", "content": "x"}],
                "channelData": {"keep": True},
            },
            origin="bot",
        ),
    ]
    out = emulator_transcript("c", "echobot", "Echo Bot", [Member("echobot", "Echo Bot"), Member("u1", "Ann")], stored)
    _emulator_accepts(out)
    update, said, answer = out
    assert update["from"] == {"id": "echobot", "name": "Echo Bot", "role": "bot"}
    assert update["recipient"] == {"id": "u1", "name": "Ann", "role": "user"}, "the first member not the bot"
    assert said["from"] == {"id": "u1", "name": "Ann", "role": "user"}
    assert said["recipient"] == {"id": "echobot", "name": "Echo Bot", "role": "bot"}
    assert answer["from"] == {"id": "echobot", "name": "Echo", "role": "bot"}
    assert answer["recipient"] == {"id": "u1", "name": "Ann", "role": "user"}
    assert answer["attachments"] == stored[2].activity["attachments"] and answer["channelData"] == {"keep": True}
    assert all(a["conversation"] == {"id": "c"} and a["channelId"] == "directline" for a in out)
    assert "role" not in stored[1].activity["from"], "the stored activities are left alone"


def test_activities_stored_without_an_origin_are_told_apart_by_sender() -> None:
    stored = [
        StoredActivity(1, {"type": "message", "from": {"id": "u9"}, "text": "hi"}),
        StoredActivity(2, {"type": "message", "from": {"id": "bot1"}, "recipient": {"id": "u9"}, "text": "yo"}),
    ]
    said, answer = emulator_transcript("c", "bot1", None, [], stored)
    _emulator_accepts([said, answer])
    assert said["from"]["role"] == "user" and answer["from"]["role"] == "bot"
    assert answer["recipient"] == {"id": "u9", "role": "user"}
