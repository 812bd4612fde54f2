"""The bot-authentication key set: creation, what signs and what is published, rotation, retirement, reloading."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from openline.auth.bot_keys import RETIRE_AFTER, ROTATION_DELAY, KeyFile, Keyring

NOW = 1_800_000_000


def test_the_first_use_makes_one_key_that_signs_at_once_kept_owner_only(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path).load_or_create(NOW)
    assert len(keys.keys) == 1
    assert keys.signing_key(NOW) is keys.keys[0]
    assert stat.S_IMODE(os.stat(tmp_path / "bot-keys.json").st_mode) == 0o600
    again = KeyFile(tmp_path).load_or_create(NOW + 10)
    assert [k.kid for k in again.keys] == [k.kid for k in keys.keys], "reused, not remade"


def test_the_kid_is_the_rfc7638_thumbprint_and_the_jwk_has_no_private_part(tmp_path: Path) -> None:
    key = KeyFile(tmp_path).load_or_create(NOW).keys[0]
    jwk = key.public_jwk
    assert set(jwk) == {"kty", "use", "alg", "kid", "n", "e"}
    assert jwk["kid"] == key.kid and len(key.kid) == 43  # base64url of a SHA-256


def test_a_rotated_key_is_published_at_once_and_signs_only_after_the_delay(tmp_path: Path) -> None:
    file = KeyFile(tmp_path)
    old = file.load_or_create(NOW).keys[0]
    keys, new = file.rotate(ROTATION_DELAY, NOW + 100)
    assert {k.kid for k in keys.published(NOW + 100)} == {old.kid, new.kid}
    assert keys.signing_key(NOW + 100).kid == old.kid
    assert keys.signing_key(NOW + 100 + ROTATION_DELAY).kid == new.kid
    # the old key stays published while tokens it signed may live, then is retired
    switch = NOW + 100 + ROTATION_DELAY
    assert keys.find(old.kid, switch + RETIRE_AFTER - 1) is not None
    assert keys.find(old.kid, switch + RETIRE_AFTER + 1) is None
    assert [k.kid for k in keys.published(switch + RETIRE_AFTER + 1)] == [new.kid]


def test_rotating_drops_retired_keys_from_the_file(tmp_path: Path) -> None:
    file = KeyFile(tmp_path)
    file.load_or_create(NOW)
    file.rotate(0, NOW + 10)
    keys, newest = file.rotate(0, NOW + 10 + RETIRE_AFTER + 5)
    assert len(keys.keys) == 2, "the first key was retired, the second is still published"
    stored = json.loads((tmp_path / "bot-keys.json").read_text())
    assert [k["kid"] for k in stored["keys"]][-1] == newest.kid


def test_a_keyring_picks_up_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    ring = Keyring(KeyFile(tmp_path), NOW)
    assert ring.refresh() is False
    first = ring.keys.signing_key(NOW).kid
    _, new = KeyFile(tmp_path).rotate(0, NOW + 1)
    assert ring.refresh() is True
    assert ring.keys.signing_key(NOW + 2).kid == new.kid != first


def test_a_damaged_key_file_is_a_clear_error_and_a_keyring_keeps_its_keys(tmp_path: Path) -> None:
    ring = Keyring(KeyFile(tmp_path), NOW)
    (tmp_path / "bot-keys.json").write_text("{not json")
    with pytest.raises(ValueError, match="bot-authentication keys"):
        ring.refresh()
    assert ring.refresh() is False, "reported once, not at every look"
    with pytest.raises(ValueError, match="bot-authentication keys"):
        KeyFile(tmp_path).load_or_create(NOW)
    assert ring.keys.signing_key(NOW) is not None


def test_a_later_rotation_supersedes_one_still_waiting(tmp_path: Path) -> None:
    file = KeyFile(tmp_path)
    first = file.load_or_create(NOW).keys[0]
    _, waiting = file.rotate(ROTATION_DELAY, NOW)
    keys, now_key = file.rotate(0, NOW)  # same second: the order they were made decides
    assert keys.signing_key(NOW).kid == now_key.kid
    assert keys.signing_key(NOW + ROTATION_DELAY).kid == now_key.kid, "the earlier, waiting key never signs"
    assert not keys.waiting(waiting, NOW) and keys.find(first.kid, NOW) is not None
