# ruff: noqa
# fmt: off
# Copied from the shared load harness /work/shared/bench/nullrelay.py and kept identical (apart from this header)
# so that figures compare with other servers measured with the same harness. Do not edit; update the shared copy.
"""Null Direct Line relay: the bare protocol hops with nothing else.

No auth, no persistence, no validation: a dict of lists per conversation. It
serves the v3 client paths under /v3/directline and the connector reply path,
and forwards each client activity to the bot synchronously. It is the floor a
real server's per-round-trip cost is compared against (same harness, same bot).

usage: uvicorn nullrelay:app --port 3100   (BOT_URL env, default :3978)
"""
import itertools
import os

import aiohttp
import msgspec
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BOT = os.environ.get("BOT_URL", "http://127.0.0.1:3978/api/messages")
SELF = os.environ.get("SELF_URL", "http://127.0.0.1:3100")
enc, dec = msgspec.json.Encoder(), msgspec.json.Decoder()
convs: dict[str, list] = {}
ids = itertools.count()
session: aiohttp.ClientSession | None = None


def js(obj, status=200):
    return Response(enc.encode(obj), status, media_type="application/json")


async def bot_post(act):
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with session.post(BOT, data=enc.encode(act), headers={"Content-Type": "application/json"}) as r:
        await r.read()
        return r.status


async def start(req):
    cid = f"c{next(ids)}"
    convs[cid] = []
    await bot_post({"type": "conversationUpdate", "id": f"{cid}|u", "serviceUrl": SELF,
                    "conversation": {"id": cid}, "channelId": "directline",
                    "from": {"id": "u"}, "recipient": {"id": "bot"}, "membersAdded": []})
    return js({"conversationId": cid, "token": "t", "expires_in": 1800}, 201)


async def post_activity(req):
    cid = req.path_params["cid"]
    act = dec.decode(await req.body())
    h = convs[cid]
    act.update(id=f"{cid}|{len(h):07d}", serviceUrl=SELF, conversation={"id": cid},
               channelId="directline", recipient={"id": "bot"})
    h.append(act)
    await bot_post(act)
    return js({"id": act["id"]})


async def get_activities(req):
    h = convs[req.path_params["cid"]]
    wm = req.query_params.get("watermark") or "0"
    n = int(wm)
    return js({"activities": h[n:], "watermark": str(len(h))})


async def bot_reply(req):
    cid = req.path_params["cid"]
    act = dec.decode(await req.body())
    h = convs[cid]
    act["id"] = f"{cid}|{len(h):07d}"
    h.append(act)
    return js({"id": act["id"]})


app = Starlette(routes=[
    Route("/v3/directline/conversations", start, methods=["POST"]),
    Route("/v3/directline/conversations/{cid}/activities", post_activity, methods=["POST"]),
    Route("/v3/directline/conversations/{cid}/activities", get_activities, methods=["GET"]),
    Route("/v3/conversations/{cid}/activities/{aid}", bot_reply, methods=["POST"]),
    Route("/v3/conversations/{cid}/activities", bot_reply, methods=["POST"]),
])
