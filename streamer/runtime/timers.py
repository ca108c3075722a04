"""One timer task for many deadlines: the process's timers on the per-frame path.

A Trio deadline is a cancel scope: when it passes, Trio raises ``Cancelled`` in the task and
unwinds it to the scope. A paced subscription waits for its next frame 30 times a second; at
250 streams that is 7,500 expiries a second, each an exception through the task's stack and
a new scope (issue 16: the default pacing fell behind by seconds where pacing off kept up).
Here a deadline is an entry on one heap per Trio run, and one system task sleeps until the
earliest, then calls every callback due within :data:`SLACK_S` of it (timer slack, as Linux's
``timer_slack_ns``): a due timer costs a heap pop and a call, and the scope expiries are at
most one per slack period, however many timers there are. A timer alone on the heap fires at
its exact time; one fired early is early by less than the slack.

Used by :meth:`streamer.runtime.waiter.Waiter.wait` (a wait with a deadline) and by the
``echo`` provider's clock (``streamer/providers/ticker.py``).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

#: timers due within this long after the earliest one fire with it (s)
SLACK_S = 0.001


class Timer:
    """A pending call (from :meth:`Timers.call_at`); :meth:`cancel` before it fires."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn: Callable[[], None] | None = fn

    def cancel(self) -> None:
        """It will not fire (its heap entry stays, dead, until the timer task reaches it)."""
        self.fn = None


class Timers:
    """The timers of one Trio run (:meth:`current` finds or starts them)."""

    __slots__ = ("_heap", "_order", "_scope", "_task")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        #: the timer task, and its sleep's scope (its deadline follows the earliest entry)
        self._task: trio.lowlevel.Task | None = None
        self._scope: trio.CancelScope | None = None

    @staticmethod
    def current() -> Timers:
        """The running ``trio.run``'s timers (made on first use)."""
        try:
            return _TIMERS.get()
        except LookupError:
            timers = Timers()
            _TIMERS.set(timers)
            return timers

    def __len__(self) -> int:
        """Entries on the heap, dead ones included."""
        return len(self._heap)

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        """Call ``fn()`` at ``when`` (Trio's clock, s), or up to :data:`SLACK_S` before it,
        from the timer task. ``fn`` must not block or raise (it wakes a task)."""
        timer = Timer(fn)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if self._task is None:
            self._task = trio.lowlevel.spawn_system_task(self._run, name="streamer: timers")
        elif self._scope is not None and when < self._scope.deadline:
            self._scope.deadline = when
        return timer

    async def _run(self) -> None:
        heap = self._heap
        try:
            while True:
                now = trio.current_time()
                while heap and heap[0][2].fn is None:
                    heapq.heappop(heap)
                if heap and heap[0][0] <= now:
                    limit = heap[0][0] + SLACK_S
                    while heap and heap[0][0] <= limit:
                        fn = heapq.heappop(heap)[2].fn
                        if fn is not None:
                            fn()
                    continue
                with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
        finally:
            self._task = self._scope = None


_TIMERS: trio.lowlevel.RunVar[Timers] = trio.lowlevel.RunVar("streamer.timers")


async def sleep_until(when: float) -> None:
    """Sleep until ``when`` (Trio's clock, s), or up to :data:`SLACK_S` before it, on the
    run's :class:`Timers` (no cancel scope of its own).

    Raises:
        trio.Cancelled: as ``trio.sleep_until``.
    """
    if when <= trio.current_time():
        await trio.lowlevel.checkpoint()
        return
    task = trio.lowlevel.current_task()
    timer = Timers.current().call_at(when, lambda: trio.lowlevel.reschedule(task))

    def abort(_: object) -> trio.lowlevel.Abort:
        timer.cancel()
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)
