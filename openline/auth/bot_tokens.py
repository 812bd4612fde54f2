"""The JWTs of bot authentication, both ways, signed RS256 with openline's keys (`auth.bot_keys`).

- Channel tokens go with every activity openline sends to a bot that has an app
  id. Their claims are the ones botbuilder and the Agents SDK both accept
  (bot-connector.md §3b, agents-sdk.md §2.3): `iss` = the public URL, `aud` =
  the bot's app id, `serviceurl` = the activity's serviceUrl, `nbf`/`iat`/`exp`,
  `kid` in the header; no `ver`, `appid`, `azp` or `tid`, which would turn the
  token into a skill or agent token.
- Access tokens are what the token endpoint gives a bot (client credentials) and
  the connector API then requires. They are RFC 9068 JWT access tokens
  (`typ: at+jwt`), so a channel token can never stand in for one: `aud` = the
  resource asked for, `azp`/`appid` = the bot's app id.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from openline.auth.bot_keys import TOKEN_LIFETIME, Keyring
from openline.protocol.errors import ErrorKind, ServiceError

CHANNEL_TOKEN_TTL = TOKEN_LIFETIME
ACCESS_TOKEN_TTL = TOKEN_LIFETIME
ACCESS_TOKEN_TYPE = "at+jwt"
BOTFRAMEWORK_RESOURCE = "https://api.botframework.com"  # the scope every SDK asks for (agents-sdk.md §3)
_REUSE_MARGIN = 600  # a cached channel token is renewed when it has less than this many seconds left
ClaimsOf = Callable[[int], dict[str, Any]]  # the claims of a token issued at a time (POSIX seconds)
_TOKEN_CACHE = 4096  # entries in each cache of tokens; past it, the cache starts again


class BotTokens:
    """Signs channel tokens and access tokens, and verifies access tokens.

    `issuer` is the public URL exactly as configured; `resources` are the
    audiences an access token may be asked for (`{resource}/.default` scopes).
    """

    def __init__(
        self, keyring: Keyring, issuer: str, resources: Iterable[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.resources = frozenset(r.rstrip("/") for r in resources)
        self.clock = clock
        self._channel_tokens: dict[tuple[str, str], tuple[str, str, int]] = {}  # -> (token, kid, exp)
        self._access_tokens: dict[tuple[str, str], tuple[str, str, int]] = {}  # (app id, resource) -> same
        self._verified: dict[str, tuple[str, int]] = {}  # access token -> (app id, exp)

    def _issued(
        self, cache: dict[tuple[str, str], tuple[str, str, int]], key: tuple[str, str], typ: str, claims: ClaimsOf
    ) -> tuple[str, int]:
        """A token from `cache`, or a new one signed now (`claims(issued)` gives its claims, `exp` among them); and
        the seconds it has left. A cached token is reused until it is close to expiry or another key signs."""
        now = self.clock()
        signing = self.keyring.keys.signing_key(now)
        cached = cache.get(key)
        if cached is not None and cached[1] == signing.kid and cached[2] - now > _REUSE_MARGIN:
            return cached[0], int(cached[2] - now)
        issued = int(now)
        body = claims(issued)
        token = jwt.encode(body, signing.private_key, algorithm="RS256", headers={"kid": signing.kid, "typ": typ})
        if len(cache) > _TOKEN_CACHE:
            cache.clear()
        cache[key] = (token, signing.kid, int(body["exp"]))
        return token, int(body["exp"]) - issued

    def channel_token(self, app_id: str, service_url: str) -> str:
        """The bearer token of one call to the bot `app_id`; reused until it is close to expiry or a key rotated."""

        def claims(issued: int) -> dict[str, Any]:
            return {
                "iss": self.issuer,
                "aud": app_id,
                "serviceurl": service_url,
                "nbf": issued - 5,
                "iat": issued,
                "exp": issued + CHANNEL_TOKEN_TTL,
            }

        return self._issued(self._channel_tokens, (app_id, service_url), "JWT", claims)[0]

    def access_token(self, app_id: str, resource: str) -> tuple[str, int]:
        """A connector access token for the bot `app_id`, for `resource` (one of `resources`); and the seconds
        it has left. Reused until it is close to expiry or a key rotated: botbuilder-python asks on every turn,
        and a signature costs about half a millisecond."""

        def claims(issued: int) -> dict[str, Any]:
            return {
                "iss": self.issuer,
                "aud": resource,
                "sub": app_id,
                "azp": app_id,
                "appid": app_id,
                "client_id": app_id,
                "nbf": issued - 5,
                "iat": issued,
                "exp": issued + ACCESS_TOKEN_TTL,
                "jti": secrets.token_urlsafe(12),
            }

        return self._issued(self._access_tokens, (app_id, resource), ACCESS_TOKEN_TYPE, claims)

    def verify_access_token(self, token: str) -> str:
        """The app id an access token was issued to; raises UNAUTHORIZED saying what is wrong with it.

        Checked: the RS256 signature by a published key, `typ` at+jwt, `iss`,
        `aud` among the resources, `nbf` and `exp` (no leeway: openline is both
        issuer and verifier, on one clock).
        """
        now = self.clock()
        known = self._verified.get(token)
        if known is not None and known[1] > now:
            return known[0]
        claims = self._decode(token, now)
        app_id = claims.get("azp")
        if not isinstance(app_id, str) or not app_id:
            raise ServiceError(ErrorKind.UNAUTHORIZED, "the bot's token names no app id (azp)")
        if len(self._verified) > _TOKEN_CACHE:
            self._verified.clear()
        self._verified[token] = (app_id, int(claims["exp"]))
        return app_id

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        def refused(why: str) -> ServiceError:
            return ServiceError(ErrorKind.UNAUTHORIZED, f"the bot's token is not valid: {why}")

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused("it is not a JWT") from None
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise refused("it is not an access token from this service's token endpoint")
        kid = header.get("kid")
        key = self.keyring.keys.find(kid, now) if isinstance(kid, str) else None
        if key is None:
            raise refused("it was not signed by a key of this service")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                audience=sorted(self.resources),
                issuer=self.issuer,
                options={
                    "require": ["exp", "nbf", "iss", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise refused("it was issued for another audience") from None
        except jwt.InvalidIssuerError:
            raise refused(f"it was issued by another issuer (this one is {self.issuer})") from None
        except jwt.PyJWTError as e:
            raise refused(str(e) or type(e).__name__) from None
        if not isinstance(claims["exp"], int) or claims["exp"] <= now:
            raise refused("it has expired")
        if not isinstance(claims["nbf"], int) or claims["nbf"] > now:
            raise refused("it is not valid yet")
        return claims
