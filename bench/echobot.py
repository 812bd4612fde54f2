# ruff: noqa
# fmt: off
# Copied from the shared load harness /work/shared/bench/echobot.py and kept identical (apart from this header)
# so that figures compare with other servers measured with the same harness. Do not edit; update the shared copy.
"""Minimal Bot Framework v3 echo bot for benchmarking channel servers.

It speaks the connector protocol directly (no SDK overhead): on each message
activity it POSTs a reply to {serviceUrl}/v3/conversations/{id}/activities/{replyToId}
before answering the channel. Auth is off (like a bot with an empty app id).

usage: python echobot.py [--port 3978] [--defer]
  --defer: answer the channel 200 first, send the reply afterwards (async bot)
"""
import argparse
import asyncio

import aiohttp
from aiohttp import web

session: aiohttp.ClientSession


async def reply(act: dict) -> None:
    conv = act["conversation"]["id"]
    url = f"{act['serviceUrl'].rstrip('/')}/v3/conversations/{conv}/activities/{act['id']}"
    body = {
        "type": "message",
        "from": act.get("recipient") or {"id": "bot"},
        "recipient": act.get("from"),
        "conversation": act["conversation"],
        "replyToId": act["id"],
        "text": "echo: " + (act.get("text") or ""),
    }
    async with session.post(url, json=body) as r:
        await r.read()


async def messages(request: web.Request) -> web.Response:
    act = await request.json()
    if act.get("type") == "message":
        if request.app["defer"]:
            asyncio.get_running_loop().create_task(reply(act))
        else:
            await reply(act)
    return web.Response(status=200)


async def on_start(app: web.Application) -> None:
    global session
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=3978)
    p.add_argument("--defer", action="store_true")
    a = p.parse_args()
    app = web.Application()
    app["defer"] = a.defer
    app.router.add_post("/api/messages", messages)
    app.on_startup.append(on_start)
    web.run_app(app, host="127.0.0.1", port=a.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
