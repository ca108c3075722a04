"""A connection's outbox: the bounded queue between its tasks and its writer, the writer
itself, and the connections' clock (heartbeats, stuck writes: one task for all the outboxes
of a process, not one per connection). See ``runtime/connection.py`` for the connection that
owns one."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

import trio

from streamer.observability.metrics import Sent
from streamer.runtime.waiter import Waiter

#: events queued between a connection's tasks and its writer
OUTBOX_EVENTS = 16
#: WebSocket close code when the server closes (RFC 6455 §7.4.1: "going away")
CLOSE_GOING_AWAY = 1001
#: the clock gives the other tasks a turn after this many outboxes handled in a row
CLOCK_BATCH = 256

#: an outbox's item: an event (JSON object, SSE id), ``None`` (a heartbeat), or the close
#: code and reason
Item = tuple[dict[str, Any], str | None] | tuple[int, str] | None


class Transport(Protocol):
    """What a connection needs of its socket (``transports/``: framing only)."""

    name: str

    def encode(self, obj: dict[str, Any], event_id: str | None) -> str | bytes:
        """One event's JSON object as the transport's frame (``streamer.wire.codecs``)."""

    def heartbeat(self) -> str | bytes:
        """The frame sent when the connection has been idle."""

    async def write(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class PeerTooSlow(Exception):
    """A write or a queued event did not go through within ``send_timeout_s``."""


class Outbox:
    """The bounded queue between a connection's tasks and its writer, and the connection's
    deadline on the connections' clock (:class:`Clock`: the heartbeat when idle,
    ``send_timeout_s`` while writing).

    Nothing on the per-frame path opens a cancel scope (a ``fail_after`` per write and a
    ``move_on_after`` per wait cost a quarter of the server's time at 500 streams, issue
    16): a put goes through at once unless the queue is full, the writer waits on the queue
    without a timeout, and the clock (one task for every outbox of the process, woken at
    the earliest of their deadlines) queues heartbeats and gives up a stuck write. An idle
    connection holds no task of its own for this (issue 16: memory per idle connection):
    the queue is a list and a :class:`~streamer.runtime.waiter.Waiter`, not a memory
    channel; a put that finds it full waits on a parking lot made then.

    It also says when the writer has written everything (:meth:`ready`): a subscription
    takes new log entries only then, so while a peer or the event loop is slow the entries
    wait in the shared log and leave merged, as one frame, when the writer is free again
    (adaptive coalescing).

    Args:
        send_timeout_s: the longest a put (queue full) or a write may take; a stuck write
            is noticed between ``send_timeout_s`` and 1.5 times that.
    """

    __slots__ = (
        "_alarm_at",
        "_check_at",
        "_clock",
        "_closed",
        "_heartbeat_s",
        "_items",
        "_last_write",
        "_on_alarm",
        "_on_stuck",
        "_space",
        "_unwritten",
        "_wake",
        "_wake_when_ready",
        "_write_started",
        "on_ready",
        "send_timeout_s",
        "too_slow",
    )

    def __init__(self, send_timeout_s: float) -> None:
        self.send_timeout_s = send_timeout_s
        #: queued items, oldest first (at most :data:`OUTBOX_EVENTS`, and a heartbeat)
        self._items: list[Item] = []
        #: the writer's wake-up
        self._wake = Waiter()
        #: puts waiting for room (made when the queue is first full)
        self._space: trio.lowlevel.ParkingLot | None = None
        #: the writer is gone: puts raise ``trio.BrokenResourceError``
        self._closed = False
        #: why the peer was given up, whichever task noticed first (the other task may see
        #: only the broken outbox the first one left behind)
        self.too_slow: list[PeerTooSlow] = []
        #: events put and not yet written
        self._unwritten = 0
        #: when the write in progress started (``None``: none in progress)
        self._write_started: float | None = None
        #: when the last write ended (or the outbox was made)
        self._last_write = trio.current_time()
        #: told once the writer has written everything, if someone asked :meth:`ready`
        self.on_ready: Callable[[], None] | None = None
        self._wake_when_ready = False
        #: the clock this outbox is on (:meth:`start_clock`), and when it looks at it next
        self._clock: Clock | None = None
        self._check_at = math.inf
        self._heartbeat_s = math.inf
        self._on_stuck: Callable[[], None] | None = None
        #: the connection's own alarm (:meth:`set_alarm`)
        self._alarm_at = math.inf
        self._on_alarm: Callable[[], None] | None = None

    def _give_up(self, reason: str) -> PeerTooSlow:
        self.too_slow.append(PeerTooSlow(reason))
        return self.too_slow[-1]

    def queued(self) -> int:
        """Events waiting for the writer."""
        return len(self._items)

    def ready(self) -> bool:
        """Whether everything put has been written. If not, :attr:`on_ready` is called once
        it has (the subscription's wake-up)."""
        if self._unwritten == 0:
            return True
        self._wake_when_ready = True
        return False

    async def put(self, obj: dict[str, Any], event_id: str | None) -> None:
        """Queue one event. Raises :class:`PeerTooSlow` after ``send_timeout_s`` full, and
        ``trio.BrokenResourceError`` once the writer is gone."""
        # the fast path does not yield: a subscription puts a frame's events and goes on to
        # wait, which is its checkpoint
        if self._closed or len(self._items) >= OUTBOX_EVENTS:
            await self._wait_for_room(give_up=True)
        self._items.append((obj, event_id))
        self._unwritten += 1
        self._wake.wake()

    async def _wait_for_room(self, give_up: bool) -> None:
        """Wait until the queue has room; ``give_up``: for ``send_timeout_s`` at most."""
        if self._space is None:
            self._space = trio.lowlevel.ParkingLot()
        try:
            with trio.fail_after(self.send_timeout_s if give_up else math.inf):
                while len(self._items) >= OUTBOX_EVENTS and not self._closed:
                    await self._space.park()
        except trio.TooSlowError as exc:
            raise self._give_up(f"outbox full for {self.send_timeout_s:g} s") from exc
        if self._closed:
            # the writer is gone: if that is because the connection is being cancelled,
            # this task ends as cancelled too (checkpoint first), not with a broken outbox
            # beside its siblings' cancellations
            await trio.lowlevel.checkpoint_if_cancelled()
            raise trio.BrokenResourceError("the connection's writer is gone")

    async def close(self, code: int = CLOSE_GOING_AWAY,
                    reason: str = "server shutting down") -> None:
        """After what is queued, the writer closes the connection with ``code`` (RFC 6455
        §7.4.1; SSE: the body ends)."""
        if self._closed or len(self._items) >= OUTBOX_EVENTS:
            await self._wait_for_room(give_up=False)
        self._items.append((code, reason))
        self._wake.wake()

    def shut(self) -> None:
        """The writer is gone (or never came): puts fail, the clock forgets this outbox."""
        self._closed = True
        self._items.clear()
        self._check_at = math.inf
        self._on_stuck = self.on_ready = self._on_alarm = None
        if self._space is not None:
            self._space.unpark_all()

    # ------------------------------------------------------------------ the clock

    def start_clock(self, heartbeat_s: float, on_stuck: Callable[[], None]) -> None:
        """Put this outbox on the process's :class:`Clock`: a heartbeat is queued when
        nothing was written for ``heartbeat_s``; ``on_stuck`` is called (and
        :attr:`too_slow` says why) when a write takes over ``send_timeout_s``."""
        self._clock = Clock.current()
        self._heartbeat_s, self._on_stuck = heartbeat_s, on_stuck
        self._clock.at(self._last_write + heartbeat_s, self)

    def set_alarm(self, when: float, fn: Callable[[], None] | None) -> None:
        """Call ``fn`` at ``when`` (trio time) from the clock, instead of any alarm set
        before (``fn=None``: none); the connection's idle timeout without a task of its own.
        Needs :meth:`start_clock` first."""
        self._alarm_at, self._on_alarm = when, fn
        if self._clock is not None and when < self._check_at:
            self._clock.at(when, self)

    def _next(self, when: float) -> None:
        assert self._clock is not None
        self._clock.at(min(when, self._alarm_at), self)

    def _tick(self, now: float) -> None:
        """The clock's look at this outbox (due at :attr:`_check_at`)."""
        if self._closed or self._clock is None:
            return
        if now >= self._alarm_at:
            alarm, self._on_alarm, self._alarm_at = self._on_alarm, None, math.inf
            if alarm is not None:
                alarm()
        started = self._write_started
        if started is not None:
            if now - started >= self.send_timeout_s:
                self._give_up(f"a write took over {self.send_timeout_s:g} s")
                if self._on_stuck is not None:
                    self._on_stuck()
                self._check_at = math.inf
                return
            # look again at the write's deadline, or sooner if a heartbeat may fall due
            # before it: the write may end at once, and the connection then idle
            self._next(min(started + self.send_timeout_s, now + self._heartbeat_s))
            return
        due = self._last_write + self._heartbeat_s
        if now >= due:
            if self._unwritten == 0:  # (else a write is coming anyway)
                self._items.append(None)
                self._unwritten += 1
                self._wake.wake()
            due = now + self._heartbeat_s
        self._next(due)

    # ------------------------------------------------------------------ the writer

    async def write_to(self, transport: Transport, sent: Sent | None = None,
                       on_heartbeat: Callable[[], None] | None = None) -> None:
        """The connection's only writer; returns once it closed the transport on request.
        ``sent`` counts the frames and bytes written (``/metrics``); ``on_heartbeat`` is
        told of each heartbeat written (the followed stream's trace)."""
        items = self._items
        try:
            while True:
                while not items:
                    await self._wake.wait()
                item = items.pop(0)
                if self._space is not None:
                    self._space.unpark()
                if item is None:
                    data = transport.heartbeat()
                elif isinstance(item[0], int):
                    await transport.close(item[0], str(item[1]))
                    return
                else:
                    data = transport.encode(item[0], item[1])
                await self._write(transport, data)
                if item is None:
                    if on_heartbeat is not None:
                        on_heartbeat()
                    if sent is not None:
                        sent.heartbeat(data)
                elif sent is not None:
                    sent.event(data)
                # the last frame (a stream_complete holds the whole answer) must not outlive
                # its write in this frame: a closed connection's frames can stay referenced
                # from a cancellation's traceback until a full garbage collection
                item, data = None, b""
        finally:
            self.shut()

    async def _write(self, transport: Transport, data: str | bytes) -> None:
        """One write, under the clock's eye (a deadline at ``send_timeout_s``, noticed by
        1.5 times that)."""
        started = self._write_started = trio.current_time()
        if self._clock is not None and \
                self._check_at > started + 1.5 * self.send_timeout_s:
            self._clock.at(started + self.send_timeout_s, self)
        await transport.write(data)
        self._write_started = None
        self._last_write = trio.current_time()
        self._unwritten -= 1
        if self._unwritten == 0 and self._wake_when_ready:
            self._wake_when_ready = False
            if self.on_ready is not None:
                self.on_ready()


class Clock:
    """The connections' clock: one task (a Trio system task, made on first use in each
    ``trio.run``) for every outbox, instead of a task per connection (issue 16: memory per
    idle connection). Outboxes are kept in a heap by when each is due next; a deadline that
    moved is re-pushed, and an entry that is no longer an outbox's next deadline is skipped
    when it comes up.
    """

    __slots__ = ("_heap", "_order", "_wake")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Outbox]] = []
        self._wake = Waiter()
        self._order = itertools.count()

    @staticmethod
    def current() -> Clock:
        """The clock of the running ``trio.run`` (started on first use)."""
        try:
            return _CLOCK.get()
        except LookupError:
            clock = Clock()
            _CLOCK.set(clock)
            trio.lowlevel.spawn_system_task(clock.run, name="streamer: connections' clock")
            return clock

    def at(self, when: float, outbox: Outbox) -> None:
        """Look at ``outbox`` at ``when`` (trio time), instead of when it was due."""
        outbox._check_at = when
        heapq.heappush(self._heap, (when, next(self._order), outbox))
        if self._heap[0][2] is outbox:
            self._wake.wake()

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        heap = self._heap
        while True:
            if not heap:
                await self._wake.wait()
                continue
            if heap[0][0] > trio.current_time():
                with trio.move_on_at(heap[0][0]):
                    await self._wake.wait()
                continue
            now = trio.current_time()
            for _ in range(CLOCK_BATCH):
                if not heap or heap[0][0] > now:
                    break
                when, _, outbox = heapq.heappop(heap)
                if outbox._check_at == when:
                    outbox._tick(now)
            await trio.lowlevel.checkpoint()


_CLOCK: trio.lowlevel.RunVar[Clock] = trio.lowlevel.RunVar("streamer.outbox.clock")
