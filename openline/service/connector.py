"""The Bot Connector operations bots call on `serviceUrl`: activities, members, history, conversations.

Bots post here while the service's own POST to them is still open; nothing
here waits on that call. Every stored activity goes through append-and-publish
(`service.publish`), so streams see it at once. Beyond the official Direct Line
service, activities can be replaced and removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openline.auth.bot_auth import BotCaller
from openline.auth.signing import UrlSigner
from openline.protocol import activity as act
from openline.protocol import connector as wire
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import new_conversation_id, sequence_of
from openline.service.publish import Bot, Publisher, conversation_not_found, find_bot
from openline.storage.base import (
    Conversation,
    ConversationDeleted,
    ConversationStore,
    Event,
    Member,
    UnknownConversation,
)


class BotConnector:
    def __init__(
        self,
        store: ConversationStore,
        publisher: Publisher,
        bots: Mapping[str, Bot],
        forget_member: Callable[[str, str], None],
        public_url: str,
        clock: Callable[[], float] = time.time,
        authorize: Callable[[BotCaller, str], None] = lambda caller, bot_id: caller.require(bot_id),
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.broker = publisher.broker
        self.bots = bots
        self._forget_member = forget_member  # a removed member is announced again when it posts
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self._authorize = authorize  # raises 401/403 unless the caller acts for the bot (BotAuthority.authorize)

    def bot(self, bot_id: str) -> Bot:
        return find_bot(self.bots, bot_id)

    async def _bot_conversation(self, caller: BotCaller, conversation_id: str) -> tuple[Conversation, Bot]:
        """The conversation and its bot, once the caller is known to act for that bot (else 401/403)."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise conversation_not_found(conversation_id)
        self._authorize(caller, conversation.bot_id)
        return conversation, self.bot(conversation.bot_id)

    async def post_from_bot(
        self, caller: BotCaller, conversation_id: str, activity: Any, reply_to_id: str | None
    ) -> str:
        """Store an activity the bot sent through the connector API (typing: push only); its id."""
        _, bot = await self._bot_conversation(caller, conversation_id)
        act.from_bot(activity, conversation_id, bot.account, reply_to_id)
        if activity.get("type") in act.EPHEMERAL_TYPES:
            return await self.publisher.publish_ephemeral(conversation_id, activity, "bot")
        stored = await self.publisher.append(conversation_id, activity)
        return str(stored.activity["id"])

    def _position(self, conversation_id: str, activity_id: str) -> int:
        seq = sequence_of(conversation_id, activity_id)
        if seq is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        return seq

    async def replace_from_bot(self, caller: BotCaller, conversation_id: str, activity_id: str, activity: Any) -> str:
        """Replace a stored activity with the bot's new version (same id and timestamp), and tell the streams."""
        _, bot = await self._bot_conversation(caller, conversation_id)
        seq = self._position(conversation_id, activity_id)
        act.from_bot(activity, conversation_id, bot.account, None)
        dropped = await self._linked_files(conversation_id, seq) - self._file_ids(conversation_id, activity)
        try:
            replaced = await self.store.replace(conversation_id, seq, activity, self.clock(), sorted(dropped))
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if replaced is None:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        await self.broker.publish(conversation_id, Event(None, replaced.activity))
        return activity_id

    async def delete_from_bot(self, caller: BotCaller, conversation_id: str, activity_id: str) -> None:
        """Remove a stored activity and the files uploaded with it; tell the streams (`protocol.activity.deletion`)."""
        _, bot = await self._bot_conversation(caller, conversation_id)
        seq = self._position(conversation_id, activity_id)
        try:
            files = await self._linked_files(conversation_id, seq)
            deleted = await self.store.delete(conversation_id, seq, sorted(files))
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if not deleted:
            raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        tombstone = act.deletion(conversation_id, activity_id, bot.account, int(self.clock() * 1000))
        await self.broker.publish(conversation_id, Event(None, tombstone, removed=True))

    async def _linked_files(self, conversation_id: str, seq: int) -> set[str]:
        """The conversation's stored files the activity at `seq` links to (uploads sent with it)."""
        try:
            page = await self.store.read(conversation_id, seq - 1, 1, self.clock())
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return self._file_ids(conversation_id, page[0].activity) if page and page[0].seq == seq else set()

    def _file_ids(self, conversation_id: str, activity: act.Activity) -> set[str]:
        urls = (a.get("contentUrl") for a in activity.get("attachments") or () if isinstance(a, dict))
        found = (UrlSigner.file_id_of(u, self.public_url, conversation_id) for u in urls if isinstance(u, str))
        return {file_id for file_id in found if file_id is not None}

    async def members(
        self, caller: BotCaller, conversation_id: str, activity_id: str | None = None
    ) -> list[act.Account]:
        """The conversation's members as ChannelAccounts (the bot first).

        With `activity_id`, the members of the conversation that activity belongs
        to: NOT_FOUND for an activity the conversation never had.
        """
        conversation, _ = await self._bot_conversation(caller, conversation_id)
        if activity_id is not None:
            seq = sequence_of(conversation_id, activity_id)
            if seq is None or not 1 <= seq <= conversation.last_seq:
                raise ServiceError(ErrorKind.NOT_FOUND, f"activity {activity_id!r} is not in this conversation")
        try:
            members = await self.store.members(conversation_id)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return [act.account(m.id, m.name, "bot" if m.id == conversation.bot_id else "user") for m in members]

    async def member(self, caller: BotCaller, conversation_id: str, member_id: str) -> act.Account:
        """One member of the conversation as a ChannelAccount (NOT_FOUND when it is not a member)."""
        for account in await self.members(caller, conversation_id):
            if account["id"] == member_id:
                return account
        raise ServiceError(ErrorKind.NOT_FOUND, f"{member_id!r} is not a member of this conversation")

    async def paged_members(
        self, caller: BotCaller, conversation_id: str, page_size: int, offset: int
    ) -> tuple[list[act.Account], int | None]:
        """Up to `page_size` members from `offset` (in the order they joined), and the next offset (None: the end)."""
        members = await self.members(caller, conversation_id)
        end = offset + page_size
        return members[offset:end], end if end < len(members) else None

    async def remove_member_from_bot(self, caller: BotCaller, conversation_id: str, member_id: str) -> None:
        """Forget a member (NOT_FOUND when it is not one); the bot itself cannot be removed (MALFORMED).

        A removed user who posts again joins again: the bot is told of it anew.
        """
        conversation, _ = await self._bot_conversation(caller, conversation_id)
        if member_id == conversation.bot_id:
            raise ServiceError(ErrorKind.MALFORMED, "the bot cannot be removed from its own conversation")
        try:
            removed = await self.store.remove_member(conversation_id, member_id)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        if not removed:
            raise ServiceError(ErrorKind.NOT_FOUND, f"{member_id!r} is not a member of this conversation")
        self._forget_member(conversation_id, member_id)

    async def history_from_bot(self, caller: BotCaller, conversation_id: str, activities: Sequence[Any]) -> str:
        """Store a transcript the bot sends, in order, each with its own sender; the last stored id ("" if none).

        Every activity is checked before any is stored, so a bad one stores nothing.
        `typing` is skipped: a transcript is history, not a live indicator.
        """
        _, bot = await self._bot_conversation(caller, conversation_id)
        stamped: list[act.Activity] = []
        for i, activity in enumerate(activities):
            try:
                stamped.append(wire.from_history(activity, conversation_id, bot.account))
            except ServiceError as e:
                raise ServiceError(e.kind, f"activities[{i}]: {e.message}") from None
        last_id = ""
        for item in stamped:
            if item.get("type") not in act.EPHEMERAL_TYPES:
                last_id = str((await self.publisher.append(conversation_id, item)).activity["id"])
        return last_id

    def _creating_bot(self, caller: BotCaller, bot_id: str | None) -> Bot:
        """The bot a new conversation is for: the caller's own, or the one it names (if it may act for it)."""
        if bot_id is not None:
            bot = self.bot(bot_id)
            self._authorize(caller, bot.id)
            return bot
        if caller.bot_id is not None:
            return self.bot(caller.bot_id)
        candidates = [b for b in self.bots.values() if caller.may_act_for(b.id)]
        if not candidates:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "no bot on this service takes calls without a token")
        if len(candidates) != 1:
            raise ServiceError(ErrorKind.MISSING, "several bots are configured: say which in 'bot.id'")
        return candidates[0]

    async def create_from_bot(self, caller: BotCaller, parameters: wire.NewConversation) -> tuple[str, str | None]:
        """Open a conversation the bot asked for, record its members, store its first activity.

        Returns the new conversation's id and the first activity's id (None
        without one). The bot is not called: it knows. Clients reach the
        conversation with the bot's Direct Line secret.
        """
        bot = self._creating_bot(caller, parameters.bot_id)
        conversation_id = new_conversation_id()
        activity = parameters.activity
        if activity is not None:
            act.from_bot(activity, conversation_id, bot.account, None)  # checked before anything is created
        try:
            created = await self.store.create_conversation(conversation_id, bot.id, self.clock())
        except ConversationDeleted:  # a deleted conversation's id is never given again
            created = False
        if not created:
            raise ServiceError(ErrorKind.INTERNAL, "a fresh conversation id was already taken")
        await self.store.add_member(conversation_id, Member(bot.id, bot.name))
        for account in parameters.members:
            name = account.get("name")
            await self.store.add_member(conversation_id, Member(account["id"], name if isinstance(name, str) else None))
        if activity is None:
            return conversation_id, None
        if activity.get("type") in act.EPHEMERAL_TYPES:
            return conversation_id, await self.publisher.publish_ephemeral(conversation_id, activity, "bot")
        return conversation_id, str((await self.publisher.append(conversation_id, activity)).activity["id"])

    async def bot_conversations(
        self, caller: BotCaller, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[tuple[str, list[act.Account]]], tuple[str, str] | None]:
        """A page of the conversations of the bots the caller acts for (by bot id, then by id), with members.

        A bot with a token sees its own conversations only; an unauthenticated
        caller, those of the bots without an app id.

        `after` is where the previous page stopped: (bot id, last conversation
        id); the second value returned is where this one stopped (None: the end).
        """
        bot_ids = sorted(b for b in self.bots if caller.may_act_for(b))
        if not bot_ids:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "no bot on this service takes calls without a token")
        start, after_id = 0, ""
        if after is not None:
            if after[0] not in bot_ids:
                raise ServiceError(ErrorKind.MALFORMED, "invalid continuationToken: it is not for this caller's bots")
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
