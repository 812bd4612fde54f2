"""What one hostile client does to the service: huge headers, slow-loris connections, WebSocket compression bombs.

    python bench/abuse.py [--server "CMD"] [--open-files 1024] [--big-headers 4] [--slow 1100] [--bombs 4]

Starts `openline serve` (or the command given with --server, which gets `--port P --data-dir D` appended) with
the memory store, its open-file limit set to --open-files (soft and hard, as on a default Linux box), and runs
three attacks one after another, each next to a prober that asks `GET /healthz` on a fresh connection every
100 ms with a 2 s timeout. For each it prints the server's resident memory (VmRSS) before, at its highest and
after (VmHWM, the process's high-water mark, is read before and after each attack), and the probes' latency
(median, maximum) and failures:

- big headers: N connections each send a request whose one header grows to 64 MB, 64 KB at a time, as fast as
  the server takes it; what the attacker saw (an answer, a closed connection) is printed;
- slow loris: N connections each send a request line and then one header byte every 2 s, for 20 s;
- compression bombs: N WebSocket streams (a 3.0 conversation's streamUrl) each send 50 text frames marked
  compressed (permessage-deflate, offered in the handshake), each inflating to 16 MB of zeros (about 16 KB on the
  wire): 0.8 MB per stream; they are sent whether or not the server agreed to compression, as an attacker would.

Compare the same figures against an older openline, e.g. a checkout of an earlier commit:
`--server "env PYTHONPATH=/path/to/checkout python -m openline serve"`.
Every process it starts is killed at the end. Exit status 0 unless the server could not be started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SECRET = "abuse-bench-secret-0123456789"
PROBE_EVERY, PROBE_TIMEOUT = 0.1, 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class Probes:
    """GET /healthz on a fresh connection every 100 ms, in a thread, until stopped."""

    port: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _one(self) -> None:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=PROBE_TIMEOUT) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise OSError(data[:40])
            self.latencies.append(time.monotonic() - started)
        except OSError:
            self.failures += 1

    def run(self) -> None:
        while not self._stop.is_set():
            self._one()
            self._stop.wait(PROBE_EVERY)

    @contextlib.contextmanager
    def running(self) -> Iterator[Probes]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(PROBE_TIMEOUT + 1)

    def summary(self) -> str:
        if not self.latencies:
            return f"healthz: 0 ok, {self.failures} failed"
        ms = sorted(x * 1000 for x in self.latencies)
        return (
            f"healthz: {len(ms)} ok, {self.failures} failed, median {statistics.median(ms):.1f} ms, max {ms[-1]:.0f} ms"
        )


class Server:
    def __init__(self, command: list[str], open_files: int) -> None:
        self.port = _free_port()
        self.data = tempfile.mkdtemp(prefix="openline-abuse-")
        args = [*command, "--port", str(self.port), "--data-dir", self.data, "--store", "memory://"]
        args += ["--secret", SECRET, "--log-level", "warning"]

        def limit_files() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
        self.log = open(Path(self.data) / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_files,
            env=env,
            start_new_session=True,
            cwd=self.data,  # not the checkout: `python -m openline` would import ./openline from there
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited: {Path(self.data, 'server.log').read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise SystemExit("the server did not start")

    def rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmHWM") / 1024

    def stream_url(self) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v3/directline/conversations",
            method="POST",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            url: str = json.loads(r.read())["streamUrl"]
        return url

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


def _attack(server: Server, name: str, attack: Callable[[], str]) -> None:
    before = server.rss_mb()
    with Probes(server.port).running() as probes:
        started = time.monotonic()
        outcome = attack()
        took = time.monotonic() - started
        time.sleep(0.5)
    after = server.rss_mb()
    print(f"\n{name} ({took:.1f} s): {outcome}")
    print(
        f"  server RSS: {before:.0f} MB before, {server.peak_mb():.0f} MB at the highest so far, {after:.0f} MB after"
    )
    print(f"  {probes.summary()}")


def _in_threads(count: int, attacker: Callable[[], None]) -> None:
    """Run `count` attackers at once, each in its own thread, and wait for them (two minutes at most)."""
    threads = [threading.Thread(target=attacker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def _big_headers(server: Server, count: int) -> str:
    outcomes: list[str] = []

    def one() -> None:
        sent = 0
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                chunk = b"h" * 65536
                while sent < 64 * 1024 * 1024:
                    s.sendall(chunk)
                    sent += len(chunk)
                s.sendall(b"\r\n\r\n")
                answer = s.recv(100).split(b"\r\n", 1)[0].decode(errors="replace")
                outcomes.append(f"sent {sent >> 20} MB, answer {answer or 'none'!r}")
        except OSError as e:
            outcomes.append(f"sent {sent >> 20} MB, then {type(e).__name__}")

    _in_threads(count, one)
    return "; ".join(sorted(set(outcomes)))


def _slow_loris(server: Server, count: int, seconds: float = 20.0) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 256)), hard))
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            s.setblocking(False)
            s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            refused += 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in socks:
            with contextlib.suppress(OSError):
                s.send(b"x")
        time.sleep(2)
    still_open = 0
    for s in socks:
        try:
            closed = s.recv(4096) == b""  # an answer (a 408, a 503) is followed by the close
            if not closed:
                s.settimeout(0.2)
                closed = s.recv(4096) == b""
        except (BlockingIOError, TimeoutError):
            closed = False
        except OSError:
            closed = True
        still_open += not closed
        s.close()
    return f"{count} connections ({refused} not accepted), {still_open} still open after {seconds:.0f} s"


def _ws_handshake(url: str) -> tuple[socket.socket, bool]:
    """Open a WebSocket by hand, offering permessage-deflate: the socket, and whether the server agreed."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    s.sendall(
        (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(head.split(b"\r\n", 1)[0].decode())
    return s, b"permessage-deflate" in head.lower()


def _bomb_frame(inflated: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(b"0" * inflated) + compressor.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4]  # RFC 7692: the final 00 00 ff ff is left off
    mask = secrets.token_bytes(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0xC1, 0x80 | 127]) + len(payload).to_bytes(8, "big") + mask + masked  # FIN+RSV1, text, masked


def _bombs(server: Server, count: int, frames: int = 50) -> str:
    frame = _bomb_frame(16 * 1024 * 1024 - 1)
    results: list[str] = []

    def one() -> None:
        sent = 0
        try:
            s, agreed = _ws_handshake(server.stream_url())
        except OSError as e:
            results.append(f"handshake failed: {e}")
            return
        try:
            with s:
                for _ in range(frames):
                    s.sendall(frame)
                    sent += len(frame)
                time.sleep(1)
                s.settimeout(2)
                closing = s.recv(4096)
                state = "closed by the server" if b"\x88" in closing[:2] or not closing else "still open"
        except OSError:
            state = "closed by the server"
        results.append(f"compression {'agreed' if agreed else 'refused'}, {sent / 1e6:.1f} MB sent, {state}")

    _in_threads(count, one)
    return "; ".join(sorted(set(results))) + f" (each frame {len(frame)} bytes on the wire, 16 MB inflated)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=f"{shlex.quote(sys.executable)} -m openline serve")
    parser.add_argument("--open-files", type=int, default=1024)
    parser.add_argument("--big-headers", type=int, default=4)
    parser.add_argument("--slow", type=int, default=1100)
    parser.add_argument("--bombs", type=int, default=4)
    a = parser.parse_args()
    server = Server(shlex.split(a.server), a.open_files)
    try:
        print(f"server: {a.server} (open-file limit {a.open_files}), idle RSS {server.rss_mb():.0f} MB")
        with Probes(server.port).running() as quiet:
            time.sleep(2)
        print(f"  at rest, {quiet.summary()}")
        _attack(server, f"big headers x{a.big_headers}", lambda: _big_headers(server, a.big_headers))
        _attack(server, f"slow loris x{a.slow}", lambda: _slow_loris(server, a.slow))
        _attack(server, f"compression bombs x{a.bombs}", lambda: _bombs(server, a.bombs))
        alive = server.proc.poll() is None
        print(f"\nserver still running: {'yes' if alive else 'no'}; RSS {server.rss_mb() if alive else 0:.0f} MB")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
