"""History: whether a round trip costs more when the SQLite store already holds many conversations.

    python bench/history.py [--conversations 100000] [--repeat 3] [--modes v3-ws,v3-poll]

It fills two data directories with stored conversations through openline's own store (each one as a client
and the echo bot leave it: the bot and the user joined and announced, two messages and their two echoes, the
two delivery records), 100 in one and `--conversations` in the other, and reports the database's size per
conversation. Then it starts `openline serve` on each (default SQLite store, the echo bot) and drives both
alternately with the same load (`dlload.py`, 20 concurrent conversations), and prints the server CPU per round
trip of each, and their ratio: the cost of history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    ROOT,
    Processes,
    Server,
    free_ports,
    http_ready,
    openline_serve,
    openline_server,
    run_dlload,
    start_echobot,
    wait_ready,
)

from openline.protocol.ids import new_conversation_id
from openline.storage.base import Delivery, Member
from openline.storage.sqlite import SqliteStore

BOT_ID = "bot"  # the bot id of `openline serve --bot URL` (no config file)
RETENTION = 86400.0
CONVERSATION_TTL = 15 * 86400.0


async def fill(path: Path, conversations: int) -> None:
    """`conversations` conversations, each as a short echo exchange leaves it, stored now."""
    store = SqliteStore(path, RETENTION, CONVERSATION_TTL)
    await store.open()

    async def one(now: float) -> None:
        conversation = new_conversation_id()
        user = Member("dl_" + secrets.token_hex(8), "User")
        await store.create_conversation(conversation, BOT_ID, now)
        for member in (Member(BOT_ID, "Bot"), user):
            await store.claim_announcement(conversation, member, now, now - 20)
            await store.finish_announcement(conversation, member.id, True)
        for i in range(2):
            sent = {"type": "message", "from": {"id": user.id, "role": "user"}, "text": f"message {i}"}
            stored = await store.append(conversation, sent, now)
            await store.add_delivery(conversation, Delivery(stored.activity["id"], now, 200, 0.004))
            echo = {"type": "message", "from": {"id": BOT_ID, "role": "bot"}, "text": f"echo: message {i}"}
            await store.append(conversation, echo, now, origin="bot")

    try:
        done = 0
        while done < conversations:
            batch = min(500, conversations - done)
            now = time.time()
            await asyncio.gather(*(one(now) for _ in range(batch)))
            done += batch
    finally:
        await store.close()


def database_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.glob("openline.sqlite3*"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--modes", default="v3-ws,v3-poll", help="of v1-poll,v3-poll,v3-ws (default v3-ws,v3-poll)")
    p.add_argument("--round-trips", type=int, default=2000)
    a = p.parse_args(argv)
    modes = [m for m in a.modes.split(",") if m]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    secret = "b" + secrets.token_urlsafe(32)
    procs = Processes()
    figures: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="openline-history-") as tmp_name:
            tmp = Path(tmp_name)
            sizes = {"small": 100, "large": a.conversations}
            for name, count in sizes.items():
                (tmp / name).mkdir()
                started = time.monotonic()
                asyncio.run(fill(tmp / name / "openline.sqlite3", count))
                size = database_bytes(tmp / name)
                figures[f"{name}_conversations"] = count
                figures[f"{name}_db_mb"] = round(size / 2**20, 1)
                figures[f"{name}_bytes_per_conversation"] = round(size / count)
                print(f"# {count} conversations stored in {time.monotonic() - started:.0f}s: {size / 2**20:.1f} MB")
            bot_port, small_port, large_port = free_ports(3)
            bot_url = f"http://127.0.0.1:{bot_port}/api/messages"
            start_echobot(procs, bot_port, tmp / "bot.log", env)
            servers: list[Server] = []
            for name, port in (("small", small_port), ("large", large_port)):
                server = openline_server(f"{sizes[name]} stored", port, secret)
                server.log_path = tmp / f"openline-{name}.log"
                server.proc = procs.start(
                    openline_serve(port, bot_url, secret, tmp / name), server.log_path, cwd=ROOT, env=env
                )
                wait_ready(server.proc, http_ready(f"http://127.0.0.1:{port}/healthz"), name, server.log_path)
                servers.append(server)
            options = SimpleNamespace(run_timeout=120.0)
            for s in servers:
                for mode in modes:
                    run_dlload(s, procs, options, mode, 5, 10, f"warmup {s.name}")  # type: ignore[arg-type]
            c, m = 20, max(10, a.round_trips // 20)
            for mode in modes:
                for i in range(a.repeat):
                    for s in servers:
                        r = run_dlload(s, procs, options, mode, c, m, f"{s.name} {mode} #{i + 1}")  # type: ignore[arg-type]
                        s.results.setdefault((mode, c), []).append(r)
                        print(json.dumps(r), flush=True)
            for mode in modes:
                small, large = (
                    statistics.median(r["server_cpu_us_per_rt"] for r in s.results[(mode, c)]) for s in servers
                )
                figures[f"{mode}_cpu_us_per_rt_small"] = small
                figures[f"{mode}_cpu_us_per_rt_large"] = large
                figures[f"{mode}_ratio"] = round(large / small, 3)
            errors = sum(r["errors"] for s in servers for runs in s.results.values() for r in runs)
            figures["errors"] = errors
    finally:
        procs.kill_all()
    print()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")
    print(json.dumps(figures))
    return 1 if figures.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
