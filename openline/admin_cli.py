"""The admin commands: `openline secret new|list|revoke` and `openline conversation list|show|export|delete`.

They work on the service's own data directory and store, found as `openline serve` finds them (`--config`,
`OPENLINE_*`, `--data-dir`, `--store`), with or without the service running. Exit status: 0 done; 1 what was
asked cannot be done (an unknown bot, secret or conversation, a store that cannot be opened); 2 a setting
that cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from openline.auth import secret_file
from openline.auth.secret_file import KeptSecret, SecretFile
from openline.config import BotConfig, Config, ConfigError, load_config
from openline.datadir import DataDir
from openline.protocol.transcript import emulator_transcript
from openline.storage import parse_store_url
from openline.storage.base import ConversationStore, StoredActivity, StoreUnavailable

T = TypeVar("T")
PAGE = 500
DEFAULT_LIST = 20
MAX_LIST = 100_000  # conversations one `list` shows at most
SECRET_PICKUP = f"{secret_file.RELOAD_INTERVAL:g}"  # seconds, as the commands tell the operator
DELETE_PAUSE = 0.1  # seconds between the batches of a SQLite deletion (SQLite's busy handler retries as often)


class Failed(Exception):
    """What was asked cannot be done: the command prints the message and exits 1."""


def _where_args(parser: argparse.ArgumentParser, store: bool) -> None:
    parser.add_argument("--config", metavar="FILE", help="the service's TOML file (its data_dir, store and bots)")
    parser.add_argument("--data-dir", metavar="DIR", help="the service's data directory (default ./openline-data)")
    if store:
        parser.add_argument("--store", metavar="URL", help="the service's store URL (default: SQLite in the data dir)")


def add_parsers(commands: Any) -> None:
    """Add `secret` and `conversation` to the `openline` command's subparsers."""
    secret = commands.add_parser(
        "secret",
        help="the Direct Line secrets of each bot",
        description="Direct Line secrets kept in DATA_DIR/secrets.json, beside the ones configured (--secret, "
        f"[[bots]] secrets). A running service accepts a new secret, and refuses a revoked one, within {SECRET_PICKUP}"
        " seconds (on a Redis store, every instance). Rotation: new, move the clients over, revoke the old one.",
    )
    secret_commands = secret.add_subparsers(dest="secret_command", required=True)
    listing = secret_commands.add_parser("list", help="list each bot's secrets: id, when made, and where from")
    listing.add_argument("--bot", metavar="ID", help="this bot only")
    new = secret_commands.add_parser("new", help="make a secret for a bot and print it (shown once)")
    new.add_argument("--bot", metavar="ID", required=True, help="the bot's id (echobot for the built-in bot)")
    revoke = secret_commands.add_parser("revoke", help="stop accepting one of a bot's secrets (by its id)")
    revoke.add_argument("--bot", metavar="ID", required=True, help="the bot's id")
    revoke.add_argument("secret_id", metavar="SECRET_ID", help="the id `openline secret list` shows")
    revoke.add_argument(
        "--force", action="store_true", help="revoke the bot's last secret too (then no client can reach it)"
    )
    for sub in (listing, new, revoke):
        _where_args(sub, store=True)

    conversation = commands.add_parser(
        "conversation",
        help="list, read, export and delete stored conversations",
        description="Conversations in the service's store, read or deleted directly (the service may be running).",
    )
    conversation_commands = conversation.add_subparsers(dest="conversation_command", required=True)
    listing = conversation_commands.add_parser("list", help="the most recently active conversations")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST, help=f"how many (default {DEFAULT_LIST})")
    listing.add_argument("--bot", metavar="ID", help="this bot's conversations only")
    show = conversation_commands.add_parser("show", help="a conversation's activities")
    show.add_argument("conversation_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the conversation and its activities as JSON")
    export = conversation_commands.add_parser(
        "export", help="a conversation as a Bot Framework Emulator .transcript file"
    )
    export.add_argument("conversation_id", metavar="ID")
    export.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (default: standard output)")
    delete = conversation_commands.add_parser(
        "delete", help="delete a conversation: its activities, members, files and records, at once"
    )
    delete.add_argument("conversation_id", metavar="ID")
    for sub in (listing, show, export, delete):
        _where_args(sub, store=True)


def _config(args: argparse.Namespace) -> Config:
    return load_config({"config": args.config, "data_dir": args.data_dir, "store": getattr(args, "store", None)})


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "unknown"
    try:
        return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{stamp} (POSIX seconds)"


def run(command: Callable[[argparse.Namespace, Config], int], args: argparse.Namespace) -> int:
    """Run an admin command: 2 for settings that cannot be used, 1 with a one-line message for a failure."""
    try:
        config = _config(args)
    except ConfigError as e:
        print(f"openline: {e}", file=sys.stderr)
        return 2
    try:
        return command(args, config)
    except Failed as e:
        print(f"openline: {e}", file=sys.stderr)
        return 1


# -- secrets ----------------------------------------------------------------------------------------------


def _store_error(url: str, e: Exception) -> Failed:
    from openline.storage.redis_codec import redacted

    return Failed(f"the Redis store {redacted(url)} cannot be used: {e}")


def _bot(config: Config, kept: dict[str, list[KeptSecret]], bot_id: str) -> BotConfig:
    for bot in config.bots:
        if bot.id == bot_id:
            return bot
    if bot_id in kept:  # the service made its generated secret: a bot it was started with
        return BotConfig(bot_id, bot_id, None)
    known = ", ".join(sorted({b.id for b in config.bots} | set(kept)))
    raise Failed(
        f"no bot {bot_id!r} is configured (known: {known}); give the service's --config, or its OPENLINE_BOT"
        " (a service started with --bot URL calls its bot 'bot')"
    )


def secret_command(args: argparse.Namespace, config: Config) -> int:
    from redis.exceptions import RedisClusterException, RedisError

    from openline.app import shared_files

    shared = shared_files(config)
    if shared is None:
        if not config.data_dir.is_dir():
            raise Failed(
                f"no data directory at {config.data_dir}: give the service's --data-dir (or --config); the service"
                " makes it on its first start"
            )
        try:
            _secret(args, config, SecretFile(config.data_dir))
        except (OSError, ValueError) as e:
            raise Failed(str(e)) from None
        return 0
    # on Redis the secrets every instance uses are Redis's copy: changed in a directory of the command's own, so
    # that no key or secret of the service is written where the command happens to run
    import tempfile

    with tempfile.TemporaryDirectory(prefix="openline-secrets-") as scratch:
        from openline.storage.redis_shared import SharedFiles

        mirror = SharedFiles(config.store or "", Path(scratch), (secret_file.FILE_NAME,))
        try:
            mirror.pull()
            if _secret(args, config, SecretFile(Path(scratch))):
                mirror.publish(secret_file.FILE_NAME)
        except (RedisError, RedisClusterException) as e:
            raise _store_error(mirror.url, e) from None
        except (OSError, ValueError) as e:
            raise Failed(str(e)) from None
        finally:
            mirror.close()
    return 0


def _secret(args: argparse.Namespace, config: Config, file: SecretFile) -> bool:
    """Carry out a `secret` command; True when it changed the file."""
    kept = file.load()
    if args.secret_command == "list":
        bots = [_bot(config, kept, args.bot)] if args.bot else list(config.bots)
        bots += [BotConfig(i, i, None) for i in kept if not args.bot and i not in {b.id for b in bots}]
        for bot in bots:
            _list_secrets(bot, config, kept.get(bot.id, []), bot.id in kept)
        return False
    bot = _bot(config, kept, args.bot)
    if args.secret_command == "new":
        DataDir(config.data_dir).ensure()
        made = file.new(bot.id, int(time.time()))
        print(f"new Direct Line secret {made.id} for bot {bot.id!r} (shown once; kept in {file.path}):")
        print(f"    {made.secret}")
        print(f"a running service accepts it within {SECRET_PICKUP} seconds; its other secrets stay valid")
        return True
    if args.secret_id in {secret_file.secret_id(s) for s in bot.secrets}:
        raise Failed(
            f"secret {args.secret_id} of bot {bot.id!r} is configured (--secret, OPENLINE_SECRET or the"
            " config file): remove it there and restart the service"
        )
    if not any(k.id == args.secret_id for k in kept.get(bot.id, [])):
        raise Failed(f"bot {bot.id!r} has no secret {args.secret_id!r} (see openline secret list --bot {bot.id})")
    left = secret_file.accepted({bot.id: bot.secrets}, {bot.id: [k for k in kept[bot.id] if k.id != args.secret_id]})
    if not left[bot.id] and not args.force:
        raise Failed(
            f"{args.secret_id} is the last secret of bot {bot.id!r}: without it no client can reach the bot;"
            " make another first (openline secret new), or give --force"
        )
    file.revoke(bot.id, args.secret_id)
    print(
        f"revoked secret {args.secret_id} of bot {bot.id!r}: a running service refuses it within {SECRET_PICKUP}"
        " seconds"
    )
    return True


def _list_secrets(bot: BotConfig, config: Config, kept: list[KeptSecret], listed: bool) -> None:
    """Print a bot's secrets; `listed`: the bot is in the file (with no secrets left: all were revoked)."""
    configured = {b.id for b in config.bots}
    print(f"bot {bot.id!r}:" + ("" if bot.id in configured else " not configured: none of its secrets is accepted"))
    for secret in bot.secrets:
        print(f"  {secret_file.secret_id(secret)}  configured (flags, environment or config file; not revocable here)")
    for k in kept:
        if k.generated:
            state = "generated on the first start"
            if bot.secrets:
                state += ", not accepted while secrets are configured"
        else:
            state = "made by openline secret new"
        print(f"  {k.id}  made {_when(k.created)}  {state}")
    if not bot.secrets and not kept:
        if not listed:
            print("  none yet: the service generates one on its first start")
        else:
            print("  no secrets (all revoked): no client can reach it" if bot.id in configured else "  no secrets")


# -- conversations ----------------------------------------------------------------------------------------


def _open(config: Config) -> ConversationStore:
    kind, path = parse_store_url(config.store)
    if kind == "memory":
        raise Failed("the memory:// store lives in the service's process only: there is nothing to open here")
    if kind == "sqlite":
        database = path or config.data_dir / "openline.sqlite3"
        if not database.exists():
            raise Failed(f"no database at {database}: give the service's --data-dir, --store or --config")
    from openline.app import configured_store

    return configured_store(config)


async def _with_store(config: Config, work: Callable[[ConversationStore], Awaitable[T]]) -> T:
    import sqlite3

    from redis.exceptions import RedisClusterException, RedisError

    store = _open(config)
    try:
        try:
            await store.open()
        except (OSError, RuntimeError, sqlite3.Error, RedisError, RedisClusterException, StoreUnavailable) as e:
            raise Failed(f"cannot open the store: {e}") from None
        try:
            return await work(store)
        except (sqlite3.Error, RedisError, RedisClusterException, StoreUnavailable) as e:
            raise Failed(f"the store failed: {e}") from None
    finally:
        await store.close()


async def _all(store: ConversationStore, conversation_id: str, now: float) -> list[StoredActivity]:
    out: list[StoredActivity] = []
    after = 0
    while True:
        page = await store.read(conversation_id, after, PAGE, now)
        out += page
        if len(page) < PAGE:
            return out
        after = page[-1].seq


def _bot_name(config: Config, bot_id: str) -> str | None:
    return next((b.name for b in config.bots if b.id == bot_id), None)


def conversation_command(args: argparse.Namespace, config: Config) -> int:
    work = {"list": _list, "show": _show, "export": _export, "delete": _delete}[args.conversation_command]
    status = asyncio.run(_with_store(config, lambda store: work(store, args, config)))
    if args.conversation_command == "delete":
        _scrub_after_delete(config)  # once the store is closed: its WAL tells whether a service has the file
    return status


async def _list(store: ConversationStore, args: argparse.Namespace, config: Config) -> int:
    if not 1 <= args.limit <= MAX_LIST:
        raise Failed(f"--limit must be 1 to {MAX_LIST}")
    now = time.time()
    want = args.limit
    while True:  # --bot: the most recent conversations, fetched in growing slices until enough are that bot's
        found = await store.recent_conversations(want, now)
        mine = [s for s in found if args.bot is None or s.conversation.bot_id == args.bot]
        if len(mine) >= args.limit or len(found) < want:
            break
        want *= 4
    if args.bot is not None and not mine and all(b.id != args.bot for b in config.bots):
        known = ", ".join(sorted(b.id for b in config.bots))
        raise Failed(f"no bot {args.bot!r} is configured (known: {known}), and no conversation is of it")
    print(f"{'conversation':<36}  {'bot':<12}  {'created':<23}  {'last activity':<23}  activities")
    for s in mine[: args.limit]:
        c = s.conversation
        print(f"{c.id:<36}  {c.bot_id:<12}  {_when(c.created_at):<23}  {_when(s.last_active):<23}  {s.activity_count}")
    return 0


async def _summary_and_activities(store: ConversationStore, conversation_id: str) -> tuple[Any, list[StoredActivity]]:
    from openline.storage.base import UnknownConversation

    now = time.time()
    summary = await store.summary(conversation_id, now)
    try:
        if summary is None:
            raise UnknownConversation(conversation_id)
        return summary, await _all(store, conversation_id, now)
    except UnknownConversation:
        raise Failed(f"no conversation {conversation_id!r} (never made, expired or deleted)") from None


def _line(stored: StoredActivity) -> str:
    a = stored.activity
    sender = a.get("from")
    who = str(sender.get("name") or sender.get("id") or "?") if isinstance(sender, dict) else "?"
    way = {"client": "user", "bot": "bot"}.get(stored.origin or "", "?")
    what = str(a.get("type", "?"))
    text = a.get("text")
    detail = f": {text}" if isinstance(text, str) and text else ""
    attachments = a.get("attachments")
    if isinstance(attachments, list) and attachments:
        names = [str(x.get("name") or x.get("contentType") or "?") for x in attachments if isinstance(x, dict)]
        detail += f" [attachments: {', '.join(names)}]"
    return f"{stored.seq:>6}  {a.get('timestamp', '')}  {way:<4}  {who}  {what}{detail}"


async def _show(store: ConversationStore, args: argparse.Namespace, config: Config) -> int:
    summary, activities = await _summary_and_activities(store, args.conversation_id)
    c = summary.conversation
    if args.json:
        body = {
            "conversation": {
                "id": c.id,
                "bot": c.bot_id,
                "created": _when(c.created_at),
                "lastActivity": _when(summary.last_active),
                "members": [{"id": m.id, "name": m.name} for m in summary.members],
            },
            "activities": [{"seq": s.seq, "origin": s.origin, "activity": s.activity} for s in activities],
        }
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(body), indent=2).decode() + "\n")
        return 0
    members = ", ".join(m.name or m.id for m in summary.members) or "none"
    print(
        f"conversation {c.id} with bot {c.bot_id!r}, made {_when(c.created_at)}, last active"
        f" {_when(summary.last_active)}; members: {members}"
    )
    for stored in activities:
        print(_line(stored))
    return 0


async def _export(store: ConversationStore, args: argparse.Namespace, config: Config) -> int:
    summary, activities = await _summary_and_activities(store, args.conversation_id)
    c = summary.conversation
    transcript = emulator_transcript(c.id, c.bot_id, _bot_name(config, c.bot_id), summary.members, activities)
    text = json.dumps(transcript, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        await asyncio.to_thread(Path(args.output).write_text, text, "utf-8")
    except OSError as e:
        raise Failed(f"cannot write {args.output}: {e}") from None
    print(f"wrote {len(transcript)} activities of conversation {c.id} to {args.output}", file=sys.stderr)
    return 0


async def _delete(store: ConversationStore, args: argparse.Namespace, config: Config) -> int:
    from openline.service.removal import delete_conversation
    from openline.storage import broker_for
    from openline.storage.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        # a running service's writes get the file between the deletion's batches
        store.pause_between_batches = DELETE_PAUSE
    summary = await store.summary(args.conversation_id, time.time())
    # the store's broker: on Redis every instance's streams of it end; on SQLite the service notices by itself
    if not await delete_conversation(store, broker_for(store), args.conversation_id, time.time(), config.token_ttl):
        raise Failed(f"no conversation {args.conversation_id!r} (never made, expired or deleted)")
    count = f"{summary.activity_count} activities" if summary is not None else "its activities"
    print(f"deleted conversation {args.conversation_id}: {count}, its members, files and delivery records")
    return 0


def _scrub_after_delete(config: Config) -> None:
    """SQLite: make what the deletion freed unrecoverable now, unless a running service does it at its next
    sweep (`sqlite_sweep.scrub_if_alone`)."""
    import sqlite3

    from openline.storage.sqlite_sweep import scrub_if_alone

    kind, path = parse_store_url(config.store)
    if kind != "sqlite":
        return
    database = path or config.data_dir / "openline.sqlite3"
    try:
        if scrub_if_alone(database):
            print(f"rewrote {database}: the deleted data is gone from the disk")
        else:
            print("the running service rewrites the database file at its next sweep (within a minute)")
    except sqlite3.Error as e:
        raise Failed(f"deleted, but {database} could not be rewritten: {e}; the service's next sweep does it") from None


def main(args: argparse.Namespace) -> int:
    if args.command == "secret":
        return run(secret_command, args)
    return run(conversation_command, args)
