"""The `openline` command: `openline serve` runs the service with flags, environment and a TOML file."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from openline import __version__, logs
from openline.config import OPTIONS, Config, ConfigError, load_config

_HELP = {
    "host": "address to listen on (default 127.0.0.1)",
    "port": "port to listen on (default 3000)",
    "public_url": "base URL clients and bots reach the service at (default http://HOST:PORT)",
    "bot": "the bot's messaging endpoint (default: the built-in echo bot)",
    "secret": "a Direct Line secret for the bot; repeat for several (default: generated, kept in the data dir)",
    "data_dir": "directory for the database, signing key and generated secrets (default ./openline-data)",
    "store": "storage URL: memory:// or sqlite:///PATH (default: SQLite in the data dir)",
    "token_ttl": "conversation token lifetime, e.g. 1800, 30m (default 30m)",
    "retention": "how long messages and uploaded files are kept, e.g. 24h (default 24h)",
    "conversation_ttl": "how long an idle conversation is kept before it is deleted (default 15d)",
    "scrub_interval": "SQLite: the longest time deleted data may stay in the database file (default 10m)",
    "bot_timeout": "how long to wait for the bot's answer, e.g. 15 or 15s (default 15s)",
    "max_message_bytes": "largest message body accepted, e.g. 256KB (default 256KB)",
    "max_upload_bytes": "largest upload accepted, e.g. 4MB (default 4MB)",
    "page_size": "most messages returned by one GET (default 100)",
    "stream_keepalive": "seconds between the empty keep-alive frames sent on 3.0 streams (default 20)",
    "max_header_bytes": "largest request line and headers accepted; larger get 431 (default 32KB)",
    "header_timeout": "time a client has to send a request's headers; slower get 408 (default 10s)",
    "body_timeout": "longest pause while a client sends a request's body; longer get 408 (default 30s)",
    "max_connections": "most connections open at once; auto: from the open-file limit (default auto)",
    "access_log": "log every request at info level, credentials redacted (default on)",
    "web_page": "serve the Web Chat page at / (default: on when listening on loopback only)",
    "webchat_url": "where the page loads Web Chat's script from (default: the official CDN)",
    "webchat_file": "a local copy of Web Chat's webchat.js to serve instead (for machines without internet)",
    "admin_secret": "the credential of /inspect and /admin (default: generated, kept in the data dir)",
    "log_level": "debug, info, warning or error (default info)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openline", description="A self-hosted Bot Framework Direct Line service.")
    parser.add_argument("--version", action="version", version=f"openline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the service",
        description="Run the service. Every flag can also be set as OPENLINE_<FLAG> in the environment "
        "or as a key in the --config TOML file; flags win over the environment, which wins over the file.",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML file with settings and [[bots]]")
    for name in OPTIONS:
        flag = "--" + name.replace("_", "-")
        if name == "secret":
            serve.add_argument(flag, action="append", metavar="S", help=_HELP[name])
        elif name in ("web_page", "access_log"):
            serve.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP[name])
        else:
            metavars = {"bot": "URL", "public_url": "URL", "store": "URL", "webchat_file": "PATH"}
            metavar = metavars.get(name, name.split("_")[-1].upper())
            serve.add_argument(flag, metavar=metavar, help=_HELP[name])
    return parser


def _banner(config: Config, generated: list[tuple[str, str]], admin_secret: str | None) -> None:
    print(f"openline {__version__}: Direct Line 3.0 at {config.public_url}/v3/directline", flush=True)
    print(f"  Direct Line 1.1 at {config.public_url}/api", flush=True)
    if config.web_page:
        print(f"  chat with the bot at {config.public_url}/", flush=True)
    print(f"  conversations inspector at {config.public_url}/inspect", flush=True)
    for bot in config.bots:
        print(f"  bot {bot.id!r} ({bot.name}) at {bot.endpoint or 'the built-in echo bot'}", flush=True)
    for bot_id, secret in generated:
        print(f"  generated Direct Line secret for {bot_id!r} (shown once; kept in {config.data_dir}/secrets.json):")
        print(f"    {secret}", flush=True)
    if admin_secret is not None:
        print(f"  generated admin secret for /inspect (shown once; kept in {config.data_dir}/admin.secret):")
        print(f"    {admin_secret}", flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced (OSError when the address is taken)."""
    address = host.strip("[]")
    if ":" not in address:
        return socket.create_server((address, port), backlog=2048)
    # "::" takes IPv4 too, as uvicorn's own binding does
    dual = address == "::" and socket.has_dualstack_ipv6()
    return socket.create_server((address, port), family=socket.AF_INET6, backlog=2048, dualstack_ipv6=dual)


def serve(config: Config) -> int:
    from openline.app import build_services, create_app
    from openline.server import limits_of, open_file_limit, server_config

    logs.configure(config.log_level)
    try:
        sock = _listen(config.host, config.port)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        print(f"openline: cannot listen on {config.host}:{config.port}: {reason}", file=sys.stderr)
        return 1
    try:
        services = build_services(config)
    except (OSError, ValueError) as e:
        sock.close()
        print(f"openline: cannot start: {e}", file=sys.stderr)
        return 1

    def announce() -> None:
        _banner(config, services.generated_secrets, services.generated_admin_secret)

    app = create_app(config, services, on_ready=announce)
    limits = limits_of(config, open_file_limit(raise_soft=True))
    server = uvicorn.Server(server_config(app, config, limits))
    server.run(sockets=[sock])
    return 0 if server.started else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(vars(args))
    except ConfigError as e:
        print(f"openline: {e}", file=sys.stderr)
        return 2
    return serve(config)
