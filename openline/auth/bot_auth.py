"""Who a bot is: its credentials (app id, passwords, sidecar secret) and the caller of each connector request.

A bot with an app id proves itself with an access token from openline's token
endpoint; only a bot without one may call unauthenticated, and only while
`require_bot_auth` is off. A caller acts for one bot only: a bot's token opens
nothing of another bot's.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from openline.auth.bot_tokens import BotTokens
from openline.protocol.errors import ErrorKind, ServiceError


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class BotCredentials:
    """One configured bot's side of bot authentication (`app_id` None: authentication off for it)."""

    bot_id: str
    app_id: str | None = None
    passwords: tuple[str, ...] = field(default=(), repr=False)
    sidecar_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class BotCaller:
    """The caller of one connector request: a bot proven by its token, or an unauthenticated caller (None)."""

    bot_id: str | None
    anonymous_for: frozenset[str] = frozenset()  # the bots an unauthenticated caller may act for

    def may_act_for(self, bot_id: str) -> bool:
        return bot_id == self.bot_id if self.bot_id is not None else bot_id in self.anonymous_for

    def require(self, bot_id: str) -> None:
        """Raise unless this caller may act for the bot: 401 without a token, 403 with another bot's."""
        if self.may_act_for(bot_id):
            return
        if self.bot_id is not None:
            raise ServiceError(ErrorKind.FORBIDDEN, "the token is another bot's: it opens nothing of this bot's")
        raise ServiceError(
            ErrorKind.UNAUTHORIZED,
            "this bot's calls must carry 'Authorization: Bearer <access token>' from this service's token endpoint",
        )


class BotAuthority:
    """Resolves connector callers and checks the credentials bots present to the token endpoint."""

    def __init__(
        self,
        bots: Iterable[BotCredentials],
        tokens: BotTokens,
        require_bot_auth: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bots = {b.bot_id: b for b in bots}
        self.clock = clock
        self._refusals: dict[str, tuple[float, str]] = {}  # bot id -> (when, what was refused that concerns it)
        self.tokens = tokens
        self.require_bot_auth = require_bot_auth
        self._by_app_id = {b.app_id.lower(): b for b in self.bots.values() if b.app_id}
        self._passwords = {b.bot_id: [_digest(p) for p in b.passwords] for b in self.bots.values()}
        self._sidecars = {_digest(b.sidecar_secret): b for b in self.bots.values() if b.sidecar_secret}
        anonymous = () if require_bot_auth else (b.bot_id for b in self.bots.values() if not b.app_id)
        self._anonymous = BotCaller(None, frozenset(anonymous))

    def caller(self, authorization: str | None) -> BotCaller:
        """The caller an Authorization header proves; UNAUTHORIZED for a header that proves nothing.

        Without a header: the unauthenticated caller, which may act only for bots
        without an app id (none while `require_bot_auth` is on).
        """
        if authorization is None or not authorization.strip():
            if not self._anonymous.anonymous_for:
                raise ServiceError(
                    ErrorKind.UNAUTHORIZED,
                    "the Authorization header is missing: bots call with 'Bearer <access token>' from"
                    f" {self.tokens.issuer}/adfs/oauth2/token",
                )
            return self._anonymous
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceError(ErrorKind.UNAUTHORIZED, "the Authorization header must be 'Bearer <access token>'")
        app_id = self.tokens.verify_access_token(token.strip())
        bot = self._by_app_id.get(app_id.lower())
        if bot is None:
            raise ServiceError(ErrorKind.UNAUTHORIZED, f"no bot with app id {app_id!r} is configured any more")
        return BotCaller(bot.bot_id)

    def client(self, client_id: str, client_secret: str) -> BotCredentials | None:
        """The bot whose app id and one of whose passwords these are; None otherwise (compared by digest)."""
        bot = self._by_app_id.get(client_id.lower())
        if bot is None:
            return None
        candidate = _digest(client_secret)
        # every password is compared, so timing does not tell which one matched
        return bot if sum(hmac.compare_digest(candidate, d) for d in self._passwords[bot.bot_id]) else None

    def has_app_id(self, client_id: str) -> bool:
        return client_id.lower() in self._by_app_id

    def sidecar(self, secret: str) -> BotCredentials | None:
        """The bot whose sidecar secret this is (the one credential of the sidecar token API), or None."""
        return self._sidecars.get(_digest(secret))

    def note_refusal(self, app_id_or_bot: str, what: str) -> None:
        """Remember a refusal that concerns a bot (by its app id or bot id), so a failed delivery to it can say
        what was seen meanwhile (`recent_refusal`). `what` says what was seen, not who did it: anyone can send
        a wrong password for an app id, or call on a conversation without a token."""
        bot = self._by_app_id.get(app_id_or_bot.lower()) or self.bots.get(app_id_or_bot)
        if bot is not None:
            self._refusals[bot.bot_id] = (self.clock(), what)

    def authorize(self, caller: BotCaller, bot_id: str, what: str = "a connector call for its conversation") -> None:
        """Raise (401/403) unless the caller may act for the bot; a refusal is remembered for the bot, so a
        delivery to it failing meanwhile can say what was seen (`what`, "... was refused: <why>")."""
        try:
            caller.require(bot_id)
        except ServiceError as e:
            self.note_refusal(bot_id, f"{what} was refused: {e.message}")
            raise

    def note_unknown_sidecar(self) -> None:
        """A sidecar request with a secret that is no bot's: blamed on the bot that has one, when only one has."""
        with_sidecar = [b for b in self.bots.values() if b.sidecar_secret]
        if len(with_sidecar) == 1:
            self.note_refusal(
                with_sidecar[0].bot_id, "the sidecar was asked for a token with a secret that is no bot's"
            )

    def recent_refusal(self, bot_id: str, since: float) -> str | None:
        """What the bot was last refused, if that happened at `since` (POSIX seconds) or later."""
        refusal = self._refusals.get(bot_id)
        return refusal[1] if refusal is not None and refusal[0] >= since else None
