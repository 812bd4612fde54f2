"""Echo round-trip benchmark of openline against the null relay floor and offline-directline, in one command.

    python bench/run.py [--repeat 3] [--concurrency 1,20,100] [--modes v1-poll,v3-poll,v3-ws] [--quick]

What it measures: C concurrent conversations each send messages one after another
(`dlload.py` from the shared harness); a *round trip* is one message sent and the
bot's echo of it received, by polling with the watermark or over the 3.0 stream. The
bot is `echobot.py`, a minimal connector-protocol echo bot, so nearly all the cost is
the server's. Four servers run side by side on free loopback ports:

- `nullrelay.py`, the floor: the bare Direct Line 3.0 hops in Starlette + msgspec +
  aiohttp with no auth, no persistence, no validation (a dict of lists);
- openline with its default durable SQLite store (survives `kill -9`);
- openline with `--store memory://`;
- offline-directline 1.3.1 (Node, in memory, no auth, no durability, no stream), the
  open-source peer users would otherwise pick, installed from npm into
  `bench/node_modules` by this script.

Every cell (mode x concurrency) runs each server that speaks that mode in turn,
alternating, `--repeat` times: Direct Line 1.1 polling (openline only), 3.0 polling,
and 3.0 over the WebSocket (openline only: offline-directline has no stream, and the
shared harness's null relay serves none either). Every ratio is to the null relay's
3.0 polling at the same concurrency, the one floor there is. Each result is printed as a
JSON line as it arrives; then a table per cell gives the medians of round trips/s, p50
and p99 latency and server CPU microseconds per round trip, each also as a ratio to the
null relay in the same cell, and the servers' peak resident memory (VmHWM) over the
whole run. A PNG chart (matplotlib; installed into this interpreter if missing) plots
throughput and p99 latency against concurrency for every server and mode.

The machine is shared and noisy: quote medians and ratios, not single absolute
figures; CPU per round trip is the steadiest. Every process the script starts is
killed in a `finally` (also on Ctrl-C or SIGTERM), and each dlload run has a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
STARTUP_DEADLINE = 30.0


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


def start_echobot(procs: Processes, port: int, log: Path, env: dict[str, str]) -> None:
    """`echobot.py` on `port`, ready when this returns."""
    bot = procs.start([PY, str(BENCH / "echobot.py"), "--port", str(port)], log, cwd=BENCH, env=env)
    wait_ready(bot, tcp_ready(port), "echobot.py", log)


def openline_serve(port: int, bot_url: str, secret: str, data_dir: Path, *extra: str) -> list[str]:
    """The `openline serve` command line every benchmark runs (quiet logs, no access log), with `extra` flags."""
    args = [PY, "-m", "openline", "serve", "--port", str(port), "--bot", bot_url, "--secret", secret]
    return [*args, "--data-dir", str(data_dir), "--log-level", "warning", "--no-access-log", *extra]


ROUND_TRIPS_PER_RUN = 2000  # messages per conversation = this / concurrency (at least MIN_MESSAGES)
MIN_MESSAGES = 10
MODES = {"v1-poll": ("v1", "poll"), "v3-poll": ("v3", "poll"), "v3-ws": ("v3", "ws")}


@dataclass
class Server:
    """One server under test: the process that serves it, how dlload reaches it, and its results per cell."""

    name: str
    bases: dict[str, list[str]]  # api ("v1", "v3") -> dlload's --base and credential arguments
    modes: tuple[str, ...]  # the MODES it speaks
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    results: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    peak_rss_kb: int | None = None


def openline_server(name: str, port: int, secret: str, *client: str) -> Server:
    """An openline server as dlload reaches it on both APIs with the secret (`client`: more dlload arguments)."""
    auth = ["--secret", secret, *client]
    bases = {
        "v1": ["--base", f"http://127.0.0.1:{port}/api", "--api", "v1", *auth],
        "v3": ["--base", f"http://127.0.0.1:{port}/v3/directline", *auth],
    }
    return Server(name, bases, tuple(MODES))


def run_dlload(
    server: Server, procs: Processes, a: argparse.Namespace, mode: str, c: int, m: int, label: str
) -> dict[str, Any]:
    """One dlload run against `server`; its JSON result (or a synthetic failed result on timeout or crash)."""
    assert server.proc is not None
    api, how = MODES[mode]
    args = [PY, str(BENCH / "dlload.py"), *server.bases[api], "--mode", how, "-c", str(c), "-m", str(m)]
    args += ["--pid", str(server.proc.pid), "--label", label]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=BENCH, start_new_session=True)
    procs.procs.append(p)
    try:
        out, err = p.communicate(timeout=a.run_timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return failed(label, f"dlload timed out after {a.run_timeout:.0f}s", c)
    lines = out.decode(errors="replace").strip().splitlines()
    if p.returncode != 0 or not lines:
        return failed(label, f"dlload exited {p.returncode}: {err.decode(errors='replace')[-500:]}", c)
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def failed(label: str, why: str, c: int) -> dict[str, Any]:
    empty = dict.fromkeys(("rt_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_rt"))
    return {"label": label, "conversations": c, "round_trips": 0, **empty, "errors": c, "first_error": why}


def proc_status_kb(pid: int, field: str) -> int | None:
    """A kB figure of a process from /proc/PID/status (`VmHWM`: peak resident memory; `VmRSS`: resident now)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_kb(pid: int) -> int | None:
    """VmHWM (peak resident memory) of a process in kB, from /proc."""
    return proc_status_kb(pid, "VmHWM")


def median(values: list[float | int | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def cell_figures(server: Server, cell: tuple[str, int]) -> dict[str, float | None]:
    runs = server.results.get(cell, [])
    keys = ("rt_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_rt")
    return {k: median([r[k] for r in runs]) for k in keys} | {"errors": sum(int(r["errors"]) for r in runs)}


def floor_cell(mode: str, c: int) -> tuple[str, int]:
    """The null relay's cell a mode is compared with: its 3.0 polling, the only mode it has (the shared harness's
    relay serves no stream), at the same concurrency."""
    return ("v3-poll", c)


def ratio(value: float | None, base: float | None, digits: int = 2) -> str:
    return f"{value / base:.{digits}f}x" if value and base else "-"


def table(servers: list[Server], relay: Server, mode: str, c: int) -> str:
    head = ["server", "rt/s", "x", "p50 ms", "x", "p99 ms", "x", "CPU us/rt", "x", "peak RSS MB", "x", "errors"]
    rows = [head]
    base = cell_figures(relay, floor_cell(mode, c))
    for s in servers:
        if mode not in s.modes:
            continue
        f = cell_figures(s, (mode, c))
        rows.append(
            [
                s.name,
                fmt(f["rt_per_s"]),
                ratio(f["rt_per_s"], base["rt_per_s"]),
                fmt(f["p50_ms"], 1),
                ratio(f["p50_ms"], base["p50_ms"]),
                fmt(f["p99_ms"], 1),
                ratio(f["p99_ms"], base["p99_ms"]),
                fmt(f["server_cpu_us_per_rt"]),
                ratio(f["server_cpu_us_per_rt"], base["server_cpu_us_per_rt"]),
                fmt(s.peak_rss_kb / 1024 if s.peak_rss_kb is not None else None, 1),
                ratio(s.peak_rss_kb, relay.peak_rss_kb),
                fmt(f["errors"]),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for r in rows:
        cells = [x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def chart(servers: list[Server], a: argparse.Namespace, title: str, path: Path) -> None:
    """Throughput and p99 latency against concurrency, a line per server and mode (matplotlib, Agg)."""
    try:
        import matplotlib
    except ImportError:
        print("# installing matplotlib for the chart (pip)", flush=True)
        subprocess.run([PY, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = plt.get_cmap("tab10").colors
    for index, s in enumerate(servers):  # a colour per server, a line style per mode
        for mode in a.modes:
            if mode not in s.modes:
                continue
            xs = [c for c in a.concurrency if s.results.get((mode, c))]
            figures = [cell_figures(s, (mode, c)) for c in xs]
            style = {"v1-poll": ":", "v3-poll": "--", "v3-ws": "-"}[mode]
            label = f"{s.name} {mode}"
            colour = colours[index % len(colours)]
            left.plot(xs, [f["rt_per_s"] for f in figures], style, color=colour, marker="o", label=label)
            right.plot(xs, [f["p99_ms"] for f in figures], style, color=colour, marker="o", label=label)
    for axes, what in ((left, "round trips/s"), (right, "p99 latency, ms")):
        axes.set_xscale("log")
        axes.set_xticks(a.concurrency, [str(c) for c in a.concurrency])
        axes.set_xlabel("concurrent conversations")
        axes.set_ylabel(what)
        axes.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"# chart: {path}")


def node_peer(procs: Processes) -> str | None:
    """The node executable, with bench/node_modules installed (npm ci when stale); None without Node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    installed = BENCH / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (BENCH / "package-lock.json").stat().st_mtime:
        print("# installing offline-directline from npm (npm ci in bench/)", flush=True)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True)
    return node


def csv_ints(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def csv_modes(text: str) -> list[str]:
    modes = [x.strip() for x in text.split(",") if x.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown modes {sorted(unknown)}: use {', '.join(MODES)}")
    return modes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--concurrency", type=csv_ints, default=[1, 20, 100], help="levels (default 1,20,100)")
    p.add_argument("--modes", type=csv_modes, default=list(MODES), help="of v1-poll,v3-poll,v3-ws (default all)")
    p.add_argument("--repeat", type=int, default=3, help="runs per server and cell; tables show medians (default 3)")
    p.add_argument("--round-trips", type=int, default=ROUND_TRIPS_PER_RUN, help="per run (default 2000)")
    p.add_argument("--run-timeout", type=float, default=120.0, help="seconds before a dlload run is killed")
    p.add_argument("--quick", action="store_true", help="1 repeat, 400 round trips a run: a smoke test")
    p.add_argument("--no-peer", action="store_true", help="leave offline-directline out")
    p.add_argument("--chart", type=Path, default=BENCH / "results" / "chart.png", help="where the PNG goes")
    a = p.parse_args(argv)
    if a.quick:
        a.repeat, a.round_trips = 1, 400

    # SIGINT and SIGTERM end the run as KeyboardInterrupt, so that the finally below kills the children
    # (SIGINT explicitly too: a shell starting this in the background may have set it to be ignored).
    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    bot_port, relay_port, sqlite_port, power_port, memory_port, peer_port = free_ports(6)
    bot_url = f"http://127.0.0.1:{bot_port}/api/messages"
    secret = "b" + secrets.token_urlsafe(32)  # never a leading "-": it is passed as a command-line value
    relay = Server("nullrelay", {"v3": ["--base", f"http://127.0.0.1:{relay_port}/v3/directline"]}, ("v3-poll",))
    # (server, port, extra serve arguments); the token clients' row drives the SQLite server with tokens
    openlines = [
        (openline_server("openline sqlite", sqlite_port, secret), sqlite_port, []),
        (openline_server("openline sqlite power", power_port, secret), power_port, ["--durability", "power"]),
        (openline_server("openline memory", memory_port, secret), memory_port, ["--store", "memory://"]),
    ]
    token_clients = openline_server("openline sqlite, tokens", sqlite_port, secret, "--use-token")
    servers = [relay, *(s for s, _, _ in openlines[:1]), token_clients, *(s for s, _, _ in openlines[1:])]
    procs = Processes()
    started = time.monotonic()
    try:
        node = None if a.no_peer else node_peer(procs)
        if node is not None:
            servers.append(
                Server(
                    "offline-directline", {"v3": ["--base", f"http://127.0.0.1:{peer_port}/directline"]}, ("v3-poll",)
                )
            )
        elif not a.no_peer:
            print("# Node.js and npm are not installed: offline-directline is left out", flush=True)
        with tempfile.TemporaryDirectory(prefix="openline-bench-") as tmp_name:
            tmp = Path(tmp_name)
            start_echobot(procs, bot_port, tmp / "echobot.log", env)

            relay.log_path = tmp / "nullrelay.log"
            relay_env = {**env, "BOT_URL": bot_url, "SELF_URL": f"http://127.0.0.1:{relay_port}"}
            uvicorn = [PY, "-m", "uvicorn", "nullrelay:app", "--port", str(relay_port), "--no-access-log"]
            uvicorn += ["--log-level", "warning"]
            relay.proc = procs.start(uvicorn, relay.log_path, cwd=BENCH, env=relay_env)
            for s, port, extra in openlines:
                data_dir = tmp / f"data-{port}"
                data_dir.mkdir()
                s.log_path = tmp / f"openline-{port}.log"
                s.proc = procs.start(
                    openline_serve(port, bot_url, secret, data_dir, *extra), s.log_path, cwd=ROOT, env=env
                )
            token_clients.proc, token_clients.log_path = openlines[0][0].proc, openlines[0][0].log_path
            if node is not None:
                peer = servers[-1]
                peer.log_path = tmp / "offline-directline.log"
                peer.proc = procs.start(
                    [node, "offline_directline.js", str(peer_port), bot_url], peer.log_path, cwd=BENCH, env=env
                )
                wait_ready(peer.proc, tcp_ready(peer_port), "offline-directline", peer.log_path)
            wait_ready(relay.proc, tcp_ready(relay_port), "null relay", relay.log_path)
            for s, port, _ in openlines:
                assert s.proc is not None
                wait_ready(s.proc, http_ready(f"http://127.0.0.1:{port}/healthz"), s.name, s.log_path)
            print(
                f"# servers up in {time.monotonic() - started:.1f}s; {a.repeat} repeats of "
                f"{a.round_trips} round trips per run, modes {','.join(a.modes)}, c={a.concurrency}",
                flush=True,
            )

            for s in servers:  # warm-up, unreported
                for mode in s.modes:
                    if mode in a.modes:
                        run_dlload(s, procs, a, mode, 5, 10, f"warmup {s.name} {mode}")
            for mode in a.modes:
                for c in a.concurrency:
                    m = max(MIN_MESSAGES, a.round_trips // c)
                    for i in range(a.repeat):
                        for s in servers:
                            if mode not in s.modes:
                                continue
                            label = f"{s.name} {mode} c={c} #{i + 1}"
                            r = run_dlload(s, procs, a, mode, c, m, label)
                            s.results.setdefault((mode, c), []).append(r)
                            print(json.dumps(r), flush=True)
                            assert s.proc is not None
                            if s.proc.poll() is not None:
                                raise RuntimeError(
                                    f"{label}: server exited with {s.proc.returncode}{log_tail(s.log_path)}"
                                )
            for s in servers:
                assert s.proc is not None
                s.peak_rss_kb = peak_rss_kb(s.proc.pid)

            when = time.strftime("%Y-%m-%d %H:%M")
            machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            title = f"{when}, {machine}; echo round trips on loopback, median of {a.repeat} runs"
            print(f"\n# {title}")
            print("# x: as a multiple of the null relay's 3.0 polling at the same concurrency")
            for mode in a.modes:
                for c in a.concurrency:
                    print(f"\n## {mode}, {c} concurrent conversation{'s' if c > 1 else ''}")
                    print(table(servers, relay, mode, c))
            for s in servers:
                tail = log_tail(s.log_path)
                if tail and s.name != "offline-directline" and s is not token_clients:
                    print(f"\n# {s.name} logged:{tail}")
            chart(servers, a, title, a.chart)
            print(f"\n# total {time.monotonic() - started:.0f}s")
            return 1 if any(r["errors"] for s in servers for runs in s.results.values() for r in runs) else 0
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
