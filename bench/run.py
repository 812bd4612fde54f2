"""Echo round-trip benchmark of openline against the null relay floor, in one command.

    python bench/run.py [-c 20] [-m 100] [--repeat 3] [--run-timeout 60]

What it measures: C concurrent conversations each send M messages one after another
(`dlload.py` from the shared harness, poll mode); a *round trip* is one message sent
plus the polls (GET with the watermark) until the bot's echo of it comes back. The bot
is `echobot.py`, a minimal connector-protocol echo bot, so nearly all the cost is the
server's. Three servers run side by side on free loopback ports and are measured in
turn, alternating, `--repeat` times each:

- `nullrelay.py`, the floor: the bare Direct Line 3.0 hops in Starlette + msgspec +
  aiohttp with no auth, no persistence, no validation (a dict of lists). It speaks
  3.0, not 1.1, so it is not a like-for-like peer: it is the least any Python server
  can spend per round trip on this machine with this harness;
- openline serving Direct Line 1.1 under /api with the default SQLite store;
- openline serving Direct Line 1.1 under /api with `--store memory://`.

How to read it: every dlload result is printed as a JSON line as it arrives; the final
table gives, per server, the median over the repeats of round trips/s, p50 and p95
latency and the server's CPU microseconds per round trip (user+sys CPU of the server
process over the run divided by round trips), the server's resident memory after the
load (VmRSS) and the total errors over all runs. The machine is shared and noisy:
quote medians and ratios, not single absolute figures. CPU per round trip is the
steadiest figure; the last lines give openline's CPU per round trip as a multiple of
the null relay's, i.e. what openline's auth, validation, 1.1 mapping and storage cost
over the bare protocol. Round trips/s and latency also depend on the load generator
and the bot, which share the same cores.

Every process the script starts is killed in a `finally` (also on Ctrl-C or SIGTERM),
each dlload run has a timeout, and the servers' stderr is shown if they log anything
at warning level or above.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
STARTUP_DEADLINE = 30.0


@dataclass
class Server:
    """One server under test, the process that serves it and its dlload results."""

    name: str
    api: str
    store: str
    dlload_args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    rss_kb: int | None = None


class Processes:
    """The subprocesses this script started; `kill_all` ends each of them (and its process group) by id."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(self, args: list[str], log: Path | None = None, **kw: Any) -> subprocess.Popen[bytes]:
        # stdout (banners) is dropped; stderr (logging, tracebacks) goes to `log`.
        err: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            f = log.open("wb")
            self.logs.append(f)
            err = f
        # A session of its own: a terminal's Ctrl-C reaches only this script, which then ends the children itself.
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for f in self.logs:
            f.close()


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all bound at once so that they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def wait_ready(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path | None) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready{log_tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {STARTUP_DEADLINE:.0f}s{log_tail(log)}")


def tcp_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return ready


def http_ready(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return ready


def log_tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").strip()
    if not text:
        return ""
    return "\n--- " + str(log) + " (last lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_dlload(server: Server, procs: Processes, a: argparse.Namespace, label: str, c: int, m: int) -> dict[str, Any]:
    """One dlload run against `server`; its JSON result (or a synthetic failed result on timeout or crash)."""
    assert server.proc is not None
    args = [PY, str(BENCH / "dlload.py"), *server.dlload_args, "--mode", "poll", "-c", str(c), "-m", str(m)]
    args += ["--pid", str(server.proc.pid), "--label", label]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=BENCH, start_new_session=True)
    procs.procs.append(p)
    try:
        out, err = p.communicate(timeout=a.run_timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return failed(label, server, f"dlload timed out after {a.run_timeout:.0f}s", c)
    lines = out.decode(errors="replace").strip().splitlines()
    if p.returncode != 0 or not lines:
        return failed(label, server, f"dlload exited {p.returncode}: {err.decode(errors='replace')[-500:]}", c)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def failed(label: str, server: Server, why: str, c: int) -> dict[str, Any]:
    return {
        "label": label,
        "api": "v1" if "v1" in server.dlload_args else "v3",
        "mode": "poll",
        "conversations": c,
        "round_trips": 0,
        "rt_per_s": None,
        "p50_ms": None,
        "p95_ms": None,
        "server_cpu_us_per_rt": None,
        "errors": c,
        "first_error": why,
    }


def median(values: list[float | int | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(servers: list[Server]) -> str:
    head = ["server", "api", "store", "rt/s", "p50 ms", "p95 ms", "CPU µs/rt", "RSS MB", "errors"]
    rows = [head]
    for s in servers:
        rows.append(
            [
                s.name,
                s.api,
                s.store,
                fmt(median([r["rt_per_s"] for r in s.results])),
                fmt(median([r["p50_ms"] for r in s.results]), 1),
                fmt(median([r["p95_ms"] for r in s.results]), 1),
                fmt(median([r["server_cpu_us_per_rt"] for r in s.results])),
                fmt(s.rss_kb / 1024 if s.rss_kb is not None else None, 1),
                str(sum(int(r["errors"]) for r in s.results)),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def ratios(floor: Server, others: list[Server]) -> Iterator[str]:
    base = median([r["server_cpu_us_per_rt"] for r in floor.results])
    for s in others:
        cpu = median([r["server_cpu_us_per_rt"] for r in s.results])
        rate = median([r["rt_per_s"] for r in s.results])
        floor_rate = median([r["rt_per_s"] for r in floor.results])
        cpu_x = f"{cpu / base:.2f}x" if cpu and base else "-"
        rate_x = f"{rate / floor_rate:.2f}x" if rate and floor_rate else "-"
        yield f"{s.name} {s.store}: CPU per round trip {cpu_x} the null relay's, round trips/s {rate_x} its"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("-c", "--conversations", type=int, default=20, help="concurrent conversations (default 20)")
    p.add_argument("-m", "--messages", type=int, default=100, help="messages per conversation (default 100)")
    p.add_argument("--repeat", type=int, default=3, help="runs per server; the table shows medians (default 3)")
    p.add_argument("--run-timeout", type=float, default=60.0, help="seconds before a dlload run is killed (default 60)")
    p.add_argument("--no-warmup", action="store_true", help="skip the short unreported warm-up run per server")
    a = p.parse_args(argv)

    # SIGINT and SIGTERM end the run as KeyboardInterrupt, so that the finally below kills the children
    # (SIGINT explicitly too: a shell starting this in the background may have set it to be ignored).
    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    bot_port, relay_port, sqlite_port, memory_port = free_ports(4)
    bot_url = f"http://127.0.0.1:{bot_port}/api/messages"
    secret = "b" + secrets.token_urlsafe(32)  # never a leading "-": it is passed as a command-line value
    v1 = ["--api", "v1", "--secret", secret]
    servers = [
        Server("nullrelay", "3.0", "dict", ["--base", f"http://127.0.0.1:{relay_port}/v3/directline"]),
        Server("openline", "1.1", "sqlite", ["--base", f"http://127.0.0.1:{sqlite_port}/api", *v1]),
        Server("openline", "1.1", "memory", ["--base", f"http://127.0.0.1:{memory_port}/api", *v1]),
    ]
    procs = Processes()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="openline-bench-") as tmp_name:
            tmp = Path(tmp_name)
            bot_log = tmp / "echobot.log"
            bot = procs.start([PY, str(BENCH / "echobot.py"), "--port", str(bot_port)], bot_log, cwd=BENCH, env=env)
            wait_ready(bot, tcp_ready(bot_port), "echobot.py", bot_log)

            relay, sql, mem = servers
            relay.log_path = tmp / "nullrelay.log"
            relay_env = {**env, "BOT_URL": bot_url, "SELF_URL": f"http://127.0.0.1:{relay_port}"}
            uvicorn = [PY, "-m", "uvicorn", "nullrelay:app", "--port", str(relay_port), "--no-access-log"]
            uvicorn += ["--log-level", "warning"]
            relay.proc = procs.start(uvicorn, relay.log_path, cwd=BENCH, env=relay_env)
            for s, port in ((sql, sqlite_port), (mem, memory_port)):
                data_dir = tmp / f"data-{s.store}"
                data_dir.mkdir()
                s.log_path = tmp / f"openline-{s.store}.log"
                args = [PY, "-m", "openline", "serve", "--port", str(port), "--bot", bot_url, "--secret", secret]
                args += ["--data-dir", str(data_dir), "--log-level", "warning"]
                if s.store == "memory":
                    args += ["--store", "memory://"]
                s.proc = procs.start(args, s.log_path, cwd=ROOT, env=env)
            wait_ready(relay.proc, tcp_ready(relay_port), "null relay", relay.log_path)
            for s, port in ((sql, sqlite_port), (mem, memory_port)):
                assert s.proc is not None
                what = f"openline ({s.store})"
                wait_ready(s.proc, http_ready(f"http://127.0.0.1:{port}/healthz"), what, s.log_path)
            print(f"# servers up in {time.monotonic() - started:.1f}s; {a.repeat} x c={a.conversations} m={a.messages}")

            if not a.no_warmup:
                for s in servers:
                    r = run_dlload(s, procs, a, f"warmup {s.name} {s.store}", 5, 10)
                    print("# warmup", json.dumps(r), flush=True)
            for i in range(a.repeat):
                for s in servers:
                    label = f"{s.name} {s.api} {s.store} #{i + 1}"
                    r = run_dlload(s, procs, a, label, a.conversations, a.messages)
                    s.results.append(r)
                    print(json.dumps(r), flush=True)
                    assert s.proc is not None
                    if s.proc.poll() is not None:
                        raise RuntimeError(f"{label}: server exited with {s.proc.returncode}{log_tail(s.log_path)}")
            for s in servers:
                assert s.proc is not None
                s.rss_kb = rss_kb(s.proc.pid)

            print()
            when = time.strftime("%Y-%m-%d %H:%M")
            print(f"# {when}, {os.cpu_count()} cores, poll mode, c={a.conversations} m={a.messages}, ", end="")
            print(f"median of {a.repeat} runs; RSS after the load")
            print(table(servers))
            print()
            for line in ratios(relay, [sql, mem]):
                print(line)
            for s in servers:
                tail = log_tail(s.log_path)
                if tail:
                    print(f"\n# {s.name} {s.store} logged:{tail}")
            print(f"\n# total {time.monotonic() - started:.0f}s")
            return 1 if any(r["errors"] for s in servers for r in s.results) else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not interrupt the cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.kill_all()


if __name__ == "__main__":
    sys.exit(main())
