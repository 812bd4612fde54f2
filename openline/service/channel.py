"""The rules of a Direct Line conversation, shared by every client API and the connector API.

Start a conversation (telling the bot it joined), accept a client's activity
(stored and pushed to streams first, then the bot hears of a new user, then
the activity itself), accept a bot's activity, replace or remove one, read
history, attach uploaded files. Every stored activity is published to the
conversation's streams right after it is committed; `typing` is never stored,
only published. What the bot did with each activity sent to it is recorded
and published for inspectors. Nothing here holds a lock while the bot is being called: the
bot's replies arrive through `post_from_bot` while `post_from_client` is still
waiting for the bot's answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openline.auth.credentials import Principal
from openline.auth.signing import UrlSigner
from openline.protocol import activity as act
from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import new_conversation_id, random_id, sequence_of
from openline.service.delivery import BotClient, DeliveryResult
from openline.storage.base import (
    Broker,
    Conversation,
    ConversationStore,
    Delivery,
    Event,
    Member,
    Origin,
    StoredActivity,
    StoredFile,
    UnknownConversation,
)

log = logging.getLogger("openline.channel")
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


def conversation_not_found(conversation_id: str) -> ServiceError:
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
        if user is not None:
            # like a user's first activity: a user the bot fails to take is announced again with its next one
            await self._announce(conversation_id, bot, user, locale)
        return True

    async def find(self, conversation_id: str) -> Conversation | None:
        """The conversation as it is now, or None (never created, or expired)."""
        return await self.store.get_conversation(conversation_id)

    async def conversation(self, principal: Principal, conversation_id: str) -> Conversation:
        """The conversation, if this caller may use it (FORBIDDEN, NOT_FOUND otherwise)."""
        principal.require_conversation(conversation_id)
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise conversation_not_found(conversation_id)
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
        ephemeral = activity.get("type") in act.EPHEMERAL_TYPES
        if ephemeral:
            activity_id = await self._publish_ephemeral(conversation.id, activity, "client")
        else:
            stored = await self._append(conversation.id, activity, files, client_key, "client")
            if stored.repeated:
                return Posted(stored.activity["id"], repeated=True)
            activity_id = stored.activity["id"]
        sender = activity.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), str):
            locale = activity.get("locale")
            await self._announce(conversation.id, bot, sender, locale if isinstance(locale, str) else None)
        result = await self._deliver(conversation.id, bot, activity, stored=not ephemeral)
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
        origin: Origin = "bot",
    ) -> StoredActivity:
        """Append and publish, as one step: nothing is awaited between the commit and the publish."""
        try:
            stored = await self.store.append(conversation_id, activity, self.clock(), files, client_key, origin)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if not stored.repeated:
            await self.broker.publish(conversation_id, Event(stored.seq, stored.activity, origin))
        return stored

    async def _publish_ephemeral(self, conversation_id: str, activity: act.Activity, origin: Origin) -> str:
        """Give an unstored activity (typing) an id and a timestamp, and push it to the streams."""
        act.assign_ephemeral(activity, conversation_id, random_id(12), int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, activity, origin))
        return str(activity["id"])

    async def _deliver(self, conversation_id: str, bot: Bot, activity: act.Activity, *, stored: bool) -> DeliveryResult:
        """POST an activity to the bot; record and publish what came of it (for inspectors).

        A record that cannot be written is logged and dropped: the activity and
        the bot's answer stand, and the caller's answer does not depend on it.
        """
        sent = act.for_bot(activity, self.public_url)
        result = await self.client.deliver(bot.endpoint, sent)
        delivery = Delivery(
            str(activity.get("id", "")),
            self.clock(),
            result.status,
            result.duration,
            result.error.value if result.error is not None else None,
            result.detail,
            None if stored else sent,
        )
        try:
            await self.store.add_delivery(conversation_id, delivery)
        except UnknownConversation:
            pass  # expired while the bot was busy: nothing left to describe
        except Exception:
            log.exception("could not record the delivery of %s in %s", delivery.activity_id, conversation_id)
        await self.broker.publish(conversation_id, Event(None, None, "client", delivery))
        return result

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
            raise conversation_not_found(conversation_id)
        return conversation, self.bot(conversation.bot_id)

    async def post_from_bot(self, conversation_id: str, activity: Any, reply_to_id: str | None) -> str:
        """Store an activity the bot sent through the connector API (typing: push only); its id."""
        _, bot = await self._bot_conversation(conversation_id)
        act.from_bot(activity, conversation_id, bot.account, reply_to_id)
        if activity.get("type") in act.EPHEMERAL_TYPES:
            return await self._publish_ephemeral(conversation_id, activity, "bot")
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
            raise conversation_not_found(conversation_id) from None
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
            raise conversation_not_found(conversation_id) from None
        if not deleted:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        tombstone = act.deletion(conversation_id, activity_id, bot.account, int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, tombstone))

    async def read(self, conversation: Conversation, after_seq: int, limit: int) -> list[StoredActivity]:
        try:
            return await self.store.read(conversation.id, after_seq, limit, self.clock())
        except UnknownConversation:
            raise conversation_not_found(conversation.id) from None

    async def members(self, conversation_id: str, activity_id: str | None = None) -> list[act.Account]:
        """The conversation's members as ChannelAccounts (the bot first).

        With `activity_id`, the members of the conversation that activity belongs
        to: NOT_FOUND for an activity the conversation never had.
        """
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise conversation_not_found(conversation_id)
        if activity_id is not None:
            seq = sequence_of(conversation_id, activity_id)
            if seq is None or not 1 <= seq <= conversation.last_seq:
                raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        try:
            members = await self.store.members(conversation_id)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
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
        return await self._deliver(conversation_id, bot, update, stored=False)

    # -- the rest of the Bot Connector API: members, history, bot-created conversations, attachments --

    async def member(self, conversation_id: str, member_id: str) -> act.Account:
        """One member of the conversation as a ChannelAccount (NOT_FOUND when it is not a member)."""
        for account in await self.members(conversation_id):
            if account["id"] == member_id:
                return account
        raise ServiceError(ErrorKind.NOT_FOUND, f"{member_id!r} is not a member of this conversation")

    async def paged_members(
        self, conversation_id: str, page_size: int, offset: int
    ) -> tuple[list[act.Account], int | None]:
        """Up to `page_size` members from `offset` (in the order they joined), and the next offset (None: the end)."""
        members = await self.members(conversation_id)
        end = offset + page_size
        return members[offset:end], end if end < len(members) else None

    async def remove_member_from_bot(self, conversation_id: str, member_id: str) -> None:
        """Forget a member (NOT_FOUND when it is not one); the bot itself cannot be removed (MALFORMED).

        A removed user who posts again joins again: the bot is told of it anew.
        """
        conversation, _ = await self._bot_conversation(conversation_id)
        if member_id == conversation.bot_id:
            raise ServiceError(ErrorKind.MALFORMED, "the bot cannot be removed from its own conversation")
        try:
            removed = await self.store.remove_member(conversation_id, member_id)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if not removed:
            raise ServiceError(ErrorKind.NOT_FOUND, f"{member_id!r} is not a member of this conversation")
        self._announced.pop((conversation_id, member_id), None)

    async def history_from_bot(self, conversation_id: str, activities: Sequence[Any]) -> str:
        """Store a transcript the bot sends, in order, each with its own sender; the last stored id ("" if none).

        Every activity is checked before any is stored, so a bad one stores nothing.
        `typing` is skipped: a transcript is history, not a live indicator.
        """
        _, bot = await self._bot_conversation(conversation_id)
        stamped: list[act.Activity] = []
        for i, activity in enumerate(activities):
            try:
                stamped.append(wire.from_history(activity, conversation_id, bot.account))
            except ServiceError as e:
                raise ServiceError(e.kind, f"activities[{i}]: {e.message}") from None
        last_id = ""
        for item in stamped:
            if item.get("type") not in act.EPHEMERAL_TYPES:
                last_id = str((await self._append(conversation_id, item)).activity["id"])
        return last_id

    def _creating_bot(self, bot_id: str | None) -> Bot:
        if bot_id is not None:
            return self.bot(bot_id)
        if len(self.bots) != 1:
            raise ServiceError(ErrorKind.MISSING, "several bots are configured: say which in 'bot.id'")
        return next(iter(self.bots.values()))

    async def create_from_bot(self, parameters: wire.NewConversation) -> tuple[str, str | None]:
        """Open a conversation the bot asked for, record its members, store its first activity.

        Returns the new conversation's id and the first activity's id (None
        without one). The bot is not called: it knows. Clients reach the
        conversation with the bot's Direct Line secret.
        """
        bot = self._creating_bot(parameters.bot_id)
        conversation_id = new_conversation_id()
        activity = parameters.activity
        if activity is not None:
            act.from_bot(activity, conversation_id, bot.account, None)  # checked before anything is created
        if not await self.store.create_conversation(conversation_id, bot.id, self.clock()):
            raise ServiceError(ErrorKind.INTERNAL, "a fresh conversation id was already taken")
        await self.store.add_member(conversation_id, Member(bot.id, bot.name))
        for account in parameters.members:
            name = account.get("name")
            await self.store.add_member(conversation_id, Member(account["id"], name if isinstance(name, str) else None))
        if activity is None:
            return conversation_id, None
        if activity.get("type") in act.EPHEMERAL_TYPES:
            return conversation_id, await self._publish_ephemeral(conversation_id, activity, "bot")
        return conversation_id, str((await self._append(conversation_id, activity)).activity["id"])

    async def bot_conversations(
        self, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[tuple[str, list[act.Account]]], tuple[str, str] | None]:
        """A page of every configured bot's conversations (bots by id, then conversations by id), with members.

        `after` is where the previous page stopped: (bot id, last conversation
        id); the second value returned is where this one stopped (None: the end).
        """
        bot_ids = sorted(self.bots)
        start, after_id = 0, ""
        if after is not None:
            if after[0] not in self.bots:
                raise ServiceError(ErrorKind.MALFORMED, "invalid continuationToken: its bot is not configured")
            start, after_id = bot_ids.index(after[0]), after[1]
        page: list[tuple[str, list[act.Account]]] = []
        for bot_id in bot_ids[start:]:
            room = limit - len(page)
            found = await self.store.conversations(bot_id, after_id, room + 1)
            for conversation in found[:room]:
                try:
                    members = await self.store.members(conversation.id)
                except UnknownConversation:  # expired since it was listed
                    continue
                roles = ((m, "bot" if m.id == bot_id else "user") for m in members)
                page.append((conversation.id, [act.account(m.id, m.name, role) for m, role in roles]))
            if len(found) > room:
                return page, (bot_id, found[room - 1].id if room else after_id)
            after_id = ""
        return page, None

    async def upload_from_bot(self, conversation_id: str, data: wire.AttachmentData) -> str:
        """Store a bot's attachment (each view a file of the conversation, kept for the retention); its id."""
        await self._bot_conversation(conversation_id)
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
