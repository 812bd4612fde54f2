"""The Direct Line secrets kept in the data directory (`secrets.json`), and which secrets each bot accepts.

The file holds, per bot id, the secret generated on the service's first start and those made by
`openline secret new`: `{bot: [{"id", "secret", "created", "generated"}, ...]}`. The first openline
wrote `{bot: "secret"}` (one generated secret): that form is still read, and kept for a bot until a
command changes its secrets. A bot listed with no secrets had them all revoked: none is generated again.

Secrets are kept as themselves, like the signing key beside them (which can make tokens for any
conversation): the file is readable by its owner only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openline.datadir import new_secret, write_file

FILE_NAME = "secrets.json"
RELOAD_INTERVAL = 2.0  # seconds between a running service's looks at the file (a stat; on Redis, one GET first)


def secret_id(secret: str) -> str:
    """A secret's short id, shown and revoked by: 8 hex digits of its SHA-256 (it tells nothing of the secret)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class KeptSecret:
    secret: str
    created: float | None  # POSIX seconds; None for a secret the first openline generated (it kept no time)
    generated: bool  # made on the service's first start, not by `openline secret new`

    @property
    def id(self) -> str:
        return secret_id(self.secret)


def _entry(bot_id: str, raw: Any) -> KeptSecret:
    if isinstance(raw, dict) and isinstance(raw.get("secret"), str) and raw["secret"]:
        created = raw.get("created")
        if created is not None and not isinstance(created, int | float):
            raise ValueError(f"bot {bot_id!r}: 'created' is not a time")
        return KeptSecret(raw["secret"], created, bool(raw.get("generated", False)))
    raise ValueError(f"bot {bot_id!r}: an entry without a secret")


def parse(data: bytes) -> dict[str, list[KeptSecret]]:
    """The secrets of each bot in a `secrets.json`; ValueError when it is not one."""
    try:
        raw = json.loads(data)
    except ValueError as e:
        raise ValueError(f"{FILE_NAME} is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{FILE_NAME} is not an object of bots")
    kept: dict[str, list[KeptSecret]] = {}
    for bot_id, value in raw.items():
        if isinstance(value, str) and value:  # the first form: the generated secret
            kept[bot_id] = [KeptSecret(value, None, True)]
        elif isinstance(value, list):
            kept[bot_id] = [_entry(bot_id, item) for item in value]
        else:
            raise ValueError(f"{FILE_NAME}: bot {bot_id!r} has no list of secrets")
    return kept


def accepted(configured: Mapping[str, Iterable[str]], kept: Mapping[str, list[KeptSecret]]) -> dict[str, list[str]]:
    """The secrets each configured bot accepts: its configured ones (flags, environment, TOML) and those kept in
    the file, except the generated one while secrets are configured for the bot. Kept secrets of bots that are
    not configured are not accepted."""
    out: dict[str, list[str]] = {}
    for bot_id, secrets in configured.items():
        own = list(secrets)
        out[bot_id] = own + [k.secret for k in kept.get(bot_id, []) if not (k.generated and own)]
    return out


class SecretFile:
    """`secrets.json` in a data directory. Blocking file I/O: call it before the service starts, or on a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self._raw: dict[str, Any] | None = None

    def stamp(self) -> tuple[int, int, int] | None:
        """What changes when the file is replaced (inode, size, mtime in ns); None when there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _read(self) -> tuple[dict[str, Any], dict[str, list[KeptSecret]]]:
        """The file as written, and as read; a file that cannot be used is refused before anything is written."""
        if not self.path.exists():
            return {}, {}
        data = self.path.read_bytes()
        kept = parse(data)
        raw: dict[str, Any] = json.loads(data)
        return raw, kept

    def load(self) -> dict[str, list[KeptSecret]]:
        """Every bot's kept secrets (none when there is no file); ValueError for a file that cannot be read."""
        return parse(self.path.read_bytes()) if self.path.exists() else {}

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the file's lock (`secrets.json.lock`, an advisory lock) while it is read, changed and written: two
        commands, or a command and a service starting, never write over each other's change."""
        fd = os.open(self.path.with_name(FILE_NAME + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, raw: dict[str, Any]) -> None:
        write_file(self.path, json.dumps(raw, indent=2).encode())

    @staticmethod
    def _listed(kept: list[KeptSecret]) -> list[dict[str, Any]]:
        return [{"id": k.id, "secret": k.secret, "created": k.created, "generated": k.generated} for k in kept]

    def generated(self, bot_id: str) -> tuple[str, bool] | None:
        """The secret generated for a bot that has none configured, made (and written in the first form) when the
        bot is not in the file yet; True when made just now. None when the bot's kept secrets are the ones
        `openline secret new` made, or none at all (all revoked)."""
        with self._changing():
            raw, kept = self._read()
            if bot_id not in raw:
                secret = new_secret(36)
                raw[bot_id] = secret
                self._write(raw)
                return secret, True
        found = [k for k in kept[bot_id] if k.generated]
        return (found[0].secret, False) if found else None

    def has_generated(self, bot_id: str) -> bool:
        """Whether a secret was generated for the bot on an earlier start (it is kept even while unused)."""
        return any(k.generated for k in self.load().get(bot_id, []))

    def new(self, bot_id: str, now: float) -> KeptSecret:
        """Make a secret for the bot and keep it beside its others."""
        with self._changing():
            raw, by_bot = self._read()
            kept = by_bot.get(bot_id, [])
            taken = {k.id for k in kept}
            while True:
                made = KeptSecret(new_secret(36), now, False)
                if made.id not in taken:  # the id is what `revoke` names: unique among the bot's secrets
                    break
            raw[bot_id] = self._listed([*kept, made])
            self._write(raw)
        return made

    def revoke(self, bot_id: str, id_: str) -> KeptSecret:
        """Forget the bot's kept secret with that id; KeyError when it has none."""
        with self._changing():
            raw, by_bot = self._read()
            kept = by_bot.get(bot_id, [])
            found = [k for k in kept if k.id == id_]
            if not found:
                raise KeyError(id_)
            raw[bot_id] = self._listed([k for k in kept if k.id != id_])
            self._write(raw)
        return found[0]
