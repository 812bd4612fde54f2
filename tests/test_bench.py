"""The benchmark's commands still run end to end (tiny loads; no figure is checked: figures belong to bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], cwd=BENCH.parent, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_idle_streams_reports_its_figures() -> None:
    done = _run(
        str(BENCH / "idle_streams.py"), "--streams", "40", "--idle", "1.5", "--keepalive", "0.5", "--probes", "2"
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["streams"] == 40
    assert figures["keepalives_per_stream_per_interval"] > 0
    assert figures["pings_per_stream"] == 0
    assert figures["kb_per_stream"] > 0


def test_history_reports_its_figures() -> None:
    args = ["--conversations", "300", "--repeat", "1", "--round-trips", "100", "--modes", "v3-ws"]
    done = _run(str(BENCH / "history.py"), *args)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert figures["large_conversations"] == 300 and figures["large_bytes_per_conversation"] > 0
    assert figures["v3-ws_ratio"] > 0


def test_run_quick_drives_every_openline_server(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    args = ["--quick", "--concurrency", "2", "--modes", "v3-ws", "--no-peer", "--round-trips", "20"]
    done = _run(str(BENCH / "run.py"), *args, "--chart", str(chart))
    for server in ("openline sqlite ", "openline sqlite, tokens", "openline sqlite power", "openline memory"):
        assert server in done.stdout
    assert chart.stat().st_size > 0


def test_scale_out_reports_its_figures() -> None:
    args = ["--instances", "1,2", "--rounds", "1", "--round-trips", "40", "-c", "2"]
    done = _run(str(BENCH / "scale_out.py"), *args)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert [row["instances"] for row in figures["rows"]] == [1, 2]
    assert all(row["rt_per_s"] > 0 and row["redis_commands_per_rt"] > 0 for row in figures["rows"])


def test_soak_reports_its_figures() -> None:
    """A few seconds of every kind of user; the slope of so short a run means nothing, so any is allowed."""
    args = ["--minutes", "0.15", "--conversations", "10", "--think", "0.3", "--sample", "1", "--max-slope", "100000"]
    done = _run(str(BENCH / "soak.py"), *args)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert all(row["round_trips"] > 0 for row in figures["kinds"].values()), figures["kinds"]
    assert figures["rss_mb"][0] > 0 and figures["fds"][0] > 0
