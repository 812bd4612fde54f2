"""The id of the request being served: a client's sane `X-Request-Id`, else a new one; logged, echoed, sent to the bot.

The id lives in a context variable for the request's task (and the tasks it
starts), so every log record made while serving the request, and the call to
the bot it makes, carry it without being handed it.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128
# what a client's id may hold to be kept: the characters of UUIDs, W3C trace ids, base64 and the like
_SANE = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,%d}" % MAX_LENGTH)

current: ContextVar[str | None] = ContextVar("openline_request_id", default=None)


def new_id() -> str:
    """A fresh id: 32 random hexadecimal digits (128 bits; os.urandom, a fifth of uuid4's cost)."""
    return os.urandom(16).hex()


def from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    """The id of a request with these ASGI headers: its `X-Request-Id` when sane (1-128 characters of
    `A-Z a-z 0-9 . _ : @ + = / -`), else a new one (an absent, empty, long or odd value is replaced, not refused)."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if _SANE.fullmatch(value) else new_id()
    return new_id()
