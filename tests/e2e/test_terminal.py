"""``streamer stream``: the terminal client against a real server process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any


def run_client(server: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer", "stream", *args,
                           "--url", server.base_url], capture_output=True, text=True,
                          timeout=timeout)


def test_prints_the_answer_as_plain_text(server_process: Any) -> None:
    done = run_client(server_process, "Hello **bold** and `code` &amp; more.",
                      "--provider", "echo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello bold and code & more."
    assert "[stop," in done.stderr


def test_error_event_exits_non_zero_with_its_code(server_process: Any) -> None:
    done = run_client(server_process, "hi", "--provider", "nonexistent")
    assert done.returncode == 1
    assert "forbidden" in done.stderr  # the policy allows no such provider


def test_ctrl_c_sends_stop_and_keeps_the_partial_answer(server_process: Any) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 8 for i in range(100))
    process = subprocess.Popen(
        [sys.executable, "-m", "streamer", "stream", text, "--provider", "echo",
         "--pacing", "fixed", "--cps", "200", "--url", server_process.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()  # the first paragraph is out: the answer has started
    assert first.startswith("Paragraph 0:")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == 0, err
    assert "[cancelled," in err
    assert len(first + out) < len(text)
