"""Processes for the load harness: servers pinned to a core, their CPU time and memory.

Every server's output goes to a log file (a pipe nobody reads would fill and block it), and
binds 127.0.0.1. CPU time and RSS come from ``/proc/PID/stat`` and ``/proc/PID/status``
(proc(5)), children included for CPU (the render worker processes).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_CPU, LOAD_CPU = 0, 1
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (proc(5), fields 14-15)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def rss_bytes(pid: int) -> int:
    """``VmRSS`` of ``pid`` alone, bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]


class Server:
    """A server subprocess pinned to ``cpu`` (``SERVER_CPU``); ``url`` once it listens."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, ready: str,
                 cpu: int = SERVER_CPU) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv], stdout=out,
                stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(ready, log.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{argv} did not start:\n" + log.read_text(errors="replace")[-2000:])

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def streamer_env(absolute: bool = True) -> dict[str, str]:
    """Settings for ``streamer serve`` under load: memory only, echo allowed and paced on an
    absolute schedule, the per-identity and per-address limits off (0 = no limit)."""
    return {"STREAMER_PERSISTENCE_ENABLED": "false",
            "STREAMER_POLICY_PROVIDERS": "echo",
            "STREAMER_PROVIDERS_ECHO_ABSOLUTE_SCHEDULE": "true" if absolute else "false",
            "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
            "STREAMER_SERVER_MAX_MESSAGE_BYTES": "200000",
            "STREAMER_LIMITS_MAX_SESSIONS_PER_IDENTITY": "0",
            "STREAMER_LIMITS_MAX_CONNECTIONS_PER_IDENTITY": "0",
            "STREAMER_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "0",
            "STREAMER_LIMITS_MAX_STREAMS_PER_IDENTITY": "0",
            "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0",
            "STREAMER_LIMITS_IDLE_CONNECTION_TIMEOUT_S": "0"}


def start_streamer(folder: Path, env: dict[str, str] | None = None, name: str = "streamer",
                   cpu: int = SERVER_CPU) -> Server:
    """``streamer serve`` with :func:`streamer_env` and ``env`` (a section's own settings),
    pinned to ``cpu``, its output in ``folder/{name}.log``."""
    return Server([sys.executable, "-m", "streamer", "serve", "--port", "0"],
                  {**streamer_env(), **(env or {})}, folder / f"{name}.log",
                  r"serving on (http://\S+) ", cpu)


def start_bare(kind: str, folder: Path) -> Server:
    """``bench/bare.py``'s ``ws`` or ``asgi`` server; ``url`` is ``ws://127.0.0.1:PORT``."""
    port = free_port()
    server = Server([sys.executable, "-m", "bench.bare", kind, str(port)], {},
                    folder / f"bare-{kind}.log", r"listening on (\d+)")
    server.url = f"ws://127.0.0.1:{port}"
    deadline = time.monotonic() + 30  # it prints before it binds: wait for the port
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"bare {kind} server never listened")
