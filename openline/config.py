"""One `Config` from defaults < TOML file (`--config`) < environment (`OPENLINE_*`) < command-line flags."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from openline.protocol.origins import parse_origin
from openline.protocol.ratelimit import InvalidRate, Rate, parse_rate
from openline.storage import parse_store_url
from openline.storage.sqlite_commit import DURABILITIES


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says which and why."""


ECHO_BOT_ID = "echobot"
ECHO_BOT_NAME = "Echo Bot"
WEBCHAT_CDN = "https://cdn.botframework.com/botframework-webchat/latest/webchat.js"


@dataclass(frozen=True)
class BotConfig:
    id: str
    name: str
    endpoint: str | None  # None: the built-in echo bot
    secrets: tuple[str, ...] = field(default=(), repr=False)
    app_id: str | None = None  # set: bot authentication both ways (channel tokens to it, its tokens required)
    app_passwords: tuple[str, ...] = field(default=(), repr=False)  # several during a rotation
    sidecar_secret: str | None = field(default=None, repr=False)  # set: the sidecar token API /sidecar/<secret>/...
    trusted_origins: tuple[str, ...] = ()  # set: browsers on other origins are refused (auth.access)
    enhanced_auth: bool = False  # the hosted service's enhanced authentication: dl_ users from tokens (auth.access)


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 3000
    public_url: str = ""  # resolved: never empty after load_config
    public_url_given: bool = False  # set by the user (else stream URLs follow each request's host)
    bots: tuple[BotConfig, ...] = ()
    data_dir: Path = Path("openline-data")
    store: str | None = None
    token_ttl: int = 1800
    retention: int = 86400
    conversation_ttl: int = 15 * 86400
    scrub_interval: int = 600  # SQLite: the least seconds between VACUUMs after deletions
    durability: str = "process"  # SQLite: "process" survives kill -9; "power" also power loss (storage.sqlite_commit)
    bot_timeout: float = 15.0
    max_message_bytes: int = 256 * 1024
    max_upload_bytes: int = 4 * 1024 * 1024
    page_size: int = 100
    stream_keepalive: float = 20.0
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int | None = None  # None: from the open-file limit (server.auto_max_connections)
    access_log: bool = True
    web_page: bool | None = None  # None: on when listening on loopback only (resolved by load_config)
    webchat_url: str = WEBCHAT_CDN
    webchat_file: Path | None = None  # a local webchat.js, served instead of webchat_url
    admin_secret: str | None = None  # None: generated and kept in the data dir
    log_level: str = "info"
    require_bot_auth: bool = False  # refuse unauthenticated connector calls even for bots without an app id
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # limits (README: Limits); the rates are None (off) unless set, or resolved by load_config when not loopback
    rate_limit: Rate | None = None  # per credential (a secret or a token) over the Direct Line client routes
    conversation_rate_limit: Rate | None = None  # per conversation, whatever credential acts on it
    max_connector_bytes: int = 4 * 1024 * 1024  # a body a bot sends to the connector API (attachments decoded)
    max_form_bytes: int = 16 * 1024  # the own pages' token and sign-in bodies, the bots' OAuth token requests
    max_upload_parts: int = 64  # parts of one multipart upload
    max_frame_bytes: int = 4096  # a WebSocket message from a client (3.0 stream, inspector live feed)

    @property
    def connect_host(self) -> str:
        """An address this machine can reach the service on (wildcard binds become loopback)."""
        return connect_host(self.host)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

    @property
    def local_url(self) -> str:
        return f"{self.scheme}://{self.connect_host}:{self.port}"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2}


def parse_duration(value: Any) -> int:
    """Seconds from 1800, "1800", "90s", "30m", "24h" or "7d"."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value).lower())
    if not match:
        raise ConfigError(f"{value!r} is not a duration (seconds, or a number with s, m, h or d)")
    return int(float(match.group(1)) * _UNITS.get(match.group(2) or "s", 1))


def parse_seconds(value: Any) -> float:
    """Like parse_duration, but keeps fractions of a second for plain numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if re.fullmatch(r"\s*\d+\.\d+\s*", str(value)):
        return float(value)
    return float(parse_duration(value))


def parse_size(value: Any) -> int:
    """Bytes from 262144, "256k", "256KB" or "4MB"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", str(value).lower())
    if not match or match.group(2) not in _SIZES or int(match.group(1)) <= 0:
        raise ConfigError(f"{value!r} is not a size (bytes, or a number with KB or MB)")
    return int(match.group(1)) * _SIZES[match.group(2)]


def _whole_number(what: str, low: int, high: int) -> Callable[[Any], int]:
    """A parser of whole numbers from `low` to `high` (inclusive)."""

    def parse(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = low - 1
        if not low <= number <= high:
            raise ConfigError(f"{value!r} is not a {what} ({low}-{high})")
        return number

    return parse


def _seconds_between(what: str, low: float, high: float) -> Callable[[Any], float]:
    """A parser of durations from `low` to `high` seconds (fractions allowed)."""

    def parse(value: Any) -> float:
        seconds = parse_seconds(value)
        if not low <= seconds <= high:
            raise ConfigError(f"{value!r} is not a {what} ({low:g} s to {high:g} s)")
        return seconds

    return parse


def _header_bytes(value: Any) -> int:
    size = parse_size(value)
    if not 1024 <= size <= 1024 * 1024:
        raise ConfigError(f"{value!r} is not a header limit (1KB to 1MB)")
    return size


def _connections(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _whole_number("number of connections (or auto)", 1, 1_000_000)(value)


DEFAULT_RATE_LIMIT = Rate(20, 1.0)  # per credential, when listening beyond loopback
DEFAULT_CONVERSATION_RATE_LIMIT = Rate(10, 1.0)  # per conversation, likewise


def _rate(value: Any) -> Rate | None:
    """A rate limit from "600/m", "20/s", "5000/h" or "100/10s"; None (no limit) from "off" or false."""
    if value is False:
        return None
    if isinstance(value, Rate):
        return value
    try:
        return parse_rate(_text(value))
    except InvalidRate as e:
        raise ConfigError(str(e)) from None


def _frame_bytes(value: Any) -> int:
    size = parse_size(value)
    if not 125 <= size <= 16 * 1024 * 1024:
        raise ConfigError(f"{value!r} is not a WebSocket message limit (125 bytes to 16MB)")
    return size


def parse_bool(value: Any) -> bool:
    """True or False from a boolean, or from "true"/"false", "yes"/"no", "on"/"off", "1"/"0"."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{value!r} is not true or false")


def _script_url(value: Any) -> str:
    url = _text(value).strip()
    # a path must not start with // or /\ : browsers read those as another host
    if not re.match(r"^(https?://[^/\s]+\S*|/(?![/\\])\S*)$", url):
        raise ConfigError(f"{value!r} is not an http(s) URL or a path on this service")
    return url


def _script_file(value: Any) -> Path:
    path = _path(value)
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is not a readable file")
    return path


def _admin_secret(value: Any) -> str:
    secret = _text(value)
    if len(secret) < 16 or any(c.isspace() for c in secret):
        raise ConfigError("the admin secret must be at least 16 characters, without spaces")
    return secret


def _app_id(value: Any) -> str:
    app_id = _text(value).strip()
    if not re.fullmatch(r"[\x21-\x7e]{1,128}", app_id):
        raise ConfigError(f"{value!r} is not an app id (1-128 printable ASCII characters, no spaces)")
    return app_id


def _app_passwords(value: Any) -> list[str]:
    """Passwords from a string or a list of them, each comma-separated (as OPENLINE_BOT_APP_PASSWORD gives them)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(p, str) for p in items):
        raise ConfigError("an app password is a string (or a list of them, during a rotation)")
    passwords = [p.strip() for item in items for p in item.split(",")]
    for password in passwords:
        if len(password) < 16 or any(c.isspace() for c in password):
            raise ConfigError("an app password must be at least 16 characters, without spaces or commas")
    return passwords


def _sidecar_secret(value: Any) -> str:
    secret = _text(value)
    if not re.fullmatch(r"[A-Za-z0-9_-]{32,256}", secret):
        raise ConfigError(
            "a sidecar secret must be 32-256 letters, digits, '-' or '_' (it is the only credential of its URL)"
        )
    return secret


def _origins(value: Any) -> list[str]:
    """Trusted origins (scheme://host[:port]), from a list or a comma-separated string, in the form browsers send."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{value!r} is not a list of origins")
    origins = []
    for item in (part.strip() for i in items for part in i.split(",") if part.strip()):
        try:
            origins.append(parse_origin(item))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return list(dict.fromkeys(origins))


def _existing_file(value: Any) -> Path:
    path = _path(value)
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is not a readable file")
    return path


def _log_level(value: Any) -> str:
    level = _text(value).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{value!r} is not one of debug, info, warning, error")
    return level


def _str_list(value: Any) -> list[str]:
    """A comma-separated string (empty items are left out), or a list of strings, none empty."""
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list | tuple) and all(isinstance(s, str) for s in value):
        if not all(s.strip() for s in value):
            raise ConfigError("an empty value is not allowed (leave the option out instead)")
        return [s.strip() for s in value]
    raise ConfigError(f"{value!r} is not a list of strings")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{value!r} is not a string")
    return value


def _path(value: Any) -> Path:
    return Path(_text(value)) if not isinstance(value, Path) else value


def _store(value: Any) -> str:
    url = _text(value).strip()
    try:
        parse_store_url(url)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return url


def _durability(value: Any) -> str:
    text = _text(value).strip().lower()
    if text not in DURABILITIES:
        raise ConfigError(f"{value!r} is not a durability: use process (the default) or power")
    return text


def _url(value: Any) -> str:
    url = str(value).strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    url = scheme.lower() + sep + rest  # schemes are case-insensitive: HTTP://x is http://x
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{value!r} is not an http(s) URL")
    try:
        urllib.parse.urlsplit(url).port  # noqa: B018 (parses the host and port, raising on a malformed one)
    except ValueError as e:
        raise ConfigError(f"{value!r} is not a valid URL: {e}") from None
    return url


# name -> parser; the name is the flag (--name-with-dashes), the env var (OPENLINE_NAME) and the TOML key
OPTIONS: dict[str, Callable[[Any], Any]] = {
    "host": _text,
    "port": _whole_number("port number", 1, 65535),
    "public_url": _url,
    "bot": _url,
    "secret": _str_list,
    "data_dir": _path,
    "store": _store,
    "token_ttl": parse_duration,
    "retention": parse_duration,
    "conversation_ttl": parse_duration,
    "scrub_interval": parse_duration,
    "durability": _durability,
    "bot_timeout": parse_seconds,
    "max_message_bytes": parse_size,
    "max_upload_bytes": parse_size,
    "page_size": _whole_number("page size", 1, 10000),
    "stream_keepalive": _seconds_between("keep-alive interval", 0.05, 3600),
    "max_header_bytes": _header_bytes,
    "header_timeout": _seconds_between("header timeout", 0.05, 3600),
    "body_timeout": _seconds_between("body timeout", 0.05, 3600),
    "max_connections": _connections,
    "web_page": parse_bool,
    "webchat_url": _script_url,
    "webchat_file": _script_file,
    "admin_secret": _admin_secret,
    "log_level": _log_level,
    "access_log": parse_bool,
    "bot_app_id": _app_id,
    "bot_app_password": _app_passwords,
    "bot_sidecar_secret": _sidecar_secret,
    "require_bot_auth": parse_bool,
    "tls_cert": _existing_file,
    "tls_key": _existing_file,
    # limits (README: Limits)
    "rate_limit": _rate,
    "conversation_rate_limit": _rate,
    "max_connector_bytes": parse_size,
    "max_form_bytes": parse_size,
    "max_upload_parts": _whole_number("number of parts", 1, 10000),
    "max_frame_bytes": _frame_bytes,
    # access rules of the bot of --bot ([[bots]] tables have keys of the same names)
    "trusted_origins": _origins,
    "enhanced_auth": parse_bool,
}

# the options that describe the single bot of --bot (with [[bots]] in a config file, each bot says its own)
_SINGLE_BOT = (
    "bot",
    "secret",
    "bot_app_id",
    "bot_app_password",
    "bot_sidecar_secret",
    "trusted_origins",
    "enhanced_auth",
)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address to listen on) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def connect_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return {key.replace("-", "_"): value for key, value in data.items()}


def _bots_from_toml(entries: Any) -> list[BotConfig]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("'bots' must be an array of tables ([[bots]])")
    bots = []
    for i, entry in enumerate(entries):
        entry = {k.replace("-", "_"): v for k, v in entry.items()}
        unknown = set(entry) - {
            "id",
            "name",
            "endpoint",
            "secrets",
            "app_id",
            "app_password",
            "sidecar_secret",
            "trusted_origins",
            "enhanced_auth",
        }
        if unknown:
            raise ConfigError(f"bots[{i}]: unknown keys {sorted(unknown)}")
        bot_id = entry.get("id")
        if not isinstance(bot_id, str) or not re.fullmatch(r"[A-Za-z0-9_.@:-]{1,64}", bot_id):
            raise ConfigError(f"bots[{i}]: 'id' must be 1-64 letters, digits or _.@:-")
        name = entry.get("name", bot_id)
        if not isinstance(name, str):
            raise ConfigError(f"bots[{i}]: 'name' must be a string")
        endpoint = entry.get("endpoint")
        try:
            app_id = _app_id(entry["app_id"]) if "app_id" in entry else None
            passwords = _app_passwords(entry.get("app_password", []))
            sidecar = _sidecar_secret(entry["sidecar_secret"]) if "sidecar_secret" in entry else None
            origins = _origins(entry.get("trusted_origins", []))
            enhanced = parse_bool(entry.get("enhanced_auth", False))
        except ConfigError as e:
            raise ConfigError(f"bots[{i}]: {e}") from None
        bots.append(
            BotConfig(
                bot_id,
                name,
                _url(endpoint) if endpoint else None,
                tuple(_str_list(entry.get("secrets", []))),
                app_id,
                tuple(passwords),
                sidecar,
                tuple(origins),
                enhanced,
            )
        )
    return bots


def _check_bot_auth(bots: list[BotConfig], require_bot_auth: bool) -> None:
    """Bot authentication settings that cannot work are refused at start, saying why."""
    app_ids = [b.app_id.lower() for b in bots if b.app_id]
    if len(set(app_ids)) != len(app_ids):
        raise ConfigError("an app id can belong to one bot only")
    sidecars = [b.sidecar_secret for b in bots if b.sidecar_secret]
    if len(set(sidecars)) != len(sidecars):
        raise ConfigError("a sidecar secret can belong to one bot only")
    for bot in bots:
        if bot.app_id is None:
            if bot.app_passwords or bot.sidecar_secret:
                raise ConfigError(f"bot {bot.id!r}: an app password or sidecar secret needs the bot's app id")
            if require_bot_auth:
                what = "the built-in echo bot" if bot.endpoint is None else f"bot {bot.id!r}"
                raise ConfigError(f"{what} has no app id: with require_bot_auth on, its calls could never be accepted")
        elif bot.endpoint is None:
            raise ConfigError("the built-in echo bot does not authenticate: give an app id only to your own bots")
        elif not bot.app_passwords and not bot.sidecar_secret:
            raise ConfigError(
                f"bot {bot.id!r}: an app id needs an app password (or a sidecar secret) for the bot to get its tokens"
            )


def _no_passphrase() -> str:
    raise ConfigError("it is encrypted: give a key without a passphrase (openline asks for none)")


def _check_tls(cert: Path, key: Path) -> None:
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password=_no_passphrase)
    except ConfigError as e:
        raise ConfigError(f"tls_key {key}: {e}") from None
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"tls_cert {cert} and tls_key {key} cannot be used together: {e}") from None


def load_config(cli: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Merge the sources. `cli` holds the flags that were given (None = not given), plus `config`."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    toml_bots: Any = None
    config_file = cli.get("config") or env.get("OPENLINE_CONFIG")
    if config_file:
        data = _read_toml(Path(config_file))
        toml_bots = data.pop("bots", None)
        unknown = set(data) - set(OPTIONS)
        if unknown:
            raise ConfigError(f"config file {config_file}: unknown keys {sorted(unknown)}")
        raw.update(data)
    for name in OPTIONS:
        value = env.get("OPENLINE_" + name.upper())
        if value is not None and value != "":
            raw[name] = value
    raw.update({k: v for k, v in cli.items() if k in OPTIONS and v is not None and v != []})

    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = OPTIONS[name](value)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: {value!r} is not a valid value") from None

    single = {name: values.pop(name) for name in _SINGLE_BOT if name in values}
    bot_url, secrets = single.get("bot"), single.get("secret", [])
    app_id: str | None = single.get("bot_app_id")
    passwords: tuple[str, ...] = tuple(single.get("bot_app_password", []))
    sidecar: str | None = single.get("bot_sidecar_secret")
    origins: tuple[str, ...] = tuple(single.get("trusted_origins", []))
    enhanced: bool = single.get("enhanced_auth", False)
    if toml_bots is not None:
        if bot_url or secrets or app_id or passwords or sidecar or origins or "enhanced_auth" in single:
            raise ConfigError(
                "--bot, --secret, --bot-app-*, --trusted-origins and --enhanced-auth describe one bot; with [[bots]]"
                " in the config file, configure bots there"
            )
        bots = _bots_from_toml(toml_bots)
    elif bot_url:
        bots = [BotConfig("bot", "Bot", bot_url, tuple(secrets), app_id, passwords, sidecar, origins, enhanced)]
    else:
        bots = [
            BotConfig(ECHO_BOT_ID, ECHO_BOT_NAME, None, tuple(secrets), app_id, passwords, sidecar, origins, enhanced)
        ]
    if not bots:
        raise ConfigError("no bots configured")
    ids = [b.id for b in bots]
    if len(set(ids)) != len(ids):
        raise ConfigError("bot ids must be unique")
    all_secrets = [s for b in bots for s in b.secrets]
    if len(set(all_secrets)) != len(all_secrets):
        raise ConfigError("a secret can belong to one bot only")
    _check_bot_auth(bots, bool(values.get("require_bot_auth", False)))
    if ("tls_cert" in values) != ("tls_key" in values):
        raise ConfigError("tls_cert and tls_key go together: the certificate (chain) and its private key")
    if "tls_cert" in values:
        _check_tls(values["tls_cert"], values["tls_key"])
    if values.get("durability", "process") != "process" and parse_store_url(values.get("store"))[0] != "sqlite":
        raise ConfigError(
            "durability applies to the SQLite store: memory:// keeps nothing past the process, and Redis's own"
            " persistence settings (appendonly, appendfsync) decide what it keeps"
        )

    # like the web page: off on loopback (one machine, often a developer's), on wherever others can reach it
    local = is_loopback(values.get("host", Config.host))
    values.setdefault("rate_limit", None if local else DEFAULT_RATE_LIMIT)
    values.setdefault("conversation_rate_limit", None if local else DEFAULT_CONVERSATION_RATE_LIMIT)
    config = Config(bots=tuple(bots), public_url_given=bool(values.get("public_url")), **values)
    if not config.public_url:
        config = replace(config, public_url=config.local_url)
    if config.web_page is None:
        config = replace(config, web_page=is_loopback(config.host))
    return config
