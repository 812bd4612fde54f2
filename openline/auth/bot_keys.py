"""The RSA keys openline signs bot-authentication tokens with, kept in the data directory, and their rotation.

`bot-keys.json` (owner-only) holds every key with the time it was made and the
time it starts signing (`active_from`). Tokens are signed by the newest key
already active; every key not yet retired is published in the JWKS, so a
rotated key is published before it signs anything: botbuilder-python caches
the JWKS for 24 hours and fails on a `kid` it has not seen (bot-connector.md
§3b), hence the default delay of `openline keys rotate`. A key is retired (no
longer published, then dropped from the file) once a newer key has been
signing for longer than any token it signed can live.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openline.datadir import write_file

KEYS_FILE = "bot-keys.json"
KEY_BITS = 2048
# botbuilder-python refreshes its cached JWKS once a day; an hour more covers a running service's pick-up of the
# file (KEY_RELOAD_INTERVAL) and the bots' own clocks
ROTATION_DELAY = 25 * 3600
TOKEN_LIFETIME = 3600  # the longest a token signed by these keys lives (channel and access tokens)
RETIRE_AFTER = TOKEN_LIFETIME + 300  # plus the SDKs' clock tolerance


def _b64(number: int) -> str:
    data = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    """One RSA key: `kid` is its RFC 7638 thumbprint; times are POSIX seconds."""

    kid: str
    private_key: rsa.RSAPrivateKey
    created: int
    active_from: int

    @property
    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}

    def to_json(self) -> dict[str, Any]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {"kid": self.kid, "created": self.created, "active_from": self.active_from, "private_key": pem.decode()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"key {data.get('kid')!r} is not an RSA key")
        return cls(str(data["kid"]), key, int(data["created"]), int(data["active_from"]))

    @classmethod
    def generate(cls, now: int, active_from: int) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        numbers = key.public_key().public_numbers()
        # RFC 7638: the SHA-256 of the required members in lexicographic order, without spaces
        canonical = json.dumps({"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":"))
        kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
        return cls(kid, key, now, active_from)


class KeySet:
    """The keys of one `bot-keys.json` in the order they were made; immutable (rotation writes a new file).

    The newest key already active signs: a later rotation supersedes an
    earlier one still waiting, which then never signs.
    """

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key set needs at least one key")
        self.keys = list(keys)

    def signing_key(self, now: float) -> SigningKey:
        """The newest key already active (the oldest key if none is yet: a set always signs with something)."""
        active = [k for k in self.keys if k.active_from <= now]
        return active[-1] if active else self.keys[0]

    def waiting(self, key: SigningKey, now: float) -> bool:
        """Whether the key is newer than the signing key (so it will sign once active)."""
        kids = [k.kid for k in self.keys]
        return kid_index(kids, key.kid) > kids.index(self.signing_key(now).kid)

    def _retired(self, key: SigningKey, now: float) -> bool:
        """Whether a newer key has been signing for longer than any token `key` signed can live."""
        signing = self.signing_key(now)
        return key.kid != signing.kid and not self.waiting(key, now) and now - signing.active_from > RETIRE_AFTER

    def published(self, now: float) -> list[SigningKey]:
        """The keys a JWKS lists: the signing key, the keys waiting to sign, and the recently superseded."""
        return [k for k in self.keys if not self._retired(k, now)]

    def find(self, kid: str, now: float) -> SigningKey | None:
        """The published key with this `kid` (a token signed by a retired key no longer verifies)."""
        return next((k for k in self.published(now) if k.kid == kid), None)

    def rotated(self, now: int, delay: int) -> tuple[KeySet, SigningKey]:
        """A set with one new key, signing `delay` seconds from now, and without the retired keys; the new key."""
        new = SigningKey.generate(now, now + delay)
        return KeySet([*self.published(now), new]), new


def kid_index(kids: list[str], kid: str) -> int:
    """The position of a key in its set (-1 for a key not in it: not waiting)."""
    return kids.index(kid) if kid in kids else -1


class KeyFile:
    """`bot-keys.json` in a data directory: read, created on first use, rotated by `openline keys rotate`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYS_FILE

    def stamp(self) -> tuple[int, ...] | None:
        """What tells a changed file (inode, change and modification times in ns, size); None when there is none.

        The inode and change time also tell a file replaced within the clock's granularity, and one whose
        owner or mode changed (a file `keys rotate` wrote unreadable, then fixed).
        """
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_ctime_ns, stat.st_mtime_ns, stat.st_size

    def read(self) -> KeySet | None:
        """The stored set, or None without a file; ValueError when the file cannot be used."""
        try:
            data = json.loads(self.path.read_text())
            return KeySet([SigningKey.from_json(k) for k in data["keys"]])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{self.path} cannot be read as openline's bot-authentication keys: {e}") from None

    def write(self, keys: KeySet) -> None:
        write_file(self.path, json.dumps({"keys": [k.to_json() for k in keys.keys]}, indent=2).encode())

    def load_or_create(self, now: float | None = None) -> KeySet:
        """The stored set; a new one with one key, signing at once, when there is none yet."""
        keys = self.read()
        if keys is None:
            stamp = int(time.time() if now is None else now)
            keys = KeySet([SigningKey.generate(stamp, stamp)])
            self.write(keys)
        return keys

    def rotate(self, delay: int = ROTATION_DELAY, now: float | None = None) -> tuple[KeySet, SigningKey]:
        """Add a key that signs `delay` seconds from now (published at once) and drop retired keys.

        Two rotations at once (two commands, or instances sharing the directory) are
        serialised by a lock file, so neither key is lost.
        """
        stamp = int(time.time() if now is None else now)
        with self._locked():
            keys, new = self.load_or_create(stamp).rotated(stamp, max(0, delay))
            self.write(keys)
        return keys, new

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


class Keyring:
    """The key set a running service signs and verifies with, re-read when `openline keys rotate` changed the file."""

    def __init__(self, file: KeyFile, now: float | None = None) -> None:
        self.file = file
        self._stamp = file.stamp()
        self.keys = file.load_or_create(now)
        if self._stamp is None:
            self._stamp = file.stamp()

    def refresh(self) -> bool:
        """Re-read the file if it changed (blocking: run it off the event loop); True when a new set was read.

        A file that cannot be read leaves the current set in use (ValueError says why).
        """
        stamp = self.file.stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp  # a file that cannot be read is reported once, not at every look
        keys = self.file.read()
        if keys is None:
            return False
        self.keys = keys
        return True
