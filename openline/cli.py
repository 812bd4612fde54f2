"""The `openline` command: `openline serve` runs the service with flags, environment and a TOML file; `keys`,
`secret`, `conversation` (`admin_cli`) and `dev-cert` help run it."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from openline import __version__, admin_cli, logs
from openline.config import OPTIONS, Config, ConfigError, load_config, parse_duration

_HELP = {
    "host": "address to listen on (default 127.0.0.1)",
    "port": "port to listen on (default 3000)",
    "public_url": "base URL clients and bots reach the service at (default http://HOST:PORT)",
    "bot": "the bot's messaging endpoint (default: the built-in echo bot)",
    "secret": "a Direct Line secret for the bot; repeat for several (default: generated, kept in the data dir)",
    "data_dir": "directory for the database, signing key and generated secrets (default ./openline-data)",
    "store": "storage URL: memory://, sqlite:///PATH, redis://HOST:PORT/DB, rediss://, redis+cluster://HOST:PORT"
    " (default: SQLite in the data dir)",
    "token_ttl": "conversation token lifetime, e.g. 1800, 30m (default 30m)",
    "retention": "how long messages and uploaded files are kept, e.g. 24h (default 24h)",
    "conversation_ttl": "how long an idle conversation is kept before it is deleted (default 15d)",
    "scrub_interval": "SQLite: the longest time deleted data may stay in the database file (default 10m)",
    "durability": "SQLite: process (an acknowledged message survives openline being killed) or power (it also"
    " survives power loss: an fsync per group commit) (default process)",
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
    "bot_app_id": "the app id of the bot of --bot: turns bot authentication on, both ways (README: Bot authentication)",
    "bot_app_password": "the bot's app password, which it gets its tokens with; repeat for several during a rotation",
    "bot_sidecar_secret": "a long random secret: serves the Agents SDK sidecar token API for the bot at"
    " /sidecar/SECRET (JS agents with AUTHTYPE=EntraAuthSideCar)",
    "require_bot_auth": "refuse unauthenticated connector calls even for bots without an app id (default off)",
    "tls_cert": "serve https with this certificate (PEM, with its chain); needs --tls-key",
    "tls_key": "the private key (PEM) of --tls-cert",
    # limits (README: Limits)
    "rate_limit": "requests per credential (secret or token) to the Direct Line client APIs, e.g. 20/s, 600/m,"
    " or off; more get 429 (default: off on loopback, else 20/s)",
    "conversation_rate_limit": "requests per conversation, whatever credential, e.g. 10/s or off; more get 429"
    " (default: off on loopback, else 10/s)",
    "max_connector_bytes": "largest body a bot may send to the connector API (activities, history, attachments)"
    " (default 4MB)",
    "max_form_bytes": "largest body of the web page's token request, the inspector's sign-in form and bots' token"
    " requests (default 16KB)",
    "max_upload_parts": "most parts (files and the activity) in one multipart upload (default 64)",
    "max_frame_bytes": "largest WebSocket message a client may send; larger close the socket with 1009 (default 4KB)",
    "trusted_origins": "a web origin (https://host[:port]) browsers may use the bot from; repeat or comma-separate"
    " for several; others get 403 (default: any) (README: Access rules)",
    "enhanced_auth": "the hosted service's enhanced authentication for the bot: user ids start with dl_ and come"
    " from the token, the secret is refused from browsers (default off)",
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
        if name in ("secret", "bot_app_password", "trusted_origins"):
            serve.add_argument(flag, action="append", metavar="S", help=_HELP[name])
        elif name in ("web_page", "access_log", "require_bot_auth", "enhanced_auth"):
            serve.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP[name])
        else:
            metavars = {
                "bot": "URL",
                "public_url": "URL",
                "store": "URL",
                "webchat_file": "PATH",
                "tls_cert": "FILE",
                "tls_key": "FILE",
                "bot_app_id": "ID",
                "bot_sidecar_secret": "SECRET",
                "trusted_origins": "ORIGIN",
            }
            metavar = metavars.get(name, name.split("_")[-1].upper())
            serve.add_argument(flag, metavar=metavar, help=_HELP[name])

    keys = commands.add_parser(
        "keys",
        help="the keys bot-authentication tokens are signed with",
        description="The RSA keys openline signs channel and access tokens with, kept in DATA_DIR/bot-keys.json. "
        "A running service picks up a rotation within 30 seconds.",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("list", "list the keys: id, when made, when it signs, and its state"),
        ("rotate", "publish a new key now, and sign with it after --activate-in"),
    ):
        sub = keys_commands.add_parser(name, help=text, description=text)
        sub.add_argument("--data-dir", metavar="DIR", help="the service's data directory (default ./openline-data)")
        sub.add_argument("--config", metavar="FILE", help="the service's TOML file, for its data_dir")
        if name == "rotate":
            sub.add_argument(
                "--activate-in",
                metavar="DURATION",
                default="25h",
                help="how long the new key is published before it signs, counted from now (default 25h:"
                " botbuilder-python bots re-read the keys once a day; 0 when every bot re-reads on an unknown key)."
                " A running service publishes it within 30 seconds; a stopped one, when it starts",
            )

    admin_cli.add_parsers(commands)

    dev_cert = commands.add_parser(
        "dev-cert",
        help="make a local CA and an https certificate for trying bot authentication",
        description="Make (or reuse) a local certificate authority in DIR and a server certificate for localhost, "
        "127.0.0.1, ::1 and the --name values; print the serve flags and the trust-store settings each bot SDK needs.",
    )
    dev_cert.add_argument("--dir", default="openline-certs", help="where to write them (default ./openline-certs)")
    dev_cert.add_argument("--name", action="append", default=[], help="another host name or address to certify")
    return parser


def _banner(config: Config, generated: list[tuple[str, str]], admin_secret: str | None) -> None:
    print(f"openline {__version__}: Direct Line 3.0 at {config.public_url}/v3/directline", flush=True)
    print(f"  Direct Line 1.1 at {config.public_url}/api", flush=True)
    if config.web_page:
        print(f"  chat with the bot at {config.public_url}/", flush=True)
    print(f"  conversations inspector at {config.public_url}/inspect", flush=True)
    for bot in config.bots:
        print(f"  bot {bot.id!r} ({bot.name}) at {bot.endpoint or 'the built-in echo bot'}", flush=True)
        if bot.app_id:
            print(f"    authenticated both ways as app id {bot.app_id!r}", flush=True)
        if bot.trusted_origins:
            print(f"    browsers only from {', '.join(bot.trusted_origins)}", flush=True)
        if bot.enhanced_auth:
            print("    enhanced authentication: dl_ users from tokens; the secret refused from browsers", flush=True)
    if any(bot.app_id for bot in config.bots):
        print(f"  bot authentication: issuer {config.public_url}, authority {config.public_url}/adfs", flush=True)
        print(f"    OpenID metadata at {config.public_url}/v1/.well-known/openidconfiguration", flush=True)
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


MAX_ACTIVATE_IN = 365 * 86400


def _when(stamp: int) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    except (OverflowError, OSError, ValueError):
        return f"{stamp} (POSIX seconds)"


def keys_command(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisClusterException, RedisError

    from openline.app import shared_files
    from openline.auth.bot_keys import KeyFile
    from openline.storage.redis_codec import redacted

    try:
        # the service's own data directory: --data-dir, else OPENLINE_DATA_DIR, else the --config file's
        config = load_config({"config": args.config, "data_dir": args.data_dir})
        data_dir = config.data_dir
        delay = parse_duration(args.activate_in) if args.keys_command == "rotate" else 0
        if delay > MAX_ACTIVATE_IN:
            raise ConfigError(f"--activate-in: {args.activate_in!r} is more than 365 days")
    except ConfigError as e:
        print(f"openline: {e}", file=sys.stderr)
        return 2
    shared = shared_files(config)
    if shared is not None:  # the keys every instance on this Redis uses
        try:
            shared.pull()
        except (RedisError, RedisClusterException) as e:
            print(f"openline: the Redis store {redacted(shared.url)} cannot be used: {e}", file=sys.stderr)
            return 1
    file = KeyFile(data_dir)
    if file.stamp() is None:
        print(
            f"openline: no bot-authentication keys in {data_dir}: the service makes them on its first start;"
            " give its --data-dir (or --config)",
            file=sys.stderr,
        )
        return 1
    now = time.time()
    try:
        if args.keys_command == "rotate":
            keys, new = file.rotate(delay, now)
            if shared is not None:
                shared.publish(file.path.name)
            print(f"new key {new.kid}: published now, signs from {_when(new.active_from)}")
        keys = file.load_or_create(now)
    except (OSError, ValueError, RedisError, RedisClusterException) as e:
        print(f"openline: {e}", file=sys.stderr)
        return 1
    signing = keys.signing_key(now)
    published = {k.kid for k in keys.published(now)}
    print(f"keys in {file.path}:")
    for key in keys.keys:
        if key.kid == signing.kid:
            state = "signing"
        elif keys.waiting(key, now):
            state = "published, waiting to sign"
        else:
            state = "published, superseded" if key.kid in published else "retired"
        print(f"  {key.kid}  made {_when(key.created)}  signs from {_when(key.active_from)}  {state}")
    return 0


def dev_cert_command(args: argparse.Namespace) -> int:
    from openline.devcert import make_dev_cert

    try:
        made = make_dev_cert(Path(args.dir), args.name)
    except (OSError, ValueError) as e:
        print(f"openline: cannot make the certificate: {e}", file=sys.stderr)
        return 1
    print(f"openline dev-cert: certificate for {', '.join(made.names)}, signed by the local CA {made.ca_cert}")
    print("  serve over https:")
    print(f"    openline serve --tls-cert {made.cert} --tls-key {made.key} --public-url https://localhost:3000")
    print("  trust it in Python bots (botbuilder, Agents SDK); both variables replace the system store, so the")
    print(f"  bundle holds the system's CA certificates and this CA ({made.system_bundle or 'no system store found'}):")
    print(f"    export SSL_CERT_FILE={made.bundle.resolve()}")
    print(f"    export REQUESTS_CA_BUNDLE={made.bundle.resolve()}")
    print("  trust it in Node bots (botbuilder-js, Agents SDK JS), added to Node's own store:")
    print(f"    export NODE_EXTRA_CA_CERTS={made.ca_cert.resolve()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return keys_command(args)
    if args.command == "dev-cert":
        return dev_cert_command(args)
    if args.command in ("secret", "conversation"):
        return admin_cli.main(args)
    try:
        config = load_config(vars(args))
    except ConfigError as e:
        print(f"openline: {e}", file=sys.stderr)
        return 2
    return serve(config)
