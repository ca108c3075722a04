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

ROOT = Path(__file__).resolve().parents[2]

MEASURES = ["ceiling: bare trio-websocket", "ceiling: bare ASGI on hypercorn",
            "single stream, pacing off", "single stream / bare trio-websocket",
            "single stream / bare hypercorn", "load client CPU: minimal (bench/wsclient.py)",
            "load client CPU: trio-websocket", "memory per finished answer",
            "idle connections at 20", "soak: RSS growth after warm-up",
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
    assert [(row["streams"], row["pacing"]) for row in data["fanout"]] == [(1, "off"), (5, "off")]
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
    assert table.count("| off |") == 2 and printed.count("| off |") == 2
