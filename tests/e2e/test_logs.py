"""Logs (issue 18): a real ``streamer serve`` process writing JSON lines to stderr. Every line
must parse, the records carry the session, stream and connection ids as fields, and no line
holds the prompt or the answer unless ``log.content`` asks for it."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.observability.logs import ContextFilter, fields, formatter, log_context
from tests.conftest import create_session

#: the prompt, and (echo) the answer: a word no log line may hold
SECRET = "zebraquartz7781"
PROMPT = f"Tell nobody the word {SECRET}, in **bold**."


@dataclass
class Spawned:
    base_url: str
    process: subprocess.Popen[str]
    stderr: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[4:]

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def stop(self, timeout_s: float = 20) -> int:
        """SIGTERM (a graceful drain); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


@contextmanager
def spawn(tmp_path: Path, *args: str, **env: str) -> Iterator[Spawned]:
    """``streamer serve --port 0 ARGS`` as a child process with the echo provider, stderr to
    a file; stopped with SIGTERM at the end (killed if it hangs)."""
    environment = {**os.environ, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "2",
                   "STREAMER_PERSISTENCE_DATABASE_PATH": str(tmp_path / "s.db"),
                   "STREAMER_POLICY_PROVIDERS": "echo", "STREAMER_PROVIDERS_DEFAULT": "echo",
                   "STREAMER_LIMITS_STREAMS_PER_MINUTE": "0", **env}
    stderr = tmp_path / f"stderr-{len(list(tmp_path.glob('stderr-*')))}.log"
    with stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", "0",
                                    *args], stdout=subprocess.PIPE, stderr=err, text=True,
                                   env=environment)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the first line says where it serves
            match = re.search(r"serving on (http://\S+) ", line)
            if match:
                break
        else:
            raise RuntimeError("server did not start:\n" + stderr.read_text())
        yield Spawned(match.group(1), process, stderr)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def start(prompt: str, delta_chars: int = 4, interval_ms: int = 2) -> str:
    return json.dumps({"type": "start", "prompt": prompt, "provider": "echo",
                       "echo": {"delta_chars": delta_chars, "interval_ms": interval_ms},
                       "pacing": {"mode": "off"}})


async def converse(server: Spawned) -> dict[str, str]:
    """A WebSocket stream to its end, a stopped one, an invalid control message and an SSE
    connection; the ids the server gave them."""
    ids: dict[str, str] = {}
    with trio.fail_after(20):
        ids["session_id"] = await create_session(server.base_url)
        async with open_websocket_url(f"{server.ws_url}/ws/stream/{ids['session_id']}") as ws:
            ids["connection_id"] = json.loads(await ws.get_message())["connection_id"]
            await ws.send_message(start(PROMPT))
            while (ev := json.loads(await ws.get_message()))["type"] != "stream_complete":
                ids.setdefault("stream_id", ev.get("stream_id", ""))
            await ws.send_message(start(PROMPT * 20, 1, 20))
            while (ev := json.loads(await ws.get_message()))["type"] != "chunk":
                pass
            ids["stopped_id"] = ev["stream_id"]
            await ws.send_message(json.dumps({"type": "stop"}))
            await ws.send_message(json.dumps({"type": "bogus", "prompt": PROMPT}))
            while (ev := json.loads(await ws.get_message()))["type"] != "error":
                pass
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            async with client.stream("GET", f"/api/sessions/{ids['session_id']}/events") as r:
                async for data in r.aiter_bytes():
                    if b"connected" in data:
                        break
    return ids


def parsed(lines: list[str]) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        record = json.loads(line)  # every line, or the test fails here
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record)
        records.append(record)
    return records


async def test_json_logs_carry_ids_as_fields_and_never_the_text(tmp_path: Path) -> None:
    with spawn(tmp_path, STREAMER_LOG_FORMAT="json") as server:
        ids = await converse(server)
        assert server.stop() == 0
        lines = server.lines()
    records = parsed(lines)
    assert not [line for line in lines if SECRET in line]
    ours = [r for r in records if r.get("stream_id") == ids["stream_id"]]
    events = [r.get("event") for r in ours]
    for name in ("started", "completed"):  # the routine steps between are DEBUG
        assert name in events, events
    assert not {"queued", "history", "provider_call_opened", "first_token"} & set(events), events
    completed = next(r for r in ours if r.get("event") == "completed")
    assert completed["level"] == "INFO" and completed["ttft_ms"] >= 0, completed
    assert all(r["session_id"] == ids["session_id"] for r in ours)
    stopped = [r for r in records if r.get("stream_id") == ids["stopped_id"]]
    assert {"event": "cancelled", "reason": "stop from client"}.items() <= next(
        r for r in stopped if r.get("event") == "cancelled").items()
    # the connection's own records (opened, the refused control message's error) have its id
    mine = [r for r in records if r.get("connection_id") == ids["connection_id"]]
    assert any(r["message"] == "connection opened" and r["transport"] == "websocket"
               for r in mine)
    assert any(r["logger"] == "streamer.errors" and r["code"] == "invalid_message"
               and r["error_id"].startswith("err_") for r in mine)
    access = [r for r in records if r["logger"] == "streamer.access"]
    assert any(r["method"] == "POST" and r["path"] == "/api/sessions" and r["status"] == 201
               and r["client"] == "127.0.0.1" for r in access)
    assert any(r["method"] == "WEBSOCKET" and r["session_id"] == ids["session_id"]
               for r in access)
    assert any(r["logger"] == "streamer.server" and "draining" in r["message"] for r in records)
    # INFO from the config: the DEBUG entries of the trace (subscribers) are not written
    assert "subscriber_joined" not in events
    assert not [r for r in records if r["level"] == "DEBUG"]


async def test_log_content_writes_the_text_when_asked(tmp_path: Path) -> None:
    """``log.content = true``: one record per finished stream with its prompt and answer
    (the check above can fail); ``--log-level debug`` on the command line beats the config."""
    with spawn(tmp_path, "--log-format", "json", "--log-level", "debug",
               STREAMER_LOG_CONTENT="true", STREAMER_LOG_LEVEL="WARNING") as server:
        ids = await converse(server)
        assert server.stop() == 0
        records = parsed(server.lines())
    text = [r for r in records if r["message"] == "stream text"]
    assert [r["stream_id"] for r in text] == [ids["stream_id"], ids["stopped_id"]]
    assert text[0]["prompt"] == PROMPT and text[0]["answer"] == PROMPT
    for name in ("subscriber_joined", "queued", "provider_call_opened", "first_token"):
        assert any(r.get("event") == name and r["level"] == "DEBUG" for r in records), name


async def test_text_logs_are_one_line_per_record_with_fields(tmp_path: Path) -> None:
    with spawn(tmp_path) as server:
        await converse(server)
        assert server.stop() == 0
        lines = server.lines()
    started = [line for line in lines if " streamer.runtime: stream started " in line]
    assert started and re.search(r" session_id=sess_\S+ stream_id=s_\S+ event=started ",
                                 started[0] + " "), started
    assert not [line for line in lines if SECRET in line]


@contextmanager
def capture(fmt: str) -> Iterator[io.StringIO]:
    """A handler like the server's (format, context filter) on one test logger."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(formatter(fmt))
    log = logging.getLogger("tests.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield out
    finally:
        log.removeHandler(handler)


def test_the_task_context_fills_in_ids_a_call_did_not_give() -> None:
    log = logging.getLogger("tests.logs")
    with capture("json") as out:
        with log_context(session_id="sess_a", connection_id="c_b"):
            log.info("inside", extra=fields(stream_id="s_c", connection="c_given"))
        log.info("outside")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert (inside["session_id"], inside["stream_id"], inside["connection_id"]) == \
        ("sess_a", "s_c", "c_given")
    assert not {"session_id", "stream_id", "connection_id"} & set(outside)


def test_a_detail_named_like_a_record_attribute_is_kept_under_a_prefix() -> None:
    log = logging.getLogger("tests.logs")
    with capture("text") as out:
        log.info("x", extra=fields(name="n", module="m", code="c"))
    assert out.getvalue().rstrip().endswith(": x detail_name=n detail_module=m code=c")


def test_unknown_log_settings_are_refused() -> None:
    from streamer.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="not one of"):
        load_config(env={"STREAMER_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="not one of"):
        load_config(env={"STREAMER_METRICS_ACCESS": "everyone"})
