"""Queue controls routed to the process that holds the queue (issue 17): real ``streamer serve
--engine redis`` processes and a real ``redis-server``. A session runs a long stream on A and
queues three more there; a client connected to B moves one to the front and removes another:
A applies both as local controls (the removed stream ends ``cancelled`` without generating,
the moved one runs next), and B's client gets the same answer as a local one (no error), its
trace on A naming the process the control came from. A stream nobody holds queued is
``stream_not_found``, as locally."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.conftest import create_session
from tests.engines.test_control_routing import redis_server, trace_of  # noqa: F401 - fixture
from tests.engines.test_failover import cluster, until
from tests.engines.test_redis_log import RedisServer
from tests.engines.test_redis_serve import DOCUMENT, ECHO_SLOW, ws

#: every wait of a test is bounded by this (s)
BOUND_S = 60.0


async def collect(conn: WebSocketConnection, events: list[dict[str, Any]]) -> None:
    """Append every event ``conn`` receives to ``events`` (until cancelled or closed)."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            events.append(json.loads(await conn.get_message()))


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [ev for ev in events if ev["type"] == kind]


async def send(conn: WebSocketConnection, **message: Any) -> None:
    await conn.send_message(json.dumps(message))


async def test_queue_controls_sent_through_b_change_the_queue_on_a(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    sid = "routed-queue-1"
    on_a: list[dict[str, Any]] = []
    on_b: list[dict[str, Any]] = []
    with cluster(redis_server, tmp_path, "ab") as (a, b), trio.fail_after(BOUND_S):
        await create_session(a.base_url, sid)
        async with trio.open_nursery() as nursery, \
                open_websocket_url(f"{ws(a)}/ws/stream/{sid}") as conn_a:
            nursery.start_soon(collect, conn_a, on_a)
            await send(conn_a, type="start", prompt=DOCUMENT, provider="echo",
                       echo=ECHO_SLOW, pacing={"mode": "off"})
            await until(lambda: len(of(on_a, "chunk")) > 5)  # A generates
            for text in ("a", "b", "c"):
                await send(conn_a, type="start", prompt=text, provider="echo",
                           pacing={"mode": "off"})
            await until(lambda: len([e for e in of(on_a, "stream_start")
                                     if e.get("queued")]) == 3)
            ids = [e["stream_id"] for e in of(on_a, "stream_start") if e.get("queued")]
            async with open_websocket_url(f"{ws(b)}/ws/stream/{sid}") as conn_b:
                nursery.start_soon(collect, conn_b, on_b)
                await send(conn_b, type="queue_remove", stream_id="s_nobodyholds")
                await send(conn_b, type="queue_move", stream_id=ids[2], position=0)
                await send(conn_b, type="queue_remove", stream_id=ids[0])
                await send(conn_b, type="ping", ts=1)  # answered once the controls are
                await until(lambda: bool(of(on_b, "pong")))
                b_errors = [e["code"] for e in of(on_b, "error")]
                await send(conn_a, type="stop")  # the queue runs now
                await until(lambda: len(of(on_a, "stream_complete")) == 4)
            nursery.cancel_scope.cancel()
        trace = await trace_of(a, ids[0])
    assert b_errors == ["stream_not_found"]  # the unknown stream only, as locally
    order = [(c["markdown"], c["finish_reason"]) for c in of(on_a, "stream_complete")]
    assert order[0][1] == "cancelled"  # the long stream, stopped
    assert order[1:] == [("c", "stop"), ("", "cancelled"), ("b", "stop")]
    events = {entry["event"]: entry for entry in trace}
    assert events["control_routed"]["action"] == "queue_remove"
    assert events["control_routed"]["sender"].startswith("p_")
    assert events["cancel_requested"]["reason"] == "removed from the queue"
