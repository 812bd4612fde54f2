"""Files: what clients upload with an activity, and the attachments bots upload through the connector API.

Client uploads are stored with their activity and reached at signed, expiring
URLs; a bot's attachment is reached by its id (the capability). Both are kept
for the retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openline.auth.bot_auth import BotCaller
from openline.auth.signing import UrlSigner
from openline.protocol import activity as act
from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import random_id
from openline.service.publish import conversation_not_found
from openline.storage.base import Conversation, ConversationStore, StoredFile, UnknownConversation


@dataclass(frozen=True, slots=True)
class Upload:
    """A file a client uploaded, before it is stored."""

    name: str
    content_type: str
    data: bytes


class Files:
    def __init__(
        self,
        store: ConversationStore,
        signer: UrlSigner,
        public_url: str,
        clock: Callable[[], float] = time.time,
        authorize: Callable[[BotCaller, str, str], None] = lambda caller, bot_id, what: caller.require(bot_id),
    ) -> None:
        self.store = store
        self.signer = signer
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self._authorize = authorize  # raises 401/403 unless the caller acts for the bot (BotAuthority.authorize)

    def attach_uploads(
        self, conversation: Conversation, activity: act.Activity, uploads: Sequence[Upload]
    ) -> list[StoredFile]:
        """Give each upload an id and a signed URL, attach it to the activity, return the files to store.

        An upload whose filename is the `name` of one of the activity's
        attachments fills that entry (its thumbnail and content type are kept;
        `contentUrl` becomes the stored file); the others are added at the end.
        """
        now = self.clock()
        expires = int(now + self.store.retention)
        files: list[StoredFile] = []
        stored: list[act.Attachment] = []
        for upload in uploads:
            file_id = random_id(16)
            url = self.signer.file_url(self.public_url, conversation.id, file_id, upload.name, expires)
            stored.append({"contentType": upload.content_type, "contentUrl": url, "name": upload.name})
            files.append(StoredFile(file_id, conversation.id, upload.name, upload.content_type, upload.data, now))
        act.attach_files(activity, stored)
        return files

    async def upload_from_bot(self, caller: BotCaller, conversation_id: str, data: wire.AttachmentData) -> str:
        """Store a bot's attachment (each view a file of the conversation, kept for the retention); its id.

        The caller must act for the conversation's bot (401/403 otherwise).
        """
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise conversation_not_found(conversation_id)
        self._authorize(caller, conversation.bot_id, "an attachment upload to its conversation")
        key = random_id(22)
        now = self.clock()
        try:
            for view, content in data.views().items():
                file_id = wire.attachment_file_id(key, view)
                await self.store.add_file(
                    StoredFile(file_id, conversation_id, data.name, data.content_type, content, now)
                )
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return wire.attachment_id(conversation_id, key)

    async def attachment_view(self, attachment_id: str, view: str) -> StoredFile | None:
        """One view of a bot's attachment, or None (unknown id or view, or past the retention)."""
        parsed = wire.parse_attachment_id(attachment_id)
        if parsed is None or view not in wire.ATTACHMENT_VIEWS:
            return None
        conversation_id, key = parsed
        return await self.store.get_file(conversation_id, wire.attachment_file_id(key, view), self.clock())

    async def attachment_info(self, attachment_id: str) -> dict[str, Any]:
        """The AttachmentInfo of a bot's attachment: name, type and its views with their sizes (NOT_FOUND)."""
        views = [(v, await self.attachment_view(attachment_id, v)) for v in wire.ATTACHMENT_VIEWS]
        found = [(v, f) for v, f in views if f is not None]
        if not found or found[0][0] != "original":
            raise ServiceError(ErrorKind.NOT_FOUND, "the attachment does not exist or has expired")
        original = found[0][1]
        return {
            "name": original.name,
            "type": original.content_type,
            "views": [{"viewId": v, "size": len(f.data)} for v, f in found],
        }
