"""``python -m bench --quick`` (issue 16's load harness) with tiny counts: a real server, the
two bare ceiling servers and the load process run, and the printed table, ``load.json`` and
``load.md`` hold every row, every fan-out answer complete, the soak's answers of every case
without an error, the slow clients given up by the server. No performance figure is asserted
(the machine is shared): only that the harness works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MEASURES = ["ceiling: bare trio-websocket", "ceiling: bare ASGI on hypercorn",
            "single stream, pacing off", "single stream / bare trio-websocket",
            "single stream / bare hypercorn", "load client CPU: minimal (bench/wsclient.py)",
            "load client CPU: trio-websocket", "memory per finished answer",
            "idle connections at 20", "idle connections at 20, bare ASGI on hypercorn",
            "idle connections at 20, bare quart-trio", "soak: RSS growth after warm-up",
            "soak: open fds growth after warm-up", "soak: errors (not injected)",
            "slow clients: others' p99 lag, with / without", "slow clients: server memory each"]
#: rows whose figure may be 0 or below (a growth, a count of errors)
SIGNED = {"soak: RSS growth after warm-up", "soak: open fds growth after warm-up",
          "soak: errors (not injected)"}


def test_quick_run_prints_and_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--streams", "1,5", "--seconds", "1.5",
         "--reps", "1", "--tokens", "500", "--idle", "20", "--answers", "1",
         "--answer-chars", "3000", "--limit", "20", "--soak-seconds", "4",
         "--soak-workers", "5", "--slow", "2", "--slow-streams", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads((out / "load.json").read_text())
    assert [row["measure"] for row in data["measures"]] == MEASURES
    assert [(row["streams"], row["pacing"], row["arrival"]) for row in data["fanout"]] == [
        (1, "off", "burst"), (5, "off", "burst"),
        (1, "off", "spread 1 s"), (5, "off", "spread 1 s")]
    assert all(row["all_complete"] and row["complete"] == row["streams"]
               for row in data["fanout"]), data["fanout"]
    for row in data["measures"]:
        assert isinstance(row["median"], (int, float)), row
        assert row["median"] > 0 or row["measure"] in SIGNED, row
    rows = {row["measure"]: row for row in data["measures"]}
    soak = rows["soak: RSS growth after warm-up"]["detail"]
    assert soak["errors_total"] == 0, soak["error_examples"]
    assert set(soak["answers"]) == {"read", "pause", "cut", "stop", "paced"}, soak
    slow = rows["slow clients: others' p99 lag, with / without"]["detail"]
    assert slow["others_all_complete"] and slow["closed_by_server"] >= 1, slow
    assert len(data["load_average"]) == 3 and "load average" in data["header"]
    table = (out / "load.md").read_text()
    printed = run.stdout
    for name in MEASURES:
        assert f"| {name} |" in table and f"| {name} |" in printed
    assert table.count("| off |") == 4 and printed.count("| off |") == 4


def test_engine_rows_run_on_memory_and_redis_across_processes_and_behind_nginx(
        tmp_path: Path) -> None:
    """``--engines memory,redis --proxy`` (``bench/cluster.py``) with tiny counts: a real
    redis-server, three servers and two real nginx: the single-stream rows and their ratio,
    the fan-out on both engines with ratio rows, the fan-out joined on a second process (its
    mirror), and through nginx to one process and to two, each WebSocket counted where nginx
    sent it: every answer complete everywhere."""
    for tool in ("/usr/bin/redis-server", "/usr/sbin/nginx"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is missing (scripts/setup.sh --test installs it)")
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "engines", "--engines",
         "memory,redis", "--proxy", "--streams", "1,4", "--proxy-streams", "4", "--seconds",
         "1.5", "--reps", "1", "--tokens", "300", "--limit", "20", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads((out / "load.json").read_text())
    assert data["measures"] == [] and data["fanout"] == []
    engines = data["engines"]
    assert [row["measure"] for row in engines["measures"]] == [
        "single stream, pacing off, memory engine", "single stream, pacing off, redis engine",
        "single stream: redis / memory"]
    assert all(row["median"] > 0 for row in engines["measures"]), engines["measures"]
    setups = [(row["setup"], row["streams"]) for row in engines["fanout"]]
    assert setups == [(name, n) for n in (1, 4) for name in ("memory", "redis",
                                                                "redis / memory")]
    assert [(row["setup"], row["streams"]) for row in engines["across"]] == [
        (side, n) for n in (1, 4) for side in ("A: starts each answer", "B: joins it (mirror)")]
    assert [row["setup"] for row in engines["proxy"]] == [
        "nginx, 1 process", "nginx, 2 processes", "2 processes / 1"]
    measured = [row for key in ("fanout", "across", "proxy") for row in engines[key]
                if "/" not in row["setup"]]
    for row in measured:
        assert row["all_complete"] and row["complete"] == row["streams"], row
        assert row["tokens_per_s"] > 0 and row["lag_p99_ms"] >= row["lag_p50_ms"] > 0, row
    one, two = engines["proxy"][:2]
    assert one["websockets_served_by"] == {"A": 4}, one
    # round robin, no stickiness: both processes served the answers' WebSockets
    assert set(two["websockets_served_by"]) == {"A", "B"}, two
    assert sum(two["websockets_served_by"].values()) == 4, two
    table = (out / "load.md").read_text()
    for title in ("Single stream, by engine", "Fan-out, by engine",
                  "Fan-out across processes", "Behind nginx: one process vs two"):
        assert f"### {title}" in table
    assert table.count("| B: joins it (mirror) |") == 2 == run.stdout.count(
        "| B: joins it (mirror) |")
