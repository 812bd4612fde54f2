"""The connector operations beyond send and reply, called by the real botbuilder-python connector client.

`botframework.connector.aio.ConnectorClient` (no app id, so no Authorization
header) against a running openline with one bot: proves that the SDK's
requests are understood and that it parses every answer (it raises on an
unexpected status or body). What the bot did is then read back over 1.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from botbuilder.schema import Activity, AttachmentData, ChannelAccount, ConversationParameters
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials

from tests.e2e.harness import BOT_ID, SECRET, DirectLine, Processes, free_port, summary

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


async def _bot_calls(service_url: str) -> dict[str, Any]:
    """Everything a bot can do with the connector client; what came back, for the test to check."""
    seen: dict[str, Any] = {}
    async with ConnectorClient(MicrosoftAppCredentials(None, None), base_url=service_url) as client:
        ops = client.conversations
        created = await ops.create_conversation(
            ConversationParameters(
                bot=ChannelAccount(id=BOT_ID),
                members=[ChannelAccount(id="user1", name="User One"), ChannelAccount(id="user2")],
                activity=Activity(type="message", text="hello from the bot"),
                is_group=False,
            )
        )
        conv = created.id
        seen["created"] = created
        # the only configured bot is the default
        seen["implicit"] = await ops.create_conversation(ConversationParameters(members=[ChannelAccount(id="u9")]))

        uploaded = await ops.upload_attachment(
            conv,
            AttachmentData(
                type="image/png", name="cat.png", original_base64=bytearray(PNG), thumbnail_base64=bytearray(PNG[:16])
            ),
        )
        seen["attachment_id"] = uploaded.id
        seen["info"] = await client.attachments.get_attachment_info(uploaded.id)
        stream = await client.attachments.get_attachment(uploaded.id, "original")
        seen["original"] = b"".join([chunk async for chunk in stream])

        pages = []
        token = None
        while True:
            page = await ops.get_conversation_paged_members(conv, page_size=2, continuation_token=token)
            pages.append(page)
            token = page.continuation_token
            if not token:
                break
        seen["pages"] = pages
        seen["member"] = await ops.get_conversation_member(conv, "user2")

        draft = await ops.send_to_conversation(conv, Activity(type="message", text="draft"))
        updated = await ops.update_activity(conv, draft.id, Activity(type="message", text="final", id=draft.id))
        seen["draft_id"], seen["updated_id"] = draft.id, updated.id
        doomed = await ops.send_to_conversation(conv, Activity(type="message", text="doomed"))
        await ops.delete_activity(conv, doomed.id)

        history = await ops.send_conversation_history(
            conv,
            [
                Activity(type="message", text="old question", from_property=ChannelAccount(id="user1")),
                Activity(type="message", text="old answer", from_property=ChannelAccount(id=BOT_ID)),
            ],
        )
        seen["history_id"] = history.id

        await ops.delete_conversation_member(conv, "user2")
        seen["members"] = await ops.get_conversation_members(conv)
        seen["conversations"] = await ops.get_conversations()
    return seen


def test_connector_client_operations(procs: Processes, directline: Callable[..., DirectLine]) -> None:
    # the bot's endpoint is never called here: nothing listens on it
    bot_endpoint = f"http://127.0.0.1:{free_port()}/api/messages"
    service = procs.openline(
        *("--bot", bot_endpoint, "--secret", SECRET, "--data-dir", str(procs.tmp_path / "data"), "--store", "memory://")
    )
    seen = asyncio.run(_bot_calls(service.url))

    created = seen["created"]
    conv = created.id
    assert created.service_url == service.url + "/" and created.activity_id == f"{conv}|0000001"
    assert seen["implicit"].id and seen["implicit"].id != conv and seen["implicit"].activity_id is None

    assert seen["attachment_id"].startswith(conv + "~")
    info = seen["info"]
    assert (info.name, info.type) == ("cat.png", "image/png")
    assert [(v.view_id, v.size) for v in info.views] == [("original", len(PNG)), ("thumbnail", 16)]
    assert seen["original"] == PNG

    assert [[m.id for m in p.members] for p in seen["pages"]] == [[BOT_ID, "user1"], ["user2"]]
    assert seen["member"].id == "user2" and seen["member"].role == "user"
    assert seen["updated_id"] == seen["draft_id"]
    assert seen["history_id"] == f"{conv}|0000005"
    assert [m.id for m in seen["members"]] == [BOT_ID, "user1"]
    listed = {c.id: [m.id for m in c.members] for c in seen["conversations"].conversations}
    assert listed == {conv: [BOT_ID, "user1"], seen["implicit"].id: [BOT_ID, "u9"]}
    assert seen["conversations"].continuation_token is None

    # a client with the bot's secret reads what the bot did over 1.1: "draft" became "final", "doomed" is gone
    messages, _ = directline(service).read_all(conv)
    assert summary(messages) == [
        (BOT_ID, "hello from the bot"),
        (BOT_ID, "final"),
        ("user1", "old question"),
        (BOT_ID, "old answer"),
    ]
