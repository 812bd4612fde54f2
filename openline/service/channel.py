"""The rules of a Direct Line conversation, shared by every client API and the connector API.

Start a conversation (telling the bot it joined), accept a client's activity
(stored first, then the bot hears of a new user, then the activity itself),
accept a bot's activity, read history, attach uploaded files. Nothing here
holds a lock while the bot is being called: the bot's replies arrive through
`post_from_bot` while `post_from_client` is still waiting for the bot's answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openline.auth.credentials import Principal
from openline.auth.signing import UrlSigner
from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import random_id, sequence_of
from openline.service.delivery import BotClient, DeliveryResult
from openline.storage.base import (
    Conversation,
    ConversationStore,
    Member,
    StoredActivity,
    StoredFile,
    UnknownConversation,
)

_ANNOUNCED_CACHE = 65536
_BOT_FAILURE = {
    ErrorKind.BOT_REJECTED: "the bot rejected the activity",
    ErrorKind.BOT_UNREACHABLE: "the bot could not be reached",
    ErrorKind.BOT_TIMEOUT: "the bot did not answer in time",
}


@dataclass(frozen=True, slots=True)
class Bot:
    id: str
    name: str
    endpoint: str

    @property
    def account(self) -> act.Account:
        return act.account(self.id, self.name, "bot")


@dataclass(frozen=True, slots=True)
class Upload:
    """A file a client uploaded, before it is stored."""

    name: str
    content_type: str
    data: bytes


def _not_found(conversation_id: str) -> ServiceError:
    return ServiceError(ErrorKind.NOT_FOUND, f"conversation {conversation_id!r} does not exist or has expired")


class Channel:
    def __init__(
        self,
        store: ConversationStore,
        bots: Mapping[str, Bot],
        client: BotClient,
        signer: UrlSigner,
        public_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.bots = bots
        self.client = client
        self.signer = signer
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self._announcing: dict[tuple[str, str], asyncio.Future[None]] = {}
        # members this process knows the bot was told of: their activities skip the store's member write
        self._announced: OrderedDict[tuple[str, str], None] = OrderedDict()

    def bot(self, bot_id: str) -> Bot:
        bot = self.bots.get(bot_id)
        if bot is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"bot {bot_id!r} is not configured on this service")
        return bot

    async def start(
        self, bot_id: str, conversation_id: str, user: act.Account | None = None, locale: str | None = None
    ) -> bool:
        """Open the conversation and tell the bot; False (and no bot call) when it was already open.

        The bot hears `membersAdded: [bot]`, then `[user]` when the user is known
        now. Its answer does not decide the outcome: the conversation is open
        either way, and a bot that is down shows on the first message.
        """
        bot = self.bot(bot_id)
        if not await self.store.create_conversation(conversation_id, bot.id, self.clock()):
            return False
        await self.store.add_member(conversation_id, Member(bot.id, bot.name))
        sender = user or act.account(conversation_id)
        await self._members_added(conversation_id, bot, sender, [act.account(bot.id, bot.name)], locale)
        if user is not None and await self.store.add_member(conversation_id, Member(user["id"], user.get("name"))):
            await self._members_added(conversation_id, bot, user, [user], locale)
        return True

    async def conversation(self, principal: Principal, conversation_id: str) -> Conversation:
        """The conversation, if this caller may use it (FORBIDDEN, NOT_FOUND otherwise)."""
        principal.require_conversation(conversation_id)
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise _not_found(conversation_id)
        if conversation.bot_id != principal.bot_id:
            raise ServiceError(ErrorKind.FORBIDDEN, "the credential is not valid for this conversation")
        return conversation

    async def post_from_client(
        self, conversation: Conversation, activity: act.Activity, files: Sequence[StoredFile] = ()
    ) -> StoredActivity:
        """Store a client's activity, then deliver it to the bot and wait for the bot's answer.

        The activity is committed before the bot is called, so it stays in the
        conversation when the bot fails; the failure is raised afterwards.
        """
        bot = self.bot(conversation.bot_id)
        act.from_client(activity, conversation.id, bot.account)
        try:
            stored = await self.store.append(conversation.id, activity, self.clock(), files)
        except UnknownConversation:
            raise _not_found(conversation.id) from None
        sender = stored.activity.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), str):
            await self._announce(conversation.id, bot, sender)
        result = await self.client.deliver(bot.endpoint, act.for_bot(stored.activity, self.public_url))
        if result.error is not None:
            # the detail (the bot's body, its address) is logged, not shown to the client
            status = f" (HTTP {result.status})" if result.status else ""
            raise ServiceError(result.error, _BOT_FAILURE[result.error] + status)
        return stored

    async def _announce(self, conversation_id: str, bot: Bot, sender: act.Account) -> None:
        """Tell the bot a user joined, before that user's first activity reaches it.

        Concurrent first activities of one user wait for the one announcement in
        flight (in this process). If the bot does not take it, the member is
        forgotten so that the user's next activity announces it again.
        """
        key = (conversation_id, sender["id"])
        if key in self._announced:
            self._announced.move_to_end(key)
            return
        pending = self._announcing.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            return
        done = asyncio.get_running_loop().create_future()
        self._announcing[key] = done
        try:
            member = Member(sender["id"], sender.get("name"))
            if await self.store.add_member(conversation_id, member):
                added = [act.account(member.id, member.name)]
                if not (await self._members_added(conversation_id, bot, sender, added)).ok:
                    await self.store.remove_member(conversation_id, member.id)
                    return
            self._announced[key] = None
            if len(self._announced) > _ANNOUNCED_CACHE:
                self._announced.popitem(last=False)
        finally:
            del self._announcing[key]
            done.set_result(None)

    def attach_uploads(
        self, conversation: Conversation, activity: act.Activity, uploads: Sequence[Upload]
    ) -> list[StoredFile]:
        """Give each upload an id and a signed URL, add it to the activity's attachments, return the files to store."""
        now = self.clock()
        expires = int(now + self.store.retention)
        files: list[StoredFile] = []
        attachments = activity.setdefault("attachments", [])
        for upload in uploads:
            file_id = random_id(16)
            url = self.signer.file_url(self.public_url, conversation.id, file_id, upload.name, expires)
            attachments.append({"contentType": upload.content_type, "contentUrl": url, "name": upload.name})
            files.append(StoredFile(file_id, conversation.id, upload.name, upload.content_type, upload.data, now))
        return files

    async def post_from_bot(self, conversation_id: str, activity: Any, reply_to_id: str | None) -> StoredActivity:
        """Store an activity the bot sent through the connector API."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise _not_found(conversation_id)
        bot = self.bot(conversation.bot_id)
        act.from_bot(activity, conversation_id, bot.account, reply_to_id)
        try:
            return await self.store.append(conversation_id, activity, self.clock())
        except UnknownConversation:
            raise _not_found(conversation_id) from None

    async def read(self, conversation: Conversation, after_seq: int, limit: int) -> list[StoredActivity]:
        try:
            return await self.store.read(conversation.id, after_seq, limit, self.clock())
        except UnknownConversation:
            raise _not_found(conversation.id) from None

    async def members(self, conversation_id: str, activity_id: str | None = None) -> list[act.Account]:
        """The conversation's members as ChannelAccounts (the bot first).

        With `activity_id`, the members of the conversation that activity belongs
        to: NOT_FOUND for an activity the conversation never had.
        """
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise _not_found(conversation_id)
        if activity_id is not None:
            seq = sequence_of(conversation_id, activity_id)
            if seq is None or not 1 <= seq <= conversation.last_seq:
                raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        try:
            members = await self.store.members(conversation_id)
        except UnknownConversation:
            raise _not_found(conversation_id) from None
        return [act.account(m.id, m.name, "bot" if m.id == conversation.bot_id else "user") for m in members]

    async def _members_added(
        self,
        conversation_id: str,
        bot: Bot,
        sender: act.Account,
        added: list[act.Account],
        locale: str | None = None,
    ) -> DeliveryResult:
        update = act.members_added(
            conversation_id,
            f"{conversation_id}|{random_id(10)}",
            int(self.clock() * 1000),
            bot.account,
            sender,
            added,
            locale,
        )
        return await self.client.deliver(bot.endpoint, act.for_bot(update, self.public_url))
