"""Tests for openline.auth.admin: the admin secret, browser sessions made from it, and what `allows` accepts."""

from __future__ import annotations

import pytest

from openline.auth.admin import SESSION_COOKIE, SESSION_TTL, AdminAuth

SECRET = "admin-secret-0123456789"
OTHER_SECRET = "another-admin-secret-98765"
KEY = b"k" * 32
OTHER_KEY = b"o" * 32
T0 = 1_000_000.0  # a clock far from real time: expiry must follow the auth's clock only


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _auth(secret: str = SECRET, key: bytes = KEY, clock: Clock | None = None) -> AdminAuth:
    return AdminAuth(secret, key, clock or Clock())


# the secret


def test_the_secret_is_recognised() -> None:
    auth = _auth()
    assert auth.is_secret(SECRET)


@pytest.mark.parametrize("candidate", ["", SECRET[:-1], SECRET + "x", SECRET.upper(), f" {SECRET}", OTHER_SECRET])
def test_other_strings_are_not_the_secret(candidate: str) -> None:
    assert not _auth().is_secret(candidate)


# sessions


def test_a_session_round_trips() -> None:
    auth = _auth()
    session = auth.new_session()
    assert auth.is_session(session)
    expires, _, mac = session.partition(".")
    assert int(expires) == int(T0) + SESSION_TTL and mac
    assert "=" not in session and ";" not in session and " " not in session, "a plain cookie value"
    # another instance with the same secret and key (a restart) accepts it
    assert _auth().is_session(session)


def test_a_session_expires_after_its_ttl() -> None:
    clock = Clock()
    auth = _auth(clock=clock)
    session = auth.new_session()
    clock.now = T0 + SESSION_TTL - 1
    assert auth.is_session(session)
    clock.now = T0 + SESSION_TTL
    assert not auth.is_session(session)
    clock.now = T0 + SESSION_TTL * 10
    assert not auth.is_session(session)


def test_a_session_made_later_lives_from_then() -> None:
    clock = Clock()
    auth = _auth(clock=clock)
    clock.now = T0 + 100
    session = auth.new_session()
    clock.now = T0 + 100 + SESSION_TTL - 1
    assert auth.is_session(session)


def test_a_tampered_session_is_refused() -> None:
    auth = _auth()
    session = auth.new_session()
    expires, _, mac = session.partition(".")
    longer = f"{int(expires) + 3600}.{mac}"
    assert not auth.is_session(longer), "the expiry is signed"
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert not auth.is_session(f"{expires}.{flipped}")
    assert not auth.is_session(f"{expires}.")
    assert not auth.is_session(expires)
    assert not auth.is_session(f"{expires}.{mac}x")
    assert not auth.is_session(f"+{expires}.{mac}")
    assert not auth.is_session(f" {expires}.{mac}")


@pytest.mark.parametrize("value", ["", ".", "x.y", "-1.abc", "1e9.abc", "١٢٣٤٥٦٧٨٩٠.abc", "garbage"])
def test_malformed_sessions_are_refused(value: str) -> None:
    assert not _auth().is_session(value)


def test_a_session_of_another_admin_secret_is_refused() -> None:
    session = _auth(OTHER_SECRET).new_session()
    assert _auth(OTHER_SECRET).is_session(session)
    assert not _auth(SECRET).is_session(session), "changing the secret ends every session"


def test_a_session_of_another_signing_key_is_refused() -> None:
    session = _auth(key=OTHER_KEY).new_session()
    assert not _auth().is_session(session)


# allows


def test_allows_the_bearer_secret() -> None:
    auth = _auth()
    assert auth.allows(f"Bearer {SECRET}", {}) == (True, False)
    assert auth.allows(f"bearer {SECRET}", {}) == (True, False)
    assert auth.allows(f"  BEARER {SECRET}  ", {}) == (True, False)


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {OTHER_SECRET}", "Bearer ", "Bearer", f"Basic {SECRET}", SECRET, f"Token {SECRET}", " "],
)
def test_refuses_other_authorization_headers(authorization: str) -> None:
    allowed, by_cookie = _auth().allows(authorization, {})
    assert not allowed and not by_cookie


def test_allows_the_session_cookie() -> None:
    auth = _auth()
    assert auth.allows(None, {SESSION_COOKIE: auth.new_session()}) == (True, True)
    assert auth.allows("", {SESSION_COOKIE: auth.new_session()}) == (True, True), "an empty header is no header"


def test_refuses_without_a_credential_or_with_a_bad_cookie() -> None:
    auth = _auth()
    assert auth.allows(None, {}) == (False, True)
    assert auth.allows(None, {SESSION_COOKIE: "123.abc"}) == (False, True)
    assert auth.allows(None, {SESSION_COOKIE: _auth(OTHER_SECRET).new_session()}) == (False, True)
    assert auth.allows(None, {"other_cookie": auth.new_session()}) == (False, True)
    # the secret itself is not a session
    assert auth.allows(None, {SESSION_COOKIE: SECRET}) == (False, True)


def test_an_authorization_header_decides_over_the_cookie() -> None:
    auth = _auth()
    cookies = {SESSION_COOKIE: auth.new_session()}
    assert auth.allows(f"Bearer {SECRET}", cookies) == (True, False)
    assert auth.allows(f"Bearer {OTHER_SECRET}", cookies) == (False, False)


def test_an_expired_cookie_is_refused() -> None:
    clock = Clock()
    auth = _auth(clock=clock)
    cookies = {SESSION_COOKIE: auth.new_session()}
    clock.now += SESSION_TTL
    assert auth.allows(None, cookies) == (False, True)
