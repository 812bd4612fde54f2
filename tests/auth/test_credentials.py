"""Tests for openline.auth.credentials: the Authorization header, secrets, tokens and principals."""

from __future__ import annotations

import pytest

from openline.auth.access import rules_of
from openline.auth.credentials import Authenticator, Principal, credential_of
from openline.auth.tokens import TokenAuthority
from openline.protocol.errors import ErrorKind, ServiceError

KEY = b"s" * 32
NOW = 1_000_000.0


def _authority() -> TokenAuthority:
    return TokenAuthority(KEY, 1800, clock=lambda: NOW)


def _authenticator(tokens: TokenAuthority | None = None) -> Authenticator:
    return Authenticator({"bot1": ["secret-one", "secret-one-b"], "bot2": ("secret-two",)}, tokens or _authority())


def _fails(kind: ErrorKind, call, *args) -> ServiceError:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as info:
        call(*args)
    assert info.value.kind is kind
    return info.value


# credential_of


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic x", "Basic dXNlcjpwYXNz", "Bearer a b", "Token x", "x"],
)
def test_credential_of_rejects_unusable_headers(header: str | None) -> None:
    _fails(ErrorKind.UNAUTHORIZED, credential_of, header)


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        ("Bearer abc", "abc"),
        ("bearer  x ", "x"),
        ("BEARER x", "x"),
        ("  Bearer x  ", "x"),
        ("BotConnector x", "x"),
        ("BOTCONNECTOR x", "x"),
        ("botconnector RCurR_XV9ZA.cwA.BKA.iaJr", "RCurR_XV9ZA.cwA.BKA.iaJr"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig-_", "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig-_"),
    ],
)
def test_credential_of_accepts_both_schemes_in_any_case_and_trims(header: str, credential: str) -> None:
    assert credential_of(header) == credential


# Authenticator


@pytest.mark.parametrize(("secret", "bot"), [("secret-one", "bot1"), ("secret-one-b", "bot1"), ("secret-two", "bot2")])
def test_a_secret_resolves_to_its_bot_and_no_conversation(secret: str, bot: str) -> None:
    principal = _authenticator().principal(f"Bearer {secret}")
    assert principal == Principal(bot, None)
    assert principal.is_secret
    assert principal.user is None


def test_a_secret_works_with_the_botconnector_scheme() -> None:
    assert _authenticator().principal("BotConnector secret-two") == Principal("bot2")


def test_a_token_resolves_to_its_bot_and_conversation() -> None:
    tokens = _authority()
    token = tokens.issue("bot2", "conv9").token
    principal = _authenticator(tokens).principal(f"Bearer {token}")
    assert principal == Principal("bot2", "conv9", None)
    assert not principal.is_secret


def test_a_token_with_a_user_carries_the_user() -> None:
    tokens = _authority()
    token = tokens.issue("bot1", "conv9", {"id": "dl_u", "name": "Ann"}).token
    principal = _authenticator(tokens).principal(f"botconnector {token}")
    assert principal == Principal("bot1", "conv9", {"id": "dl_u", "name": "Ann"})


@pytest.mark.parametrize("credential", ["unknown-secret", "secret-on", "SECRET-ONE", "secret-one-bb"])
def test_an_unknown_secret_is_forbidden(credential: str) -> None:
    _fails(ErrorKind.FORBIDDEN, _authenticator().principal, f"Bearer {credential}")


def test_a_token_from_another_key_is_forbidden() -> None:
    token = TokenAuthority(b"x" * 32, 1800, clock=lambda: NOW).issue("bot1", "conv1").token
    _fails(ErrorKind.FORBIDDEN, _authenticator().principal, f"Bearer {token}")


def test_an_expired_token_is_token_expired() -> None:
    token = TokenAuthority(KEY, 10, clock=lambda: NOW - 10).issue("bot1", "conv1").token
    _fails(ErrorKind.TOKEN_EXPIRED, _authenticator().principal, f"Bearer {token}")


@pytest.mark.parametrize("header", [None, "", "Basic secret-one", "Bearer secret-one extra"])
def test_an_unreadable_header_is_unauthorized_even_with_a_valid_secret(header: str | None) -> None:
    _fails(ErrorKind.UNAUTHORIZED, _authenticator().principal, header)


def test_no_secrets_configured_means_only_tokens_work() -> None:
    tokens = _authority()
    authenticator = Authenticator({}, tokens)
    assert authenticator.principal("Bearer " + tokens.issue("b", "c").token) == Principal("b", "c")
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer anything")


def test_replaced_secrets_are_the_only_ones_accepted_and_tokens_still_work() -> None:
    """`openline secret new` and `revoke`, picked up by a running service."""
    authenticator = _authenticator()
    token = authenticator.tokens.issue("bot1", "conv1").token
    authenticator.replace({"bot1": ["secret-one", "made-later"], "bot2": []})
    assert authenticator.principal("Bearer made-later") == Principal("bot1")
    assert authenticator.principal("Bearer secret-one") == Principal("bot1")
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer secret-one-b")
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer secret-two")
    assert authenticator.principal(f"Bearer {token}") == Principal("bot1", "conv1")
    assert authenticator.secret_counts() == {"bot1": 2}


def test_the_authenticator_exposes_its_token_authority() -> None:
    tokens = _authority()
    assert _authenticator(tokens).tokens is tokens


# Principal


def test_require_secret_passes_for_a_secret() -> None:
    Principal("bot1").require_secret()


def test_require_secret_rejects_a_token() -> None:
    _fails(ErrorKind.FORBIDDEN, Principal("bot1", "conv1").require_secret)


@pytest.mark.parametrize("conversation", ["conv1", "conv2", ""])
def test_require_conversation_lets_a_secret_use_any_conversation(conversation: str) -> None:
    Principal("bot1").require_conversation(conversation)


def test_require_conversation_passes_for_the_tokens_conversation() -> None:
    Principal("bot1", "conv1").require_conversation("conv1")


@pytest.mark.parametrize("conversation", ["conv2", "CONV1", "conv1 ", ""])
def test_require_conversation_rejects_another_conversation(conversation: str) -> None:
    _fails(ErrorKind.FORBIDDEN, Principal("bot1", "conv1").require_conversation, conversation)


def test_principal_is_immutable() -> None:
    principal = Principal("bot1")
    with pytest.raises(AttributeError):
        principal.bot_id = "bot2"  # type: ignore[misc]


def test_the_bots_access_rules_apply_to_the_origin() -> None:
    tokens = _authority()
    authenticator = Authenticator(
        {"bot1": ["secret-one"], "bot2": ["secret-two"]},
        tokens,
        rules_of([("bot1", ("https://a.example",), False), ("bot2", (), True)]),
    )
    assert authenticator.principal("Bearer secret-one", "https://a.example") == Principal("bot1")
    assert authenticator.principal("Bearer secret-one") == Principal("bot1")
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer secret-one", "https://b.example")
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer secret-two", "https://b.example")
    bound = tokens.issue("bot2", "c", {"id": "dl_u"}, ("https://b.example",)).token
    principal = authenticator.principal("Bearer " + bound, "https://b.example")
    assert principal == Principal("bot2", "c", {"id": "dl_u"}, ("https://b.example",))
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer " + bound, "https://a.example")
    # enhanced authentication: a token must name its user
    _fails(ErrorKind.FORBIDDEN, authenticator.principal, "Bearer " + tokens.issue("bot2", "c").token)
