"""A re-armable wake-up flag: the one way a runtime task waits for "something changed"."""

from __future__ import annotations

import trio


class Waiter:
    """A re-armable wake-up flag for one task: others call :meth:`wake` (a log on a new
    entry, a control, a session on a new stream); the task's :meth:`wait` returns once after
    any number of wakes, then re-arms. Waking never blocks and never fails."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()
