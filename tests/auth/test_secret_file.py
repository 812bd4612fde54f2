"""secrets.json: the first form still read, secrets made and revoked, and which secrets each bot accepts."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from openline.auth.secret_file import KeptSecret, SecretFile, accepted, parse, secret_id


def test_the_first_form_is_read_as_one_generated_secret(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"echobot": "s" * 48}))
    (kept,) = SecretFile(tmp_path).load()["echobot"]
    assert kept == KeptSecret("s" * 48, None, True) and kept.id == secret_id("s" * 48)


def test_a_generated_secret_is_made_once_in_the_first_form(tmp_path: Path) -> None:
    file = SecretFile(tmp_path)
    made = file.generated("echobot")
    assert made is not None and made[1] and len(made[0]) >= 32
    assert json.loads(file.path.read_text()) == {"echobot": made[0]}, "readable by an older openline"
    assert stat.S_IMODE(file.path.stat().st_mode) & 0o077 == 0
    assert file.generated("echobot") == (made[0], False)
    assert file.has_generated("echobot") and not file.has_generated("other")


def test_new_secrets_join_the_generated_one_and_revoke_removes_one(tmp_path: Path) -> None:
    file = SecretFile(tmp_path)
    generated = file.generated("echobot")
    assert generated is not None
    made = file.new("echobot", 1_700_000_000)
    assert made.created == 1_700_000_000 and not made.generated and made.secret != generated[0]
    kept = file.load()["echobot"]
    assert [k.secret for k in kept] == [generated[0], made.secret]
    assert kept[0].generated and kept[0].created is None
    assert file.generated("echobot") == (generated[0], False), "still the generated one"
    assert file.revoke("echobot", kept[0].id) == kept[0]
    assert file.load() == {"echobot": [made]}
    assert file.generated("echobot") is None, "listed with no generated secret: none is made again"
    file.revoke("echobot", made.id)
    assert file.load() == {"echobot": []}
    assert file.generated("echobot") is None, "all revoked: none is made again"
    with pytest.raises(KeyError):
        file.revoke("echobot", made.id)


def test_other_bots_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"a": "secret-of-a-0123456789", "b": "secret-of-b-0123456789"}))
    file = SecretFile(tmp_path)
    file.new("a", 1)
    assert json.loads(file.path.read_text())["b"] == "secret-of-b-0123456789"


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"a": 3}', '{"a": [{"id": "x"}]}', '{"a": [{"secret": "s", "created": "yesterday"}]}'],
)
def test_a_file_that_cannot_be_used_is_refused_and_left_alone(tmp_path: Path, content: str) -> None:
    (tmp_path / "secrets.json").write_text(content)
    file = SecretFile(tmp_path)
    with pytest.raises(ValueError):
        file.load()
    with pytest.raises(ValueError):
        file.new("a", 1)
    assert (tmp_path / "secrets.json").read_text() == content


def test_accepted_combines_configured_and_kept_secrets() -> None:
    kept = parse(
        json.dumps(
            {
                "a": [{"secret": "gen-a", "generated": True}, {"secret": "new-a", "created": 5}],
                "b": "gen-b",
                "gone": [{"secret": "of-a-bot-no-longer-configured", "created": 5}],
            }
        ).encode()
    )
    configured: dict[str, tuple[str, ...]] = {"a": ("conf-a",), "b": (), "c": ()}
    assert accepted(configured, kept) == {"a": ["conf-a", "new-a"], "b": ["gen-b"], "c": []}
    assert accepted({"a": ()}, kept) == {"a": ["gen-a", "new-a"]}, "the generated one again without configured ones"


def test_stamp_changes_with_each_write(tmp_path: Path) -> None:
    file = SecretFile(tmp_path)
    assert file.stamp() is None
    file.new("a", 1)
    first = file.stamp()
    file.new("a", 2)
    assert first is not None and file.stamp() != first


def test_changes_made_at_once_are_all_kept(tmp_path: Path) -> None:
    """Several `openline secret new` at the same moment: each reads, changes and writes the file under its lock."""
    file = SecretFile(tmp_path)

    def make(bot_id: str) -> None:
        for _ in range(5):
            SecretFile(tmp_path).new(bot_id, 1.0)

    threads = [threading.Thread(target=make, args=(f"bot{i % 2}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = file.load()
    assert len(kept["bot0"]) == len(kept["bot1"]) == 20
