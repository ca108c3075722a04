"""A stream's trace is bounded: its beginning and its latest entries stay, what falls out
between is counted (issue 15: 20,000 pause/resume frames made 19,997 entries)."""

from __future__ import annotations

import trio

from streamer.runtime.trace import Trace


async def test_the_trace_keeps_its_beginning_and_a_ring_of_the_latest(
        autojump_clock: trio.testing.MockClock) -> None:
    trace = Trace("s_test", max_entries=10)
    for name in ("queued", "started", "provider_call_opened", "first_token"):
        trace.record(name)
    for i in range(20_000):
        trace.record("control", connection="c1", state="paused" if i % 2 else "playing")
    await trio.sleep(1)
    trace.record("completed")
    entries = [e.to_json() for e in trace]
    assert len(entries) == 11 and len(trace.head) + len(trace.tail) == 10
    assert [e["event"] for e in entries[:4]] == ["queued", "started", "provider_call_opened",
                                                 "first_token"]
    dropped = next(e for e in entries if e["event"] == "dropped")
    assert dropped["counts"] == {"control": 20_000 - 1 - 4}
    assert entries[-1]["event"] == "completed" and entries[-1]["t_ms"] == 1000.0
    assert sum(dropped["counts"].values()) + 10 == 4 + 20_000 + 1


def test_a_short_trace_is_whole() -> None:
    async def main() -> list[str]:
        trace = Trace("s_short")
        for name in ("queued", "started", "completed"):
            trace.record(name)
        return [e.event for e in trace]

    assert trio.run(main) == ["queued", "started", "completed"]
