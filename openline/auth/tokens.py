"""Conversation tokens: HS256 JWTs scoped to one bot and one conversation, with an expiry.

Tokens are stateless: renewing issues a new token and leaves the old one valid
until its own expiry. Claims: `bot`, `conv`, optionally `user` (the user id, a
string, as the hosted service issues it: Web Chat and directlinejs decode the
token and use this claim as the user id), `name` (the user's name, when
known), `origins` (the trusted origins the token may be used from, when it
was generated with some: carried to every token and stream token issued for
it), and the standard `iat`, `nbf`, `exp`, `iss`, `aud`, `jti`.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from openline.protocol.errors import ErrorKind, ServiceError

ISSUER = "openline"
AUDIENCE = "openline:directline"
STREAM_AUDIENCE = "openline:stream"  # the `t` of a stream URL: opens that conversation's WebSocket, nothing else
STREAM_TTL = 60
_VERIFIED_MAX = 8192  # tokens remembered as verified (about 400 bytes each); past it, the older half is forgotten


@dataclass(frozen=True, slots=True)
class TokenClaims:
    bot_id: str
    conversation_id: str
    expires_at: int
    user: dict[str, str] | None = None
    origins: tuple[str, ...] = ()  # empty: the token names none (the bot's own, if any, still apply)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


def _origins(claims: dict[str, Any]) -> tuple[str, ...]:
    origins = claims.get("origins")
    if origins is None:
        return ()
    if not isinstance(origins, list) or not origins or not all(isinstance(o, str) and o for o in origins):
        raise ServiceError(ErrorKind.FORBIDDEN, "the secret or token is not valid")
    return tuple(origins)


def _user(claims: dict[str, Any]) -> dict[str, str] | None:
    """The user a token names: `{id}` or `{id, name}`; None without one.

    Tokens from earlier openline versions carried `user: {id, name}`; they are read too, until they expire.
    """
    user: Any = claims.get("user")
    name: Any = claims.get("name")
    if isinstance(user, dict):
        user, name = user.get("id"), user.get("name")
    if not isinstance(user, str) or not user:
        return None
    return {"id": user, "name": name} if isinstance(name, str) and name else {"id": user}


class TokenAuthority:
    """Issues and verifies conversation tokens with one signing key."""

    def __init__(self, key: bytes, ttl: int, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the token signing key must be at least 32 bytes")
        self._key = key
        self.ttl = ttl
        self._clock = clock
        # tokens already verified, by (token, audience): a client sends the same one with every request
        self._verified: dict[tuple[str, str], TokenClaims] = {}

    def issue(
        self,
        bot_id: str,
        conversation_id: str,
        user: dict[str, str] | None = None,
        origins: Sequence[str] = (),
    ) -> IssuedToken:
        """A conversation token; `origins` (parsed, see `protocol.origins`) limits the browsers it may be used from."""
        return self._issue(AUDIENCE, self.ttl, bot_id, conversation_id, user, origins)

    def issue_stream(self, bot_id: str, conversation_id: str, origins: Sequence[str] = ()) -> IssuedToken:
        """A short-lived credential for a stream URL (the client must connect within STREAM_TTL seconds), with the
        origins of the token it was issued to."""
        return self._issue(STREAM_AUDIENCE, STREAM_TTL, bot_id, conversation_id, None, origins)

    def _issue(
        self,
        audience: str,
        ttl: int,
        bot_id: str,
        conversation_id: str,
        user: dict[str, str] | None,
        origins: Sequence[str],
    ) -> IssuedToken:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "bot": bot_id,
            "conv": conversation_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        if user and user.get("id"):
            claims["user"] = user["id"]
            if user.get("name"):
                claims["name"] = user["name"]
        if origins:
            claims["origins"] = list(origins)
        return IssuedToken(jwt.encode(claims, self._key, algorithm="HS256"), ttl)

    def verify(self, token: str, audience: str = AUDIENCE) -> TokenClaims:
        """The claims of a valid token; raises FORBIDDEN, or TOKEN_EXPIRED once it has expired.

        A stream token is only valid with `audience=STREAM_AUDIENCE`, and a
        conversation token only without: neither can stand in for the other.
        """
        claims = self._verified.get((token, audience))
        if claims is None:
            claims = self._decode(token, audience)
            if len(self._verified) >= _VERIFIED_MAX:
                for old in list(itertools.islice(self._verified, _VERIFIED_MAX // 2)):
                    del self._verified[old]
            self._verified[(token, audience)] = claims
        if claims.expires_at <= self._clock():
            raise ServiceError(ErrorKind.TOKEN_EXPIRED, "the token has expired")
        return claims

    def _decode(self, token: str, audience: str) -> TokenClaims:
        """The claims of a token signed with the key for `audience`, its expiry not checked; raises as `verify`."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=audience,
                issuer=ISSUER,
                # time is checked by `verify` against the authority's clock, not PyJWT's
                options={
                    "require": ["exp", "bot", "conv"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise ServiceError(ErrorKind.FORBIDDEN, "the secret or token is not valid") from None
        if not isinstance(claims["exp"], int):
            raise ServiceError(ErrorKind.TOKEN_EXPIRED, "the token has expired")
        bot, conv = claims["bot"], claims["conv"]
        if not isinstance(bot, str) or not isinstance(conv, str):
            raise ServiceError(ErrorKind.FORBIDDEN, "the secret or token is not valid")
        return TokenClaims(bot, conv, claims["exp"], _user(claims), _origins(claims))
