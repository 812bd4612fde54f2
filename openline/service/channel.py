"""The rules of a Direct Line conversation, shared by every client API and the connector API.

Start a conversation (telling the bot it joined), accept a client's activity
(stored and pushed to streams first, then the bot hears of a new user, then
the activity itself), accept a bot's activity, replace or remove one, read
history, attach uploaded files. Every stored activity is published to the
conversation's streams right after it is committed; `typing` is never stored,
only published. Nothing here holds a lock while the bot is being called: the
bot's replies arrive through `post_from_bot` while `post_from_client` is still
waiting for the bot's answer.
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
    Broker,
    Conversation,
    ConversationStore,
    Event,
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


@dataclass(frozen=True, slots=True)
class Posted:
    """The outcome of a client's post: the activity's id; `repeated` when a retry found the first one."""

    id: str
    repeated: bool = False


def _not_found(conversation_id: str) -> ServiceError:
    return ServiceError(ErrorKind.NOT_FOUND, f"conversation {conversation_id!r} does not exist or has expired")


class Channel:
    def __init__(
        self,
        store: ConversationStore,
        broker: Broker,
        bots: Mapping[str, Bot],
        client: BotClient,
        signer: UrlSigner,
        public_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.broker = broker
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
        self,
        conversation: Conversation,
        activity: act.Activity,
        files: Sequence[StoredFile] = (),
        *,
        user: act.Account | None = None,
        client_key: str | None = None,
    ) -> Posted:
        """Store a client's activity and push it to streams, then deliver it to the bot and wait for its answer.

        The activity is committed before the bot is called, so it stays in the
        conversation when the bot fails; the failure is raised afterwards. With
        `user` (a user-bound token) the sender's id is forced to that user's.
        A `client_key` already stored in the conversation returns the first
        activity's id, and the bot is not called again. `typing` is not stored:
        it is pushed to streams with an id of its own, then delivered.
        """
        bot = self.bot(conversation.bot_id)
        act.from_client(activity, conversation.id, bot.account, user=user)
        if activity.get("type") in act.EPHEMERAL_TYPES:
            activity_id = await self._publish_ephemeral(conversation.id, activity)
        else:
            stored = await self._append(conversation.id, activity, files, client_key)
            if stored.repeated:
                return Posted(stored.activity["id"], repeated=True)
            activity_id = stored.activity["id"]
        sender = activity.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), str):
            locale = activity.get("locale")
            await self._announce(conversation.id, bot, sender, locale if isinstance(locale, str) else None)
        result = await self.client.deliver(bot.endpoint, act.for_bot(activity, self.public_url))
        if result.error is not None:
            # the detail (the bot's body, its address) is logged, not shown to the client
            status = f" (HTTP {result.status})" if result.status else ""
            raise ServiceError(result.error, _BOT_FAILURE[result.error] + status, result.status)
        return Posted(activity_id)

    async def _append(
        self,
        conversation_id: str,
        activity: act.Activity,
        files: Sequence[StoredFile] = (),
        client_key: str | None = None,
    ) -> StoredActivity:
        """Append and publish, as one step: nothing is awaited between the commit and the publish."""
        try:
            stored = await self.store.append(conversation_id, activity, self.clock(), files, client_key)
        except UnknownConversation:
            raise _not_found(conversation_id) from None
        if not stored.repeated:
            await self.broker.publish(conversation_id, Event(stored.seq, stored.activity))
        return stored

    async def _publish_ephemeral(self, conversation_id: str, activity: act.Activity) -> str:
        """Give an unstored activity (typing) an id and a timestamp, and push it to the streams."""
        act.assign_ephemeral(activity, conversation_id, random_id(12), int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, activity))
        return str(activity["id"])

    async def _announce(self, conversation_id: str, bot: Bot, sender: act.Account, locale: str | None = None) -> None:
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
                if not (await self._members_added(conversation_id, bot, sender, added, locale)).ok:
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

    async def _bot_conversation(self, conversation_id: str) -> tuple[Conversation, Bot]:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise _not_found(conversation_id)
        return conversation, self.bot(conversation.bot_id)

    async def post_from_bot(self, conversation_id: str, activity: Any, reply_to_id: str | None) -> str:
        """Store an activity the bot sent through the connector API (typing: push only); its id."""
        _, bot = await self._bot_conversation(conversation_id)
        act.from_bot(activity, conversation_id, bot.account, reply_to_id)
        if activity.get("type") in act.EPHEMERAL_TYPES:
            return await self._publish_ephemeral(conversation_id, activity)
        stored = await self._append(conversation_id, activity)
        return str(stored.activity["id"])

    def _position(self, conversation_id: str, activity_id: str) -> int:
        seq = sequence_of(conversation_id, activity_id)
        if seq is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        return seq

    async def replace_from_bot(self, conversation_id: str, activity_id: str, activity: Any) -> str:
        """Replace a stored activity with the bot's new version (same id and timestamp), and tell the streams."""
        _, bot = await self._bot_conversation(conversation_id)
        seq = self._position(conversation_id, activity_id)
        act.from_bot(activity, conversation_id, bot.account, None)
        try:
            replaced = await self.store.replace(conversation_id, seq, activity, self.clock())
        except UnknownConversation:
            raise _not_found(conversation_id) from None
        if replaced is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        await self.broker.publish(conversation_id, Event(None, replaced.activity))
        return activity_id

    async def delete_from_bot(self, conversation_id: str, activity_id: str) -> None:
        """Remove a stored activity, and tell the streams with a `messageDelete` carrying its id."""
        _, bot = await self._bot_conversation(conversation_id)
        seq = self._position(conversation_id, activity_id)
        try:
            deleted = await self.store.delete(conversation_id, seq)
        except UnknownConversation:
            raise _not_found(conversation_id) from None
        if not deleted:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        tombstone = act.deletion(conversation_id, activity_id, bot.account, int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, tombstone))

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
