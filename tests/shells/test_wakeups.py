"""A subscription wakes once per frame, not once per token (issue 16): while entries are
pending for its next frame, new log entries do not wake it; controls and the end do."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from streamer.runtime.registry import Registry
from streamer.runtime.waiter import Waiter
from tests.conftest import make_config
from tests.shells.test_pipeline import connect, start


async def test_a_muted_waiter_ignores_entries_but_not_wakes() -> None:
    waiter = Waiter()
    waiter.entries_muted = True
    waiter.wake_for_entry()
    with trio.move_on_after(0.01) as scope:
        await waiter.wait()
    assert scope.cancelled_caught  # the entry did not wake it
    waiter.wake()
    with trio.fail_after(1):
        await waiter.wait()
    waiter.entries_muted = False
    waiter.wake_for_entry()
    with trio.fail_after(1):
        await waiter.wait()


async def test_a_fast_answer_wakes_its_subscription_about_twice_per_frame(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    woken = 0
    wait = Waiter.wait

    async def counted(self: Waiter, deadline: float = math.inf) -> None:
        nonlocal woken
        await wait(self, deadline)
        woken += 1

    monkeypatch.setattr(Waiter, "wait", counted)
    registry = Registry(make_config(**{"pacing.frame_interval_ms": 50.0}))
    registry.bind(nursery)
    session = registry.get_or_create("wakeups-1")
    _connection, recorder = await connect(nursery, session)
    text = "word " * 400  # 500 deltas of 4 characters, 2 ms apart: 10 per frame
    session.submit(start(text, mode="off", interval_ms=2.0))
    with trio.fail_after(30):
        complete = await recorder.wait_for("stream_complete")
    frames = len(recorder.of("chunk"))
    assert complete["markdown"] == text
    assert 10 < frames < 100
    # every wait of every task counted: once per frame and once per entry that finds nothing
    # pending, plus the stream's own waits; one wake per entry would be 500+
    assert woken < 3 * frames + 20, (woken, frames)
