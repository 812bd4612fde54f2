"""Who is calling: the Authorization header, resolved to a bot and (for a token) one conversation.

Both `Bearer` and `BotConnector` schemes are accepted, in any letter case. A
secret is looked up by its SHA-256 digest, so the lookup does not compare the
secret itself character by character. The bot's access rules (`auth.access`)
are applied here too, to the request's `Origin`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from openline.auth.access import AccessRules
from openline.auth.tokens import TokenAuthority
from openline.protocol.errors import ErrorKind, ServiceError

_SCHEMES = ("bearer", "botconnector")


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: a bot's secret (any conversation) or a token (one conversation)."""

    bot_id: str
    conversation_id: str | None = None  # None for a secret
    user: dict[str, str] | None = None
    origins: tuple[str, ...] = ()  # a token's own trusted origins (see auth.access)

    @property
    def is_secret(self) -> bool:
        return self.conversation_id is None

    def require_secret(self) -> None:
        if not self.is_secret:
            raise ServiceError(ErrorKind.FORBIDDEN, "this operation needs the Direct Line secret, not a token")

    def require_conversation(self, conversation_id: str) -> None:
        if self.conversation_id is not None and self.conversation_id != conversation_id:
            raise ServiceError(ErrorKind.FORBIDDEN, "the token is not valid for this conversation")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def credential_of(header: str | None) -> str:
    """The credential in an `Authorization: <scheme> <credential>` header; raises UNAUTHORIZED."""
    if not header or not header.strip():
        raise ServiceError(ErrorKind.UNAUTHORIZED, "the Authorization header is missing")
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() not in _SCHEMES or not credential or " " in credential:
        raise ServiceError(ErrorKind.UNAUTHORIZED, "the Authorization header must be 'Bearer <secret or token>'")
    return credential


class Authenticator:
    """Resolves credentials: the configured secrets of each bot, and conversation tokens."""

    def __init__(
        self, secrets_by_bot: Mapping[str, Iterable[str]], tokens: TokenAuthority, access: AccessRules | None = None
    ) -> None:
        self.replace(secrets_by_bot)
        self.tokens = tokens
        self.access = access or AccessRules()

    def replace(self, secrets_by_bot: Mapping[str, Iterable[str]]) -> None:
        """Accept these secrets from now on, and no others (`openline secret new` and `revoke`)."""
        self._secrets = {_digest(s): bot for bot, secrets in secrets_by_bot.items() for s in secrets}

    def secret_counts(self) -> dict[str, int]:
        """How many secrets each bot with any has."""
        counts: dict[str, int] = {}
        for bot in self._secrets.values():
            counts[bot] = counts.get(bot, 0) + 1
        return counts

    def principal(self, authorization: str | None, origin: str | None = None) -> Principal:
        """The caller, if its credential is valid and may be used from `origin` (the request's `Origin` header).

        Raises UNAUTHORIZED, FORBIDDEN (a wrong credential, or one refused by the bot's access rules),
        TOKEN_EXPIRED.
        """
        credential = credential_of(authorization)
        bot = self._secrets.get(_digest(credential))
        if bot is not None:
            self.access.check(bot, origin, secret=True)
            return Principal(bot)
        claims = self.tokens.verify(credential)
        self.access.check(claims.bot_id, origin, secret=False, token_origins=claims.origins)
        if claims.user is None and self.access.enhanced(claims.bot_id):
            # issued before enhanced authentication was turned on for the bot
            raise ServiceError(
                ErrorKind.FORBIDDEN, "this bot uses enhanced authentication: the token names no user; get a new token"
            )
        # a copy: activities built from it are changed later, and the claims are remembered for the next request
        user = dict(claims.user) if claims.user else None
        return Principal(claims.bot_id, claims.conversation_id, user, claims.origins)
