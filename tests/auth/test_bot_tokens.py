"""Channel tokens and access tokens: their claims, reuse, verification and survival across a key rotation."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from openline.auth.bot_keys import KeyFile, Keyring
from openline.auth.bot_tokens import BOTFRAMEWORK_RESOURCE, BotTokens
from openline.protocol.errors import ErrorKind, ServiceError

ISSUER = "https://openline.example:3443"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def tokens(tmp_path: Path, clock: Clock) -> BotTokens:
    return BotTokens(Keyring(KeyFile(tmp_path), clock()), ISSUER, [BOTFRAMEWORK_RESOURCE, ISSUER], clock)


def public_key(t: BotTokens, token: str, now: float) -> object:
    key = t.keyring.keys.find(jwt.get_unverified_header(token)["kid"], now)
    assert key is not None
    return key.private_key.public_key()


def test_a_channel_token_carries_exactly_the_claims_both_sdk_families_accept(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    token = t.channel_token("Bot-App", "https://openline.example:3443/")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": t.keyring.keys.signing_key(clock()).kid}
    claims = jwt.decode(
        token,
        public_key(t, token, clock()),
        ["RS256"],
        audience="Bot-App",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims == {
        "iss": ISSUER,
        "aud": "Bot-App",
        "serviceurl": "https://openline.example:3443/",
        "nbf": int(clock.now) - 5,
        "iat": int(clock.now),
        "exp": int(clock.now) + 3600,
    }


def test_a_channel_token_is_reused_until_it_nears_expiry_or_the_key_changes(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    first = t.channel_token("app", "https://x/")
    assert t.channel_token("app", "https://x/") == first
    assert t.channel_token("app", "https://y/") != first
    assert t.channel_token("other", "https://x/") != first
    clock.now += 3000
    assert t.channel_token("app", "https://x/") != first, "renewed with less than 10 minutes left"
    second = t.channel_token("app", "https://x/")
    KeyFile(tmp_path).rotate(0, clock.now)
    t.keyring.refresh()
    assert t.channel_token("app", "https://x/") != second, "a new signing key signs at once"


def test_an_access_token_verifies_to_its_app_id(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    token, lifetime = t.access_token("my-app", BOTFRAMEWORK_RESOURCE)
    assert lifetime == 3600
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert t.verify_access_token(token) == "my-app"
    assert t.verify_access_token(t.access_token("my-app", ISSUER)[0]) == "my-app"


def refused(t: BotTokens, token: str) -> str:
    with pytest.raises(ServiceError) as caught:
        t.verify_access_token(token)
    assert caught.value.kind is ErrorKind.UNAUTHORIZED
    return caught.value.message


def test_an_access_token_is_refused_when_expired_not_yet_valid_or_a_channel_token(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    token, _ = t.access_token("my-app", BOTFRAMEWORK_RESOURCE)
    assert "not an access token" in refused(t, t.channel_token("my-app", "https://x/"))
    assert "not a JWT" in refused(t, "abc.def")
    clock.now += 3600
    assert "expired" in refused(t, token)
    clock.now -= 3600 + 60
    assert "not valid yet" in refused(t, token)


def test_an_access_token_of_another_issuer_audience_or_key_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    (tmp_path / "other").mkdir()
    elsewhere = BotTokens(Keyring(KeyFile(tmp_path / "other"), clock()), ISSUER, [BOTFRAMEWORK_RESOURCE], clock)
    assert "not signed by a key of this service" in refused(t, elsewhere.access_token("app", BOTFRAMEWORK_RESOURCE)[0])
    same_keys_other_issuer = BotTokens(t.keyring, "https://evil.example", [BOTFRAMEWORK_RESOURCE], clock)
    assert "another issuer" in refused(t, same_keys_other_issuer.access_token("app", BOTFRAMEWORK_RESOURCE)[0])
    assert "another audience" in refused(t, t.access_token("app", "https://graph.microsoft.com")[0])


def test_a_token_signed_before_a_rotation_still_verifies_until_it_expires(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    before, _ = t.access_token("my-app", BOTFRAMEWORK_RESOURCE)
    old_kid = jwt.get_unverified_header(before)["kid"]
    KeyFile(tmp_path).rotate(0, clock.now)  # signs at once
    assert t.keyring.refresh()
    after, _ = t.access_token("my-app", BOTFRAMEWORK_RESOURCE)
    assert jwt.get_unverified_header(after)["kid"] != old_kid
    fresh = tokens(tmp_path, clock)  # another instance, or a restart: nothing cached
    assert fresh.verify_access_token(before) == fresh.verify_access_token(after) == "my-app"
    clock.now += 3599
    assert fresh.verify_access_token(before) == "my-app"
    clock.now += 2
    assert "expired" in refused(fresh, before)


def test_an_access_token_is_reused_until_it_nears_expiry_or_the_key_changes(tmp_path: Path) -> None:
    clock = Clock()
    t = tokens(tmp_path, clock)
    first, lifetime = t.access_token("app", BOTFRAMEWORK_RESOURCE)
    clock.now += 100
    assert t.access_token("app", BOTFRAMEWORK_RESOURCE) == (first, lifetime - 100), "the seconds it has left"
    assert t.access_token("app", ISSUER)[0] != first and t.access_token("other", BOTFRAMEWORK_RESOURCE)[0] != first
    clock.now += 3000
    assert t.access_token("app", BOTFRAMEWORK_RESOURCE) == (t.access_token("app", BOTFRAMEWORK_RESOURCE)[0], 3600)
    assert t.access_token("app", BOTFRAMEWORK_RESOURCE)[0] != first
