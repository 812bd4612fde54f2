"""`create_app(config)`: builds every service once, mounts the routes, runs start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from openline import __version__, echobot
from openline.api._cors import PublicCors
from openline.api._http import json_response
from openline.api._observe import Observe
from openline.api._origin import OriginCheck
from openline.api._paths import NormalPaths
from openline.api._ratelimit import RateLimits
from openline.api._routing import IndexedRouter, WebSocketShortcut
from openline.api._ws import deny
from openline.api.admin import AdminApi
from openline.api.attachments import AttachmentsApi
from openline.api.bot_auth import BotAuthApi
from openline.api.connector import ConnectorApi
from openline.api.errors import on_http_exception, on_service_error, on_store_unavailable, on_unexpected
from openline.api.metrics import MetricsApi
from openline.api.openapi import OpenApi
from openline.api.stream import StreamApi
from openline.api.v1 import V1Api
from openline.api.v3 import V3Api
from openline.api.web import WebPages
from openline.auth import secret_file
from openline.auth.access import rules_of
from openline.auth.admin import AdminAuth
from openline.auth.bot_auth import BotAuthority, BotCredentials
from openline.auth.bot_keys import KeyFile, Keyring
from openline.auth.bot_tokens import BOTFRAMEWORK_RESOURCE, BotTokens
from openline.auth.credentials import Authenticator
from openline.auth.secret_file import SecretFile
from openline.auth.signing import UrlSigner
from openline.auth.tokens import TokenAuthority
from openline.config import Config
from openline.datadir import DataDir
from openline.metrics import Metrics
from openline.protocol.errors import ErrorKind, ServiceError
from openline.protocol.ratelimit import RateLimiter
from openline.service import removal
from openline.service.channel import Channel
from openline.service.connector import BotConnector
from openline.service.delivery import BotClient
from openline.service.dispatch import Dispatcher
from openline.service.files import Files
from openline.service.inspector import Inspector
from openline.service.publish import Bot, Publisher
from openline.stopping import Drain
from openline.storage import broker_for, open_store, parse_store_url, shared_store
from openline.storage.base import Broker, ConversationStore, StoreUnavailable
from openline.storage.local_broker import LocalBroker
from openline.storage.sqlite_commit import Durability
from openline.tls import outbound_context, own_endpoint_context

if TYPE_CHECKING:
    from openline.storage.redis_shared import SharedFiles

log = logging.getLogger("openline")
KEY_RELOAD_INTERVAL = 30.0  # seconds
OTHER_PROCESSES_INTERVAL = 2.0  # seconds between two looks for a SQLite file changed by the admin commands


@dataclass
class Services:
    config: Config
    store: ConversationStore
    broker: Broker
    auth: Authenticator
    bot_authority: BotAuthority
    signer: UrlSigner
    bot_client: BotClient
    channel: Channel
    connector: BotConnector
    files: Files
    inspector: Inspector
    admin: AdminAuth
    echo_bot: echobot.EchoBot | None
    clock: Callable[[], float]
    metrics: Metrics
    drain: Drain = field(default_factory=Drain)  # whether the service is stopping (openline.stopping)
    # secrets generated on this start (bot id, secret), to be shown once
    generated_secrets: list[tuple[str, str]] = field(default_factory=list)
    generated_admin_secret: str | None = None  # likewise
    shared_files: SharedFiles | None = None  # on a Redis store: the data directory's files every instance shares


def shared_files(config: Config) -> SharedFiles | None:
    """The data directory's files that instances on one Redis share (None: the store is not Redis)."""
    if parse_store_url(config.store)[0] != "redis":
        return None
    from openline.storage.redis_shared import SharedFiles

    assert config.store is not None
    return SharedFiles(config.store, config.data_dir)


def configured_store(config: Config) -> ConversationStore:
    """The store the configuration names (not yet open); raises ValueError for one that cannot be used."""
    return open_store(
        config.store,
        config.data_dir,
        config.retention,
        config.conversation_ttl,
        config.scrub_interval,
        cast(Durability, config.durability),
    )


def check_store(store: ConversationStore) -> None:
    """A SQLite store's file is opened once before the server starts, so one that cannot be used stops `serve`
    with one line (OSError) rather than a traceback from the server's start-up."""
    from openline.storage.sqlite import SqliteStore
    from openline.storage.sqlite_schema import check

    if isinstance(store, SqliteStore):
        check(store.path, store.durability)


def build_services(config: Config, clock: Callable[[], float] = time.time) -> Services:
    """Every service, built once. On a Redis store the data directory's keys and secrets are first taken from
    Redis (another instance made them), or published to it (this one is first). Raises OSError and ValueError
    (a data directory or a Redis that cannot be used)."""
    shared = shared_files(config)
    if shared is None:
        return _build_services(config, clock)
    from redis.exceptions import RedisClusterException, RedisError

    from openline.storage.redis_codec import redacted

    try:
        DataDir(config.data_dir).ensure()
        shared.pull()
        services = _build_services(config, clock)
        if not shared.publish_new():  # another instance published its own first, at the same moment: use those
            shared.pull()
            services = _build_services(config, clock)
    except (RedisError, RedisClusterException) as e:
        raise OSError(f"the Redis store {redacted(shared.url)} cannot be used: {_redis_reason(e)}") from None
    services.shared_files = shared
    return services


def _redis_reason(error: Exception) -> str:
    """Redis's words, unless they hide that the server wants a password (which its HELLO refusal does)."""
    text = str(error)
    if text.startswith(("NOAUTH", "Authentication required", "HELLO must be called with the client already")):
        return "the server asks for a password: give it in the URL (redis://:PASSWORD@HOST:PORT/DB)"
    return text


def _secrets_at_start(config: Config, file: SecretFile) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The secrets each bot accepts, and those generated now (bot id, secret): a bot with no secret configured
    or kept gets one, on its first start only."""
    generated: list[tuple[str, str]] = []
    for bot in config.bots:
        if not bot.secrets:
            made = file.generated(bot.id)
            if made is not None and made[1]:
                generated.append((bot.id, made[0]))
        elif file.has_generated(bot.id):
            log.warning(
                "bot %r: its generated Direct Line secret (kept in %s) is not accepted while secrets are configured"
                " for it; without them it is used again",
                bot.id,
                file.path,
            )
    secrets = secret_file.accepted({b.id: b.secrets for b in config.bots}, file.load())
    for bot_id, accepted in secrets.items():
        if not accepted:
            log.warning(
                "bot %r has no Direct Line secret (all revoked): clients cannot reach it until one is made"
                " (openline secret new --bot %s)",
                bot_id,
                bot_id,
            )
    return secrets, generated


def _build_services(config: Config, clock: Callable[[], float]) -> Services:
    data = DataDir(config.data_dir)
    data.ensure()
    key = data.signing_key()
    secrets, generated = _secrets_at_start(config, SecretFile(config.data_dir))
    admin_secret, admin_created = (config.admin_secret, False) if config.admin_secret else data.admin_secret()
    uses_echo = any(b.endpoint is None for b in config.bots)
    bots = {b.id: Bot(b.id, b.name, b.endpoint or config.local_url + echobot.PATH, b.app_id) for b in config.bots}
    if any(b.app_id for b in config.bots) and not config.public_url.startswith("https://"):
        log.warning(
            "bots with an app id get their tokens from %s/adfs over plain http: MSAL refuses an http authority,"
            " and the passwords cross the network readable; serve https (--tls-cert and --tls-key)",
            config.public_url,
        )
    keyring = Keyring(KeyFile(config.data_dir), clock())
    bot_tokens = BotTokens(keyring, config.public_url, [BOTFRAMEWORK_RESOURCE, config.public_url], clock)
    credentials = [BotCredentials(b.id, b.app_id, b.app_passwords, b.sidecar_secret) for b in config.bots]
    bot_authority = BotAuthority(credentials, bot_tokens, config.require_bot_auth, clock)
    store = configured_store(config)
    check_store(store)
    broker = broker_for(store)
    signer = UrlSigner(key)
    tls = outbound_context(config.tls_cert)
    own_tls = own_endpoint_context(config.tls_cert)
    metrics = Metrics(lambda: store.count_conversations(clock()))
    client = BotClient(config.bot_timeout, tls, (config.local_url, own_tls) if own_tls is not None else None, metrics)
    publisher = Publisher(store, broker, clock)
    dispatcher = Dispatcher(
        store, broker, client, config.public_url, clock, bot_authority, remember_announced=not shared_store(store)
    )
    channel = Channel(store, publisher, bots, dispatcher, clock)
    return Services(
        config=config,
        store=store,
        broker=broker,
        auth=Authenticator(
            secrets,
            TokenAuthority(key, config.token_ttl, clock),
            rules_of((b.id, b.trusted_origins, b.enhanced_auth) for b in config.bots),
        ),
        bot_authority=bot_authority,
        signer=signer,
        bot_client=client,
        channel=channel,
        connector=BotConnector(
            store, publisher, bots, dispatcher.forget_member, config.public_url, clock, bot_authority.authorize
        ),
        files=Files(store, signer, config.public_url, clock, bot_authority.authorize),
        inspector=Inspector(store, broker, bots, clock, config.token_ttl),
        admin=AdminAuth(admin_secret, key, clock),
        echo_bot=(
            echobot.EchoBot(config.public_url, tls, config.max_connector_bytes, config.body_timeout)
            if uses_echo
            else None
        ),
        clock=clock,
        metrics=metrics,
        generated_secrets=generated,
        generated_admin_secret=admin_secret if admin_created else None,
    )


async def _reload_keys_forever(services: Services) -> None:
    """Pick up `openline keys rotate`, run against the data directory while the service runs."""
    keyring = services.bot_authority.tokens.keyring
    while True:
        await asyncio.sleep(KEY_RELOAD_INTERVAL)
        try:
            if services.shared_files is not None:  # a rotation run against this or another instance's directory
                await asyncio.to_thread(services.shared_files.sync)
            if await asyncio.to_thread(keyring.refresh):
                log.info(
                    "bot authentication keys changed: now signing with %s",
                    keyring.keys.signing_key(services.clock()).kid,
                )
        except ValueError as e:
            log.warning("%s; the keys in use stay", e)
        except Exception:
            log.exception("could not re-read the bot authentication keys; the ones in use stay")


async def _follow_other_processes_forever(services: Services) -> None:
    """SQLite: end the streams of conversations `openline conversation delete` removed from the file meanwhile
    (the command runs in a process of its own, which this one's broker does not hear)."""
    from openline.storage.sqlite import SqliteStore

    store, broker = services.store, services.broker
    if not isinstance(store, SqliteStore) or not isinstance(broker, LocalBroker):
        return
    while True:
        await asyncio.sleep(OTHER_PROCESSES_INTERVAL)
        try:
            if store.changed_elsewhere():
                await removal.end_readers_of_deleted(store, broker)
        except StoreUnavailable as e:  # the other process holds the file's lock: looked at again next time
            log.warning("could not look for conversations deleted by another process: %s", e)
        except Exception:
            log.exception("could not look for conversations deleted by another process")


async def _reload_secrets_forever(services: Services) -> None:
    """Pick up `openline secret new` and `revoke` within `secret_file.RELOAD_INTERVAL`: the file's stamp is looked at
    (on a Redis store, Redis's copy first: the command may have run against another instance's directory)."""
    file = SecretFile(services.config.data_dir)
    configured = {b.id: b.secrets for b in services.config.bots}
    seen = await asyncio.to_thread(file.stamp)
    while True:
        await asyncio.sleep(secret_file.RELOAD_INTERVAL)
        try:
            if services.shared_files is not None:
                await asyncio.to_thread(services.shared_files.sync, (secret_file.FILE_NAME,))
            stamp = await asyncio.to_thread(file.stamp)
            if stamp == seen:
                continue
            kept = await asyncio.to_thread(file.load)
            seen = stamp
            services.auth.replace(secret_file.accepted(configured, kept))
            log.info("Direct Line secrets changed: %s", services.auth.secret_counts() or "no bot has any")
        except ValueError as e:
            log.warning("%s; the secrets in use stay", e)
        except Exception:
            log.exception("could not re-read the Direct Line secrets; the ones in use stay")


async def _sweep_forever(services: Services) -> None:
    interval = min(60.0, max(1.0, services.config.retention / 10))
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await services.store.sweep(services.clock())
            if removed:
                log.info("retention: removed %d expired items", removed)
        except StoreUnavailable as e:  # down, or locked by another process: the next sweep does the work
            log.warning("retention sweep skipped: %s", e)
        except Exception:
            log.exception("retention sweep failed")


def create_app(
    config: Config, services: Services | None = None, on_ready: Callable[[], None] | None = None
) -> Starlette:
    """The ASGI app; `on_ready` is called once start-up is complete (the store open, the bot client ready)."""
    services = services or build_services(config)

    async def healthz(request: Request) -> Response:
        if services.drain.stopping:  # a load balancer sends no more clients here
            return json_response({"status": "stopping"}, 503)
        try:
            await services.store.ping()
        except Exception as e:
            return json_response({"status": "unavailable", "reason": str(e)}, 503)
        return json_response({"status": "ok"})

    async def index(request: Request) -> Response:
        return json_response(
            {
                "service": "openline",
                "version": __version__,
                "directline": {"1.1": "/api", "3.0": "/v3/directline"},
                "bots": [{"id": b.id, "name": b.name} for b in services.channel.bots.values()],
            }
        )

    bots = services.channel.bots
    origins = OriginCheck(config.public_url, config.host)
    streams = StreamApi(
        services.auth.tokens,
        services.channel,
        services.broker,
        config.stream_keepalive,
        config.page_size,
        services.auth.access,
    )
    routes: list[BaseRoute] = [
        *WebPages(config, services.auth, services.admin, services.channel, index, origins).routes(),
        *AdminApi(
            services.admin,
            services.inspector,
            [{"id": b.id, "name": b.name, "endpoint": b.endpoint} for b in bots.values()],
            origins,
        ).routes(),
        Route("/healthz", healthz, methods=["GET"]),
        *MetricsApi(services.metrics, services.admin, config.metrics_token).routes(),
        *OpenApi().routes(),
        *V1Api(config, services.auth, services.channel, services.files).routes(),
        *V3Api(config, services.auth, services.channel, services.files).routes(),
        *streams.routes(),
        *ConnectorApi(config, services.connector, services.files, services.bot_authority).routes(),
        *BotAuthApi(
            services.bot_authority,
            services.bot_authority.tokens,
            config.public_url,
            config.body_timeout,
            config.max_form_bytes,
        ).routes(),
        *AttachmentsApi(services.store, services.signer, services.clock).routes(),
    ]
    if services.echo_bot is not None:
        routes += services.echo_bot.routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.store.open()
        await services.bot_client.start()
        if services.echo_bot is not None:
            await services.echo_bot.start()
        background = [
            asyncio.create_task(_sweep_forever(services)),
            asyncio.create_task(_reload_keys_forever(services)),
            asyncio.create_task(_follow_other_processes_forever(services)),
            asyncio.create_task(_reload_secrets_forever(services)),
        ]
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services.echo_bot is not None:
                await services.echo_bot.close()
            await services.bot_client.close()
            await services.store.close()
            if services.shared_files is not None:
                await asyncio.to_thread(services.shared_files.close)

    # the 3.0 stream's route is also in `routes`: the shortcut takes its sessions first (see api/_routing.py)
    middleware = [
        Middleware(Observe, metrics=services.metrics, drain=services.drain, access_log=config.access_log),
        Middleware(NormalPaths),
        Middleware(WebSocketShortcut, route=streams.routes()[0]),
        Middleware(PublicCors),
    ]
    limiter = RateLimiter(config.rate_limit, config.conversation_rate_limit)
    if limiter.enabled:  # after the paths are made normal, before the shortcut that takes stream upgrades past
        middleware.insert(2, Middleware(RateLimits, limiter=limiter, auth=services.auth, clock=services.clock))
    app = Starlette(
        middleware=middleware,
        exception_handlers={
            ServiceError: on_service_error,
            HTTPException: on_http_exception,
            StoreUnavailable: on_store_unavailable,
            Exception: on_unexpected,
        },
    )
    # never a redirect (see api/_paths.py): Starlette's would send a path ending in an encoded "/" (%2F) to a
    # Location built from the request's Host header
    app.router = IndexedRouter(routes, lifespan=lifespan, redirect_slashes=False)
    app.state.services = services
    app.router.default = _websocket_not_found(app.router.default)
    return app


def _websocket_not_found(default: ASGIApp) -> ASGIApp:
    """The router's answer to a path it has no route for: a WebSocket upgrade gets a 404 in the error shape too."""

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path = scope.get("path", "")
            error = ServiceError(ErrorKind.NOT_FOUND, f"no WebSocket is served at {path}")
            await deny(WebSocket(scope, receive, send), error)
            return
        await default(scope, receive, send)

    return not_found
