# ruff: noqa
# fmt: off
# Copied from the shared load harness /work/shared/bench/dlload.py and kept identical (apart from this header)
# so that figures compare with other servers measured with the same harness. Do not edit; update the shared copy.
"""Echo round-trip load generator for Direct Line servers (v3 and v1.1).

Each of C concurrent conversations sends M messages one after another; a round
trip is: send a message, then receive the bot's echo of it (by polling with the
watermark, or over the v3 WebSocket stream). Prints round trips/s and latency
percentiles as one JSON line.

usage: python dlload.py --base http://127.0.0.1:3000/v3/directline --secret S
                        [--api v3|v1] [--mode poll|ws] [-c 20] [-m 50]
"""
import argparse
import asyncio
import json
import statistics
import time

import aiohttp


def cpu_seconds(pid: int) -> float:
    """user+sys CPU seconds of a process and its reaped children (from /proc)."""
    import os
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    total = ticks / os.sysconf("SC_CLK_TCK")
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        total += cpu_seconds(int(child))
    return total


class Fail(Exception):
    pass


async def start(s, a):
    path = "/conversations"
    async with s.post(a.base + path, headers=a.auth, json={}) as r:
        if r.status not in (200, 201):
            raise Fail(f"start {r.status} {await r.text()}")
        return await r.json()


async def send(s, a, conv, i, headers):
    if a.api == "v3":
        url = f"{a.base}/conversations/{conv}/activities"
        body = {"type": "message", "from": {"id": "user1"}, "text": f"m{i}"}
    else:
        url = f"{a.base}/conversations/{conv}/messages"
        body = {"from": "user1", "text": f"m{i}"}
    async with s.post(url, headers=headers, json=body) as r:
        if r.status not in (200, 201, 202, 204):
            raise Fail(f"send {r.status} {await r.text()}")
        await r.read()


def is_echo(item, i, api):
    text = item.get("text") or ""
    return text == f"echo: m{i}"


async def poll_until(s, a, conv, i, headers, state):
    key = "activities" if a.api == "v3" else "messages"
    url = f"{a.base}/conversations/{conv}/{key}"
    while True:
        params = {"watermark": state["wm"]} if state["wm"] is not None else {}
        async with s.get(url, headers=headers, params=params) as r:
            if r.status != 200:
                raise Fail(f"get {r.status} {await r.text()}")
            body = await r.json()
        state["wm"] = body.get("watermark", state["wm"])
        items = body.get(key) or []
        state["polls"] += 1
        if any(is_echo(x, i, a.api) for x in items):
            return
        if a.poll_sleep:
            await asyncio.sleep(a.poll_sleep)


async def conversation(s, a, lat, stats):
    c = await start(s, a)
    conv = c["conversationId"]
    token = c.get("token")
    headers = {"Authorization": f"Bearer {token}"} if (token and a.use_token) else a.auth
    state = {"wm": None, "polls": 0}
    ws = None
    if a.mode == "ws":
        ws = await s.ws_connect(c["streamUrl"], heartbeat=None)
    try:
        for i in range(a.messages):
            t0 = time.perf_counter()
            await send(s, a, conv, i, headers)
            if ws is None:
                await poll_until(s, a, conv, i, headers, state)
            else:
                done = False
                while not done:
                    msg = await ws.receive(timeout=30)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise Fail(f"ws {msg.type}")
                    if not msg.data.strip():
                        continue
                    for act in json.loads(msg.data).get("activities", []):
                        if is_echo(act, i, a.api):
                            done = True
            lat.append(time.perf_counter() - t0)
    finally:
        if ws is not None:
            await ws.close()
    stats["polls"] += state["polls"]


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--secret", default="")
    p.add_argument("--api", choices=["v3", "v1"], default="v3")
    p.add_argument("--mode", choices=["poll", "ws"], default="poll")
    p.add_argument("-c", "--conversations", type=int, default=20)
    p.add_argument("-m", "--messages", type=int, default=50)
    p.add_argument("--poll-sleep", type=float, default=0.0)
    p.add_argument("--use-token", action="store_true", help="use the conversation token, not the secret")
    p.add_argument("--label", default="")
    p.add_argument("--pid", type=int, action="append", default=[],
                   help="server process id(s); reports their CPU time per round trip")
    a = p.parse_args()
    a.base = a.base.rstrip("/")
    a.auth = {"Authorization": f"Bearer {a.secret}"} if a.secret else {}
    lat: list[float] = []
    stats = {"polls": 0}
    conn = aiohttp.TCPConnector(limit=0)
    cpu0 = sum(cpu_seconds(pid) for pid in a.pid)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as s:
        t0 = time.perf_counter()
        res = await asyncio.gather(*(conversation(s, a, lat, stats) for _ in range(a.conversations)),
                                   return_exceptions=True)
        el = time.perf_counter() - t0
    cpu = sum(cpu_seconds(pid) for pid in a.pid) - cpu0
    errors = [repr(r) for r in res if isinstance(r, BaseException)]
    lat.sort()
    q = (lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 2)) if lat else (lambda f: None)
    print(json.dumps({
        "label": a.label, "api": a.api, "mode": a.mode, "conversations": a.conversations,
        "round_trips": len(lat), "seconds": round(el, 3),
        "rt_per_s": round(len(lat) / el, 1) if el else None,
        "p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99),
        "mean_ms": round(statistics.mean(lat) * 1000, 2) if lat else None,
        "polls_per_rt": round(stats["polls"] / len(lat), 2) if lat else None,
        "server_cpu_us_per_rt": round(cpu / len(lat) * 1e6) if (lat and a.pid) else None,
        "errors": len(errors), "first_error": errors[0][:300] if errors else None,
    }))


if __name__ == "__main__":
    asyncio.run(main())
