"""The browser package's pure parts, unit-tested in Node with its built-in test runner:
``node --test tests/node/unit/`` (the ops mirror, the document mirror, the SSE parser, the
emitter, the reconnect backoff, the frame scheduler on a fake clock, the follow rule, and the
client's connect timeout and REST fallback on fake sockets)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
UNIT = ROOT / "tests" / "node" / "unit"


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node (`make test` installs it)")
    files = sorted(UNIT.glob("*.test.mjs"))
    assert len(files) >= 8, files
    result = subprocess.run([node, "--test", str(UNIT) + "/"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "# fail 0" in summary, summary
