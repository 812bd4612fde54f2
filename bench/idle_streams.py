"""Idle streams: what 10,000 open, quiet Direct Line 3.0 WebSockets cost openline, and whether it still answers.

    python bench/idle_streams.py [--streams 10000] [--idle 45] [--keepalive 20] [--store memory://]

It starts the echo bot and `openline serve` (SQLite by default) with the open-file limit raised, starts one
conversation per stream, then opens each one's WebSocket (aiohttp, automatic pongs off), and then, with every
stream open and quiet for `--idle` seconds, measures:

- memory per stream: the server's resident memory with the streams open, less with the conversations started
  but no stream open, divided by the streams (and the memory the conversations themselves took, apart);
- keep-alives: the frames each stream received while idle (openline's empty text frames, and WebSocket pings),
  per keep-alive interval;
- idle CPU: the server's CPU time over the idle window, as a percentage of one core;
- a round trip on another conversation meanwhile: p50 and worst of `--probes` echo round trips over the REST
  API and a stream, one every second.

The figures are printed as a table and one JSON line. Every process it started is ended at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Processes, free_ports, http_ready, openline_serve, proc_status_kb, start_echobot, wait_ready


def rss_kb(pid: int) -> int:
    rss = proc_status_kb(pid, "VmRSS")
    if rss is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return rss


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stream:
    """One open stream and what arrived on it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.empty = 0  # empty text frames (openline's keep-alives)
        self.pings = 0
        self.other = 0

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data.strip():
                    self.other += 1
                else:
                    self.empty += 1
            elif msg.type == aiohttp.WSMsgType.PING:
                self.pings += 1
                await self.ws.pong(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return


async def start_conversations(session: aiohttp.ClientSession, base: str, secret: str, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {secret}"}
    gate = asyncio.Semaphore(50)

    async def one() -> str:
        async with gate, session.post(f"{base}/conversations", headers=headers) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"start: {r.status} {body}")
            return str(body["conversationId"])

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def open_streams(session: aiohttp.ClientSession, base: str, secret: str, ids: list[str]) -> list[Stream]:
    """A stream on each conversation, from a fresh stream URL (GET /conversations/{id}, as a reconnect)."""
    headers = {"Authorization": f"Bearer {secret}"}
    streams: list[Stream] = []
    gate = asyncio.Semaphore(50)

    async def one(conversation: str) -> None:
        async with gate:
            async with session.get(f"{base}/conversations/{conversation}", headers=headers) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"reconnect: {r.status} {body}")
            ws = await session.ws_connect(body["streamUrl"], autoping=False, heartbeat=None, max_msg_size=0)
            streams.append(Stream(ws))

    await asyncio.gather(*(one(c) for c in ids))
    return streams


async def probe(session: aiohttp.ClientSession, base: str, secret: str, count: int) -> list[float]:
    """Echo round trips on a conversation of its own (send, then the echo on its stream), one a second; seconds."""
    headers = {"Authorization": f"Bearer {secret}"}
    async with session.post(f"{base}/conversations", headers=headers) as r:
        body = await r.json()
    conversation = body["conversationId"]
    times: list[float] = []
    async with session.ws_connect(body["streamUrl"], heartbeat=None) as ws:
        for i in range(count):
            started = time.perf_counter()
            activity = {"type": "message", "from": {"id": "probe"}, "text": f"p{i}"}
            url = f"{base}/conversations/{conversation}/activities"
            async with session.post(url, headers=headers, json=activity) as r:
                await r.read()
            while True:
                msg = await ws.receive(timeout=30)
                if msg.type != aiohttp.WSMsgType.TEXT or not msg.data.strip():
                    continue
                if any(a.get("text") == f"echo: p{i}" for a in json.loads(msg.data).get("activities", [])):
                    break
            times.append(time.perf_counter() - started)
            await asyncio.sleep(1)
    return times


async def measure(a: argparse.Namespace, pid: int, base: str, secret: str) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await probe(session, base, secret, 2)  # warm-up
        empty = rss_kb(pid)
        ids = await start_conversations(session, base, secret, a.streams)
        before = rss_kb(pid)
        started = time.monotonic()
        streams = await open_streams(session, base, secret, ids)
        opened_in = time.monotonic() - started
        readers = [asyncio.create_task(s.read()) for s in streams]
        await asyncio.sleep(2)  # the replay (the welcome) has arrived everywhere
        for s in streams:
            s.empty = s.pings = s.other = 0
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        probes = asyncio.create_task(probe(session, base, secret, a.probes))
        await asyncio.sleep(a.idle)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        with_streams = rss_kb(pid)
        times = await probes
        for s in streams:
            await s.ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    window = t1 - t0
    intervals = window / a.keepalive
    keepalive_frames = statistics.mean(s.empty + s.pings for s in streams)
    return {
        "streams": a.streams,
        "store": a.store or "sqlite",
        "opened_s": round(opened_in, 1),
        "rss_empty_mb": round(empty / 1024, 1),
        "rss_conversations_mb": round(before / 1024, 1),
        "kb_per_conversation": round((before - empty) / a.streams, 1),
        "rss_streams_mb": round(with_streams / 1024, 1),
        "kb_per_stream": round((with_streams - before) / a.streams, 1),
        "idle_window_s": round(window, 1),
        "idle_cpu_pct_core": round(100 * (cpu1 - cpu0) / window, 2),
        "keepalive_s": a.keepalive,
        "empty_frames_per_stream": round(statistics.mean(s.empty for s in streams), 2),
        "pings_per_stream": round(statistics.mean(s.pings for s in streams), 2),
        "keepalives_per_stream_per_interval": round(keepalive_frames / intervals, 2),
        "probe_p50_ms": round(1000 * statistics.median(times), 1),
        "probe_max_ms": round(1000 * max(times), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--streams", type=int, default=10_000)
    p.add_argument("--idle", type=float, default=45.0, help="seconds of quiet measured (default 45)")
    p.add_argument("--keepalive", type=float, default=20.0, help="openline's --stream-keepalive (default 20)")
    p.add_argument("--probes", type=int, default=20, help="round trips on another conversation meanwhile")
    p.add_argument("--store", default="", help="openline's --store (default: SQLite in a scratch data dir)")
    a = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.streams + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"the open-file limit is {hard}; {a.streams} streams need about {need}", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # inherited by the server
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    bot_port, port = free_ports(2)
    secret = "b" + secrets.token_urlsafe(32)
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="openline-idle-") as tmp_name:
            tmp = Path(tmp_name)
            start_echobot(procs, bot_port, tmp / "bot.log", env)
            extra = ["--stream-keepalive", str(a.keepalive), "--max-connections", str(need)]
            extra += ["--store", a.store] if a.store else []
            bot_url = f"http://127.0.0.1:{bot_port}/api/messages"
            server = procs.start(
                openline_serve(port, bot_url, secret, tmp, *extra), tmp / "openline.log", cwd=ROOT, env=env
            )
            wait_ready(server, http_ready(f"http://127.0.0.1:{port}/healthz"), "openline", tmp / "openline.log")
            figures = asyncio.run(measure(a, server.pid, f"http://127.0.0.1:{port}/v3/directline", secret))
    finally:
        procs.kill_all()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
