"""Shared fixtures: a configuration for tests, an in-process registry, a real server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
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


# -- the error-payload collector (issue 14: errors tell strangers nothing) -------------------

#: what no error payload (an ``error`` event, an HTTP error body, a ``retrying`` notice, a trace
#: entry) may contain, by what it would give away
LEAKS = {
    "an exception repr": re.compile(r"\w+(Error|Exception)\("),
    "a URL": re.compile(r"https?://"),
    "a file path": re.compile(r"(?<![\w.])/(home|tmp|root|etc|usr|var|opt|srv|proc)/|\.gguf\b"
                              r"|/[\w.-]+/[\w.-]+/"),
    "an environment variable name": re.compile(
        r"\b[A-Z][A-Z0-9_]*_(KEY|TOKEN|SECRET|PATH|URL)\b|\bSTREAMER_\w+"),
}


def leaks(payload: Any) -> list[str]:
    """What ``payload`` (any JSON value) gives away: the names of :data:`LEAKS` it matches."""
    text = json.dumps(payload, ensure_ascii=False, default=str)
    return [what for what, pattern in LEAKS.items() if pattern.search(text)]


class ErrorPayloads:
    """Every error payload produced in this process, in order: ``(test id, where, payload)``.

    Collected where they leave: ``Error.to_json`` (every ``error`` event and HTTP error body),
    ``Retrying.to_json`` (``state: retrying`` notices) and ``Trace.record`` (every trace entry,
    which ``GET /api/streams/{id}/trace`` serves).
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []
        self.test = "(outside a test)"
        self.checked = 0
        self._lock = threading.Lock()

    def add(self, where: str, payload: Any) -> None:
        with self._lock:
            self.items.append((self.test, where, payload))

    def mark(self) -> int:
        return len(self.items)

    def leaked(self, since: int = 0) -> list[tuple[str, str, Any, list[str]]]:
        """The payloads collected from index ``since`` on that leak, with what they leak."""
        return [(test, where, payload, found) for test, where, payload in self.items[since:]
                if (found := leaks(payload))]

    def forget(self, since: int) -> None:
        """Drop what was collected from ``since`` on (a test that plants leaks on purpose)."""
        with self._lock:
            del self.items[since:]
            self.checked = min(self.checked, since)

    def check(self) -> None:
        """Fail with every leaking payload not checked yet."""
        found, self.checked = self.leaked(self.checked), len(self.items)
        if found:
            pytest.fail("error payloads leak server internals:\n" + "\n".join(
                f"  {test} {where}: {', '.join(what)}: {payload}"
                for test, where, payload, what in found), pytrace=False)


def logged(caplog: pytest.LogCaptureFixture, error: dict[str, Any]) -> str:
    """The server's one log line (logger ``streamer.errors``) for an error payload, found by
    its ``error_id``: where the detail the client never sees went."""
    lines = [r.getMessage() for r in caplog.records
             if r.name == "streamer.errors" and error["error_id"] in r.getMessage()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="session", autouse=True)
def error_payloads() -> Iterator[ErrorPayloads]:
    """The collector, installed for the whole session (in this process: tests that run the
    server as a child process, ``server_process``, are not covered); checked after each test
    and at the session's end."""
    from streamer.runtime.trace import Trace
    from streamer.wire.events import Error, Retrying

    collector = ErrorPayloads()
    error_to_json, retrying_to_json, record = Error.to_json, Retrying.to_json, Trace.record

    def error_json(self: Error) -> dict[str, Any]:
        out = error_to_json(self)
        collector.add("error", out)
        return out

    def retrying_json(self: Retrying) -> dict[str, Any]:
        out = retrying_to_json(self)
        collector.add("retrying", out)
        return out

    def trace_record(self: Trace, name: str, **detail: Any) -> None:
        collector.add("trace", {"event": name, **detail})
        record(self, name, **detail)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Error, "to_json", error_json)
        patch.setattr(Retrying, "to_json", retrying_json)
        patch.setattr(Trace, "record", trace_record)
        yield collector
        collector.test = "(after the last test)"
        collector.check()


@pytest.fixture(autouse=True)
def no_leaking_errors(error_payloads: ErrorPayloads, request: pytest.FixtureRequest
                      ) -> Iterator[None]:
    """Each test's error payloads are checked when it ends (:class:`ErrorPayloads`)."""
    error_payloads.test = request.node.nodeid
    error_payloads.check()
    yield
    error_payloads.check()
    error_payloads.test = "(between tests)"


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
    import sys

    env = {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
           "STREAMER_PERSISTENCE_DATABASE_PATH": str(tmp_path_factory.mktemp("db") / "s.db"),
           "STREAMER_POLICY_PROVIDERS": "local,echo,openai,anthropic",
           # a module's browser tests share one server and one (anonymous) identity: its
           # streams-per-minute limit would refuse a long test corpus (test_limits.py tests it)
           "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0",
           "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))}
    with serving([sys.executable, "-m", "streamer", "serve", "--port", "0"], env) as served:
        yield served


@contextmanager
def serving(command: list[str], env: dict[str, str], cwd: Path | None = None
            ) -> Iterator[ServerProcess]:
    """Run ``command`` (a server that prints ``serving on URL ``) as a child process until
    the block ends, then stop it with SIGTERM (a graceful drain; killed after 20 s)."""
    import subprocess

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, cwd=cwd)
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

    # keep reading its output, or a full pipe would block the server's logging
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        yield ServerProcess(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()


async def create_session(base_url: str, session_id: str | None = None,
                         headers: dict[str, str] | None = None) -> str:
    """``POST /api/sessions`` (only POSTs create sessions): the new session's id, the chosen
    ``session_id`` when given."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        response = await client.post("/api/sessions",
                                     json={"session_id": session_id} if session_id else None)
    assert response.status_code in (200, 201), response.text
    created: str = response.json()["session_id"]
    return created
