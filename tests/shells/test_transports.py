"""The connection runtime (``Connection.serve``: outbox, writer, heartbeat) with a fake
socket, in virtual time."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from streamer.runtime.connection import CLOSE_TOO_SLOW, Connection
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
