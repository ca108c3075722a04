"""The echo provider's shared clock (``streamer.providers.ticker``): every sleeper wakes at
its time or at most the slack before it, sleepers due within the slack of each other wake
together (one timer expiry for them all), and a cancelled sleeper leaves the rest on time."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from streamer.providers import ticker


async def test_sleepers_wake_on_time_and_together(autojump_clock: trio.testing.MockClock
                                                  ) -> None:
    rng = random.Random(7)
    t0 = trio.current_time()
    dues = [t0 + rng.uniform(0.001, 0.1) for _ in range(500)]
    woke: dict[int, float] = {}

    async def sleeper(i: int) -> None:
        await ticker.sleep_until(dues[i])
        woke[i] = trio.current_time()

    async with trio.open_nursery() as nursery:
        for i in range(len(dues)):
            nursery.start_soon(sleeper, i)
    assert len(woke) == len(dues)
    for i, due in enumerate(dues):
        assert due - ticker.SLACK_S - 1e-9 <= woke[i] <= due + 1e-9, (i, due, woke[i])
    # 500 due times over 100 ms: at most one wake-up per slack period (+1 at the edges)
    assert len(set(woke.values())) <= 0.1 / ticker.SLACK_S + 1


async def test_a_sleeper_alone_wakes_at_its_exact_time(autojump_clock: trio.testing.MockClock
                                                       ) -> None:
    for delay in (0.0005, 0.02, 3.0):
        due = trio.current_time() + delay
        await ticker.sleep_until(due)
        assert trio.current_time() == pytest.approx(due, abs=1e-9)


async def test_a_cancelled_sleeper_leaves_the_others_on_time(
        autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    woke: list[float] = []

    async def sleeper(due: float) -> None:
        await ticker.sleep_until(due)
        woke.append(trio.current_time() - t0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, t0 + 0.05)
        async with trio.open_nursery() as inner:  # cancelled while parked on the heap
            inner.start_soon(sleeper, t0 + 0.01)
            await trio.sleep(0.005)
            inner.cancel_scope.cancel()
        nursery.start_soon(sleeper, t0 + 0.03)
    assert woke == pytest.approx([0.03, 0.05])


async def test_a_due_time_in_the_past_is_a_checkpoint() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await ticker.sleep_until(trio.current_time() - 1)
