"""Tests for openline.auth.tokens: issuing and verifying conversation tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from openline.auth.tokens import AUDIENCE, ISSUER, STREAM_AUDIENCE, IssuedToken, TokenAuthority, TokenClaims
from openline.protocol.errors import ErrorKind, ServiceError

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
TTL = 1800
T0 = 1_000_000.0  # a clock far from real time: expiry must follow the authority's clock only


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _authority(clock: Clock | None = None) -> TokenAuthority:
    return TokenAuthority(KEY, TTL, clock=clock or Clock())


def _kind(authority: TokenAuthority, token: str) -> ErrorKind:
    with pytest.raises(ServiceError) as info:
        authority.verify(token)
    return info.value.kind


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _good_claims(**overrides: object) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "bot": "bot1",
        "conv": "conv1",
        "iat": int(T0),
        "nbf": int(T0),
        "exp": int(T0) + TTL,
        "jti": "j",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_issue_and_verify_round_trip() -> None:
    authority = _authority()
    issued = authority.issue("bot1", "conv1")
    assert isinstance(issued, IssuedToken)
    assert issued.expires_in == TTL
    assert authority.verify(issued.token) == TokenClaims("bot1", "conv1", int(T0) + TTL, None)


def test_round_trip_with_a_user_claim() -> None:
    authority = _authority()
    user = {"id": "dl_user", "name": "Ann"}
    token = authority.issue("bot1", "conv1", user).token
    claims = authority.verify(token)
    assert claims.user == user
    assert (claims.bot_id, claims.conversation_id) == ("bot1", "conv1")
    # on the wire: the user id as a string (what Web Chat and directlinejs take as the user id), the name apart
    assert (_claims(token)["user"], _claims(token)["name"]) == ("dl_user", "Ann")


def test_a_user_without_a_name_has_no_name_claim() -> None:
    authority = _authority()
    token = authority.issue("bot1", "conv1", {"id": "dl_user"}).token
    assert _claims(token)["user"] == "dl_user" and "name" not in _claims(token)
    assert authority.verify(token).user == {"id": "dl_user"}


@pytest.mark.parametrize(
    ("claim", "user"),
    [
        ({"user": {"id": "dl_old", "name": "Old"}}, {"id": "dl_old", "name": "Old"}),
        ({"user": {"id": "dl_old"}}, {"id": "dl_old"}),
        ({"user": {"name": "no id"}}, None),
        ({"user": ""}, None),
        ({"user": 5}, None),
        ({"user": "dl_x", "name": 5}, {"id": "dl_x"}),
    ],
)
def test_user_claims_of_other_shapes(claim: dict[str, Any], user: dict[str, str] | None) -> None:
    """Tokens of earlier versions carried `user: {id, name}`: still read while they live; odd values name no one."""
    token = jwt.encode(_good_claims(**claim), KEY, algorithm="HS256")
    assert _authority().verify(token).user == user


@pytest.mark.parametrize("user", [None, {}])
def test_no_user_claim_when_none_given(user: dict[str, str] | None) -> None:
    authority = _authority()
    token = authority.issue("bot1", "conv1", user).token
    assert "user" not in _claims(token)
    assert authority.verify(token).user is None


def test_token_carries_the_standard_claims() -> None:
    claims = _claims(_authority().issue("bot1", "conv1").token)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["bot"] == "bot1"
    assert claims["conv"] == "conv1"
    assert claims["iat"] == claims["nbf"] == int(T0)
    assert claims["exp"] == int(T0) + TTL
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_token_is_hs256() -> None:
    assert jwt.get_unverified_header(_authority().issue("b", "c").token)["alg"] == "HS256"


def test_valid_until_just_before_expiry() -> None:
    clock = Clock()
    authority = _authority(clock)
    token = authority.issue("bot1", "conv1").token
    clock.now = T0 + TTL - 1
    assert authority.verify(token).conversation_id == "conv1"
    clock.now = T0 + TTL - 0.001
    assert authority.verify(token).conversation_id == "conv1"


@pytest.mark.parametrize("later", [TTL, TTL + 0.5, TTL + 1, 10 * TTL])
def test_expired_at_and_after_exp(later: float) -> None:
    clock = Clock()
    authority = _authority(clock)
    token = authority.issue("bot1", "conv1").token
    clock.now = T0 + later
    assert _kind(authority, token) is ErrorKind.TOKEN_EXPIRED


def test_a_token_issued_by_one_authority_is_verified_by_another_with_the_same_key() -> None:
    token = _authority().issue("bot1", "conv1").token
    assert TokenAuthority(KEY, 60, clock=Clock()).verify(token).bot_id == "bot1"


def test_renewing_leaves_the_old_token_valid() -> None:
    clock = Clock()
    authority = _authority(clock)
    old = authority.issue("bot1", "conv1").token
    clock.now += 60
    new = authority.issue("bot1", "conv1").token
    assert authority.verify(old).expires_at == int(T0) + TTL
    assert authority.verify(new).expires_at == int(T0) + 60 + TTL


def test_two_tokens_issued_in_the_same_second_differ() -> None:
    authority = _authority()
    first, second = authority.issue("bot1", "conv1").token, authority.issue("bot1", "conv1").token
    assert first != second
    assert _claims(first)["jti"] != _claims(second)["jti"]


def test_a_token_signed_with_another_key_is_forbidden() -> None:
    token = TokenAuthority(OTHER_KEY, TTL, clock=Clock()).issue("bot1", "conv1").token
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


def test_a_tampered_payload_is_forbidden() -> None:
    token = _authority().issue("bot1", "conv1").token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["conv"] = "someone-elses-conversation"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert _kind(_authority(), f"{header}.{forged}.{signature}") is ErrorKind.FORBIDDEN


def test_a_tampered_signature_is_forbidden() -> None:
    token = _authority().issue("bot1", "conv1").token
    flipped = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert _kind(_authority(), flipped) is ErrorKind.FORBIDDEN


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "a.b", "RCurR_XV9ZA.cwA.BKA.iaJrC8xpy8qbOF5xnR2vtCX7CZj0LdjAPGfiCpg4Fv0", "...."],
)
def test_garbage_is_forbidden(token: str) -> None:
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


def test_an_unsigned_token_is_forbidden() -> None:
    token = jwt.encode(_good_claims(), "", algorithm="none")
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


def test_a_correctly_signed_token_for_another_audience_is_forbidden() -> None:
    token = jwt.encode(_good_claims(aud="someone-else"), KEY, algorithm="HS256")
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


def test_a_correctly_signed_token_from_another_issuer_is_forbidden() -> None:
    token = jwt.encode(_good_claims(iss="someone-else"), KEY, algorithm="HS256")
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


@pytest.mark.parametrize("missing", ["exp", "bot", "conv"])
def test_a_correctly_signed_token_without_a_required_claim_is_forbidden(missing: str) -> None:
    claims = _good_claims()
    del claims[missing]
    token = jwt.encode(claims, KEY, algorithm="HS256")
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN


def test_a_hand_made_token_with_the_right_key_is_accepted() -> None:
    token = jwt.encode(_good_claims(), KEY, algorithm="HS256")
    assert _authority().verify(token) == TokenClaims("bot1", "conv1", int(T0) + TTL, None)


@pytest.mark.parametrize("size", [0, 16, 31])
def test_a_key_shorter_than_32_bytes_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenAuthority(b"k" * size, TTL)


def test_a_32_byte_key_is_accepted() -> None:
    assert TokenAuthority(b"k" * 32, TTL).ttl == TTL


def test_a_remembered_token_still_expires_and_keeps_its_audience() -> None:
    now = [1_000_000.0]
    authority = TokenAuthority(b"k" * 32, 60, lambda: now[0])
    token = authority.issue("bot", "c1", {"id": "u1"}).token
    assert authority.verify(token).conversation_id == "c1"
    assert authority.verify(token).conversation_id == "c1"  # the second time from memory
    with pytest.raises(ServiceError) as e:
        authority.verify(token, STREAM_AUDIENCE)
    assert e.value.kind is ErrorKind.FORBIDDEN
    now[0] += 61
    with pytest.raises(ServiceError) as e:
        authority.verify(token)
    assert e.value.kind is ErrorKind.TOKEN_EXPIRED


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from openline.auth import tokens

    monkeypatch.setattr(tokens, "_VERIFIED_MAX", 10)
    authority = TokenAuthority(b"k" * 32, 60)
    for i in range(25):
        authority.verify(authority.issue("bot", f"c{i}").token)
    assert len(authority._verified) <= 10


def test_origins_round_trip_on_conversation_and_stream_tokens() -> None:
    authority = _authority()
    origins = ("https://a.example", "http://localhost:8080")
    issued = authority.issue("bot1", "conv1", {"id": "dl_u"}, origins)
    assert _claims(issued.token)["origins"] == list(origins)
    assert authority.verify(issued.token).origins == origins
    stream = authority.issue_stream("bot1", "conv1", origins)
    assert authority.verify(stream.token, STREAM_AUDIENCE).origins == origins
    assert "origins" not in _claims(authority.issue("bot1", "conv1").token)
    assert authority.verify(authority.issue("bot1", "conv1").token).origins == ()


@pytest.mark.parametrize("origins", [[], "https://a.example", [5], [""]])
def test_a_signed_token_with_malformed_origins_is_forbidden(origins: Any) -> None:
    token = jwt.encode(_good_claims(origins=origins), KEY, algorithm="HS256")
    assert _kind(_authority(), token) is ErrorKind.FORBIDDEN
