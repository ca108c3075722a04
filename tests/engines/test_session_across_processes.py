"""A session's streams reach its connections on every process (issue 17): real ``streamer
serve --engine redis`` processes and a real ``redis-server``. A connection that idles on B
takes up each stream its session begins on A, without reconnecting; a drained A (SIGTERM)
publishes its streams' ends before it exits, so B's clients get them, not a lost owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.conftest import create_session
from tests.engines.test_control_routing import follow
from tests.engines.test_failover import LEASE_TTL_S, cluster, until
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.engines.test_redis_serve import DOCUMENT, render, ws
from tests.resume_client import Doc

#: every wait of a test is bounded by this (s)
BOUND_S = 60.0
PROMPTS = ("A first answer with a [link](https://example.com) and `code`.",
           "A second answer:\n\n- one\n- two\n\n> quoted *text*")

#: one redis-server for the module's servers
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")


async def test_an_idle_connection_on_b_takes_up_the_streams_begun_on_a(
        redis_server: RedisServer, tmp_path: Path) -> None:
    sid = "across-idle-1"
    on_b = [Doc(), Doc()]
    with cluster(redis_server, tmp_path, "ab") as (a, b), trio.fail_after(BOUND_S):
        expected = [await render(a, prompt) for prompt in PROMPTS]
        await create_session(a.base_url, sid)
        async with open_websocket_url(f"{ws(b)}/ws/stream/{sid}") as idle:
            assert json.loads(await idle.get_message())["type"] == "connected"
            async with open_websocket_url(f"{ws(a)}/ws/stream/{sid}") as starter:
                for prompt, doc in zip(PROMPTS, on_b, strict=True):
                    await starter.send_message(json.dumps({
                        "type": "start", "prompt": prompt, "provider": "echo",
                        "echo": {"delta_chars": 4, "interval_ms": 5},
                        "pacing": {"mode": "off"}}))
                    while doc.complete is None:  # B's connection, never reconnected
                        doc.apply(json.loads(await idle.get_message()))
    for doc, html in zip(on_b, expected, strict=True):
        assert doc.complete is not None and doc.complete["finish_reason"] == "stop"
        assert not doc.errors and doc.html == doc.complete["html"] == html
    assert on_b[0].stream_id != on_b[1].stream_id


async def test_a_drained_process_publishes_its_streams_ends_before_it_exits(
        redis_server: RedisServer, tmp_path: Path) -> None:
    sid = "across-drain-1"
    on_a, on_b = Doc(), Doc()
    with cluster(redis_server, tmp_path, "ab") as (a, b), trio.fail_after(BOUND_S):
        await create_session(a.base_url, sid)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: follow(ws(a), sid, on_a, start=True))
            await until(lambda: on_a.last_seq > 5)
            nursery.start_soon(lambda: follow(ws(b), sid, on_b))
            await until(lambda: on_b.last_seq > on_a.last_seq)  # B mirrors it live
            a.process.terminate()  # SIGTERM: drain (2 s), the stream is cut short
            with trio.fail_after(2 + LEASE_TTL_S):  # before a lost lease could end it
                await until(lambda: on_b.complete is not None)
            assert await trio.to_thread.run_sync(a.process.wait, 20) == 0
            nursery.cancel_scope.cancel()
    assert on_b.complete is not None and on_b.complete["finish_reason"] == "error"
    assert [e["code"] for e in on_b.errors] == ["server_shutting_down"], on_b.errors
    assert on_b.html == on_b.complete["html"]
    assert len(on_b.complete["markdown"]) < len(DOCUMENT)
