"""One reader following one stream: log cursor → :class:`~.pacer.Pacer` → :func:`~.merge.
merge_entries` → ``send``. The Trio loop around the pure parts, and nothing else.

A subscription knows the stream only through :class:`Followed` (its ids, its log, its
``stream_start``, its snapshot) and the connection only through ``send``; the runtime creates
it (``runtime/connection.py``), registers it with the stream and the registry, and runs it.

Order of what it sends: ``stream_start``; a ``snapshot`` if it starts without a cursor (a late
joiner, a resume gap); the log's entries after the cursor, paced and merged (each with its SSE
id ``{stream_id}:{epoch}:{seq}``), with a ``progress`` event at most every
``progress_interval_s`` while the numbers change; at the end a last ``progress``, the
stream's ``error`` if it failed, and its ``stream_complete`` (SSE id ``…:{last_seq + 1}``).

It wakes on a new entry or the end (the log calls :meth:`Wakeable.wake`), on a control
(:meth:`pause` …), or at the pacer's next deadline. A stream that was stopped
(``finish_reason: cancelled``) shows what it has at once (the pacer skips).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from streamer.delivery.merge import merge_entries
from streamer.delivery.pacer import Pacer
from streamer.log.stream_log import LogCursor, StreamLog
from streamer.wire.cursor import event_id
from streamer.wire.events import DeliveryState, Progress, ServerEvent, Snapshot, StreamStart

#: sends one event and its SSE id (``None``: the event is not part of the stream's sequence)
SendEvent = Callable[[ServerEvent, str | None], Awaitable[None]]


class Followed(Protocol):
    """What a subscription needs of the stream it follows (the runtime's ``Stream``)."""

    @property
    def session_id(self) -> str: ...

    @property
    def stream_id(self) -> str: ...

    @property
    def log(self) -> StreamLog: ...

    def start_event(self, *, resumed: bool = False) -> StreamStart:
        """The stream's ``stream_start`` for a subscriber."""

    def snapshot(self) -> tuple[int, list[str]]:
        """``(seq, blocks)``: the document as of the latest ``seq``."""

    def on_subscriber_progress(self) -> None:
        """A subscriber delivered more (the stream's backpressure may let go)."""


class Wakeable(Protocol):
    """A re-armable wake-up flag (``runtime.waiter.Waiter``)."""

    #: while set, a new log entry does not wake the flag (other wakes do)
    entries_muted: bool

    def wake(self) -> None: ...

    def wake_for_entry(self) -> None: ...

    async def wait(self, deadline: float = math.inf) -> None:
        """Until woken, or until ``deadline`` (Trio's clock, s)."""


class Subscription:
    """Deliver one stream to one connection, paced.

    Args:
        stream: the stream followed.
        after_seq: the last ``seq`` the client has (``0``: from the start), or ``None`` to
            begin with a ``snapshot`` of the document so far.
        pacer: this subscription's pacer (its mode and rate from ``start.pacing``).
        send: the connection's send.
        waiter: the flag this loop waits on (the log wakes it).
        epoch: the server's epoch (stamped on every sequenced event).
        frame_interval_s: the least time between frames now (it rises under load).
        progress_interval_s: the least time between two ``progress`` events.
        resumed: the client already has this stream (its ``stream_start`` says so).
        reader_id: who reads (the connection's id, for the stream's trace).
        on_gap: told the time (s) between two of the stream's events (chunks, reasoning,
            tool calls) handed to ``send`` while the reader streams (not across a pause):
            the metrics' inter-chunk gap histogram.
        ready: whether the connection has written all it was given (``None``: always). New
            entries are taken only then; until then they wait in the log and leave merged
            when the connection wakes :attr:`waiter` (adaptive coalescing: a slow peer or
            a busy server gets fewer, fuller frames).
    """

    def __init__(self, stream: Followed, after_seq: int | None, *, pacer: Pacer,
                 send: SendEvent, waiter: Wakeable, epoch: str,
                 frame_interval_s: Callable[[], float], progress_interval_s: float,
                 resumed: bool = False, reader_id: str = "",
                 on_gap: Callable[[float], None] | None = None,
                 ready: Callable[[], bool] | None = None) -> None:
        self.stream = stream
        self.log = stream.log
        self.with_snapshot = after_seq is None
        self.cursor: LogCursor = self.log.cursor(after_seq or 0)
        self.pacer = pacer
        self.waiter = waiter
        self.epoch = epoch
        self.resumed = resumed
        self.reader_id = reader_id
        self._send = send
        self._frame_interval_s = frame_interval_s
        self._progress_interval_s = progress_interval_s
        self._last_progress: tuple[int, int, bool] | None = None
        self._on_gap = on_gap
        #: when the last event went out (``None``: none since the start or a pause)
        self._last_delivery: float | None = None
        self._ready = ready
        #: entries wait for the connection's writer (it wakes :attr:`waiter`)
        self._blocked = False

    @property
    def delivered_total(self) -> int:
        """The document's visible characters delivered so far (backpressure counts them)."""
        return self.cursor.total_chars

    # ------------------------------------------------------------------ controls

    def pause(self) -> DeliveryState:
        self.pacer.pause()
        self._last_delivery = None
        self.waiter.wake()
        return "paused"

    def resume(self) -> DeliveryState:
        self.pacer.resume(trio.current_time())
        self.waiter.wake()
        return "resumed"

    def skip(self) -> DeliveryState:
        self.pacer.skip()
        self.waiter.wake()
        return "skipping"

    def speed(self, cps: float) -> DeliveryState:
        self.pacer.set_cps(cps, trio.current_time())
        self.waiter.wake()
        return "paused" if self.pacer.paused else "skipping" if self.pacer.skipping \
            else "streaming"

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Deliver the stream to the connection, paced, then its terminal events.

        Waits between frames are the waiter's, with the pacer's deadline on the process's
        timers (``runtime/timers.py``): no cancel scope per frame (a scope expiry per frame
        kept the default pacing seconds behind at 250 streams, issue 16).
        """
        await self._begin()
        next_progress = trio.current_time()
        while True:
            await self._deliver_due()
            if self.cursor.at_end:
                break
            next_progress = await self._progress(next_progress)
            deadline = self._deadline(next_progress)
            # entries already pending: a new one changes nothing until the deadline (the
            # pacer's, the next progress event's) or the writer's readiness, so it does not
            # wake the loop
            self.waiter.entries_muted = self._blocked or self.cursor.has_pending
            try:
                await self.waiter.wait(deadline)
            finally:
                self.waiter.entries_muted = False
        await self._end()

    async def _begin(self) -> None:
        stream = self.stream
        await self._send(stream.start_event(resumed=self.resumed), None)
        if self.with_snapshot:
            seq, blocks = stream.snapshot()
            self.cursor = self.log.cursor(seq)
            await self._send(Snapshot(stream.session_id, stream.stream_id, seq, self.epoch,
                                      blocks), event_id(stream.stream_id, self.epoch, seq))

    async def _deliver_due(self) -> None:
        """Send what the pacer lets through now, merged."""
        log, pacer, cursor = self.log, self.pacer, self.cursor
        pacer.set_frame_interval(self._frame_interval_s())
        pacer.on_received(log.total_chars, done=log.finished)
        complete = log.complete
        if complete is not None and complete.finish_reason == "cancelled" \
                and not pacer.skipping:
            pacer.skip()  # a stopped stream shows what it has at once
        if not cursor.has_pending:
            return
        self._blocked = self._ready is not None and not self._ready()
        if self._blocked:
            return
        count = pacer.take(trio.current_time(), cursor.pending_chars())
        if not count:
            return
        stream_id, epoch = self.stream.stream_id, self.epoch
        for ev in merge_entries(cursor.take(count), self.stream.session_id, stream_id, epoch):
            seq = ev.seq
            assert seq is not None  # merged events are stamped
            if self._on_gap is not None:
                self._gap()
            await self._send(ev, event_id(stream_id, epoch, seq))
        self.stream.on_subscriber_progress()

    def _gap(self) -> None:
        """Tell ``on_gap`` the time since the previous event of the stream went out."""
        assert self._on_gap is not None
        now = trio.current_time()
        if self._last_delivery is not None:
            self._on_gap(now - self._last_delivery)
        self._last_delivery = now

    async def _progress(self, next_progress: float) -> float:
        """A ``progress`` event when one is due and the numbers changed (none before the
        model's first output: the ``stream_start`` said all there is); the next due time."""
        now = trio.current_time()
        if now < next_progress:
            return next_progress
        progress = self._progress_event()
        if not progress.received_chars and not progress.generation_done:
            return next_progress  # nothing to report yet (the first chunk goes first)
        key = (progress.received_chars, progress.delivered_chars, progress.generation_done)
        if key != self._last_progress:
            self._last_progress = key
            await self._send(progress, None)
        return now + self._progress_interval_s

    def _progress_event(self, *, final: bool = False) -> Progress:
        """The pacer's numbers as a ``progress`` event (``final``: all of it delivered)."""
        p = self.pacer.progress()
        if final:
            return Progress(self.stream.session_id, self.stream.stream_id, p.received_chars,
                            p.delivered_chars, 0, 0, True)
        return Progress(self.stream.session_id, self.stream.stream_id, p.received_chars,
                        p.delivered_chars, p.backlog_chars, p.eta_ms, p.generation_done)

    def _deadline(self, next_progress: float) -> float:
        """Until when to wait for a new entry or a control: the pacer's deadline or the
        next progress event (``inf``: until woken).

        The progress event has a deadline of its own only while entries wait for the pacer:
        unpaced, with nothing pending, its numbers change only with a new entry, which
        wakes the loop anyway (so an unpaced stream waits without a timer); while the
        writer is busy, it wakes the loop when done.
        """
        if self._blocked:
            return math.inf
        deadline = self.pacer.next_deadline(self.cursor.has_pending)
        if deadline is None:
            # paused with entries pending (muted): the next progress event still says what
            # arrived meanwhile; nothing pending: a new entry wakes the loop
            return next_progress if self.cursor.has_pending and self._last_progress \
                is not None else math.inf
        if self._last_progress is not None:
            deadline = min(deadline, next_progress)
        return deadline

    async def _end(self) -> None:
        stream, log = self.stream, self.log
        await self._send(self._progress_event(final=True), None)
        if log.error is not None:
            await self._send(log.error, None)
        assert log.complete is not None
        # its id's seq is last_seq + 1: "all of it, the end included" (protocol.md)
        await self._send(log.complete, event_id(stream.stream_id, self.epoch,
                                                log.last_seq + 1))
