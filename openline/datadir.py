"""The data directory's own files: the token signing key and the admin secret (the Direct Line secrets kept
there are `auth.secret_file`'s).

They are created on first start, readable by the owner only, and reused after.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def new_secret(nbytes: int) -> str:
    """A random URL-safe secret that does not start with '-' (it may be passed as a command-line value)."""
    while True:
        secret = secrets.token_urlsafe(nbytes)
        if not secret.startswith("-"):
            return secret


def write_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace a file atomically (a temporary file, fsynced, renamed over it, the directory fsynced), owner-only
    unless `mode` says; nothing is left behind when it fails (OSError)."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")  # two writers never share a temporary file
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def signing_key(self) -> bytes:
        """The key that signs tokens and file URLs (32 random bytes, kept in `signing.key`)."""
        path = self.path / "signing.key"
        if path.exists():
            key = bytes.fromhex(path.read_text().strip())
            if len(key) >= 32:
                return key
        key = secrets.token_bytes(32)
        write_file(path, key.hex().encode())
        return key

    def admin_secret(self) -> tuple[str, bool]:
        """The generated credential of /inspect and /admin (kept in `admin.secret`); True when created just now."""
        path = self.path / "admin.secret"
        if path.exists():
            secret = path.read_text().strip()
            if secret:
                return secret, False
        secret = new_secret(24)
        write_file(path, secret.encode())
        return secret, True
