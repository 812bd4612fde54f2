"""A bounded soak: hundreds of conversations of every kind for a few minutes; memory flat, no errors, figures.

    python bench/soak.py [--minutes 3] [--conversations 300] [--store URL] [--max-slope 4]

Starts `echobot.py` and `openline serve` (SQLite in a fresh data directory unless `--store` names another
store), then runs `--conversations` virtual users at once until the time is up. Each user holds one
conversation of `--turns` round trips at a time, then ends it and starts another, pausing `--think` seconds
(on average, 2 by default) between round trips, as people do. Users are of five kinds, in turn:

- `v1-poll`: Direct Line 1.1, POST a message, then GET messages from the watermark until the echo is there;
- `v3-poll`: Direct Line 3.0, the same with activities;
- `v3-ws`: 3.0 with the conversation's WebSocket stream open; the echo is read from the stream;
- `v3-upload`: 3.0 uploads (a 4 KB image and the activity), polled; each conversation fetches its first file;
- `v3-token`: a token from `tokens/generate`, the conversation started with it, refreshed at each round trip
  (`tokens/refresh`), posts and polls made with the latest token.

A round trip is a post and its echo seen; its latency runs from the post to the echo. Every answer that is not
the one expected (a status, a missing echo within 10 s, a broken stream or connection) counts as an error.
Every `--sample` seconds the server's resident memory (VmRSS) and open file descriptors are read from /proc.
At the end it prints a table per kind and the totals, the memory at start (after the first sample), middle and
end with its slope over the second half (least squares, MB per minute), the fds, and one JSON line of it all.
Exit status 1 when there was any error or the slope exceeds `--max-slope`; every process it started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Processes, free_ports, http_ready, openline_serve, start_echobot, wait_ready

KINDS = ("v1-poll", "v3-poll", "v3-ws", "v3-upload", "v3-token")
ECHO_WITHIN = 10.0  # seconds
POLL_EVERY = 0.25  # seconds between two reads while waiting for an echo
AFTER = 3.0  # seconds after the load before the last look at the server (its clients' connections closed)
IMAGE = b"\x89PNG\r\n\x1a\n" + os.urandom(4088)


class Failed(Exception):
    """An answer that is not the one expected."""


@dataclass
class Figures:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})  # ms
    requests: int = 0
    conversations: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(f"{kind}: {what}")


@dataclass
class Sample:
    at: float  # seconds since the load began
    rss_mb: float
    fds: int
    data_mb: float  # the data directory's files (the SQLite database and its WAL)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _data_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.glob("*") if f.is_file()) / 1024 / 1024 if directory.exists() else 0


def _look(pid: int, data: Path, at: float) -> Sample:
    return Sample(at, _rss_mb(pid), _fds(pid), _data_mb(data))


class User:
    """One virtual user: conversations of its kind, one after another, until `until` (loop time)."""

    def __init__(self, n: int, a: argparse.Namespace, base: str, http: aiohttp.ClientSession, figures: Figures):
        self.n, self.a, self.base, self.http, self.figures = n, a, base, http, figures
        self.kind = KINDS[n % len(KINDS)]
        self.secret = {"Authorization": f"Bearer {a.secret}"}

    async def _call(self, method: str, url: str, expect: tuple[int, ...], **kw: Any) -> Any:
        self.figures.requests += 1
        async with self.http.request(method, url, **kw) as r:
            body = await r.read()
            if r.status not in expect:
                raise Failed(f"{method} {url.split('?')[0]} -> {r.status} {body[:200]!r}")
            return json.loads(body) if body and r.content_type == "application/json" else None

    async def run(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            try:
                await self._conversation(until)
            except (Failed, aiohttp.ClientError, TimeoutError, ValueError) as e:
                self.figures.error(self.kind, f"{type(e).__name__}: {e}")
                await asyncio.sleep(1.0)

    async def _conversation(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        v3 = f"{self.base}/v3/directline"
        auth = self.secret
        if self.kind == "v1-poll":
            conv = (await self._call("POST", f"{self.base}/api/conversations", (200,), headers=auth))["conversationId"]
        elif self.kind == "v3-token":
            made = await self._call("POST", f"{v3}/tokens/generate", (200,), headers=auth, json={"user": {"id": "u"}})
            auth = {"Authorization": f"Bearer {made['token']}"}
            conv = (await self._call("POST", f"{v3}/conversations", (200, 201), headers=auth))["conversationId"]
        else:
            started = await self._call("POST", f"{v3}/conversations", (201,), headers=auth)
            conv = started["conversationId"]
        self.figures.conversations += 1
        stream = None
        if self.kind == "v3-ws":
            self.figures.requests += 1
            stream = await self.http.ws_connect(started["streamUrl"], heartbeat=None)
        try:
            watermark = ""
            fetched = False
            for turn in range(self.a.turns):
                if loop.time() >= until:
                    return
                await asyncio.sleep(random.uniform(0, 2 * self.a.think))
                text = f"user {self.n} turn {turn} {secrets.token_hex(4)}"
                if self.kind == "v3-token":
                    refreshed = await self._call("POST", f"{v3}/tokens/refresh", (200,), headers=auth)
                    auth = {"Authorization": f"Bearer {refreshed['token']}"}
                sent = loop.time()
                await self._post(conv, text, auth)
                if stream is not None:
                    await self._echo_on_stream(stream, text)
                else:
                    watermark, url = await self._echo_by_polling(conv, text, watermark, auth)
                    if url and not fetched:
                        data = await self._get_file(url)
                        if data != IMAGE:
                            raise Failed(f"the uploaded file came back as {len(data)} other bytes")
                        fetched = True
                self.figures.latencies[self.kind].append((loop.time() - sent) * 1000)
        finally:
            if stream is not None:
                await stream.close()

    async def _get_file(self, url: str) -> bytes:
        self.figures.requests += 1
        async with self.http.get(url) as r:
            if r.status != 200:
                raise Failed(f"GET file -> {r.status}")
            return await r.read()

    async def _post(self, conv: str, text: str, auth: dict[str, str]) -> None:
        if self.kind == "v1-poll":
            url = f"{self.base}/api/conversations/{conv}/messages"
            await self._call("POST", url, (204,), headers=auth, json={"from": "u", "text": text})
            return
        activity = {"type": "message", "from": {"id": "u"}, "text": text}
        url = f"{self.base}/v3/directline/conversations/{conv}"
        if self.kind != "v3-upload":
            await self._call("POST", f"{url}/activities", (200,), headers=auth, json=activity)
            return
        form = aiohttp.FormData()
        form.add_field(
            "activity", json.dumps(activity), filename="blob", content_type="application/vnd.microsoft.activity"
        )
        form.add_field("file", IMAGE, filename="cat.png", content_type="image/png")
        await self._call("POST", f"{url}/upload?userId=u", (200,), headers=auth, data=form)

    async def _echo_by_polling(
        self, conv: str, text: str, watermark: str, auth: dict[str, str]
    ) -> tuple[str, str | None]:
        """Read from the watermark until the echo of `text` is there: (the new watermark, a file URL seen)."""
        deadline = asyncio.get_running_loop().time() + ECHO_WITHIN
        file_url = None
        v1 = self.kind == "v1-poll"
        url = (
            f"{self.base}/api/conversations/{conv}/messages"
            if v1
            else f"{self.base}/v3/directline/conversations/{conv}/activities"
        )
        while True:
            params = {"watermark": watermark} if watermark else {}
            page = await self._call("GET", url, (200,), headers=auth, params=params)
            items = page["messages"] if v1 else page["activities"]
            watermark = page.get("watermark") or watermark
            for item in items:
                file_url = file_url or next((a["contentUrl"] for a in item.get("attachments") or []), None)
                if item.get("text") == f"echo: {text}":
                    return watermark, file_url
            if asyncio.get_running_loop().time() > deadline:
                raise Failed(f"no echo within {ECHO_WITHIN:g} s ({self.kind})")
            await asyncio.sleep(POLL_EVERY)

    async def _echo_on_stream(self, stream: aiohttp.ClientWebSocketResponse, text: str) -> None:
        async with asyncio.timeout(ECHO_WITHIN):
            while True:
                message = await stream.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise Failed(f"the stream ended: {message.type.name} {message.data!r}")
                if not message.data.strip():
                    continue  # a keep-alive
                for activity in json.loads(message.data).get("activities", []):
                    if activity.get("text") == f"echo: {text}":
                        return


async def _sample(pid: int, data: Path, started: float, samples: list[Sample], every: float, until: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        samples.append(_look(pid, data, loop.time() - started))
        if loop.time() >= until:
            return
        await asyncio.sleep(min(every, max(0.0, until - loop.time())))


async def _load(a: argparse.Namespace, base: str, pid: int, data: Path) -> tuple[Figures, list[Sample], float]:
    """Run the users; the samples, and a last one once the clients have hung up (`AFTER` seconds later)."""
    figures = Figures()
    samples: list[Sample] = []
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = loop.time()
        until = started + a.minutes * 60
        sampler = asyncio.create_task(_sample(pid, data, started, samples, a.sample, until))
        users = [User(n, a, base, http, figures) for n in range(a.conversations)]
        await asyncio.gather(*(u.run(until) for u in users), sampler)
        duration = loop.time() - started
    await asyncio.sleep(AFTER)
    samples.append(_look(pid, data, loop.time() - started))
    return figures, samples, duration


def _slope(samples: list[Sample], duration: float) -> float:
    """MB per minute over the second half (least squares); 0 with fewer than 3 samples."""
    half = [s for s in samples if s.at >= duration / 2]
    if len(half) < 3:
        return 0.0
    xs, ys = [s.at / 60 for s in half], [s.rss_mb for s in half]
    return statistics.linear_regression(xs, ys).slope


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(a: argparse.Namespace, figures: Figures, looks: list[Sample], duration: float) -> dict[str, Any]:
    every = [x for k in KINDS for x in figures.latencies[k]]
    samples, after = looks[:-1], looks[-1]
    mid = min(samples, key=lambda s: abs(s.at - duration / 2))
    result: dict[str, Any] = {
        "minutes": round(duration / 60, 2),
        "users": a.conversations,
        "store": a.store or "sqlite",
        "conversations": figures.conversations,
        "requests": figures.requests,
        "errors": sum(figures.errors.values()),
        "round_trips": len(every),
        "rt_per_s": round(len(every) / duration, 1),
        "p50_ms": round(_percentile(every, 0.5), 1),
        "p99_ms": round(_percentile(every, 0.99), 1),
        "rss_mb": [round(s.rss_mb, 1) for s in (samples[0], mid, samples[-1], after)],
        "rss_slope_mb_per_min": round(_slope(samples, duration), 2),
        "fds": [samples[0].fds, mid.fds, samples[-1].fds, max(s.fds for s in samples), after.fds],
        "data_mb": [round(s.data_mb, 1) for s in (samples[0], mid, samples[-1])],
        "samples": [[round(s.at), round(s.rss_mb, 1), s.fds, round(s.data_mb, 1)] for s in looks],  # s, MB, fds, MB
        "kinds": {
            k: {
                "round_trips": len(v),
                "p50_ms": round(_percentile(v, 0.5), 1),
                "p99_ms": round(_percentile(v, 0.99), 1),
                "errors": figures.errors[k],
            }
            for k, v in figures.latencies.items()
        },
    }
    print(f"\nsoak: {result['minutes']} min, {a.conversations} users, store {result['store']}")
    print(f"{'kind':<10} {'round trips':>11} {'rt/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for k, row in result["kinds"].items():
        rate = row["round_trips"] / duration
        print(f"{k:<10} {row['round_trips']:>11} {rate:>7.1f} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['errors']:>7}")
    print(
        f"{'all':<10} {result['round_trips']:>11} {result['rt_per_s']:>7} {result['p50_ms']:>8} {result['p99_ms']:>8}"
        f" {result['errors']:>7}"
    )
    print(f"requests {figures.requests}, conversations {figures.conversations}")
    start, middle, end, later = result["rss_mb"]
    slope = result["rss_slope_mb_per_min"]
    print(f"server RSS MB: start {start}, middle {middle}, end {end}, {AFTER:g} s after {later}; slope {slope} MB/min")
    fds = result["fds"]
    print(f"open fds: start {fds[0]}, middle {fds[1]}, end {fds[2]}, highest {fds[3]}, {AFTER:g} s after {fds[4]}")
    print("data directory MB: start {}, middle {}, end {}".format(*result["data_mb"]))
    for line in figures.first_errors:
        print("  error:", line)
    print(json.dumps(result))
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--conversations", type=int, default=300, help="virtual users, each in one conversation at a time")
    p.add_argument("--turns", type=int, default=10, help="round trips per conversation")
    p.add_argument("--think", type=float, default=2.0, help="mean seconds between two round trips of a user")
    p.add_argument("--store", default="", help="--store of openline serve (default: SQLite in a fresh data dir)")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between two looks at the server's memory")
    p.add_argument("--max-slope", type=float, default=6.0, help="MB per minute of RSS growth allowed (second half)")
    a = p.parse_args()
    a.secret = "s" + secrets.token_urlsafe(24)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket or two per user
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="openline-soak-") as tmp:
        try:
            bot_port, port = free_ports(2)
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
            start_echobot(procs, bot_port, Path(tmp) / "echobot.log", env)
            extra = ("--store", a.store) if a.store else ()
            log = Path(tmp) / "openline.log"
            data = Path(tmp) / "data"
            command = openline_serve(port, f"http://127.0.0.1:{bot_port}/api/messages", a.secret, data)
            server = procs.start([*command, *extra], log, cwd=ROOT, env=env)
            wait_ready(server, http_ready(f"http://127.0.0.1:{port}/healthz"), "openline", log)
            figures, samples, duration = asyncio.run(_load(a, f"http://127.0.0.1:{port}", server.pid, data))
            if server.poll() is not None:
                figures.error("server", f"openline exited with {server.returncode}")
            result = report(a, figures, samples, duration)
        finally:
            procs.kill_all()
    ok = result["errors"] == 0 and result["rss_slope_mb_per_min"] <= a.max_slope and result["round_trips"] > 0
    if not ok:
        print(f"soak: FAILED (errors {result['errors']}, slope {result['rss_slope_mb_per_min']} > {a.max_slope}?)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
