"""Request paths as routes expect them: no repeated slashes, no trailing slash (never a redirect: POSTs lose it).

Bots build reply URLs by joining strings: with the hosted form of `serviceUrl`
(ending in `/`) a bot that adds `/v3/...` asks for `//v3/...`. Both joining
conventions reach the same route. Only literal slashes are collapsed: an
encoded `%2F` inside an id is left alone.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile(rb"//+")


def normal_raw_path(raw: bytes) -> bytes:
    """`raw` with runs of `/` made one, and without a trailing `/` (the root stays `/`)."""
    raw = _SLASHES.sub(b"/", raw)
    return (raw.rstrip(b"/") or b"/") if len(raw) > 1 else raw


class NormalPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw: bytes | None = scope.get("raw_path")
            if raw is not None and (b"//" in raw or (len(raw) > 1 and raw.endswith(b"/"))):
                normal = normal_raw_path(raw)
                with contextlib.suppress(UnicodeDecodeError):  # the server sends ASCII targets only
                    path = urllib.parse.unquote(normal.decode("ascii"))
                    # in place, not a copy: the layers outside see the route the router sets on this scope
                    # (api._observe); they keep the path as requested for the log
                    scope["raw_path"], scope["path"] = normal, path
        await self.app(scope, receive, send)
