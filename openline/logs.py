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

Every record made while a request is served carries its id (`request_id`).
Two formats (`--log-format`): `text`, one readable line per record, and
`json`, one JSON object per line with `time` (ISO 8601, UTC), `level`,
`logger`, `message`, `request_id`, `exception` (a traceback) and, for access
lines, `client`, `method`, `path` (redacted as above), `status`,
`duration_ms`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse
from typing import Any

from openline import request_id

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
    """One line of the access log; `target` comes from `redact_target` (redacted, control characters escaped).

    The line's parts are also the record's `fields` (what the JSON format shows as fields of their own).
    """
    if access.isEnabledFor(logging.INFO):
        host = f"{client[0]}:{client[1]}" if isinstance(client, list | tuple) and len(client) >= 2 else "-"
        method = printable(method)
        milliseconds = round(seconds * 1000, 1)
        fields = {"client": host, "method": method, "path": target, "status": status, "duration_ms": milliseconds}
        rid = request_id.current.get()
        if rid is not None:
            fields["request_id"] = rid
        access.info('%s "%s %s" %d %.1fms', host, method, target, status, milliseconds, extra={"fields": fields})


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


class RequestIds(logging.Filter):
    """A handler's filter giving each record the id of the request being served (`request_id`; "-" if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.current.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module's description for its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.current.get()
        if rid and rid != "-":
            document["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of `--log-format` (text or json)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str = "text") -> None:
    """The process's logging, for `openline serve`: one stream (stderr), the given level and format."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIds())
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    quiet_server_logs()
