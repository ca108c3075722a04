"""The outbox's clock (``streamer/runtime/outbox.py``) under Trio's autojump clock: a
heartbeat goes out once the connection has been idle for ``heartbeat_s``, also when the
clock last looked while a write was in flight; a stuck write is given up after
``send_timeout_s``."""

from __future__ import annotations

from typing import Any

import trio

from streamer.runtime.outbox import Outbox


class Recorder:
    """A transport that records what is written and when; writes take ``delay_s``."""

    name = "test"

    def __init__(self) -> None:
        self.frames: list[tuple[float, Any]] = []
        self.delay_s = 0.0

    def encode(self, obj: dict[str, Any], event_id: str | None) -> str:
        return str(obj["n"])

    def heartbeat(self) -> str:
        return "hb"

    async def write(self, data: str | bytes) -> None:
        if self.delay_s:
            await trio.sleep(self.delay_s)
        self.frames.append((trio.current_time(), data))

    async def close(self, code: int, reason: str) -> None:
        self.frames.append((trio.current_time(), f"close {code}"))


async def test_a_heartbeat_follows_idleness_even_after_a_write_the_clock_saw(
        autojump_clock: trio.abc.Clock) -> None:
    transport, stuck = Recorder(), []
    outbox = Outbox(send_timeout_s=10.0)
    async with trio.open_nursery() as nursery:
        outbox.start_clock(0.1, lambda: stuck.append(True))
        nursery.start_soon(outbox.write_to, transport)
        start = trio.current_time()
        # writes that take 50 ms each, every 60 ms, for a second: the clock's looks at the
        # outbox (every 100 ms of idleness) keep finding a write in flight
        transport.delay_s = 0.05
        for n in range(16):
            await outbox.put({"n": n}, None)
            await trio.sleep(0.06)
        transport.delay_s = 0.0
        last = trio.current_time()
        await trio.sleep(1.0)  # idle: about ten heartbeats
        await outbox.close(1000, "done")
    assert not stuck
    events = [data for _, data in transport.frames]
    assert events[:16] == [str(n) for n in range(16)]
    beats = [t - start for t, data in transport.frames if data == "hb" and t >= last]
    assert 8 <= len(beats) <= 11, beats
    # the first within a heartbeat interval (and a little) of the last write ending
    assert beats[0] - (last - start) <= 0.1 + 0.06, beats


async def test_a_stuck_write_is_given_up_after_the_send_timeout(
        autojump_clock: trio.abc.Clock) -> None:
    transport, stuck = Recorder(), []
    outbox = Outbox(send_timeout_s=2.0)
    with trio.move_on_after(60) as scope:
        async with trio.open_nursery() as nursery:
            outbox.start_clock(0.1, lambda: (stuck.append(trio.current_time()),
                                             nursery.cancel_scope.cancel()))
            nursery.start_soon(outbox.write_to, transport)
            transport.delay_s = 1000.0
            await outbox.put({"n": 1}, None)
            start = trio.current_time()
    assert not scope.cancelled_caught
    assert len(stuck) == 1 and 2.0 <= stuck[0] - start <= 3.0
    assert outbox.too_slow and "2 s" in str(outbox.too_slow[0])
