"""Access rules per bot: trusted origins, and enhanced authentication (the hosted service's mode).

Trusted origins. A request that carries an `Origin` header comes from a
browser page; when the origins that apply to its credential do not include
that page's, it is refused (FORBIDDEN). What applies: a bot's configured
`trusted_origins` for its secret; for a token, the origins it was generated
with (`trustedOrigins`, which must lie within the bot's), or the bot's when it
names none; when both are set (the bot's list changed since), only origins in
both. A request without `Origin` (a server, curl, a mobile app) is not a
browser's and is not checked. Signed file links are not checked: a browser's
`<img>` or download sends no `Origin`, and the link itself is the credential.

Enhanced authentication (learn.microsoft.com "Direct Line enhanced
authentication"): every user id starts with `dl_`; a token always names its
user (one is made when the request names none) and posts are sent as that
user; the secret is for servers only: from a browser it is refused
(FORBIDDEN), and reconnecting with it answers MISSING "Missing user ID", as the
hosted service does (spec directline-3.0 §1.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from openline.protocol import activity as act
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ids import random_id
from openline.protocol.origins import origin_of, parse_origin

USER_PREFIX = "dl_"  # what enhanced authentication requires of user ids


@dataclass(frozen=True, slots=True)
class BotAccess:
    trusted_origins: frozenset[str] = frozenset()  # parsed (protocol.origins); empty: any origin
    enhanced_auth: bool = False


_OPEN = BotAccess()


class AccessRules:
    """The access rules of each configured bot (bots not named here have none)."""

    def __init__(self, bots: Mapping[str, BotAccess] | None = None) -> None:
        self._bots = dict(bots or {})

    def of(self, bot_id: str) -> BotAccess:
        return self._bots.get(bot_id, _OPEN)

    def enhanced(self, bot_id: str) -> bool:
        return self.of(bot_id).enhanced_auth

    def allowed_origins(self, bot_id: str, token_origins: Iterable[str]) -> frozenset[str] | None:
        """The origins a credential may be used from; None: any (no rule applies)."""
        bot = self.of(bot_id).trusted_origins
        token = frozenset(token_origins)
        if bot and token:
            return bot & token
        return bot or token or None

    def check(self, bot_id: str, origin: str | None, *, secret: bool, token_origins: Iterable[str] = ()) -> None:
        """Refuse (FORBIDDEN) a browser's request the rules do not allow; `origin` is the `Origin` header, if any."""
        if origin is None:
            return
        if secret and self.enhanced(bot_id):
            raise ServiceError(
                ErrorKind.FORBIDDEN,
                "this bot uses enhanced authentication: its secret cannot be used from a browser;"
                " exchange it for a token on your server (POST /v3/directline/tokens/generate)",
            )
        allowed = self.allowed_origins(bot_id, token_origins)
        if allowed is not None and origin_of(origin) not in allowed:
            whose = "this token's" if not secret and frozenset(token_origins) else "this bot's"
            raise ServiceError(ErrorKind.FORBIDDEN, f"origin {origin!r} is not one of {whose} trusted origins")

    def token_origins(self, bot_id: str, requested: Sequence[str]) -> tuple[str, ...]:
        """The origins a token is generated with (`trustedOrigins` of the request), parsed; MALFORMED for one that
        is not an origin or not one of the bot's trusted origins."""
        origins: list[str] = []
        bot = self.of(bot_id).trusted_origins
        for text in requested:
            try:
                origin = parse_origin(text)
            except ValueError as e:
                raise ServiceError(ErrorKind.MALFORMED, f"trustedOrigins: {e}") from None
            if bot and origin not in bot:
                raise ServiceError(
                    ErrorKind.MALFORMED, f"trustedOrigins: {text!r} is not one of the bot's trusted origins"
                )
            origins.append(origin)
        return tuple(dict.fromkeys(origins))

    def token_user(self, bot_id: str, user: act.Account | None) -> act.Account | None:
        """The user a new token names: as requested, checked; with enhanced authentication one is made when the
        request names none (`dl_` and 16 random characters), and a requested one must start with `dl_`."""
        if not self.enhanced(bot_id):
            return user
        if user is None:
            return act.account(USER_PREFIX + random_id(16))
        self.check_user_id(bot_id, user["id"])
        return user

    def check_user_id(self, bot_id: str, user_id: str) -> None:
        """Refuse (MALFORMED) a user id enhanced authentication does not allow: one not starting with `dl_`."""
        if self.enhanced(bot_id) and not user_id.startswith(USER_PREFIX):
            raise ServiceError(
                ErrorKind.MALFORMED,
                f"this bot uses enhanced authentication: user ids must start with {USER_PREFIX!r}, not {user_id!r}",
            )


def rules_of(bots: Iterable[tuple[str, Iterable[str], bool]]) -> AccessRules:
    """Rules from (bot id, trusted origins already parsed, enhanced authentication) triples."""
    return AccessRules({bot_id: BotAccess(frozenset(origins), enhanced) for bot_id, origins, enhanced in bots})
