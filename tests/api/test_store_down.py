"""A Redis store stopped, or out of memory, while serving: every route answers 503 in its API's error shape with
`Retry-After`, nothing acknowledged is lost, and the service recovers by itself when Redis is back.

In process (`serve`) against a redis-server of this module's own, stopped and started again on its port
(tests/e2e/test_scale_out.py does it to three `openline serve` processes for the 3.0 post and stream).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.api._v3 import BASE
from tests.api.conftest import REC_SECRET, Service, serve
from tests.redis_servers import RedisServer

RECOVERY = 15.0  # seconds the service may take to reach Redis again


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # appendfsync always: a Redis stopped and started again has every acknowledged write
    server = RedisServer(tmp_path_factory.mktemp("redis"), None, "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serve(Path(tmp_path_factory.mktemp("data")), store=f"{redis_server.url}?prefix=down") as running:
        yield running


Call = Callable[[Service, dict[str, str]], httpx.Response]  # (service, the conversation of each API)


def _file() -> tuple[str, tuple[str, bytes, str]]:
    return ("file", ("cat.png", b"\x89PNG a cat", "image/png"))


def _v3_upload(s: Service, c: dict[str, str]) -> httpx.Response:
    activity = {"type": "message", "from": {"id": "u1"}, "text": "upload"}
    part = ("activity", ("blob", json.dumps(activity), "application/vnd.microsoft.activity"))
    return s.http.post(
        f"{BASE}/conversations/{c['v3']}/upload?userId=u1", headers=s.auth(REC_SECRET), files=[part, _file()]
    )


def _bot_reply(s: Service, c: dict[str, str]) -> httpx.Response:
    """The recording bot (no app id) posting to the conversation through the connector API."""
    activity = {"type": "message", "from": {"id": "rec"}, "text": "from the bot"}
    return s.http.post(f"/v3/conversations/{c['v3']}/activities", json=activity)


WRITES: dict[str, Call] = {
    "v1 start": lambda s, c: s.http.post("/api/conversations", headers=s.auth(REC_SECRET)),
    "v1 message": lambda s, c: s.send(c["v1"], {"from": "u1", "text": "hello"}),
    "v1 upload": lambda s, c: s.http.post(
        f"/api/conversations/{c['v1']}/upload", headers=s.auth(REC_SECRET), files=[_file()]
    ),
    "v3 start": lambda s, c: s.http.post(f"{BASE}/conversations", headers=s.auth(REC_SECRET)),
    "v3 activity": lambda s, c: s.http.post(
        f"{BASE}/conversations/{c['v3']}/activities",
        headers=s.auth(REC_SECRET),
        json={"type": "message", "from": {"id": "u1"}, "text": "hello"},
    ),
    "v3 upload": _v3_upload,
    "connector activity": _bot_reply,
}
READS: dict[str, Call] = {
    "v1 messages": lambda s, c: s.http.get(f"/api/conversations/{c['v1']}/messages", headers=s.auth(REC_SECRET)),
    "v3 activities": lambda s, c: s.http.get(f"{BASE}/conversations/{c['v3']}/activities", headers=s.auth(REC_SECRET)),
    "v3 reconnect": lambda s, c: s.http.get(f"{BASE}/conversations/{c['v3']}", headers=s.auth(REC_SECRET)),
}


def _unavailable(r: httpx.Response, name: str, message: str) -> None:
    assert r.status_code == 503, f"{name}: {r.status_code} {r.text}"
    assert r.headers["retry-after"] == "1", name
    error = r.json()["error"]
    if name.startswith("v1"):
        assert error == {"code": "Internal", "message": message, "statusCode": 503}, name
    else:
        assert error == {"code": "ServiceUnavailable", "message": message}, name


def _conversations(service: Service) -> dict[str, str]:
    v3 = service.http.post(f"{BASE}/conversations", headers=service.auth(REC_SECRET)).json()["conversationId"]
    return {"v1": service.start()["conversationId"], "v3": v3}


def _ok(r: httpx.Response) -> bool:
    return r.status_code in (200, 201, 204)


def test_redis_stopped_every_route_is_503_then_it_recovers(service: Service, redis_server: RedisServer) -> None:
    convs = _conversations(service)
    acknowledged = WRITES["v3 activity"](service, convs)
    assert acknowledged.status_code == 200
    redis_server.stop()
    try:
        for name, call in {**WRITES, **READS}.items():
            _unavailable(call(service, convs), name, "the service's store cannot be reached; retry")
        assert service.http.get("/healthz").status_code == 503
    finally:
        redis_server.start()
    deadline = time.monotonic() + RECOVERY
    while not _ok(WRITES["v3 activity"](service, convs)):
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.2)
    for name, call in {**WRITES, **READS}.items():
        r = call(service, convs)
        assert _ok(r), f"{name}: {r.status_code} {r.text}"
    ids = [a["id"] for a in service.stored(convs["v3"])]
    assert acknowledged.json()["id"] in ids


def test_redis_out_of_memory_refuses_writes_with_503_and_takes_them_again(
    service: Service, redis_server: RedisServer
) -> None:
    """maxmemory reached with the noeviction policy: Redis refuses writes (OOM) and serves reads."""
    convs = _conversations(service)
    admin = redis.Redis(port=redis_server.port)
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        for name, call in WRITES.items():
            _unavailable(call(service, convs), name, "the service's store has no room now; retry later")
        for name, call in READS.items():
            assert call(service, convs).status_code == 200, name
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    for name, call in WRITES.items():
        r = call(service, convs)
        assert _ok(r), f"{name}: {r.status_code} {r.text}"
