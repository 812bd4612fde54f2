"""Real Redis servers for the tests: one `redis-server` on a free port, or a 3-node Redis Cluster made the way
an operator would (`--cluster-enabled yes` on each, then `redis-cli --cluster create`).

Without redis-server the tests skip, except in CI, where scripts/test installs Debian's package and a missing
server fails the run.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

START_TIMEOUT = 10.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(cluster_bus: bool = False) -> int:
    """A free port on loopback; with `cluster_bus`, one whose cluster bus port (10000 above it) is free too."""
    if not cluster_bus:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port
    while True:
        port = random.randint(20000, 50000)
        if _bindable(port) and _bindable(port + 10000):
            return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on port {port} within {START_TIMEOUT} s")


class RedisServer:
    """One redis-server process on loopback; `stop` and `start` again keep its port and directory."""

    def __init__(self, directory: Path, port: int | None = None, *extra: str) -> None:
        self.directory = directory
        self.port = port or free_port(cluster_bus="--cluster-enabled" in extra)
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            _unavailable("redis-server is not installed (Debian: apt-get install redis-server)")
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                *(server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log", *self.extra),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process)

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(10)
        self.process = None


@contextmanager
def redis_server(directory: Path, *extra: str) -> Iterator[RedisServer]:
    """A started redis-server (extra arguments: its settings, e.g. "--appendonly", "yes")."""
    server = RedisServer(directory, None, *extra)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_cluster(directory: Path, nodes: int = 3, *settings: str) -> Iterator[str]:
    """A Redis Cluster of `nodes` masters on loopback (`settings`: more redis-server arguments for each); yields
    its `redis+cluster://` URL (the first node)."""
    cli = shutil.which("redis-cli")
    if cli is None:
        _unavailable("redis-cli is not installed (Debian: apt-get install redis-server)")
    servers = [
        RedisServer(
            directory / f"node{i}",
            None,
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", *settings),
        )
        for i in range(nodes)
    ]
    try:
        for server in servers:
            server.start()
        assert cli is not None
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers), "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # every node agrees the cluster is up
            states = [
                subprocess.run(
                    [cli, "-p", str(s.port), "cluster", "info"], capture_output=True, text=True, timeout=10
                ).stdout
                for s in servers
            ]
            if all("cluster_state:ok" in state for state in states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up")
            time.sleep(0.1)
        yield f"redis+cluster://127.0.0.1:{servers[0].port}"
    finally:
        for server in servers:
            server.stop()
