"""The rules of a Direct Line conversation as clients see them, shared by the 1.1 and 3.0 APIs.

Start a conversation (telling the bot it joined), accept a client's activity
(stored and pushed to streams first, then the bot hears of a new user, then
the activity itself), read history. What the bot did with each activity sent
to it is recorded and published for inspectors. Nothing here holds a lock
while the bot is being called: the bot's replies arrive through the connector
(`service.connector`) while `post_from_client` is still waiting for the bot's answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from openline.auth.credentials import Principal
from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.service.delivery import DeliveryResult
from openline.service.dispatch import Dispatcher
from openline.service.publish import Bot, Publisher, conversation_not_found, find_bot
from openline.storage.base import (
    Conversation,
    ConversationDeleted,
    ConversationStore,
    StoredActivity,
    StoredFile,
    UnknownConversation,
)

log = logging.getLogger("openline.channel")
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
        dispatcher: Dispatcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.bots = bots
        self.dispatcher = dispatcher
        self.public_url = dispatcher.public_url
        self.clock = clock

    def bot(self, bot_id: str) -> Bot:
        return find_bot(self.bots, bot_id)

    async def start(
        self, bot_id: str, conversation_id: str, user: act.Account | None = None, locale: str | None = None
    ) -> bool:
        """Open the conversation and tell the bot; False (and no bot call) when it was already open.

        A `user` that is the bot itself is refused (MALFORMED). The bot hears
        `membersAdded: [bot]`, then `[user]` when the user is known
        now. Its answer does not decide the outcome: the conversation is open
        either way, and a bot that is down shows on the first message. Whatever
        the bot did not take is sent again before the next activity reaches it.

        NOT_FOUND for the id of a conversation an operator deleted (a token
        issued before the deletion cannot open it again: `service.removal`).
        """
        bot = self.bot(bot_id)
        self.check_user(bot_id, user)
        try:
            if not await self.store.create_conversation(conversation_id, bot.id, self.clock()):
                return False
        except ConversationDeleted:
            raise conversation_not_found(conversation_id) from None
        sender = user or act.account(conversation_id)
        await self.dispatcher.announce(conversation_id, bot, act.account(bot.id, bot.name), sender, locale)
        if user is not None:
            await self.dispatcher.announce(conversation_id, bot, user, user, locale)
        return True

    def check_user(self, bot_id: str, user: act.Account | None) -> None:
        """Refuse (MALFORMED) a user a client names for a token or a start when it is the bot itself."""
        if user is not None:
            act.check_user_id(user["id"], self.bot(bot_id).account)

    async def require_not_deleted(self, conversation_id: str) -> None:
        """NOT_FOUND when an operator deleted the conversation (its tombstone is kept): a token of it is not
        renewed. A token's conversation that was never started (`/tokens/generate`) passes."""
        if await self.store.deleted(conversation_id, self.clock()):
            raise conversation_not_found(conversation_id)

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
        Before the activity, the bot hears what it has not taken yet: that it
        joined, that this user joined. `typing` is not stored: it is pushed to
        streams with an id of its own, then delivered.

        A `client_key` already stored in the conversation is a retry: nothing
        new is stored (files included) and the answer is the first activity's
        id once the bot has it. The bot is called again only when that
        activity's delivery failed or was abandoned; a delivery still in flight
        is waited for (see `Dispatcher.claim_again`). Whoever delivers keeps
        its claim alive until it calls the bot, so only one ever does.
        """
        bot = self.bot(conversation.bot_id)
        act.from_client(activity, conversation.id, bot.account, user=user)
        if activity.get("type") in act.EPHEMERAL_TYPES:
            activity_id = await self.publisher.publish_ephemeral(conversation.id, activity, "client")
            await self._introduce(conversation.id, bot, activity)
            _raise_for(await self.dispatcher.deliver(conversation.id, bot, activity, stored=False))
            return Posted(activity_id)
        stored = await self.publisher.append(conversation.id, activity, files, client_key, "client")
        first = stored.activity
        attempt = 1 if not stored.repeated else await self._claim_again(conversation.id, first["id"])
        while attempt:
            # the claim is renewed after the bot was told of joins, which may take as long as a delivery
            introduced = await self._introduce(conversation.id, bot, first)
            if not (introduced and client_key) or await self.dispatcher.renew(conversation.id, first["id"], attempt):
                _raise_for(await self.dispatcher.deliver(conversation.id, bot, first, attempt))
                break
            attempt = await self._claim_again(conversation.id, first["id"])  # taken over meanwhile
        return Posted(first["id"], repeated=stored.repeated)

    async def _claim_again(self, conversation_id: str, activity_id: str) -> int:
        """The attempt this request makes at a stored activity's delivery; 0 when the bot has it already."""
        try:
            claimed = await self.dispatcher.claim_again(conversation_id, activity_id)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return claimed.attempts if claimed is not None else 0

    async def _introduce(self, conversation_id: str, bot: Bot, activity: act.Activity) -> bool:
        """Before a client's activity: tell the bot it joined, and that the sender joined, unless it knows.

        True when the bot was told (or may have been: the news was not known to be delivered before).
        """
        sender = activity.get("from")
        if not (isinstance(sender, dict) and isinstance(sender.get("id"), str)):
            return False
        if await self.dispatcher.knows(conversation_id, [bot.id, sender["id"]]):
            return False
        locale = activity.get("locale")
        locale = locale if isinstance(locale, str) else None
        try:
            # each is sent until the bot takes it, the bot's own arrival first (a bot that refuses one kind of
            # update must still hear of the other)
            await self.dispatcher.announce(conversation_id, bot, act.account(bot.id, bot.name), sender, locale)
            await self.dispatcher.announce(conversation_id, bot, sender, sender, locale)
        except UnknownConversation:
            raise conversation_not_found(conversation_id) from None
        return True

    async def read(self, conversation: Conversation, after_seq: int, limit: int) -> list[StoredActivity]:
        try:
            return await self.store.read(conversation.id, after_seq, limit, self.clock())
        except UnknownConversation:
            raise conversation_not_found(conversation.id) from None


def _raise_for(result: DeliveryResult) -> None:
    """The client's error for a bot that did not take its activity (the detail is logged, not shown)."""
    if result.error is not None:
        status = f" (HTTP {result.status})" if result.status else ""
        why = f": {result.explanation}" if result.explanation else ""
        raise ServiceError(result.error, _BOT_FAILURE[result.error] + status + why, result.status)
