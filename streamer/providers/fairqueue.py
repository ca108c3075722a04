"""A fair queue for a model that serves one request at a time (the ``local`` provider).

One llama.cpp context generates one answer at a time. Requests take their turn first come,
first served (FIFO); a session runs one stream at a time, so it holds at most one place, and
the queue is a round robin across sessions: a session with many queued streams goes to the back
after each answer. While a request waits it is told its ``position`` (requests that run or wait
before it) and an estimate of the wait, each time its position changes (the provider turns
them into :class:`~streamer.providers.base.Queued` events; the stream's time-to-first-token
timeout does not run while it waits).

The estimate: the running generation's expected rest plus one mean generation per request
ahead, the mean an exponentially weighted moving average of recent generations' durations
(weight :data:`WEIGHT`), starting from a first guess before any has finished.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

from streamer.errors import ProviderRateLimited

#: the weight of the newest generation's duration in the moving mean
WEIGHT = 0.3


class Ticket:
    """One request's place in a :class:`FairQueue`."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        #: when its turn began (``None`` while it waits)
        self.started_at: float | None = None
        self._moved = trio.Event()

    @property
    def ready(self) -> bool:
        """The model is this request's now."""
        return self.queue.running is self

    @property
    def position(self) -> int:
        """Requests that run or wait before this one (0: its turn)."""
        return self.queue.position(self)

    def eta_ms(self) -> int:
        """The estimated wait until its turn, in ms."""
        return round(self.queue.eta_s(self.position) * 1000)

    async def moved(self, position: int) -> None:
        """Wait until the request's position is no longer ``position`` (or its turn came)."""
        while not self.ready and self.position == position:
            await self._moved.wait()

    def _wake(self) -> None:
        self._moved.set()
        self._moved = trio.Event()


class FairQueue:
    """Turns at one model, first come, first served.

    Args:
        max_waiting: requests that may wait at once (0: no limit).
        first_guess_s: the mean generation's duration before one has been measured (s).
        clock: the current time in seconds (``trio.current_time``).
    """

    def __init__(self, *, max_waiting: int = 0, first_guess_s: float = 10.0,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.max_waiting = max_waiting
        self.mean_s = first_guess_s
        self.measured = 0
        self.clock = clock
        self.running: Ticket | None = None
        self.waiting: deque[Ticket] = deque()

    def position(self, ticket: Ticket) -> int:
        if ticket is self.running:
            return 0
        return self.waiting.index(ticket) + (1 if self.running is not None else 0)

    def eta_s(self, position: int) -> float:
        """The estimated wait (s) of a request at ``position``: the running generation's
        expected rest, then one mean generation per request ahead of it."""
        if position <= 0:
            return 0.0
        running = self.running
        rest = 0.0
        if running is not None and running.started_at is not None:
            rest = max(0.0, self.mean_s - (self.clock() - running.started_at))
        return rest + (position - (1 if running is not None else 0)) * self.mean_s

    @contextmanager
    def ticket(self) -> Iterator[Ticket]:
        """Join the queue for the block: wait with :meth:`Ticket.moved` until
        :attr:`Ticket.ready`; leaving the block (done, failed or cancelled) gives the turn to
        the next request.

        Raises:
            ProviderRateLimited: ``max_waiting`` requests already wait (``retry_after_ms``:
                the estimated wait of the last).
        """
        if self.max_waiting and len(self.waiting) >= self.max_waiting:
            raise ProviderRateLimited(
                f"local: {len(self.waiting)} requests already wait for the model "
                "(providers.local.max_waiting)",
                retry_after_ms=round(self.eta_s(len(self.waiting) + 1) * 1000))
        ticket = Ticket(self)
        if self.running is None and not self.waiting:
            self._start(ticket)
        else:
            self.waiting.append(ticket)
        try:
            yield ticket
        finally:
            self._leave(ticket)

    def _start(self, ticket: Ticket) -> None:
        self.running = ticket
        ticket.started_at = self.clock()

    def _leave(self, ticket: Ticket) -> None:
        if ticket is self.running:
            assert ticket.started_at is not None
            self._measure(self.clock() - ticket.started_at)
            self.running = None
            if self.waiting:
                self._start(self.waiting.popleft())
        else:
            self.waiting.remove(ticket)
        if self.running is not None:
            self.running._wake()
        for waiting in self.waiting:
            waiting._wake()

    def _measure(self, duration_s: float) -> None:
        self.mean_s = duration_s if not self.measured else (
            self.mean_s + WEIGHT * (duration_s - self.mean_s))
        self.measured += 1
