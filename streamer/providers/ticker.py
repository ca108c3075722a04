"""One timer for many sleepers: the ``echo`` provider's clock under load.

A ``trio.sleep_until`` is a cancel scope with a deadline: when it passes, Trio raises and
catches ``Cancelled`` in the sleeping task. At a thousand echo streams of 20 deltas a second
that is 20,000 expiries a second, a sixth of the server's time in the load benchmark (issue
16), spent simulating the model rather than serving it. Here every sleeper of a Trio run
parks on one heap (``trio.lowlevel.wait_task_rescheduled``, no scope of its own) and one
system task sleeps until the earliest due time, then wakes every sleeper due within
:data:`SLACK_S` of it (timer slack, as Linux's ``timer_slack_ns``): the expiries are at most
one per slack period, however many streams there are. A sleeper alone on the heap wakes at
its exact time; one woken early is early by less than the slack.

Cancellation: a sleeper that is cancelled leaves its heap entry behind as a dead one (its
task cleared), which the clock drops when it reaches it.
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio

#: sleepers due within this long after the earliest one wake with it (s)
SLACK_S = 0.001


class Ticker:
    """The sleepers of one Trio run (:func:`sleep_until` finds or starts it)."""

    def __init__(self) -> None:
        #: ``(due, order, [task])``; the task is ``None`` once the sleeper was cancelled
        self._heap: list[tuple[float, int, list[trio.lowlevel.Task | None]]] = []
        self._order = itertools.count()
        self._clock: trio.lowlevel.Task | None = None
        #: the clock's timer (its deadline follows the heap's earliest entry)
        self._scope: trio.CancelScope | None = None

    async def sleep_until(self, due: float) -> None:
        """Sleep until ``due`` (Trio's clock, s) or up to :data:`SLACK_S` before it.

        Raises:
            trio.Cancelled: as ``trio.sleep_until``.
        """
        if due <= trio.current_time():
            await trio.lowlevel.checkpoint()
            return
        box: list[trio.lowlevel.Task | None] = [trio.lowlevel.current_task()]
        heapq.heappush(self._heap, (due, next(self._order), box))
        if self._clock is None:
            trio.lowlevel.spawn_system_task(self._run, name="streamer.echo-clock")
        elif self._scope is not None and due < self._scope.deadline:
            self._scope.deadline = due

        def abort(_: object) -> trio.lowlevel.Abort:
            box[0] = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def _run(self) -> None:
        """The clock: wake what is due, then sleep until the next due time (or until a new
        sleeper comes, while the heap is empty)."""
        self._clock = trio.lowlevel.current_task()
        heap = self._heap
        try:
            while True:
                now = trio.current_time()
                while heap and heap[0][2][0] is None:
                    heapq.heappop(heap)
                if heap and heap[0][0] <= now:
                    limit = heap[0][0] + SLACK_S
                    while heap and heap[0][0] <= limit:
                        task = heapq.heappop(heap)[2][0]
                        if task is not None:
                            trio.lowlevel.reschedule(task)
                    continue
                deadline = heap[0][0] if heap else math.inf
                with trio.CancelScope(deadline=deadline) as self._scope:
                    await trio.sleep_forever()
                self._scope = None
        finally:
            self._clock = self._scope = None


_TICKER: trio.lowlevel.RunVar[Ticker] = trio.lowlevel.RunVar("streamer_echo_ticker")


async def sleep_until(due: float) -> None:
    """Sleep until ``due`` on this Trio run's :class:`Ticker` (see the module's notes)."""
    try:
        ticker = _TICKER.get()
    except LookupError:
        ticker = Ticker()
        _TICKER.set(ticker)
    await ticker.sleep_until(due)
