"""Tests for openline.auth.access: which origins a credential may be used from, and enhanced authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from openline.auth.access import AccessRules, rules_of
from openline.protocol.errors import ErrorKind, ServiceError

A, B, C = "https://a.example", "https://b.example", "https://c.example"


def _rules() -> AccessRules:
    return rules_of([("open", (), False), ("guarded", (A, B), False), ("enh", (), True), ("both", (A,), True)])


def _fails(kind: ErrorKind, call: Callable[..., Any], *args: Any, **kw: Any) -> str:
    with pytest.raises(ServiceError) as info:
        call(*args, **kw)
    assert info.value.kind is kind
    return info.value.message


def test_allowed_origins_bot_token_and_both() -> None:
    rules = _rules()
    assert rules.allowed_origins("open", ()) is None
    assert rules.allowed_origins("unknown", ()) is None
    assert rules.allowed_origins("open", (C,)) == {C}
    assert rules.allowed_origins("guarded", ()) == {A, B}
    assert rules.allowed_origins("guarded", (B,)) == {B}
    # a token whose origins the bot no longer trusts (its list changed since): no browser may use it
    assert rules.allowed_origins("guarded", (C,)) == frozenset()


def test_check_origins() -> None:
    rules = _rules()
    rules.check("open", None, secret=False, token_origins=(A,))  # no Origin: not a browser
    rules.check("open", C, secret=True)
    rules.check("open", A, secret=False, token_origins=(A,))
    rules.check("open", "HTTPS://A.example:443", secret=False, token_origins=(A,))
    assert "token's" in _fails(ErrorKind.FORBIDDEN, rules.check, "open", C, secret=False, token_origins=(A,))
    assert "bot's" in _fails(ErrorKind.FORBIDDEN, rules.check, "guarded", C, secret=True)
    _fails(ErrorKind.FORBIDDEN, rules.check, "guarded", "null", secret=False)
    _fails(ErrorKind.FORBIDDEN, rules.check, "guarded", A, secret=False, token_origins=(C,))


def test_enhanced_auth_refuses_the_secret_from_browsers_only() -> None:
    rules = _rules()
    rules.check("enh", None, secret=True)
    rules.check("enh", C, secret=False)
    assert "enhanced" in _fails(ErrorKind.FORBIDDEN, rules.check, "enh", C, secret=True)
    assert "enhanced" in _fails(ErrorKind.FORBIDDEN, rules.check, "both", A, secret=True)


def test_token_origins_are_parsed_and_within_the_bots() -> None:
    rules = _rules()
    assert rules.token_origins("open", ["HTTPS://C.example/", C]) == (C,)
    assert rules.token_origins("guarded", [B]) == (B,)
    assert "trusted origins" in _fails(ErrorKind.MALFORMED, rules.token_origins, "guarded", [C])
    assert "not an origin" in _fails(ErrorKind.MALFORMED, rules.token_origins, "open", ["https://c.example/x"])


def test_token_users_with_enhanced_auth() -> None:
    rules = _rules()
    assert rules.token_user("open", None) is None
    assert rules.token_user("open", {"id": "jane"}) == {"id": "jane"}
    made = rules.token_user("enh", None)
    assert made is not None and made["id"].startswith("dl_") and len(made["id"]) == 19
    assert rules.token_user("enh", {"id": "dl_jane"}) == {"id": "dl_jane"}
    assert "dl_" in _fails(ErrorKind.MALFORMED, rules.token_user, "enh", {"id": "jane"})
    rules.check_user_id("open", "jane")
    _fails(ErrorKind.MALFORMED, rules.check_user_id, "enh", "DL_jane")
