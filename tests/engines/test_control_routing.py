"""Controls routed to the process that runs a stream (issue 17): real ``streamer serve
--engine redis`` processes and a real ``redis-server``. A ``stop`` sent through process B,
which only mirrors the stream, stops the model call on A: the stream ends ``cancelled`` for
every client, and A's trace names the process the stop came from. An owner that does not
answer (frozen with SIGSTOP) gets the client a ``control_not_delivered`` error in bounded
time, never a silent loss."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.runtime.ownership import ACK_TIMEOUT_S
from tests.conftest import ServerProcess, create_session
from tests.engines.test_failover import cluster, until
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.engines.test_redis_serve import DOCUMENT, ECHO_SLOW, ws
from tests.resume_client import Doc

#: every wait of a test is bounded by this (s)
BOUND_S = 60.0
#: a routed stop's effect reaches every client within this (s): the ack, the owner's
#: cancellation, its end record published and mirrored, on a loaded 2-core machine
STOPPED_WITHIN_S = 3.0

#: one redis-server for the module's servers
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")


async def follow(ws_base: str, session_id: str, doc: Doc, *, start: bool = False,
                 stop_after: int = 0, stopped: trio.Event | None = None) -> None:
    """One WebSocket client: ``start`` the slow echo stream of :data:`DOCUMENT` (else join the
    session's current stream), send ``stop`` after ``stop_after`` chunks (0: never; then
    ``stopped`` is set), apply events until ``stream_complete``."""
    async with open_websocket_url(f"{ws_base}/ws/stream/{session_id}") as conn:
        if start:
            await conn.send_message(json.dumps({
                "type": "start", "prompt": DOCUMENT, "provider": "echo", "echo": ECHO_SLOW,
                "pacing": {"mode": "off"}}))
        chunks = 0
        while doc.complete is None:
            ev = json.loads(await conn.get_message())
            doc.apply(ev)
            chunks += ev["type"] == "chunk"
            if stop_after and chunks == stop_after:
                await conn.send_message(json.dumps({"type": "stop"}))
                if stopped is not None:
                    stopped.set()


def codes(doc: Doc) -> list[str]:
    return [error["code"] for error in doc.errors]


async def trace_of(server: ServerProcess, stream_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get(f"/api/streams/{stream_id}/trace")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["trace"]
    return entries


async def test_a_stop_sent_through_b_stops_the_model_call_on_a(
        redis_server: RedisServer, tmp_path: Path) -> None:
    sid = "routed-stop-1"
    on_a, on_b = Doc(), Doc()
    stopped = trio.Event()
    with cluster(redis_server, tmp_path, "ab") as (a, b), trio.fail_after(BOUND_S):
        await create_session(a.base_url, sid)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: follow(ws(a), sid, on_a, start=True))
            await until(lambda: on_a.last_seq > 5)  # A generates
            nursery.start_soon(lambda: follow(ws(b), sid, on_b, stop_after=5,
                                              stopped=stopped))
            await stopped.wait()
            sent_at = trio.current_time()
            with trio.fail_after(STOPPED_WITHIN_S):
                await until(lambda: bool(on_a.complete and on_b.complete))
        assert on_a.stream_id is not None
        trace = await trace_of(a, on_a.stream_id)
    assert on_a.stream_id == on_b.stream_id
    for doc in (on_a, on_b):
        assert doc.complete is not None and doc.complete["finish_reason"] == "cancelled", doc
        assert not doc.errors and doc.html == doc.complete["html"]
        assert len(doc.complete["markdown"]) < len(DOCUMENT)  # stopped well before the end
    assert trio.current_time() - sent_at < STOPPED_WITHIN_S
    events = {entry["event"]: entry for entry in trace}
    assert events["control_routed"]["action"] == "stop"
    assert events["cancel_requested"]["reason"].startswith("stop from client on process p_")
    assert events["control_routed"]["sender"] in events["cancel_requested"]["reason"]
    assert events["cancelled"]["reason"] == events["cancel_requested"]["reason"]
    assert "provider_call_closed" in events  # the model call itself was closed


async def test_a_stop_for_an_owner_that_does_not_answer_is_an_error(
        redis_server: RedisServer, tmp_path: Path) -> None:
    sid = "routed-stop-2"
    on_b = Doc()
    with cluster(redis_server, tmp_path, "ab") as (a, b), trio.fail_after(BOUND_S):
        await create_session(a.base_url, sid)
        starter = Doc()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: follow(ws(a), sid, starter, start=True))
            await until(lambda: starter.last_seq > 5)
            async with open_websocket_url(f"{ws(b)}/ws/stream/{sid}") as conn:
                while on_b.last_seq <= starter.last_seq:  # B mirrors the stream live
                    on_b.apply(json.loads(await conn.get_message()))
                a.process.send_signal(signal.SIGSTOP)  # A holds its lease, answers nothing
                try:
                    await conn.send_message(json.dumps({"type": "stop"}))
                    sent_at = trio.current_time()
                    with trio.fail_after(ACK_TIMEOUT_S + 2):
                        while "control_not_delivered" not in codes(on_b):
                            on_b.apply(json.loads(await conn.get_message()))
                    answered_in = trio.current_time() - sent_at
                finally:
                    a.process.send_signal(signal.SIGCONT)
            nursery.cancel_scope.cancel()
    # (the mirror may end with generation_lost meanwhile: A's lease expires while frozen)
    error = next(e for e in on_b.errors if e["code"] == "control_not_delivered")
    assert error["retryable"] is True and error["message"]
    assert answered_in < ACK_TIMEOUT_S + 2
