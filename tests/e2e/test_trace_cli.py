"""``streamer trace STREAM_ID`` against a real server process that asks for an API key: an
answer stopped with Ctrl-C (SIGINT to ``streamer stream``), then its trace printed one line
per entry (ms, lane, event, detail) with the cause marked, plain into a pipe; ``--json`` is
the endpoint's answer; the token from ``--token`` or ``STREAMER_TOKEN``; a refusal and an
unreachable server each have their exit status; on a terminal the causes are in colour.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest

from streamer.clients.terminal.options import EXIT_ERROR, EXIT_LOST, EXIT_STOPPED
from streamer.clients.trace import print_trace
from tests.e2e.test_browser_auth import ALICE, BOB, api_key_auth  # noqa: F401 - autouse
from tests.e2e.test_terminal import LONG, get_json

STREAMER = [sys.executable, "-m", "streamer"]
#: one entry's line: its time in ms, its lane, its event, its detail
LINE = re.compile(r"\s*(\d+\.\d{3}) ms  (generation|provider call|subscription c_\S+|heartbeat)"
                  r"\s+(\w+)(?:\s+(.*))?")


def env_without_token(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "STREAMER_TOKEN"}, **extra}


@pytest.fixture(scope="module")
def stopped_stream(server_process: Any) -> str:
    """An answer stopped as a person stops it: Ctrl-C in ``streamer stream``; its id."""
    server = server_process
    process = subprocess.Popen(
        [*STREAMER, "stream", LONG, "--provider", "echo", "--pacing", "fixed", "--cps", "300",
         "--json", "--url", server.base_url], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env_without_token(STREAMER_TOKEN=ALICE))
    assert process.stdout is not None
    try:
        stream_id, chunks = None, 0
        for line in process.stdout:
            event = json.loads(line)
            stream_id = event.get("stream_id") or stream_id
            chunks += event["type"] == "chunk"
            if chunks == 3:
                break
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_STOPPED and stream_id is not None
    return stream_id


def trace(server: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMER, "trace", *args, "--url", server.base_url],
                          capture_output=True, text=True, timeout=30,
                          env=env_without_token(**env))


def test_streamer_trace_prints_the_trace_of_a_stopped_stream(server_process: Any,
                                                             stopped_stream: str) -> None:
    stream_id = stopped_stream
    served = get_json(server_process, f"/api/streams/{stream_id}/trace")

    done = trace(server_process, stream_id, STREAMER_TOKEN=ALICE)
    assert done.returncode == 0, done.stderr
    heading, *lines = done.stdout.splitlines()
    assert heading == f"stream {stream_id} · done · echo (echo) · finish cancelled"
    assert "\x1b[" not in done.stdout  # a pipe: plain text
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    # one line per entry, in order, at the entry's time and in its scope's lane
    rows = [(float(m[1]), m[2], m[3]) for m in parsed if m]
    assert [(e["t_ms"], e["event"]) for e in served["trace"]] == [(t, ev) for t, _, ev in rows]
    lanes = {event: lane for _, lane, event in rows}
    assert lanes["queued"] == lanes["cancel_requested"] == "generation"
    assert lanes["provider_call_opened"] == lanes["provider_call_closed"] == "provider call"
    assert lanes["subscriber_joined"].startswith("subscription c_")
    # the cause is marked where the stream was cancelled and where the provider call closed
    marked = {m[3]: line for line, m in zip(lines, parsed, strict=True) if m and line.endswith(
        "◀ stop from client")}
    assert set(marked) == {"cancel_requested", "cancelled", "provider_call_closed"}
    assert "closed_by='cancel'" in marked["provider_call_closed"]
    assert "since_cancel_ms=" in marked["provider_call_closed"]

    as_json = trace(server_process, stream_id, "--json", "--token", ALICE)
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == served


def test_streamer_trace_refused_and_unreachable(server_process: Any,
                                                stopped_stream: str) -> None:
    stream_id = stopped_stream
    for args, env in (((stream_id,), {}), ((stream_id, "--token", BOB), {}),
                      (("s_nosuchstream",), {"STREAMER_TOKEN": ALICE})):
        done = trace(server_process, *args, **env)
        assert done.returncode == EXIT_ERROR and not done.stdout
        assert re.match(r"streamer: (unauthorized|forbidden|stream_not_found): ", done.stderr)
    gone = subprocess.run([*STREAMER, "trace", stream_id, "--url", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=30, env=env_without_token())
    assert gone.returncode == EXIT_LOST and "cannot reach" in gone.stderr


def test_on_a_terminal_the_causes_are_highlighted() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    print_trace({"stream_id": "s_x", "state": "done", "provider": "echo", "trace": [
        {"t_ms": 0.0, "event": "queued"},
        {"t_ms": 12.5, "event": "provider_call_closed", "closed_by": "error",
         "code": "provider_timeout"}]}, out)
    heading, plain, cause = out.getvalue().splitlines()
    assert "s_x" in heading
    assert "\x1b[" not in plain and plain.endswith("queued")
    assert cause.startswith("\x1b[1;31m") and "◀ provider_timeout" in cause
