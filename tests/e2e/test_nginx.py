"""deploy/nginx-openline.conf, as shipped (only its ports changed), in front of three openline instances on one
Redis: the real botframework-directlinejs client talks to nginx alone, with no sticky sessions, and its
requests spread over the instances."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from tests.e2e._js import unavailable
from tests.e2e.harness import SECRET, Openline, Processes, free_port
from tests.e2e.test_directlinejs import check_run, exchange, run_client, scenario
from tests.e2e.test_directlinejs import node as node  # the fixture
from tests.redis_servers import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx-openline.conf"


def _render(example: str, listen: int, instances: list[int]) -> str:
    """The example with this test's ports: its `listen` and its three upstream servers."""
    text = example.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    servers = re.findall(r"server 127\.0\.0\.1:300\d;", text)
    assert len(servers) == len(instances), "the example names three instances"
    for server, port in zip(servers, instances, strict=True):
        text = text.replace(server, f"server 127.0.0.1:{port};")
    return text


@pytest.fixture
def nginx_url(procs: Processes, tmp_path: Path) -> Iterator[tuple[str, list[Openline]]]:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        unavailable("nginx is not installed (Debian: apt-get install nginx-light)")
    assert nginx is not None
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        listen = free_port()
        public = f"http://127.0.0.1:{listen}"
        store = f"{redis.url}?prefix=nginx-{uuid.uuid4().hex[:8]}"
        bot = procs.bot(wait=False)
        instances = [
            procs.openline(
                *("--bot", bot.endpoint, "--secret", SECRET, "--store", store, "--public-url", public),
                *("--data-dir", str(tmp_path / f"data-{i}"), "--stream-keepalive", "1"),
                wait=False,
            )
            for i in range(3)
        ]
        bot.wait_ready()
        for instance in instances:
            instance.wait_ready()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        (prefix / "openline.conf").write_text(_render(EXAMPLE.read_text(), listen, [i.port for i in instances]))
        temp = " ".join(
            f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"daemon off; worker_processes 1; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'};\n"
            f"events {{ worker_connections 512; }}\n"
            f"http {{ access_log {prefix / 'access.log'}; {temp} include {prefix / 'openline.conf'}; }}\n"
        )
        process = procs.process(
            "nginx", [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
        )
        procs.wait_listening(process, listen)
        yield public, instances
        assert "on_turn_error" not in bot.stderr, bot.stderr
    finally:
        redis.stop()


def _served(instance: Openline) -> int:
    """How many requests the instance's access log shows."""
    return len(re.findall(r'"(?:GET|POST) /v3/directline', instance.stderr))


def test_directlinejs_through_nginx_reaches_every_instance_without_sticky_sessions(
    nginx_url: tuple[str, list[Openline]], node: str
) -> None:
    public, instances = nginx_url
    proxy = cast(Openline, SimpleNamespace(url=public))  # what the client talks to: only its url is read
    for web_socket in (True, False):
        run = run_client(
            node,
            scenario(
                proxy,
                web_socket=web_socket,
                secret=SECRET,
                steps=[
                    *exchange("dl_nginx", "one", f"n1-{web_socket}"),
                    *exchange("dl_nginx", "two", f"n2-{web_socket}"),
                ],
            ),
        )
        check_run(run, run.done["conversationId"], web_socket, proxy)
        texts = [a.get("text") for a in run.activities if a.get("type") == "message"]
        assert texts == ["one", "Welcome, dl_nginx!", "echo: one", "two", "echo: two"], run.describe()
        if web_socket:
            assert run.done["streamUrl"].startswith(public.replace("http", "ws")), "the stream URL is the proxy's"
    time.sleep(0.5)  # the access log lines of the last requests
    served = [_served(i) for i in instances]
    assert sum(1 for n in served if n > 0) >= 2, f"requests per instance: {served}"
    with httpx.Client(timeout=10) as http:
        assert http.get(public + "/healthz").json() == {"status": "ok"}
