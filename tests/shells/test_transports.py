"""The connection runtime (``Connection.serve``: outbox, writer, heartbeat) with a fake
socket, in virtual time."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from streamer.runtime.connection import CLOSE_TOO_SLOW, Connection
from streamer.runtime.outbox import Clock
from streamer.wire.codecs import encode_json
from tests.shells.test_pipeline import open_pipeline, start


class StuckTransport:
    """A peer that reads the first ``accept`` frames, then nothing (its socket stays full)."""

    name = "websocket"

    def __init__(self, accept: int) -> None:
        self.accept = accept
        self.frames: list[str] = []
        self.closed: tuple[int, str] | None = None

    def encode(self, ev: dict[str, Any], event_id: str | None) -> str:
        return encode_json(ev)

    def heartbeat(self) -> str:
        return "{}"

    async def write(self, data: str | bytes) -> None:
        if len(self.frames) >= self.accept:
            await trio.sleep_forever()
        self.frames.append(str(data))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_peer_that_reads_nothing_is_closed_with_1013_and_the_stream_goes_on(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"server.send_timeout_s": 2.0,
                                                        "streams.grace_period_s": 60.0})
    transport = StuckTransport(accept=3)
    stream = session.submit(start("word " * 400, mode="off", interval_ms=10))
    t0 = trio.current_time()
    await Connection(session, transport.name).serve(transport)  # returns: peer given up
    assert transport.closed == (CLOSE_TOO_SLOW, "too slow; reconnect and resume")
    assert trio.current_time() - t0 <= 2.0 + 1.0 + 0.01  # send deadline, then the close
    assert not session.connections and registry.connections == 0
    assert stream.state == "running"  # the stream lives on for the grace period
    assert any(t.event == "subscriber_left" for t in stream.trace)
    with trio.fail_after(30):
        await stream.done.wait()
    assert stream.finish_reason == "stop"


class ReadingTransport(StuckTransport):
    """A peer that reads everything, with the time of each frame."""

    def __init__(self) -> None:
        super().__init__(accept=10**9)
        self.times: list[float] = []

    async def write(self, data: str | bytes) -> None:
        self.times.append(trio.current_time())
        await super().write(data)


async def test_idle_connections_get_heartbeats_from_the_one_clock(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, **{"server.heartbeat_interval_s": 2.0,
                                                        "server.send_timeout_s": 5.0})
    peers = [ReadingTransport() for _ in range(3)]
    connections = [await nursery.start(Connection(session, "websocket").serve, peer)
                   for peer in peers]
    t0 = trio.current_time()
    await trio.sleep(7.0)
    for peer in peers:  # connected, then a heartbeat every 2 s of silence
        assert peer.frames[1:] == ["{}"] * 3
        assert [round(t - t0, 3) for t in peer.times[1:]] == [2.0, 4.0, 6.0]
    # one clock for all of them, one deadline each: nothing piles up in it
    assert len(Clock.current()) <= len(peers)
    # a stream's frames count as activity: no heartbeat while it streams
    stream = session.submit(start("word " * 60, mode="off", interval_ms=50))
    with trio.fail_after(30):
        await stream.done.wait()
    assert len(Clock.current()) <= 2 * len(peers)
    for peer in peers:
        gaps = [b - a for a, b in zip(peer.times, peer.times[1:], strict=False)]
        assert max(gaps) <= 2.0 + 1e-6
    for connection in connections:
        connection.cancel_scope.cancel()
    await trio.sleep(2.5)
    assert registry.connections == 0 and len(Clock.current()) == 0


async def test_a_write_stuck_on_an_idle_connection_is_given_up(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _, session = await open_pipeline(nursery, **{"server.heartbeat_interval_s": 3.0,
                                                 "server.send_timeout_s": 2.0})
    transport = StuckTransport(accept=1)  # reads ``connected``, then nothing
    t0 = trio.current_time()
    await Connection(session, transport.name).serve(transport)  # returns: peer given up
    # the heartbeat's write (at 3 s) stuck for send_timeout_s (noticed within 1.5 times it)
    assert 3.0 + 2.0 <= trio.current_time() - t0 <= 3.0 + 3.0 + 1.0
    assert transport.closed == (CLOSE_TOO_SLOW, "too slow; reconnect and resume")
    assert not session.connections


async def test_an_idle_connection_follows_the_first_stream_or_closes_when_idle(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(
        nursery, **{"limits.idle_connection_timeout_s": 5.0, "server.heartbeat_interval_s": 60.0})
    waiting, idle = ReadingTransport(), ReadingTransport()
    connection = await nursery.start(Connection(session, "websocket").serve, waiting)
    t0 = trio.current_time()
    await trio.sleep(3.0)  # nothing to follow yet: no follower task, no subscription
    assert connection.subscription is None and connection._follow_scope is None
    stream = session.submit(start("word " * 20, mode="off", interval_ms=10))
    with trio.fail_after(30):
        await stream.done.wait()
    await trio.sleep(0.1)
    kinds = [json.loads(frame)["type"] for frame in waiting.frames]
    assert kinds[0] == "connected" and "stream_start" in kinds
    assert kinds[-1] == "stream_complete" and waiting.closed is None
    ended = trio.current_time()
    # a connection to a session with nothing to follow is closed once idle (1001, "idle")
    await Connection(registry.get_or_create("other"), "websocket").serve(idle)
    assert idle.closed == (1001, "idle") and [json.loads(f)["type"] for f in idle.frames] \
        == ["connected"]
    assert trio.current_time() - idle.times[0] == pytest.approx(5.0)
    # as the one that followed a stream is, counted from the stream's end
    await trio.sleep(ended + 5.0 - trio.current_time() + 0.01)
    assert waiting.closed == (1001, "idle") and t0 < ended


class SlowToCloseTransport(StuckTransport):
    """Reads nothing after ``connected``; its close takes the whole second it is given."""

    async def close(self, code: int, reason: str) -> None:
        await trio.sleep(5)
        await super().close(code, reason)


async def test_a_stream_starting_while_a_given_up_connection_says_goodbye_runs(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    """An idle connection whose write got stuck spends up to 1 s closing; a stream the
    session starts meanwhile (another tab) must not try to start the dying connection's
    follower in its closed nursery (which crashed that stream)."""
    _, session = await open_pipeline(nursery, **{"server.heartbeat_interval_s": 1.0,
                                                 "server.send_timeout_s": 1.0})
    reader = ReadingTransport()
    await nursery.start(Connection(session, "websocket").serve, reader)
    stuck = SlowToCloseTransport(accept=1)
    nursery.start_soon(Connection(session, stuck.name).serve, stuck)
    await trio.sleep(2.8)  # its heartbeat (1 s) stuck, given up by 2.5 s: in its goodbye
    assert stuck.closed is None and len(session.connections) == 2
    stream = session.submit(start("word " * 20, mode="off"))
    with trio.fail_after(30):
        await stream.done.wait()
    assert stream.finish_reason == "stop", stream.trace
    with trio.fail_after(30):  # and the other tab got all of it
        while not any(json.loads(f).get("type") == "stream_complete" for f in reader.frames):
            await trio.sleep(0.1)
