"""Shared fixtures: a configuration for tests, an in-process registry, a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import trio

from streamer.config import Config, load_config, replace
from streamer.server import serve


def make_config(**changes: Any) -> Config:
    """Defaults (no file, no environment), port 0, plus dotted overrides."""
    base = {"server.port": 0, "server.gc_gen0_threshold": 0, "pacing.frame_interval_ms": 0.0,
            "persistence.database_path": ":memory:",
            "policy.providers": ("local", "echo", "openai", "anthropic")}
    return replace(load_config(env={}), **{**base, **changes})


@dataclass
class LiveServer:
    base_url: str
    config: Config

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[4:]


@pytest.fixture
async def live_server(nursery: trio.Nursery, request: pytest.FixtureRequest
                      ) -> AsyncIterator[LiveServer]:
    """The real server (hypercorn + quart-trio) on 127.0.0.1, a free port."""
    marker = request.node.get_closest_marker("config")
    config = make_config(**(marker.kwargs if marker else {}))
    stop = trio.Event()
    binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
    yield LiveServer(binds[0], config)
    stop.set()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "config(**changes): dotted config overrides for live_server")


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into its events' JSON (with ``_id`` = the ``id:`` line)."""
    events = []
    for raw in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in raw.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.lstrip(" ")
        if "data" in fields:
            ev = json.loads(fields["data"])
            if "id" in fields:
                ev["_id"] = fields["id"]
            events.append(ev)
    return events


@dataclass
class ServerProcess:
    base_url: str
    process: Any


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``streamer serve --port 0`` as a real child process (for tests that cannot share the
    Trio loop, such as Playwright's sync API); stopped with SIGTERM (a graceful drain)."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
           "STREAMER_PERSISTENCE_DATABASE_PATH": str(tmp_path_factory.mktemp("db") / "s.db"),
           "STREAMER_POLICY_PROVIDERS": "local,echo,openai,anthropic",
           "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))}
    process = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    url = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = re.search(r"serving on (http://\S+) ", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        raise RuntimeError("server did not start:\n" + "".join(lines))
    import threading

    # keep reading its output, or a full pipe would block the server's logging
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    yield ServerProcess(url, process)
    process.terminate()
    try:
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
