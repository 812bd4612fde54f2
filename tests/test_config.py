"""Tests for openline.config: value parsers, source precedence, bots and configuration errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openline.cli import _parser
from openline.config import (
    DEFAULT_CONVERSATION_RATE_LIMIT,
    DEFAULT_RATE_LIMIT,
    ECHO_BOT_ID,
    ECHO_BOT_NAME,
    OPTIONS,
    WEBCHAT_CDN,
    BotConfig,
    Config,
    ConfigError,
    connect_host,
    is_loopback,
    load_config,
    parse_bool,
    parse_duration,
    parse_seconds,
    parse_size,
)
from openline.protocol.ratelimit import Rate
from openline.storage import parse_store_url


def _cli(**given: Any) -> dict[str, Any]:
    """The flags as argparse hands them over: every option present, None when not given."""
    return {"command": "serve", "config": None, **dict.fromkeys(OPTIONS), **given}


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "openline.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _error(cli: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cli, env={} if env is None else env)
    return str(info.value)


# parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 604800),
        (1800, 1800),
        ("1800", 1800),
        (0, 0),
        ("0", 0),
        (" 30m ", 1800),
        ("30 m", 1800),
        ("30M", 1800),
        ("1.5h", 5400),
        (90.0, 90),
    ],
)
def test_parse_duration(value: Any, seconds: int) -> None:
    assert parse_duration(value) == seconds
    assert isinstance(parse_duration(value), int)


@pytest.mark.parametrize("value", ["", "abc", "-5", -5, "5w", "5 minutes", "1.5.2", "m", True, False, None, [30]])
def test_parse_duration_rejects(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_duration(value)


# parse_seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1.5", 1.5), (" 0.25 ", 0.25), (2.5, 2.5), (15, 15.0), ("15", 15.0), ("15s", 15.0), ("2m", 120.0)],
)
def test_parse_seconds_keeps_fractions(value: Any, seconds: float) -> None:
    assert parse_seconds(value) == seconds
    assert isinstance(parse_seconds(value), float)


@pytest.mark.parametrize("value", ["", "abc", "-1.5", -1.5, "1,5", True])
def test_parse_seconds_rejects(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_seconds(value)


# parse_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("256KB", 256 * 1024),
        ("4MB", 4 * 1024 * 1024),
        ("256k", 256 * 1024),
        ("256kb", 256 * 1024),
        ("4m", 4 * 1024 * 1024),
        (100, 100),
        ("100", 100),
        ("100b", 100),
        (" 4 MB ", 4 * 1024 * 1024),
    ],
)
def test_parse_size(value: Any, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", [0, "0", "0KB", -1, "-1", "1.5MB", "4GB", "4 megabytes", "KB", "", "abc", True, 1.5])
def test_parse_size_rejects(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_size(value)


# connect_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("::", "[::1]"),
        ("::1", "[::1]"),
        ("[::1]", "[::1]"),
        ("localhost", "localhost"),
        ("10.0.0.5", "10.0.0.5"),
    ],
)
def test_connect_host(host: str, expected: str) -> None:
    assert connect_host(host) == expected


# defaults


def test_defaults() -> None:
    config = load_config(_cli(), env={})
    assert config == Config(
        public_url="http://127.0.0.1:3000",
        bots=(BotConfig(ECHO_BOT_ID, ECHO_BOT_NAME, None, ()),),
        web_page=True,  # resolved: the default host is loopback
    )
    assert config.host == "127.0.0.1"
    assert config.port == 3000
    assert config.token_ttl == 1800
    assert config.max_message_bytes == 256 * 1024
    assert config.max_upload_bytes == 4 * 1024 * 1024
    assert config.data_dir == Path("openline-data")
    assert config.webchat_url == WEBCHAT_CDN
    assert config.webchat_file is None
    assert config.admin_secret is None


def test_an_empty_cli_mapping_is_all_defaults() -> None:
    assert load_config({}, env={}) == load_config(_cli(), env={})


def test_default_bot_is_the_echo_bot() -> None:
    (bot,) = load_config(_cli(), env={}).bots
    assert bot.id == "echobot"
    assert bot.endpoint is None


def test_bot_flag_configures_one_bot_called_bot() -> None:
    config = load_config(_cli(bot="http://localhost:3978/api/messages/", secret=["s1", "s2"]), env={})
    assert config.bots == (BotConfig("bot", "Bot", "http://localhost:3978/api/messages", ("s1", "s2")),)


def test_secret_without_bot_belongs_to_the_echo_bot() -> None:
    (bot,) = load_config(_cli(secret=["s1"]), env={}).bots
    assert (bot.id, bot.endpoint, bot.secrets) == (ECHO_BOT_ID, None, ("s1",))


def test_an_empty_secret_list_is_not_given() -> None:
    (bot,) = load_config(_cli(secret=[]), env={"OPENLINE_SECRET": "from-env"}).bots
    assert bot.secrets == ("from-env",)


# public_url


def test_public_url_follows_host_and_port() -> None:
    assert load_config(_cli(host="192.168.1.2", port="8080"), env={}).public_url == "http://192.168.1.2:8080"


def test_public_url_for_a_wildcard_host_uses_loopback() -> None:
    config = load_config(_cli(host="0.0.0.0", port="8080"), env={})
    assert config.host == "0.0.0.0"
    assert config.public_url == "http://127.0.0.1:8080"
    assert config.local_url == "http://127.0.0.1:8080"


def test_public_url_for_an_ipv6_wildcard() -> None:
    assert load_config(_cli(host="::"), env={}).public_url == "http://[::1]:3000"


def test_an_explicit_public_url_wins_and_loses_its_trailing_slash() -> None:
    config = load_config(_cli(public_url="https://dl.example.com/base/"), env={})
    assert config.public_url == "https://dl.example.com/base"
    assert config.local_url == "http://127.0.0.1:3000"


# precedence


def test_precedence_defaults_toml_env_cli(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 1000\nhost = "10.0.0.1"\ntoken_ttl = "1h"\nlog_level = "debug"\n')
    env = {"OPENLINE_PORT": "2000", "OPENLINE_HOST": "10.0.0.2"}
    config = load_config(_cli(config=path, port="4000"), env=env)
    assert config.port == 4000  # CLI over env over TOML
    assert config.host == "10.0.0.2"  # env over TOML
    assert config.token_ttl == 3600  # TOML over defaults
    assert config.log_level == "debug"
    assert config.retention == 86400  # default


def test_env_over_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 1000\n")
    assert load_config(_cli(config=path), env={"OPENLINE_PORT": "2000"}).port == 2000


def test_toml_over_defaults(tmp_path: Path) -> None:
    assert load_config(_cli(config=_toml(tmp_path, "port = 1000\n")), env={}).port == 1000


def test_cli_none_is_not_given(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 1000\n")
    assert load_config(_cli(config=path, port=None), env={}).port == 1000


def test_empty_env_values_are_not_given() -> None:
    assert load_config(_cli(), env={"OPENLINE_PORT": "", "OPENLINE_HOST": ""}).port == 3000


def test_env_names_every_option() -> None:
    env = {
        "OPENLINE_HOST": "0.0.0.0",
        "OPENLINE_PORT": "8080",
        "OPENLINE_PUBLIC_URL": "https://dl.example.com",
        "OPENLINE_DATA_DIR": "/var/lib/openline",
        "OPENLINE_STORE": "memory://",
        "OPENLINE_TOKEN_TTL": "10m",
        "OPENLINE_RETENTION": "2d",
        "OPENLINE_CONVERSATION_TTL": "30d",
        "OPENLINE_BOT_TIMEOUT": "2.5",
        "OPENLINE_MAX_MESSAGE_BYTES": "64KB",
        "OPENLINE_MAX_UPLOAD_BYTES": "10MB",
        "OPENLINE_PAGE_SIZE": "20",
        "OPENLINE_LOG_LEVEL": "warning",
    }
    config = load_config(_cli(), env=env)
    assert config.host == "0.0.0.0"
    assert config.port == 8080
    assert config.public_url == "https://dl.example.com"
    assert config.data_dir == Path("/var/lib/openline")
    assert config.store == "memory://"
    assert config.token_ttl == 600
    assert config.retention == 2 * 86400
    assert config.conversation_ttl == 30 * 86400
    assert config.bot_timeout == 2.5
    assert config.max_message_bytes == 64 * 1024
    assert config.max_upload_bytes == 10 * 1024 * 1024
    assert config.page_size == 20
    assert config.log_level == "warning"


def test_env_secret_is_comma_separated() -> None:
    (bot,) = load_config(_cli(), env={"OPENLINE_SECRET": "a, b,,c ,"}).bots
    assert bot.secrets == ("a", "b", "c")


def test_env_bot_and_secret() -> None:
    env = {"OPENLINE_BOT": "http://localhost:3978/api/messages", "OPENLINE_SECRET": "s1,s2"}
    assert load_config(_cli(), env=env).bots == (
        BotConfig("bot", "Bot", "http://localhost:3978/api/messages", ("s1", "s2")),
    )


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 1234\n")
    assert load_config(_cli(), env={"OPENLINE_CONFIG": path}).port == 1234


def test_toml_keys_may_use_dashes(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'public-url = "https://x.example"\npage-size = 5\nbot-timeout = 0.5\n')
    config = load_config(_cli(config=path), env={})
    assert (config.public_url, config.page_size, config.bot_timeout) == ("https://x.example", 5, 0.5)


def test_toml_native_values(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'token_ttl = 60\nmax_upload_bytes = 1024\nsecret = ["a", "b"]\ndata_dir = "d"\n')
    config = load_config(_cli(config=path), env={})
    assert config.token_ttl == 60
    assert config.max_upload_bytes == 1024
    assert config.bots[0].secrets == ("a", "b")
    assert config.data_dir == Path("d")


# [[bots]]


def test_toml_bots(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
[[bots]]
id = "support"
name = "Support Bot"
endpoint = "http://localhost:3978/api/messages"
secrets = ["s1", "s2"]

[[bots]]
id = "sales"
endpoint = "https://sales.example.com/api/messages/"
secrets = "s3, s4"

[[bots]]
id = "echo"
name = "Echo"
""",
    )
    assert load_config(_cli(config=path), env={}).bots == (
        BotConfig("support", "Support Bot", "http://localhost:3978/api/messages", ("s1", "s2")),
        BotConfig("sales", "sales", "https://sales.example.com/api/messages", ("s3", "s4")),
        BotConfig("echo", "Echo", None, ()),
    )


def test_a_toml_bot_without_endpoint_is_the_echo_bot(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[[bots]]\nid = "mine"\nsecrets = ["x"]\n\n[[bots]]\nid = "empty"\nendpoint = ""\n')
    bots = load_config(_cli(config=path), env={}).bots
    assert [(b.id, b.endpoint) for b in bots] == [("mine", None), ("empty", None)]


# errors


@pytest.mark.parametrize(
    ("cli", "env"),
    [
        ({"bot": "http://localhost:3978/api/messages"}, {}),
        ({"secret": ["s9"]}, {}),
        ({}, {"OPENLINE_BOT": "http://localhost:3978/api/messages"}),
        ({}, {"OPENLINE_SECRET": "s9"}),
    ],
)
def test_bot_or_secret_flags_with_toml_bots_is_an_error(
    tmp_path: Path, cli: dict[str, Any], env: dict[str, str]
) -> None:
    path = _toml(tmp_path, '[[bots]]\nid = "a"\n')
    assert "[[bots]]" in _error(_cli(config=path, **cli), env)


def test_duplicate_bot_ids(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[[bots]]\nid = "a"\n\n[[bots]]\nid = "a"\nendpoint = "http://x"\n')
    assert "unique" in _error(_cli(config=path))


def test_a_secret_shared_by_two_bots(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[[bots]]\nid = "a"\nsecrets = ["s"]\n\n[[bots]]\nid = "b"\nsecrets = ["t", "s"]\n')
    assert "secret" in _error(_cli(config=path))


def test_a_secret_repeated_for_one_bot() -> None:
    assert "secret" in _error(_cli(secret=["s", "s"]))


def test_unknown_toml_keys(tmp_path: Path) -> None:
    message = _error(_cli(config=_toml(tmp_path, "port = 1\nprot = 2\n")))
    assert "prot" in message


def test_unknown_keys_in_a_toml_bot(tmp_path: Path) -> None:
    message = _error(_cli(config=_toml(tmp_path, '[[bots]]\nid = "a"\nurl = "http://x"\n')))
    assert "url" in message
    assert "bots[0]" in message


@pytest.mark.parametrize(
    "bots",
    [
        '[[bots]]\nname = "no id"\n',
        '[[bots]]\nid = ""\n',
        '[[bots]]\nid = "has space"\n',
        "[[bots]]\nid = 5\n",
        '[[bots]]\nid = "a"\nname = 5\n',
        '[[bots]]\nid = "a"\nendpoint = "not a url"\n',
        '[[bots]]\nid = "a"\nsecrets = 5\n',
        'bots = "a"\n',
        "bots = [1, 2]\n",
        "bots = []\n",
    ],
)
def test_invalid_toml_bots(tmp_path: Path, bots: str) -> None:
    _error(_cli(config=_toml(tmp_path, bots)))


def test_invalid_toml(tmp_path: Path) -> None:
    message = _error(_cli(config=_toml(tmp_path, "port = = 3\n[unclosed\n")))
    assert "TOML" in message


def test_a_missing_config_file(tmp_path: Path) -> None:
    message = _error(_cli(config=str(tmp_path / "nope.toml")))
    assert "nope.toml" in message


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "3000.5"])
def test_bad_port(port: str) -> None:
    assert "port" in _error(_cli(port=port))


def test_bad_port_from_env_and_toml(tmp_path: Path) -> None:
    assert "port" in _error(_cli(), {"OPENLINE_PORT": "http"})
    assert "port" in _error(_cli(config=_toml(tmp_path, "port = 70000\n")))


@pytest.mark.parametrize("option", ["public_url", "bot"])
@pytest.mark.parametrize("url", ["ftp://example.com", "localhost:3978", "example.com/api", "http://", "not a url"])
def test_bad_url(option: str, url: str) -> None:
    assert option in _error(_cli(**{option: url}))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("token_ttl", "forever"),
        ("retention", "-1d"),
        ("conversation_ttl", "2 weeks"),
        ("bot_timeout", "soon"),
        ("max_message_bytes", "1GB"),
        ("max_upload_bytes", "lots"),
        ("page_size", "0"),
        ("page_size", "10001"),
        ("page_size", "many"),
    ],
)
def test_bad_values_name_the_option(option: str, value: str) -> None:
    assert _error(_cli(**{option: value})).startswith(f"{option}: ")
    assert _error(_cli(), {"OPENLINE_" + option.upper(): value}).startswith(f"{option}: ")


def test_a_wrong_toml_type_for_data_dir_is_a_config_error(tmp_path: Path) -> None:
    assert "data_dir" in _error(_cli(config=_toml(tmp_path, "data_dir = 5\n")))


@pytest.mark.parametrize(
    "url",
    [
        "redis:/localhost",
        "redis://",
        "redis://h:notaport/0",
        "redis://h:6379/abc",
        "redis://h:6379/0?foo=bar",
        "redis://h:6379/0?socket_timeout=soon",
        "sqlite:",
        "postgres://x",
        "memoryx",
    ],
)
def test_an_unknown_store_url_is_a_config_error(url: str) -> None:
    assert _error(_cli(store=url)).startswith("store: ")


@pytest.mark.parametrize("url", ["memory://", "sqlite:///tmp/x.sqlite3", "sqlite:relative.db"])
def test_store_urls(url: str) -> None:
    assert load_config({"store": url}, env={}).store == url


# parse_bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
    ],
)
def test_parse_bool(value: Any, expected: bool) -> None:
    assert parse_bool(value) is expected


@pytest.mark.parametrize("value", ["", "maybe", "2", "y", "enabled", None])
def test_parse_bool_rejects(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_bool(value)


# web_page


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_the_web_page_is_on_by_default_on_loopback(host: str) -> None:
    assert is_loopback(host)
    assert load_config(_cli(host=host), env={}).web_page is True


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.2", "10.0.0.5", "fe80::1", "example.com"])
def test_the_web_page_is_off_by_default_on_other_addresses(host: str) -> None:
    assert not is_loopback(host)
    assert load_config(_cli(host=host), env={}).web_page is False


def test_the_web_page_follows_the_host_from_env_and_toml(tmp_path: Path) -> None:
    assert load_config(_cli(), env={"OPENLINE_HOST": "0.0.0.0"}).web_page is False
    assert load_config(_cli(config=_toml(tmp_path, 'host = "192.168.1.2"\n')), env={}).web_page is False


@pytest.mark.parametrize(("host", "given"), [("127.0.0.1", False), ("0.0.0.0", True), ("::1", False)])
def test_the_web_page_flag_wins_over_the_host(host: str, given: bool) -> None:
    assert load_config(_cli(host=host, web_page=given), env={}).web_page is given


@pytest.mark.parametrize(("args", "expected"), [(["--web-page"], True), (["--no-web-page"], False), ([], True)])
def test_the_web_page_flags_as_parsed(args: list[str], expected: bool) -> None:
    parsed = vars(_parser().parse_args(["serve", *args]))
    assert load_config(parsed, env={}).web_page is expected
    # on a wildcard address the page is off unless asked for
    parsed = vars(_parser().parse_args(["serve", "--host", "0.0.0.0", *args]))
    assert load_config(parsed, env={}).web_page is (expected if args else False)


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("off", False), ("true", True), ("1", True)])
def test_the_web_page_from_env(value: str, expected: bool) -> None:
    assert load_config(_cli(), env={"OPENLINE_WEB_PAGE": value}).web_page is expected
    assert load_config(_cli(), env={"OPENLINE_WEB_PAGE": value, "OPENLINE_HOST": "0.0.0.0"}).web_page is expected


def test_an_empty_web_page_env_is_not_given() -> None:
    assert load_config(_cli(host="0.0.0.0"), env={"OPENLINE_WEB_PAGE": ""}).web_page is False


@pytest.mark.parametrize(("text", "expected"), [("web_page = false", False), ('web-page = "yes"', True)])
def test_the_web_page_from_toml(tmp_path: Path, text: str, expected: bool) -> None:
    path = _toml(tmp_path, f'host = "0.0.0.0"\n{text}\n' if expected else f"{text}\n")
    assert load_config(_cli(config=path), env={}).web_page is expected


def test_web_page_precedence(tmp_path: Path) -> None:
    path = _toml(tmp_path, "web_page = false\n")
    assert load_config(_cli(config=path), env={"OPENLINE_WEB_PAGE": "true"}).web_page is True
    assert load_config(_cli(config=path, web_page=False), env={"OPENLINE_WEB_PAGE": "true"}).web_page is False


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_bad_web_page_value_names_the_option(value: str) -> None:
    assert _error(_cli(web_page=value)).startswith("web_page: ")
    assert _error(_cli(), {"OPENLINE_WEB_PAGE": value}).startswith("web_page: ")


# webchat_url and webchat_file


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/webchat.js",
        "http://localhost:8080/webchat.js",
        "https://cdn.example.com/botframework-webchat@4.18.0/dist/webchat.js?v=1",
        "/assets/webchat.js",
        "/",
    ],
)
def test_webchat_url(url: str) -> None:
    assert load_config(_cli(webchat_url=url), env={}).webchat_url == url
    assert load_config(_cli(), env={"OPENLINE_WEBCHAT_URL": f" {url} "}).webchat_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cdn.example.com/webchat.js",
        "javascript:alert(1)",
        "data:text/javascript,alert(1)",
        "webchat.js",
        "cdn.example.com/webchat.js",
        "https://",
        "https:///webchat.js",
        "https://cdn.example.com/web chat.js",
        "/assets/web chat.js",
        "",
        "//cdn.example.com/webchat.js",  # browsers read these two as another host
        "/\\cdn.example.com/webchat.js",
    ],
)
def test_bad_webchat_urls(url: str) -> None:
    assert _error(_cli(webchat_url=url)).startswith("webchat_url: ")


def test_webchat_url_from_toml_must_be_a_string(tmp_path: Path) -> None:
    assert _error(_cli(config=_toml(tmp_path, "webchat_url = 5\n"))).startswith("webchat_url: ")


def test_webchat_file_must_exist(tmp_path: Path) -> None:
    script = tmp_path / "webchat.js"
    script.write_text("window.WebChat = {};\n", encoding="utf-8")
    assert load_config(_cli(webchat_file=str(script)), env={}).webchat_file == script
    assert load_config(_cli(), env={"OPENLINE_WEBCHAT_FILE": str(script)}).webchat_file == script
    toml = _toml(tmp_path, f"webchat_file = {str(script)!r}\n")
    assert load_config(_cli(config=toml), env={}).webchat_file == script
    missing = tmp_path / "nope.js"
    message = _error(_cli(webchat_file=str(missing)))
    assert message.startswith("webchat_file: ") and "nope.js" in message
    assert _error(_cli(webchat_file=str(tmp_path))).startswith("webchat_file: "), "a directory is not a file"
    assert _error(_cli(config=_toml(tmp_path, "webchat_file = 5\n"))).startswith("webchat_file: ")


# admin_secret


@pytest.mark.parametrize("secret", ["0123456789abcdef", "a-much-longer-admin-secret_with.symbols!", "é" * 16])
def test_admin_secret(secret: str) -> None:
    assert load_config(_cli(admin_secret=secret), env={}).admin_secret == secret
    assert load_config(_cli(), env={"OPENLINE_ADMIN_SECRET": secret}).admin_secret == secret


def test_admin_secret_from_toml(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'admin-secret = "from-the-config-file"\n')
    assert load_config(_cli(config=path), env={}).admin_secret == "from-the-config-file"


@pytest.mark.parametrize(
    "secret", ["0123456789abcde", "short", "has a space in it ok", "tab\tin-the-secret-here", "newline-at-end-xx\n"]
)
def test_bad_admin_secrets(secret: str) -> None:
    message = _error(_cli(admin_secret=secret))
    assert message.startswith("admin_secret: ")
    assert secret not in message, "the error does not repeat the secret"
    assert _error(_cli(), {"OPENLINE_ADMIN_SECRET": secret}).startswith("admin_secret: ")


def test_admin_secret_from_toml_must_be_a_string(tmp_path: Path) -> None:
    message = _error(_cli(config=_toml(tmp_path, "admin_secret = 12345678901234567890\n")))
    assert message.startswith("admin_secret: ")


# the limits that keep one client from stalling the service, and the access log


def test_limit_defaults() -> None:
    config = load_config(_cli(), env={})
    assert (config.max_header_bytes, config.header_timeout, config.body_timeout) == (32 * 1024, 10.0, 30.0)
    assert config.max_connections is None, "auto: from the open-file limit"
    assert config.access_log is True


def test_limits_from_flags() -> None:
    args = ["serve", "--max-header-bytes", "8KB", "--header-timeout", "2.5", "--body-timeout", "1m"]
    args += ["--max-connections", "500", "--no-access-log"]
    config = load_config(vars(_parser().parse_args(args)), env={})
    assert (config.max_header_bytes, config.header_timeout, config.body_timeout) == (8192, 2.5, 60.0)
    assert (config.max_connections, config.access_log) == (500, False)


def test_limits_from_env_and_toml(tmp_path: Path) -> None:
    env = {"OPENLINE_MAX_CONNECTIONS": "auto", "OPENLINE_HEADER_TIMEOUT": "5s", "OPENLINE_ACCESS_LOG": "off"}
    config = load_config(_cli(), env=env)
    assert (config.max_connections, config.header_timeout, config.access_log) == (None, 5.0, False)
    path = tmp_path / "c.toml"
    path.write_text('max_connections = 64\nbody_timeout = "90s"\nmax_header_bytes = 2048\n')
    config = load_config(_cli(config=str(path)), env={})
    assert (config.max_connections, config.body_timeout, config.max_header_bytes) == (64, 90.0, 2048)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_header_bytes", "100"),
        ("max_header_bytes", "2MB"),
        ("max_header_bytes", "lots"),
        ("header_timeout", "0"),
        ("header_timeout", "2h"),
        ("body_timeout", "-1"),
        ("max_connections", "0"),
        ("max_connections", "many"),
        ("access_log", "sometimes"),
    ],
)
def test_bad_limits_name_the_option(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match=option):
        load_config(_cli(**{option: value}), env={})


def test_auto_max_connections_follows_the_open_file_limit() -> None:
    from openline.server import auto_max_connections, limits_of

    assert auto_max_connections(1024) == 480, "each client may also hold a connection to the bot"
    assert auto_max_connections(100) == 18
    assert auto_max_connections(10) == 16
    assert auto_max_connections(1 << 20) == 10_000
    config = load_config(_cli(), env={})
    assert limits_of(config, 1024).max_connections == 480
    assert limits_of(load_config(_cli(max_connections="7"), env={}), 1024).max_connections == 7


def test_scrub_interval() -> None:
    assert load_config(_cli(), env={}).scrub_interval == 600
    assert load_config(_cli(scrub_interval="0"), env={}).scrub_interval == 0
    assert load_config(_cli(), env={"OPENLINE_SCRUB_INTERVAL": "1h"}).scrub_interval == 3600
    with pytest.raises(ConfigError, match="scrub_interval"):
        load_config(_cli(scrub_interval="soon"), env={})


@pytest.mark.parametrize("url", ["http://[::1", "http://x:99999", "ftp://x", "http//x"])
def test_malformed_public_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        load_config(_cli(public_url=url), env={})


def test_url_schemes_are_case_insensitive() -> None:
    assert load_config(_cli(public_url="HTTPS://Chat.Example.com/"), env={}).public_url == "https://Chat.Example.com"


def test_an_empty_secret_flag_is_an_error_not_no_secret() -> None:
    with pytest.raises(ConfigError, match="secret"):
        load_config(vars(_parser().parse_args(["serve", "--secret", ""])), env={})


def test_durability() -> None:
    assert load_config(_cli(), env={}).durability == "process"
    assert load_config(_cli(durability="power"), env={}).durability == "power"
    assert load_config(_cli(), env={"OPENLINE_DURABILITY": " Power "}).durability == "power"
    assert "not a durability" in _error(_cli(durability="fsync"))
    assert "applies to the SQLite store" in _error(_cli(durability="power", store="memory://"))
    assert load_config(_cli(durability="process", store="memory://"), env={}).durability == "process"


def test_connections_give_up_on_a_silent_peer() -> None:
    """Accepted sockets drop a peer that leaves sent data unacknowledged for PEER_SILENCE (Linux)."""
    import socket

    from openline.server import PEER_SILENCE, give_up_on_silent_peers

    with socket.socket() as sock:
        give_up_on_silent_peers(sock)
        option = getattr(socket, "TCP_USER_TIMEOUT", None)
        if option is not None:
            assert sock.getsockopt(socket.IPPROTO_TCP, option) == int(PEER_SILENCE * 1000)
    give_up_on_silent_peers(None)  # a transport without a socket: nothing to do


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://:secret@redis.example.com:6380/2",
        "redis+cluster://10.0.0.1:7000",
        "rediss+cluster://10.0.0.1:7000?prefix=team-a",
        "rediss://:pw@h:6380/1?ssl_cert_reqs=none&socket_timeout=5",
        "unix:///run/redis.sock",
    ],
)
def test_redis_store_urls_are_accepted(url: str) -> None:
    assert parse_store_url(url) == ("redis", None)


# limits: rate limits and the size settings (README: Limits)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_rate_limits_are_off_by_default_on_loopback(host: str) -> None:
    config = load_config(_cli(host=host), env={})
    assert config.rate_limit is None and config.conversation_rate_limit is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5"])
def test_rate_limits_are_on_by_default_beyond_loopback(host: str) -> None:
    config = load_config(_cli(host=host), env={})
    assert config.rate_limit == DEFAULT_RATE_LIMIT == Rate(20, 1.0)
    assert config.conversation_rate_limit == DEFAULT_CONVERSATION_RATE_LIMIT == Rate(10, 1.0)


def test_rate_limits_from_each_source(tmp_path: Path) -> None:
    assert load_config(_cli(rate_limit="600/m"), env={}).rate_limit == Rate(600, 60.0)
    env = {"OPENLINE_CONVERSATION_RATE_LIMIT": "100/10s", "OPENLINE_HOST": "0.0.0.0"}
    config = load_config(_cli(), env=env)
    assert config.conversation_rate_limit == Rate(100, 10.0) and config.rate_limit == DEFAULT_RATE_LIMIT
    toml = _toml(tmp_path, 'host = "0.0.0.0"\nrate_limit = "off"\nconversation_rate_limit = false\n')
    config = load_config(_cli(config=toml), env={})
    assert config.rate_limit is None and config.conversation_rate_limit is None
    assert load_config(_cli(host="0.0.0.0", rate_limit="off"), env={}).rate_limit is None


@pytest.mark.parametrize("value", ["20", "fast", "0/s", "20/y", "1.5/s"])
def test_a_bad_rate_limit_says_what_is_expected(value: str) -> None:
    assert "rate_limit" in _error(_cli(rate_limit=value)) and "per s, m, h or d" in _error(_cli(rate_limit=value))


def test_size_limits_have_defaults_and_take_sizes() -> None:
    config = load_config(_cli(), env={})
    assert (config.max_connector_bytes, config.max_form_bytes) == (4 * 1024 * 1024, 16 * 1024)
    assert (config.max_upload_parts, config.max_frame_bytes) == (64, 4096)
    given = _cli(max_connector_bytes="8MB", max_form_bytes="4KB", max_upload_parts="10", max_frame_bytes="64KB")
    config = load_config(given, env={})
    assert (config.max_connector_bytes, config.max_form_bytes) == (8 * 1024 * 1024, 4096)
    assert (config.max_upload_parts, config.max_frame_bytes) == (10, 65536)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_connector_bytes", "0"),
        ("max_form_bytes", "lots"),
        ("max_upload_parts", "0"),
        ("max_upload_parts", "10001"),
        ("max_frame_bytes", "100"),
        ("max_frame_bytes", "17MB"),
    ],
)
def test_bad_size_limits_are_refused(name: str, value: str) -> None:
    assert name in _error(_cli(**{name: value}))


def test_every_limit_has_a_flag_with_help() -> None:
    from openline.cli import _HELP

    flags = {a.dest for a in _parser()._subparsers._group_actions[0].choices["serve"]._actions}  # type: ignore[union-attr]
    names = ("rate_limit", "conversation_rate_limit", "max_connector_bytes", "max_form_bytes")
    for name in (*names, "max_upload_parts", "max_frame_bytes"):
        assert name in flags and _HELP[name]


# access rules: trusted origins and enhanced authentication, per bot


def test_access_rules_of_the_single_bot_from_flags_env_and_toml(tmp_path: Path) -> None:
    flags = ["--trusted-origins", "https://A.example/", "--trusted-origins", "http://b.example:8080,"]
    args = _parser().parse_args(["serve", *flags, "--enhanced-auth"])
    (bot,) = load_config(vars(args), env={}).bots
    assert bot.trusted_origins == ("https://a.example", "http://b.example:8080")
    assert bot.enhanced_auth is True
    env = {"OPENLINE_TRUSTED_ORIGINS": "https://a.example:443, https://c.example", "OPENLINE_ENHANCED_AUTH": "yes"}
    (bot,) = load_config(_cli(bot="http://h/api/messages"), env=env).bots
    assert (bot.trusted_origins, bot.enhanced_auth) == (("https://a.example", "https://c.example"), True)
    path = _toml(tmp_path, 'trusted_origins = ["https://a.example"]\nenhanced_auth = false\n')
    (bot,) = load_config(_cli(config=path), env={}).bots
    assert (bot.trusted_origins, bot.enhanced_auth) == (("https://a.example",), False)
    (bot,) = load_config(_cli(), env={}).bots
    assert (bot.trusted_origins, bot.enhanced_auth) == ((), False)
    assert _parser().parse_args(["serve", "--no-enhanced-auth"]).enhanced_auth is False


def test_access_rules_of_toml_bots(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[[bots]]\nid = "a"\nendpoint = "http://x"\ntrusted-origins = ["https://Web.example", "https://web.example"]\n'
        'enhanced-auth = true\n\n[[bots]]\nid = "b"\nendpoint = "http://y"\n',
    )
    a, b = load_config(_cli(config=path), env={}).bots
    assert (a.trusted_origins, a.enhanced_auth) == (("https://web.example",), True)
    assert (b.trusted_origins, b.enhanced_auth) == ((), False)


@pytest.mark.parametrize(
    "origin",
    [
        "example.com",
        "https://example.com/chat",
        "https://example.com?x",
        "https://*.example.com",
        "https://user@example.com",
        "https://example.com:99999",
        "null",
        "https://",
    ],
)
def test_a_trusted_origin_must_be_scheme_host_and_port(tmp_path: Path, origin: str) -> None:
    assert "trusted_origins" in _error(_cli(trusted_origins=[origin]))
    path = _toml(tmp_path, f'[[bots]]\nid = "a"\ntrusted_origins = ["{origin}"]\n')
    assert "bots[0]" in _error(_cli(config=path))


def test_access_rules_of_toml_bots_are_checked(tmp_path: Path) -> None:
    assert "bots[0]" in _error(_cli(config=_toml(tmp_path, '[[bots]]\nid = "a"\ntrusted_origins = 5\n')))
    assert "bots[0]" in _error(_cli(config=_toml(tmp_path, '[[bots]]\nid = "a"\nenhanced_auth = "maybe"\n')))
    assert "enhanced_auth" in _error(_cli(enhanced_auth="maybe"))


@pytest.mark.parametrize("flag", [{"trusted_origins": ["https://a.example"]}, {"enhanced_auth": False}])
def test_single_bot_access_flags_with_toml_bots_is_an_error(tmp_path: Path, flag: dict[str, Any]) -> None:
    path = _toml(tmp_path, '[[bots]]\nid = "a"\n')
    assert "[[bots]]" in _error(_cli(config=path, **flag))
