"""A real server process is stopped with SIGTERM mid-stream and started again on the same
SQLite file: the drain ends the stream (persisted), the process exits 0, and the client's
resume is answered with ``resume_gap`` + the persisted partial answer as a ``snapshot``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.conftest import create_session
from tests.e2e.test_resume import DOCUMENT
from tests.resume_client import Doc, ws_follow


def spawn(db: Path, **extra_env: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {**os.environ, **extra_env, "STREAMER_SERVER_DRAIN_TIMEOUT_S": "0.5",
           "STREAMER_PERSISTENCE_DATABASE_PATH": str(db),
           "STREAMER_PROVIDERS_DEFAULT": "echo", "STREAMER_POLICY_PROVIDERS": "echo"}
    process = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if match := re.search(r"serving on (http://\S+) ", line):
            threading.Thread(target=lambda: lines.extend(process.stdout or ()),
                             daemon=True).start()
            return process, match.group(1), lines
    process.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))


async def test_sigterm_mid_stream_then_restart_gives_the_partial_answer(
        tmp_path: Path) -> None:
    db = tmp_path / "streamer.db"
    process, url, lines = await trio.to_thread.run_sync(spawn, db)
    doc = Doc()
    try:
        await create_session(url, "restart-proc-1")
        with trio.fail_after(60):
            async with open_websocket_url(url.replace("http", "ws")
                                          + "/ws/stream/restart-proc-1") as ws:
                await ws.send_message(json.dumps({
                    "type": "start", "prompt": DOCUMENT, "provider": "echo",
                    "echo": {"delta_chars": 4, "interval_ms": 20},
                    "pacing": {"mode": "off"}}))
                signalled = False
                try:
                    while True:
                        ev = json.loads(await ws.get_message())
                        doc.apply(ev)
                        if ev["type"] == "chunk" and doc.last_seq >= 40 and not signalled:
                            signalled = True
                            process.send_signal(signal.SIGTERM)  # mid-stream
                except ConnectionClosed:
                    pass
            code = await trio.to_thread.run_sync(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, "".join(lines)
    codes = [e["code"] for e in doc.errors]
    assert "server_shutting_down" in codes
    shutdown = next(e for e in doc.errors if e["code"] == "server_shutting_down")
    assert shutdown["retry_after_ms"] > 0
    assert doc.complete is not None and doc.complete["finish_reason"] == "error"
    partial = doc.complete["html"]
    assert doc.html == partial and 0 < len(doc.complete["markdown"]) < len(DOCUMENT)

    process, url, lines = await trio.to_thread.run_sync(spawn, db)
    try:
        again = Doc(stream_id=doc.stream_id, epoch=doc.epoch, last_seq=10,
                    blocks=["<p>stale</p>"])
        with trio.fail_after(30):
            assert await ws_follow(url.replace("http", "ws"), "restart-proc-1", again)
            async with httpx.AsyncClient(base_url=url) as client:
                stored = (await client.get("/api/sessions/restart-proc-1/messages")).json()
    finally:
        process.terminate()
        await trio.to_thread.run_sync(process.wait, 30)
    assert [e["code"] for e in again.errors] == ["resume_gap"]
    assert again.snapshots == 1 and again.epoch != doc.epoch
    assert again.last_seq == doc.last_seq  # the snapshot is as of the stream's last seq
    assert again.html == partial  # exactly what the first server had sent
    assert again.complete is not None and again.complete["finish_reason"] == "error"
    answer = stored["messages"][-1]
    assert answer["role"] == "assistant" and answer["html"] == partial
    assert answer["markdown"] == doc.complete["markdown"]


async def test_sigkill_mid_stream_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    """No drain at all: what survives is the last checkpoint (saved every interval, never per
    token); the restarted server offers it as a snapshot and marks it finished with error."""
    db = tmp_path / "streamer.db"
    process, url, _lines = await trio.to_thread.run_sync(partial(
        spawn, db, STREAMER_PERSISTENCE_CHECKPOINT_INTERVAL_S="0.2"))
    doc = Doc()
    try:
        await create_session(url, "restart-kill-1")
        with trio.fail_after(60):
            async with open_websocket_url(url.replace("http", "ws")
                                          + "/ws/stream/restart-kill-1") as ws:
                await ws.send_message(json.dumps({
                    "type": "start", "prompt": DOCUMENT, "provider": "echo",
                    "echo": {"delta_chars": 4, "interval_ms": 10},
                    "pacing": {"mode": "off"}}))
                try:
                    while True:
                        doc.apply(json.loads(await ws.get_message()))
                        if doc.last_seq >= 150 and process.poll() is None:
                            process.kill()
                except ConnectionClosed:
                    pass
    finally:
        process.kill()
        await trio.to_thread.run_sync(process.wait, 30)
    assert doc.complete is None and doc.last_seq >= 150

    process, url, _lines = await trio.to_thread.run_sync(spawn, db)
    try:
        again = Doc(stream_id=doc.stream_id, epoch=doc.epoch, last_seq=doc.last_seq,
                    blocks=list(doc.blocks))
        with trio.move_on_after(30):
            await ws_follow(url.replace("http", "ws"), "restart-kill-1", again)
        assert again.complete is not None, (again.errors, again.events)
        with trio.fail_after(10):
            async with httpx.AsyncClient(base_url=url) as client:
                stored = (await client.get("/api/sessions/restart-kill-1/messages")).json()
    finally:
        process.terminate()
        await trio.to_thread.run_sync(process.wait, 30)
    assert [e["code"] for e in again.errors] == ["resume_gap"]
    # a checkpoint from the last 0.2 s before the kill: not empty, and a strict prefix of the
    # answer (it may be a few events ahead of this client: those were in flight at the kill)
    assert 0 < again.last_seq
    assert again.html and again.complete["finish_reason"] == "error"
    answer = stored["messages"][-1]
    assert answer["status"] == "complete" and answer["finish_reason"] == "error"
    assert DOCUMENT.startswith(answer["markdown"]) and answer["markdown"]
    assert len(answer["markdown"]) < len(DOCUMENT)
