"""Getting what clients send to the bot exactly once: activities, and the news that a member joined.

How this works: the store keeps where each delivery stands (`Delivery.state`:
"pending", "delivered", "failed"), for every stored activity a client sent and
for every member's announcement (`conversationUpdate` with `membersAdded`).
Whoever sends one first claims it in the store, so concurrent requests, other
instances and a process restarted after a crash agree on who sends it: a
claim is refused while the bot has it, or while another sender is within its
time (the bot timeout and a margin); a failed or abandoned one can be claimed
again. Each attempt's outcome is recorded and published (inspectors and
waiting retries hear of it). Nothing here holds a lock while the bot is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

from openline.auth.bot_auth import BotAuthority
from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind
from openline.protocol.ids import random_id
from openline.service.delivery import BotClient, DeliveryResult, log_failure
from openline.service.publish import Bot
from openline.storage.base import (
    Broker,
    ConversationStore,
    Delivery,
    Event,
    Member,
    StoreUnavailable,
    Subscription,
    UnknownConversation,
)

log = logging.getLogger("openline.dispatch")
_ANNOUNCED_CACHE = 65536
_ANNOUNCE_POLL = 0.05  # seconds between looks at an announcement in flight on another instance
_POLL = 1.0  # a waiting retry re-reads the store at least this often (a report from another instance may be lost)


def abandoned_after(bot_timeout: float) -> float:
    """Seconds after which a claimed delivery counts as abandoned: the bot timeout, and a margin for its record."""
    return bot_timeout + max(1.0, bot_timeout / 3)


class Dispatcher:
    def __init__(
        self,
        store: ConversationStore,
        broker: Broker,
        client: BotClient,
        public_url: str,
        clock: Callable[[], float] = time.time,
        authority: BotAuthority | None = None,
        remember_announced: bool = True,
    ) -> None:
        self.store = store
        self.broker = broker
        self.client = client
        self.authority = authority  # signs the calls to bots with an app id; knows what bots were refused
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.stale_after = abandoned_after(client.timeout)
        self._announcing: dict[tuple[str, str], asyncio.Future[None]] = {}
        # members this process knows the bot was told of: their activities skip the store. Only when this
        # process is the only one: on a shared store another instance may remove a member meanwhile
        self._announced: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._remember = remember_announced

    # -- activities ---------------------------------------------------------------------------------

    async def deliver(
        self, conversation_id: str, bot: Bot, activity: act.Activity, attempt: int = 1, *, stored: bool = True
    ) -> DeliveryResult:
        """POST an activity to the bot (a stored one this caller has claimed, or an unstored one); record the outcome.

        A record that cannot be written is logged and dropped: the bot's answer
        stands, and the caller's answer does not depend on it.
        """
        sent = act.for_bot(activity, self.public_url)
        started = self.clock()
        authorization = None
        if bot.app_id is not None and self.authority is not None:
            authorization = "Bearer " + self.authority.tokens.channel_token(bot.app_id, str(sent["serviceUrl"]))
        result = await self.client.deliver(bot.endpoint, sent, authorization)
        if result.error is ErrorKind.BOT_REJECTED and self.authority is not None:
            # a bot whose own calls were refused (a wrong password, say) fails its turn: a 500, or a 401 when its
            # error middleware maps the SDK's PermissionError (botbuilder-python's aiohttp_error_middleware), so
            # the refusal explains the failure better than the status does
            refusal = self.authority.recent_refusal(bot.id, started)
            if refusal is not None:
                result = result.explained(f"while it had the activity, {refusal}")
        if not result.ok:
            log_failure(sent, result)
        delivery = Delivery(
            str(activity.get("id", "")),
            self.clock(),
            result.status,
            result.duration,
            result.error.value if result.error is not None else None,
            result.described,
            None if stored else sent,
            "delivered" if result.ok else "failed",
            attempt,
        )
        await self._record(conversation_id, delivery)
        return result

    async def _record(self, conversation_id: str, delivery: Delivery) -> None:
        try:
            await self.store.add_delivery(conversation_id, delivery)
        except UnknownConversation:
            pass  # expired while the bot was busy: nothing left to describe
        except StoreUnavailable as e:  # down, or locked by another process: expected, so no traceback
            log.warning("could not record the delivery of %s in %s: %s", delivery.activity_id, conversation_id, e)
        except Exception:
            log.exception("could not record the delivery of %s in %s", delivery.activity_id, conversation_id)
        await self._report(conversation_id, delivery)

    async def _report(self, conversation_id: str, delivery: Delivery) -> None:
        """Tell inspectors and waiting retries where a delivery stands. A report that cannot be sent is logged:
        the delivery stands, and waiting retries re-read the store."""
        try:
            await self.broker.publish(conversation_id, Event(None, None, "client", delivery))
        except Exception:
            log.exception("could not report the delivery of %s in %s", delivery.activity_id, conversation_id)

    async def claim_again(self, conversation_id: str, activity_id: str) -> Delivery | None:
        """Claim a stored activity whose delivery failed or was abandoned; wait while another sender has it.

        Returns the claimed record ("pending", its `attempts` counting this
        one): the caller delivers it. None when the bot has it already. Waits
        for a delivery in flight to end (at most until it is abandoned: the
        bot timeout and a margin after it started), then decides again.
        Raises UnknownConversation.
        """
        async with self._reports(conversation_id) as reports:
            while True:
                now = self.clock()
                claimed, record = await self.store.claim_delivery(
                    conversation_id, activity_id, now, now - self.stale_after
                )
                if claimed:
                    await self._report(conversation_id, record)
                    return record
                if record.state == "delivered":
                    return None
                abandoned_in = record.at + self.stale_after - now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(_POLL, max(abandoned_in, 0.01))):
                        await _final_report(reports, activity_id)

    async def renew(self, conversation_id: str, activity_id: str, attempt: int) -> bool:
        """Keep this sender's claim on a delivery alive (its record says "pending" since now); False when lost.

        Called right before the bot is called when the claim is old (the bot
        was told of joins first): otherwise a retry could take it as abandoned.
        """
        try:
            return await self.store.renew_claim(conversation_id, activity_id, attempt, self.clock())
        except UnknownConversation:
            return True  # gone meanwhile: the delivery fails on its own

    @contextlib.asynccontextmanager
    async def _reports(self, conversation_id: str) -> AsyncIterator[Subscription]:
        subscription = self.broker.subscribe(conversation_id, deliveries=True)
        try:
            await subscription.ready()
            yield subscription
        finally:
            subscription.close()

    # -- members ------------------------------------------------------------------------------------

    async def announce(
        self, conversation_id: str, bot: Bot, member: act.Account, sender: act.Account, locale: str | None = None
    ) -> bool:
        """Tell the bot that `member` joined (sent by `sender`), unless it knows; False when the bot did not take it.

        Concurrent announcements of one member wait for the one in flight in
        this process. On a shared store (Redis) they also wait for one in
        flight on another instance (polling the store), so a user's first
        activity reaches the bot after the news that the user joined; on a
        store of this process alone, one in flight elsewhere (a process that
        died) is not waited for. A member whose announcement failed is
        announced again on the next call.
        """
        key = (conversation_id, member["id"])
        if key in self._announced:
            self._announced.move_to_end(key)
            return True
        pending = self._announcing.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            if not self._remember:
                return await self.announce(conversation_id, bot, member, sender, locale)
            return key in self._announced
        done = asyncio.get_running_loop().create_future()
        self._announcing[key] = done
        try:
            name = member.get("name")
            joined = Member(member["id"], name if isinstance(name, str) else None)
            while True:
                now = self.clock()
                claimed, state = await self.store.claim_announcement(
                    conversation_id, joined, now, now - self.stale_after
                )
                if claimed or state != "pending" or self._remember:
                    break
                # in flight on another instance: the activity waits for it, or until it is abandoned and claimed here
                await asyncio.sleep(_ANNOUNCE_POLL)
            if claimed:
                update = act.members_added(
                    conversation_id,
                    f"{conversation_id}|{random_id(10)}",
                    int(now * 1000),
                    bot.account,
                    sender,
                    [act.account(joined.id, joined.name)],
                    locale,
                )
                ok = (await self.deliver(conversation_id, bot, update, stored=False)).ok
                await self.store.finish_announcement(conversation_id, member["id"], ok)
            else:
                ok = state == "delivered"
            if ok and self._remember:
                self._announced[key] = None
                if len(self._announced) > _ANNOUNCED_CACHE:
                    self._announced.popitem(last=False)
            return ok
        finally:
            del self._announcing[key]
            done.set_result(None)

    async def knows(self, conversation_id: str, member_ids: list[str]) -> bool:
        """Whether the bot was told that each member joined: remembered in this process when it is the only one,
        else one read of the store (another instance may have removed a member meanwhile)."""
        if self._remember:
            return all((conversation_id, member_id) in self._announced for member_id in member_ids)
        return len(await self.store.announced(conversation_id, member_ids)) == len(set(member_ids))

    def forget_member(self, conversation_id: str, member_id: str) -> None:
        """A member was removed: the next activity announces it to the bot again."""
        self._announced.pop((conversation_id, member_id), None)


async def _final_report(subscription: Subscription, activity_id: str) -> None:
    """Wait for a report that the delivery of `activity_id` ended (the bot took it, or it failed)."""
    while True:
        event = await subscription.get()
        report = event.delivery if event is not None else None
        if report is not None and report.activity_id == activity_id and report.state != "pending":
            return
