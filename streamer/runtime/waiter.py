"""A re-armable wake-up flag: the one way a runtime task waits for "something changed"."""

from __future__ import annotations

import math

import trio

from streamer.runtime.timers import Timers


class Waiter:
    """A re-armable wake-up flag for one task: others call :meth:`wake` (a log on a new
    entry, a control, a session on a new stream); the task's :meth:`wait` returns once after
    any number of wakes, then re-arms. Waking never blocks and never fails.

    It parks the waiting task with Trio's low-level ``wait_task_rescheduled`` rather than a
    fresh ``trio.Event`` per wait: a subscription waits once per frame, so the flag is on the
    per-token path (issue 16). Only one task may wait on a waiter at a time.
    """

    __slots__ = ("_task", "_woken", "entries_muted")

    def __init__(self) -> None:
        #: set by the waiting task while new log entries cannot change what it waits for
        #: (a subscription with entries pending waits for its pacer's deadline, or for its
        #: writer): :meth:`wake_for_entry` then does nothing, so a subscription wakes once
        #: per frame, not once per token (issue 16). Other wakes (controls, the end of the
        #: stream, the writer's readiness) always wake it.
        self.entries_muted = False
        #: the task parked in :meth:`wait`, if any
        self._task: trio.lowlevel.Task | None = None
        #: a wake arrived while no task was waiting: the next :meth:`wait` returns at once
        self._woken = False

    def wake(self) -> None:
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)
        else:
            self._woken = True

    def wake_for_entry(self) -> None:
        """A new log entry: :meth:`wake`, unless :attr:`entries_muted`."""
        if not self.entries_muted:
            self.wake()

    async def wait(self, deadline: float = math.inf) -> None:
        """Return after the next :meth:`wake` (at once, after a checkpoint, if one came since
        the last return), or at ``deadline`` (Trio's clock, s; on the process's
        :class:`~streamer.runtime.timers.Timers`, so up to their slack early: no cancel
        scope per wait). Cancellable; raises ``RuntimeError`` if another task waits."""
        if self._woken:
            self._woken = False
            await trio.lowlevel.checkpoint()
            return
        if self._task is not None:
            raise RuntimeError("another task is waiting on this waiter")
        task = self._task = trio.lowlevel.current_task()
        timer = None
        if deadline != math.inf:

            def expire() -> None:
                if self._task is task:
                    self.wake()

            timer = Timers.current().call_at(deadline, expire)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            if timer is not None:
                timer.cancel()
