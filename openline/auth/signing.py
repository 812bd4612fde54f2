"""Signed, expiring URLs for uploaded files: whoever holds the URL may fetch the file until it expires.

The signature is an HMAC-SHA256 over the conversation, file id and expiry, so a
URL cannot be moved to another file or have its expiry extended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        # a key of its own, derived, so a file signature can never be replayed as a token signature
        self._key = hmac.new(key, b"openline file urls", hashlib.sha256).digest()

    def _signature(self, conversation_id: str, file_id: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{conversation_id}\n{file_id}\n{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")

    def file_url(self, base_url: str, conversation_id: str, file_id: str, name: str, expires: int) -> str:
        """The absolute URL of a stored file, valid until `expires` (POSIX seconds)."""
        quoted = urllib.parse.quote(name or "file", safe="")
        sig = self._signature(conversation_id, file_id, expires)
        return f"{base_url.rstrip('/')}/attachments/{conversation_id}/{file_id}/{quoted}?e={expires}&s={sig}"

    @staticmethod
    def file_id_of(url: str, base_url: str, conversation_id: str) -> str | None:
        """The id of the conversation's stored file a URL of `file_url` links to, else None (any other URL)."""
        prefix = f"{base_url.rstrip('/')}/attachments/{conversation_id}/"
        if not url.startswith(prefix):
            return None
        file_id, sep, _ = url[len(prefix) :].partition("/")
        return file_id if sep and file_id else None

    def valid(self, conversation_id: str, file_id: str, expires: str, signature: str, now: float) -> bool:
        """True when the signature matches and the URL has not expired."""
        if not (expires.isascii() and expires.isdigit() and signature.isascii()) or int(expires) < now:
            return False
        expected = self._signature(conversation_id, file_id, int(expires))
        return hmac.compare_digest(expected, signature)
