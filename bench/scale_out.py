"""Scale-out on Redis: 1, 2 and 3 openline instances on one redis-server, driven together by dlload.

    python bench/scale_out.py [--instances 1,2,3] [-c 24] [--mode ws|poll] [--rounds 3]

For each count of instances: a fresh key prefix, the instances (`--store redis://`), and one dlload per
instance, run at once, the conversations shared out between them. It prints, per count (median of the rounds):
round trips/s, the instances' CPU per round trip (all of them together), Redis's CPU per round trip, the Redis
commands per round trip (from INFO commandstats, by command), and what one Redis node would carry if Redis's
CPU were the limit; its last line is the same as JSON. Redis runs with `appendonly yes`, `appendfsync everysec`
(the setting the README advises).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    BENCH,
    PY,
    ROOT,
    Processes,
    free_ports,
    http_ready,
    openline_serve,
    start_echobot,
    tcp_ready,
    wait_ready,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def redis_info(cli: str, port: int, section: str) -> dict[str, str]:
    out = subprocess.run([cli, "-p", str(port), "info", section], capture_output=True, text=True, check=True).stdout
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))


def command_counts(cli: str, port: int) -> dict[str, int]:
    """Calls per command so far (INFO commandstats), and under "usec" the µs spent running them all."""
    counts = {"usec": 0}
    for name, value in redis_info(cli, port, "commandstats").items():
        stats = dict(item.split("=") for item in value.split(","))
        counts[name.removeprefix("cmdstat_")] = int(stats["calls"])
        if name != "cmdstat_info":
            counts["usec"] += int(stats["usec"])
    return counts


def one_round(
    a: argparse.Namespace, procs: Processes, tmp: Path, bot_url: str, redis_port: int, cli: str, n: int
) -> dict[str, Any]:
    """n instances on a fresh prefix, one dlload each at once; the round's figures."""
    secret = "s" + secrets.token_urlsafe(24)
    store = f"redis://127.0.0.1:{redis_port}/0?prefix=bench-{uuid.uuid4().hex[:8]}"
    ports = free_ports(n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    instances = []
    for i, port in enumerate(ports):
        data = tmp / f"data-{n}-{i}-{port}"
        log = tmp / f"openline-{port}.log"
        instances.append(
            procs.start(openline_serve(port, bot_url, secret, data, "--store", store), log, cwd=ROOT, env=env)
        )
    for proc, port in zip(instances, ports, strict=True):
        wait_ready(proc, http_ready(f"http://127.0.0.1:{port}/healthz"), "openline", tmp / f"openline-{port}.log")
    redis_pid = int(redis_info(cli, redis_port, "server")["process_id"])
    per = max(1, a.conversations // n)
    messages = max(10, a.round_trips // (per * n))
    cpu0 = [cpu_seconds(p.pid) for p in instances]
    redis0 = cpu_seconds(redis_pid)
    commands0 = command_counts(cli, redis_port)
    started = time.monotonic()
    loads = [
        subprocess.Popen(
            [
                *(PY, str(BENCH / "dlload.py"), "--base", f"http://127.0.0.1:{port}/v3/directline"),
                *("--secret", secret, "--mode", a.mode, "-c", str(per), "-m", str(messages)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=BENCH,
        )
        for port in ports
    ]
    results = []
    for load in loads:
        out, err = load.communicate(timeout=600)
        if load.returncode != 0:
            raise RuntimeError(f"dlload exited {load.returncode}: {err.decode()[-500:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    wall = time.monotonic() - started
    cpu = sum(cpu_seconds(p.pid) for p in instances) - sum(cpu0)
    redis_cpu = cpu_seconds(redis_pid) - redis0
    commands1 = command_counts(cli, redis_port)
    for proc in instances:
        proc.terminate()
        proc.wait(10)
    round_trips = sum(r["round_trips"] for r in results)
    by_command = {k: (v - commands0.get(k, 0)) / round_trips for k, v in commands1.items() if k not in ("info", "usec")}
    running_us = (commands1["usec"] - commands0["usec"]) / round_trips
    return {
        "instances": n,
        "round_trips": round_trips,
        "rt_per_s": round_trips / wall,
        "cpu_us_per_rt": cpu / round_trips * 1e6,
        "redis_cpu_us_per_rt": redis_cpu / round_trips * 1e6,
        "redis_running_us_per_rt": running_us,
        "redis_commands_per_rt": sum(v for v in by_command.values() if v > 0),
        "by_command": {k: round(v, 2) for k, v in sorted(by_command.items(), key=lambda kv: -kv[1]) if v >= 0.05},
        "errors": sum(r.get("errors", 0) for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--instances", default="1,2,3", help="counts of instances to measure (default 1,2,3)")
    p.add_argument("-c", "--conversations", type=int, default=24, help="conversations in all (default 24)")
    p.add_argument("--round-trips", type=int, default=3000, help="round trips per run, about (default 3000)")
    p.add_argument("--mode", choices=("ws", "poll"), default="ws", help="3.0 WebSocket or 3.0 polling")
    p.add_argument("--rounds", type=int, default=3, help="runs per count; the median is printed (default 3)")
    a = p.parse_args(argv)
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        print("redis-server and redis-cli are needed (Debian: apt-get install redis-server)", file=sys.stderr)
        return 2
    counts = [int(x) for x in a.instances.split(",")]
    procs = Processes()
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    try:
        with tempfile.TemporaryDirectory(prefix="openline-scale-") as tmp_name:
            tmp = Path(tmp_name)
            bot_port, redis_port = free_ports(2)
            redis_args = [server, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", ""]
            redis_args += ["--appendonly", "yes", "--appendfsync", "everysec"]
            redis = procs.start(redis_args, tmp / "redis.log")
            wait_ready(redis, tcp_ready(redis_port), "redis-server", tmp / "redis.log")
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
            start_echobot(procs, bot_port, tmp / "bot.log", env)
            bot_url = f"http://127.0.0.1:{bot_port}/api/messages"
            for _ in range(a.rounds):
                for n in counts:  # alternating, so drift on a shared machine touches every count alike
                    rows[n].append(one_round(a, procs, tmp, bot_url, redis_port, cli, n))
    finally:
        procs.kill_all()
    print(f"openline on one Redis, 3.0 {a.mode}, {a.conversations} conversations, median of {a.rounds} runs")
    print(
        f"{'instances':>9} {'rt/s':>8} {'CPU µs/rt':>10} {'Redis µs/rt':>12} {'running':>8} {'cmds/rt':>8}"
        f" {'one node rt/s':>14}"
    )
    summary = []
    for n in counts:
        med = {
            k: statistics.median(r[k] for r in rows[n])
            for k in (
                "rt_per_s",
                "cpu_us_per_rt",
                "redis_cpu_us_per_rt",
                "redis_running_us_per_rt",
                "redis_commands_per_rt",
            )
        }
        node = 1e6 / med["redis_cpu_us_per_rt"] if med["redis_cpu_us_per_rt"] else float("nan")
        print(
            f"{n:>9} {med['rt_per_s']:>8.0f} {med['cpu_us_per_rt']:>10.0f} {med['redis_cpu_us_per_rt']:>12.1f}"
            f" {med['redis_running_us_per_rt']:>8.1f} {med['redis_commands_per_rt']:>8.1f} {node:>14.0f}"
        )
        summary.append({"instances": n, **med, "redis_node_rt_per_s": node, "by_command": rows[n][-1]["by_command"]})
    print("Redis commands per round trip, by command (last run of each count):")
    for s in summary:
        print(f"  {s['instances']} instance(s): {json.dumps(s['by_command'])}")
    errors = sum(r["errors"] for rs in rows.values() for r in rs)
    print(json.dumps({"errors": errors, "rows": summary}))  # last line: the figures, for scripts
    return 0


if __name__ == "__main__":
    sys.exit(main())
