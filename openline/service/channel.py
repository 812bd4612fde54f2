"""The rules of a Direct Line conversation as clients see them, shared by the 1.1 and 3.0 APIs.

Start a conversation (telling the bot it joined), accept a client's activity
(stored and pushed to streams first, then the bot hears of a new user, then
the activity itself), read history. What the bot did with each activity sent
to it is recorded and published for inspectors. Nothing here holds a lock
while the bot is being called: the bot's replies arrive through the connector
(`service.connector`) while `post_from_client` is still waiting for the bot's answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from openline.auth.credentials import Principal
from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import random_id
from openline.service.delivery import BotClient, DeliveryResult
from openline.service.publish import Bot, Publisher, conversation_not_found, find_bot
from openline.storage.base import (
    Conversation,
    ConversationStore,
    Delivery,
    Event,
    Member,
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
class Posted:
    """The outcome of a client's post: the activity's id; `repeated` when a retry found the first one."""

    id: str
    repeated: bool = False


class Channel:
    def __init__(
        self,
        store: ConversationStore,
        publisher: Publisher,
        bots: Mapping[str, Bot],
        client: BotClient,
        public_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.broker = publisher.broker
        self.bots = bots
        self.client = client
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self._announcing: dict[tuple[str, str], asyncio.Future[None]] = {}
        # members this process knows the bot was told of: their activities skip the store's member write
        self._announced: OrderedDict[tuple[str, str], None] = OrderedDict()

    def bot(self, bot_id: str) -> Bot:
        return find_bot(self.bots, bot_id)

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
            activity_id = await self.publisher.publish_ephemeral(conversation.id, activity, "client")
        else:
            stored = await self.publisher.append(conversation.id, activity, files, client_key, "client")
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

    def forget_member(self, conversation_id: str, member_id: str) -> None:
        """A member was removed: its next activity announces it to the bot again."""
        self._announced.pop((conversation_id, member_id), None)

    async def read(self, conversation: Conversation, after_seq: int, limit: int) -> list[StoredActivity]:
        try:
            return await self.store.read(conversation.id, after_seq, limit, self.clock())
        except UnknownConversation:
            raise conversation_not_found(conversation.id) from None

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
