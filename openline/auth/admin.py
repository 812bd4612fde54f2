"""The admin credential of `/inspect` and `/admin/...`: the admin secret, and browser sessions made from it.

API callers send `Authorization: Bearer <admin secret>`. The inspector page signs
in once with the secret and gets a session cookie: an expiry and an HMAC over it,
under a key derived from the signing key and the admin secret, so changing the
secret ends every session. Secrets are compared by their SHA-256 digests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from openline.auth.credentials import credential_of
from openline.protocol.errors import ServiceError

SESSION_COOKIE = "openline_admin"
SESSION_TTL = 12 * 3600


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class AdminAuth:
    def __init__(self, secret: str, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = _digest(secret)
        self._key = hmac.new(key, b"openline admin sessions\n" + self._secret, hashlib.sha256).digest()
        self._clock = clock

    def is_secret(self, candidate: str) -> bool:
        return hmac.compare_digest(_digest(candidate), self._secret)

    def _mac(self, expires: int) -> str:
        mac = hmac.new(self._key, str(expires).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def new_session(self) -> str:
        """A session cookie value, valid for SESSION_TTL seconds."""
        expires = int(self._clock()) + SESSION_TTL
        return f"{expires}.{self._mac(expires)}"

    def is_session(self, value: str) -> bool:
        expires, _, mac = value.partition(".")
        # a length bound first: int() of thousands of digits raises (and is slow)
        if not (0 < len(expires) <= 12 and expires.isascii() and expires.isdigit()) or int(expires) <= self._clock():
            return False
        # compare_digest refuses non-ASCII text (TypeError): such a cookie is simply not a session
        return mac.isascii() and hmac.compare_digest(self._mac(int(expires)), mac)

    def allows(self, authorization: str | None, cookies: Mapping[str, str]) -> tuple[bool, bool]:
        """(allowed, by_cookie): a Bearer admin secret, or a valid session cookie."""
        if authorization:
            try:
                return self.is_secret(credential_of(authorization)), False
            except ServiceError:  # not a `Bearer <credential>` header
                return False, False
        session = cookies.get(SESSION_COOKIE)
        return session is not None and self.is_session(session), True
