"""What openline logs: an access log of every request, no credential anywhere, no error for a client's mistake.

The access log (logger `openline.access`, INFO) has one line per HTTP request
and per WebSocket session: client address, method, path, status, duration.
Query strings keep only the parameters known to carry no credential
(`watermark`, `userId`, ...); the others, the stream token `t` and the file
signature `s` among them, are replaced by `REDACTED`, and so is the key part
of a bot attachment's id (`/v3/attachments/{conversation}~{key}`), which is a
capability. Headers are never logged. uvicorn's own log gets the same
redaction, its per-WebSocket lines are left to the access log, and what it
says about a client's malformed request is information, not a warning.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("openline.access")

REDACTED = "REDACTED"
# query parameters that never hold a credential; every other value is redacted
_PLAIN_PARAMETERS = frozenset({"watermark", "userid", "limit", "pagesize", "continuationtoken", "bot", "e"})
_CAPABILITY_PATH = re.compile(r"^(/+v3/+attachments/+[^/~]*~)[^/]+")  # as requested: slashes not yet collapsed
# the sidecar secret is the whole credential of its URL: redacted wherever such a segment is (a path prefix
# left on by a proxy, another letter case), as the route itself is not what decides
_SIDECAR_PATH = re.compile(r"(?i)(/sidecar/+)[^/]+")
# a credential in free text: a query parameter, or an Authorization value
_CREDENTIAL_IN_TEXT = re.compile(
    r"(?i)(?P<lead>[?&;](?:t|token|s|sig|signature|secret|code|key|access_token|id_token)=)[^&\s\"'#]+"
    r"|(?P<scheme>\b(?:bearer|botconnector)\s+)[A-Za-z0-9._~+/=-]{8,}"
)
# uvicorn's words for a client's mistakes, logged at WARNING or ERROR by it: information here
_CLIENT_MISTAKES = ("Invalid HTTP request received.", "Unsupported upgrade request.")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# libraries that log a client's malformed input at WARNING (python-multipart: "Expected boundary ...")
_CHATTY_LIBRARIES = ("python_multipart",)


def redact_target(path: str, query: str | bytes = "") -> str:
    """`path?query` as it may be logged: credentials replaced by REDACTED (see the module's description).

    Control characters are escaped too (`printable`): the result is safe to log as it is.
    """
    path = _CAPABILITY_PATH.sub(r"\1" + REDACTED, path)
    path = _SIDECAR_PATH.sub(r"\1" + REDACTED, path)
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    if not query:
        return printable(path)
    parts = []
    for item in query.split("&"):
        name, sep, _ = item.partition("=")
        plain = urllib.parse.unquote_plus(name).lower() in _PLAIN_PARAMETERS
        parts.append(item if plain or not sep else f"{name}={REDACTED}")
    return printable(f"{path}?{'&'.join(parts)}")


def redact_text(text: str) -> str:
    """Free text with anything that looks like a credential (`t=…`, `Bearer …`) replaced by REDACTED."""

    def replace(match: re.Match[str]) -> str:
        return (match.group("lead") or match.group("scheme")) + REDACTED

    return _CREDENTIAL_IN_TEXT.sub(replace, text)


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x0a`): what a client sent can never start a log line of its own."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def access_log(client: Any, method: str, target: str, status: int, seconds: float) -> None:
    """One line of the access log; `target` comes from `redact_target` (redacted, control characters escaped)."""
    if access.isEnabledFor(logging.INFO):
        host = f"{client[0]}:{client[1]}" if isinstance(client, list | tuple) and len(client) >= 2 else "-"
        access.info('%s "%s %s" %d %.1fms', host, printable(method), target, status, seconds * 1000)


class AccessLog:
    """ASGI middleware: an access log line for every HTTP request and WebSocket session, when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not access.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def record(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 0:
                status = 403  # closed before the handshake: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
            target = redact_target(scope.get("path", ""), scope.get("query_string", b""))
            access_log(scope.get("client"), method, target, status or 500, time.perf_counter() - started)


class _ServerLogFilter(logging.Filter):
    """uvicorn's log, redacted: no credentials, no per-WebSocket lines, client mistakes at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if '"WebSocket ' in message or message.startswith("connection rejected ("):
            return False  # "[accepted]", "403", a refused handshake: the access log has them, redacted
        if message in _CLIENT_MISTAKES and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        redacted = printable(redact_text(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_SERVER_FILTER = _ServerLogFilter()


def quiet_server_logs() -> None:
    """Apply the redaction to uvicorn's loggers, and keep libraries from warning about clients (idempotent)."""
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _SERVER_FILTER not in logger.filters:
            logger.addFilter(_SERVER_FILTER)
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)


def configure(level: str) -> None:
    """The process's logging, for `openline serve`: one stream, timestamps, the given level."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_server_logs()
