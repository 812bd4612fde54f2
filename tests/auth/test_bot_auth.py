"""Who may act for which bot: tokens, unauthenticated callers, require_bot_auth, passwords and sidecar secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from openline.auth.bot_auth import BotAuthority, BotCaller, BotCredentials
from openline.auth.bot_keys import KeyFile, Keyring
from openline.auth.bot_tokens import BOTFRAMEWORK_RESOURCE, BotTokens
from openline.protocol.errors import ErrorKind, ServiceError

BOTS = [
    BotCredentials("a", "App-A", ("password-a-0123456789", "password-a-rotated-01")),
    BotCredentials("b", "app-b", ("password-b-0123456789",), "sidecar-b-0123456789abcdef0123456789"),
    BotCredentials("open"),
]


def authority(tmp_path: Path, require: bool = False) -> BotAuthority:
    tokens = BotTokens(Keyring(KeyFile(tmp_path)), "https://o.example", [BOTFRAMEWORK_RESOURCE])
    return BotAuthority(BOTS, tokens, require)


def kind_of(call: object) -> ErrorKind:
    with pytest.raises(ServiceError) as caught:
        call()  # type: ignore[operator]
    return caught.value.kind


def test_a_token_acts_for_its_own_bot_only(tmp_path: Path) -> None:
    auth = authority(tmp_path)
    token, _ = auth.tokens.access_token("App-A", BOTFRAMEWORK_RESOURCE)
    caller = auth.caller(f"Bearer {token}")
    assert caller == BotCaller("a")
    caller.require("a")
    assert kind_of(lambda: caller.require("b")) is ErrorKind.FORBIDDEN
    assert kind_of(lambda: caller.require("open")) is ErrorKind.FORBIDDEN


def test_without_a_token_a_caller_acts_only_for_bots_without_an_app_id(tmp_path: Path) -> None:
    caller = authority(tmp_path).caller(None)
    caller.require("open")
    assert kind_of(lambda: caller.require("a")) is ErrorKind.UNAUTHORIZED
    assert kind_of(lambda: authority(tmp_path, require=True).caller(None)) is ErrorKind.UNAUTHORIZED


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer  ", "Bearer abc.def.ghi", "token"])
def test_a_header_that_proves_nothing_is_refused_even_where_no_token_is_needed(tmp_path: Path, header: str) -> None:
    assert kind_of(lambda: authority(tmp_path).caller(header)) is ErrorKind.UNAUTHORIZED


def test_passwords_and_app_ids(tmp_path: Path) -> None:
    auth = authority(tmp_path)
    assert auth.client("App-A", "password-a-0123456789") is BOTS[0]
    assert auth.client("app-a", "password-a-rotated-01") is BOTS[0], "app ids match in any case, like Entra's"
    assert auth.client("App-A", "password-b-0123456789") is None
    assert auth.client("open", "") is None and not auth.has_app_id("open")
    assert auth.sidecar("sidecar-b-0123456789abcdef0123456789") is BOTS[1]
    assert auth.sidecar("sidecar-b-0123456789abcdef012345678") is None


def test_a_refusal_is_remembered_for_the_delivery_in_progress(tmp_path: Path) -> None:
    clock = [1000.0]
    tokens = BotTokens(Keyring(KeyFile(tmp_path)), "https://o.example", [BOTFRAMEWORK_RESOURCE])
    auth = BotAuthority(BOTS, tokens, clock=lambda: clock[0])
    auth.note_refusal("app-a", "asked with a wrong password")
    assert auth.recent_refusal("a", since=999.0) == "asked with a wrong password"
    assert auth.recent_refusal("a", since=1001.0) is None, "older than the delivery: not its cause"
    auth.note_refusal("nobody", "x")
    assert auth.recent_refusal("b", since=0) is None
