"""The process's timers (``streamer.runtime.timers``: echo's clock, the subscriptions'
frame deadlines): every sleeper wakes at its time or at most the slack before it, sleepers
due within the slack of each other wake together (one timer expiry for them all), a
cancelled sleeper leaves the rest on time, a burst of first sleepers starts one timer task,
and a waiter's deadline wakes it unless something else did first."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from streamer.runtime import timers as ticker
from streamer.runtime.waiter import Waiter


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


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task of the run, from its root down."""
    tasks, todo = [], [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        tasks.append(task)
        todo += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return tasks


async def test_a_burst_of_first_sleepers_starts_one_timer_task(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        for i in range(50):  # all reach their first sleep before the timer task runs
            nursery.start_soon(ticker.sleep_until, trio.current_time() + 0.01 * (i + 1))
        await trio.testing.wait_all_tasks_blocked()
        names = [task.name for task in all_tasks()]
        assert names.count("streamer: timers") == 1, names


async def test_a_waiter_with_a_deadline_wakes_at_it_or_when_woken(
        autojump_clock: trio.testing.MockClock) -> None:
    waiter = Waiter()
    t0 = trio.current_time()
    await waiter.wait(t0 + 0.25)  # nothing wakes it: the deadline does
    assert trio.current_time() - t0 == pytest.approx(0.25, abs=ticker.SLACK_S)

    async def wake_later() -> None:
        await trio.sleep(0.1)
        waiter.wake()

    async with trio.open_nursery() as nursery:
        t1 = trio.current_time()
        nursery.start_soon(wake_later)
        await waiter.wait(t1 + 5.0)  # woken first: its timer is dead
        assert trio.current_time() - t1 == pytest.approx(0.1)
    t2 = trio.current_time()  # the dead timer does not wake a later wait early
    await waiter.wait(t2 + 10.0)
    assert trio.current_time() - t2 == pytest.approx(10.0, abs=ticker.SLACK_S)
