"""A connection: one client socket to a session (the *connection* lifetime of
``docs/architecture.md``), whatever its transport.

The connection owns its nursery and everything in it (:meth:`Connection.serve`):

- its **outbox** (:class:`Outbox`): events queued between its tasks and its writer, at most
  :data:`OUTBOX_EVENTS`; a put that waits longer than ``send_timeout_s`` gives the peer up;
- its **writer**, the only task that writes to the socket: it encodes events (the transport's
  framing), sends a **heartbeat** when the connection has been idle for
  ``heartbeat_interval_s``, and each write has a ``send_timeout_s`` deadline, so a dead or
  stuck peer is noticed even where the server cannot see the socket close
  (pgjones/hypercorn#210); a peer given up is closed with 1013 and may resume. The
  heartbeats and the deadlines are kept by the process's one clock task
  (:class:`~streamer.runtime.outbox.Clock`), not by a task per connection;
- the **follower** of the session's streams (:meth:`Connection.follow`): one subscription at a
  time (``delivery/subscription.py``), from a resume cursor if it has one (``log/resume.py``);
- the transport's control receiver, if it has one (:meth:`Connection.receive`): each message
  passes its :class:`~streamer.runtime.control_gate.ControlGate` (rate, strikes), is decoded
  within ``[server]``'s JSON limits, and is applied through a table (:data:`CONTROLS`).

Memory per connection: the outbox holds at most :data:`OUTBOX_EVENTS` events (a merged chunk
is at most one block of HTML), and a paused or slow client holds only its cursor into the
stream log: nothing else grows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from streamer.delivery.pacer import Pacer
from streamer.delivery.subscription import Subscription
from streamer.errors import (
    InvalidMessage,
    PayloadTooLarge,
    ResumeGap,
    StreamerError,
    StreamNotFound,
    UnsupportedProtocol,
    leaves,
)
from streamer.log import resume
from streamer.observability.logs import bind_log_context
from streamer.persistence import MessageRecord
from streamer.runtime.control_gate import ControlGate, ControlRateLimited
from streamer.runtime.outbox import (  # noqa: F401 - Outbox and PeerTooSlow re-exported
    CLOSE_GOING_AWAY,
    OUTBOX_EVENTS,
    Outbox,
    PeerTooSlow,
    Transport,
)
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream, new_id
from streamer.runtime.waiter import Waiter
from streamer.wire.codecs import JSONLimits
from streamer.wire.controls import (
    Control,
    Pause,
    Ping,
    QueueMove,
    QueueRemove,
    Resume,
    ResumeFrom,
    Skip,
    Speed,
    Start,
    Stop,
    parse_control,
)
from streamer.wire.cursor import Cursor, event_id
from streamer.wire.events import (
    Connected,
    DeliveryState,
    Error,
    Pong,
    ServerEvent,
    Snapshot,
    State,
    StreamComplete,
    StreamStart,
)

logger = logging.getLogger("streamer.runtime")

#: a ``progress`` event at most once per this many frame intervals: under load (frames
#: further apart) progress events thin out with the frames
PROGRESS_FRAMES = 8
#: WebSocket close code for a peer that could not keep up (IANA registry: "Try Again Later")
CLOSE_TOO_SLOW = 1013

#: delivers one event's JSON object and its SSE id (``None``: not part of a stream's sequence)
SendFn = Callable[[dict[str, Any], str | None], Awaitable[None]]
#: what a client's malformed or refused control message raises: an ``error`` and a strike
REFUSED = (InvalidMessage, PayloadTooLarge, UnsupportedProtocol, ControlRateLimited)


class Connection:
    """One client connection (WebSocket, SSE, or a test's recorder) to a session.

    Args:
        session: the session it follows.
        transport: the transport's name (``websocket``, ``sse``), for ``connected`` and info.
        send: where events go (their JSON object and SSE id). ``None``: the connection's own
            outbox, written by :meth:`serve`'s writer.
    """

    def __init__(self, session: Session, transport: str, send: SendFn | None = None) -> None:
        self.session = session
        self.host = session.host
        self.transport = transport
        self.connection_id = new_id("c")
        self.outbox: Outbox | None = None
        if send is None:
            self.outbox = Outbox(session.host.config.server.send_timeout_s)
            send = self.outbox.put
        self._send = send
        #: the subscription delivering now, and the stream it follows
        self.subscription: Subscription | None = None
        self.stream: Stream | None = None
        #: where to resume following (from the URL, or a ``resume`` control with a cursor)
        self.resume: Cursor | None = None
        self._follow_scope: trio.CancelScope | None = None
        #: the connection's nursery (:meth:`serve`), and whether its follower task runs
        self._nursery: trio.Nursery | None = None
        self._following = False
        #: waits for the session's first stream while nothing is followed yet
        self._first_stream: FirstStream | None = None
        #: cancelling it ends the connection's tasks
        self.cancel_scope = trio.CancelScope()
        server = session.host.config.server
        #: the limits on this connection's control messages
        self.gate = ControlGate(self.connection_id, server,
                                on_limit=session.host.metrics.limit_hit)
        self.json_limits = JSONLimits.of(server)

    @property
    def session_id(self) -> str:
        return self.session.session_id

    def info(self) -> dict[str, Any]:
        """What this connection holds: its cursor and queued events (memory is bounded by
        the outbox; a paused or slow client keeps only its cursor into the shared log)."""
        sub = self.subscription
        return {"connection_id": self.connection_id, "transport": self.transport,
                "stream_id": sub.stream.stream_id if sub else None,
                "seq": sub.cursor.seq if sub else None,
                "paused": sub.pacer.paused if sub else False,
                "queued_events": self.outbox.queued() if self.outbox is not None else 0}

    async def send(self, ev: ServerEvent, event_id: str | None) -> None:
        """Send one event (its JSON object, with its SSE id)."""
        await self._send(ev.to_json(), event_id)

    async def close_after(self, ev: ServerEvent | None, code: int = CLOSE_GOING_AWAY,
                          reason: str = "server shutting down") -> None:
        """Send ``ev`` (if any) after what is queued, then close the connection with ``code``
        (without an outbox, if its writer is gone already (the peer left while the server
        drains), or if that takes over ``send_timeout_s``: end it at once)."""
        with trio.move_on_after(self.host.config.server.send_timeout_s):
            try:
                if ev is not None:
                    await self.send(ev, None)
                if self.outbox is not None:
                    await self.outbox.close(code, reason)
                    return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        self.cancel_scope.cancel()

    # ------------------------------------------------------------------ the lifetime

    async def serve(self, transport: Transport,
                    receive_controls: Callable[[Connection], Awaitable[None]] | None = None,
                    *, resume: Cursor | None = None,
                    task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Serve the connection until the peer leaves, is too slow, or the server closes it.

        Never raises for the connection's own failures (they are logged): a broken connection
        must not disturb the nursery it runs in.
        """
        assert self.outbox is not None, "serve() writes through the connection's own outbox"
        outbox, session, config = self.outbox, self.session, self.host.config.server
        self.resume = resume
        bind_log_context(session_id=session.session_id, connection_id=self.connection_id)
        session.add_connection(self)
        self.host.connection_opened(self)
        # the clock queues heartbeats and gives a stuck write up (cancelling the nursery)
        outbox.start_clock(config.heartbeat_interval_s, self.cancel_scope.cancel)
        try:
            with self.cancel_scope:
                try:
                    async with trio.open_nursery() as nursery:  # the connection's nursery
                        nursery.start_soon(self._write, transport)
                        await self.send(Connected(
                            session.session_id, self.connection_id,
                            round(config.heartbeat_interval_s * 1000), transport.name,
                            resume is not None, self.host.epoch), None)
                        task_status.started(self)
                        self._nursery = nursery
                        self._follow_when_needed()
                        if receive_controls is not None:  # in this task: one task fewer
                            await receive_controls(self)
                finally:  # before the goodbye (up to 1 s): nothing may start in it now
                    self._forget_nursery()
            if outbox.too_slow:  # a stuck write: the clock cancelled the connection
                await self._ended_by(None, transport, outbox.too_slow)
        except Exception as exc:  # the nursery groups its tasks' errors; sort them by kind
            await self._ended_by(exc, transport, outbox.too_slow)
        finally:
            outbox.shut()
            self._forget_nursery()
            self.gate.release()
            self.host.connection_closed(self)
            session.remove_connection(self)

    def _forget_nursery(self) -> None:
        """The connection's nursery is closed (or closing): no follower starts in it."""
        self._nursery = None
        if self._first_stream is not None:
            self.session.watchers.discard(self._first_stream)
            self._first_stream = None

    async def _write(self, transport: Transport) -> None:
        assert self.outbox is not None
        await self.outbox.write_to(transport, self.host.metrics.sent_by(transport.name),
                                   self._heartbeat)
        self.cancel_scope.cancel()  # closed on request: the connection is over

    def _heartbeat(self) -> None:
        """A heartbeat went out: the stream this connection follows records it."""
        if self.stream is not None and self.stream.state != "done":
            self.stream.record("heartbeat", connection=self.connection_id)

    async def _ended_by(self, exc: Exception | None, transport: Transport,
                        too_slow: list[PeerTooSlow]) -> None:
        if too_slow:
            self.host.metrics.limit_hit("server.send_timeout_s")
            logger.info("connection %s closed: %s", self.connection_id, too_slow[0])
            # best effort: a peer that reads nothing may not read this either (1013: try
            # again later, RFC 6455 §7.4.1 registry); the client resumes from its cursor
            with trio.move_on_after(1.0):
                try:
                    await transport.close(CLOSE_TOO_SLOW, "too slow; reconnect and resume")
                except Exception:
                    pass
        elif exc is None:
            return
        elif all(isinstance(e, trio.BrokenResourceError | trio.ClosedResourceError)
                 for e in leaves(exc)):
            logger.info("connection %s closed by peer: %r", self.connection_id, exc)
        else:
            logger.exception("connection %s failed", self.connection_id)

    # ------------------------------------------------------------------ following

    def _follow_when_needed(self) -> None:
        """Start the follower task now if there is something to follow (a resume cursor, a
        stream started or queued), else once the session's first stream starts or a
        ``resume`` control comes: an idle connection holds no follower task (issue 16,
        memory per idle connection); its idle timeout is an alarm on the clock."""
        session = self.session
        if self.resume is not None or session.started or session.busy:
            self._start_follower()
            return
        self._first_stream = FirstStream(self)
        session.watchers.add(self._first_stream)
        idle_s = self.host.config.limits.idle_connection_timeout_s
        if idle_s > 0 and self.outbox is not None:
            self.outbox.set_alarm(trio.current_time() + idle_s, self._idle_alarm)

    def _start_follower(self) -> None:
        if self._following or self._nursery is None:
            return
        self._following = True
        if self._first_stream is not None:
            self.session.watchers.discard(self._first_stream)
            self._first_stream = None
        if self.outbox is not None:
            self.outbox.set_alarm(math.inf, None)
        self._nursery.start_soon(self.follow)

    def _idle_alarm(self) -> None:
        """``limits.idle_connection_timeout_s`` passed with nothing followed: close, unless
        a stream is queued (then follow it)."""
        if self.session.busy:
            self._start_follower()
        elif not self._following and self._nursery is not None:
            self._nursery.start_soon(self._close_idle)

    async def follow(self) -> None:
        """Follow the session's streams in the order they started, for the connection's life.

        A connection that arrives during a stream joins it late (a ``snapshot``, then live
        events); every later stream is delivered from its first ``seq``, even if this
        connection is still busy with an earlier one (paused, slow) when it starts. With a
        resume cursor (:attr:`resume`, or a ``resume`` control with one, which restarts
        following), the cursor's stream continues exactly after its ``seq``, or after a
        ``resume_gap`` error and a ``snapshot`` when that cannot be exact (protocol.md,
        "Resume").
        """
        # started lazily, from whichever task woke it: its records name this connection
        bind_log_context(session_id=self.session.session_id, connection_id=self.connection_id)
        while True:
            cursor, self.resume = self.resume, None
            with trio.CancelScope() as scope:
                self._follow_scope = scope
                await self._follow(cursor)
                return
            if not scope.cancelled_caught:  # pragma: no cover - the scope's own cancel only
                return

    async def _follow(self, cursor: Cursor | None) -> None:
        session = self.session
        waiter = Waiter()
        session.watchers.add(waiter)
        index = max(0, len(session.started) - 1)
        first_after: int | None = None  # where the first stream starts: None = snapshot
        resumed = False
        if cursor is not None:
            index, first_after, resumed = await self._resume_point(cursor)
        first = True
        try:
            while True:
                if index >= len(session.started):
                    if await self._idle_out(waiter):
                        return
                    continue
                stream = session.started[index]
                index += 1
                after_seq: int | None = 0
                if first and (cursor is not None or stream.log.last_seq):
                    after_seq = first_after
                await self.deliver(stream, after_seq, first and resumed)
                first = False
        finally:
            session.watchers.discard(waiter)

    async def _idle_out(self, waiter: Waiter) -> bool:
        """Wait for the session's next stream; ``True`` when none came (and none is queued)
        within ``limits.idle_connection_timeout_s``: the connection is then closed (1001,
        "idle"; the client reconnects when it has something to ask)."""
        idle_s = self.host.config.limits.idle_connection_timeout_s
        with trio.move_on_after(idle_s if idle_s > 0 else math.inf):
            await waiter.wait()
            return False
        if self.session.busy:
            return False
        await self._close_idle()
        return True

    async def _close_idle(self) -> None:
        bind_log_context(session_id=self.session.session_id, connection_id=self.connection_id)
        idle_s = self.host.config.limits.idle_connection_timeout_s
        self.host.metrics.limit_hit("limits.idle_connection_timeout_s")
        logger.info("connection %s closed: idle for %g s", self.connection_id, idle_s)
        await self.close_after(None, CLOSE_GOING_AWAY, "idle")

    async def deliver(self, stream: Stream, after_seq: int | None, resumed: bool) -> None:
        """Follow one stream to its end: a :class:`Subscription`, registered while it runs.

        ``after_seq``: the last ``seq`` the client has, or ``None`` for a snapshot first.
        """
        host = self.host
        pacing, defaults = stream.request.pacing, host.config.pacing
        pacer = Pacer(pacing.mode or defaults.mode, pacing.cps or defaults.cps,
                      max_lag_s=defaults.max_lag_s, frame_interval_s=host.frame_interval_s(),
                      min_cps=defaults.min_cps, max_cps=defaults.max_cps)
        sub = Subscription(stream, after_seq, pacer=pacer, send=self.send, waiter=Waiter(),
                           epoch=stream.epoch or host.epoch,
                           frame_interval_s=host.frame_interval_s,
                           progress_interval_s=max(defaults.progress_interval_ms / 1000,
                                                   PROGRESS_FRAMES * host.frame_interval_s()),
                           resumed=resumed, reader_id=self.connection_id,
                           on_gap=host.metrics.chunk_gap.observe,
                           ready=self.outbox.ready if self.outbox is not None else None)
        if self.outbox is not None:
            self.outbox.on_ready = sub.waiter.wake
        stream.attach(sub)
        self.subscription, self.stream = sub, stream
        host.subscription_started()
        try:
            await sub.run()
        finally:
            host.subscription_ended()
            if self.subscription is sub:
                self.subscription, self.stream = None, None
            stream.detach(sub)

    async def _resume_point(self, cursor: Cursor) -> tuple[int, int | None, bool]:
        """Where following starts for a resume cursor (:func:`~streamer.log.resume.plan`):
        ``(index in session.started, the first stream's after_seq (None = snapshot),
        resumed)``; sends what the plan says before that (``resume_gap``, a stored answer,
        ``stream_not_found``)."""
        session, host = self.session, self.host
        sid = session.session_id
        stream = await host.resumable(session, cursor.stream_id, cursor.last_seq)
        started = stream if stream is not None and stream in session.started else None
        record = None
        if host.store is not None and stream is None:
            record = await host.store.message(cursor.stream_id)
        decision = resume.plan(cursor, started.log if started is not None else None,
                               (started.epoch or host.epoch) if started else host.epoch, record,
                               session.key)
        outcome = RESUME_OUTCOMES[type(decision)]
        host.metrics.resume(outcome)
        if outcome != "exact":
            host.metrics.error("stream_not_found" if outcome == "not_found" else "resume_gap")
        if isinstance(decision, resume.Exact):
            assert started is not None
            index = session.started.index(started)
            if decision.ended:
                return index + 1, 0, False  # the client has all of it: on to later streams
            started.record("resumed", connection=self.connection_id, seq=cursor.last_seq)
            return index, cursor.last_seq, True
        if isinstance(decision, resume.Gap):
            assert started is not None
            started.record("resume_gap", connection=self.connection_id, seq=cursor.last_seq)
            await self.send(Error.of(ResumeGap(
                f"cannot replay stream {cursor.stream_id} after seq {cursor.last_seq}:"
                f" {decision.why}; a snapshot follows"), session_id=sid,
                stream_id=cursor.stream_id), None)
            return session.started.index(started), None, True
        if isinstance(decision, resume.Stored):
            assert record is not None
            await self._send_stored(record)
            return 0, 0, False
        await self.send(Error.of(StreamNotFound(
            f"no stream {cursor.stream_id} in session {sid} to resume"),
            session_id=sid, stream_id=cursor.stream_id), None)
        return max(0, len(session.started) - 1), None, False

    async def _send_stored(self, record: MessageRecord) -> None:
        """A stream of an earlier server process (or forgotten): its stored answer."""
        sid, epoch, stream_id = self.session.session_id, self.host.epoch, record.message_id
        await self.send(Error.of(ResumeGap(
            f"stream {stream_id} is not in this server's memory; the stored answer "
            "follows as a snapshot"), session_id=sid, stream_id=stream_id), None)
        await self.send(StreamStart(sid, stream_id, record.provider, record.model,
                                    resumed=True), None)
        await self.send(Snapshot(sid, stream_id, record.last_seq, epoch, record.blocks or []),
                        event_id(stream_id, epoch, record.last_seq))
        await self.send(StreamComplete(sid, stream_id,
                                       record.finish_reason or "error",  # type: ignore[arg-type]
                                       record.html or "", record.markdown, record.usage,
                                       record.message_id, None),
                        event_id(stream_id, epoch, record.last_seq + 1))

    # ------------------------------------------------------------------ controls

    async def receive(self, raw: str | bytes | dict[str, Any]) -> bool:
        """Admit, parse and apply one control message from the client's socket; answer
        problems with an ``error`` event (``docs/protocol.md``, "Limits on control messages").

        Args:
            raw: a text frame (JSON), or an object; bytes are a binary frame, which is
                ``invalid_message`` (control messages are JSON text).

        Returns:
            ``False`` once this message made ``server.max_invalid_messages`` strikes (invalid
            or over-rate messages) within ``server.invalid_messages_window_s``: the caller
            closes the connection (1008), after the ``error`` queued here. Else ``True``.
        """
        sid = self.session.session_id
        try:
            self.gate.admit()
            if isinstance(raw, bytes):
                raise InvalidMessage(f"a binary frame of {len(raw)} bytes: control messages "
                                     "are JSON text frames")
            control = parse_control(raw, self.json_limits)
        except REFUSED as exc:
            self.host.metrics.error(exc.code)
            await self.send(Error.of(exc, session_id=sid), None)
            return not self.gate.strike()
        try:
            await self.handle_control(control)
        except StreamerError as exc:
            self.host.metrics.error(exc.code)
            await self.send(Error.of(exc, session_id=sid), None)
        return True

    async def handle_control(self, control: Control) -> None:
        """Apply one parsed control message from this connection (:data:`CONTROLS`).

        Raises:
            StreamerError: the session refused it (queue full, unknown stream, draining).
        """
        await CONTROLS[type(control)](self, control)

    async def _on_start(self, control: Start) -> None:
        session = self.session
        stream = await session.start(control)
        if stream.queued_behind:
            await self.send(stream.start_event(position=session.queue_position(stream)), None)

    async def _on_stop(self, control: Stop) -> None:
        stream = self.session.stop(control.stream_id)
        if stream is not None:
            await stream.stop_confirmed()

    async def _on_ping(self, control: Ping) -> None:
        await self.send(Pong(self.session.session_id, control.ts), None)

    async def _on_queue_remove(self, control: QueueRemove) -> None:
        await self.session.queue_control("queue_remove", control.stream_id)

    async def _on_queue_move(self, control: QueueMove) -> None:
        await self.session.queue_control("queue_move", control.stream_id, control.position)

    async def _on_delivery(self, control: Pause | Resume | Skip | Speed) -> None:
        """``pause``, ``resume``, ``skip``, ``speed``: the current subscription's pacing."""
        sid = self.session.session_id
        sub, stream = self.subscription, self.stream
        if sub is None or stream is None:
            # nothing to deliver now; tell the client where it stands
            await self.send(State(sid, "streaming", None), None)
            return
        state = DELIVERY[type(control)](sub, control)
        stream.record("control", connection=self.connection_id, state=state)
        await self.send(State(sid, state, sub.pacer.cps, stream.stream_id), None)

    async def _on_resume_from(self, control: ResumeFrom) -> None:
        """Restart following from the client's cursor (the current subscription ends)."""
        self.resume = control.cursor
        if self._follow_scope is not None:
            self._follow_scope.cancel()
        self._start_follower()  # (if it was not following yet)


class FirstStream:
    """A connection's watch on its session (in ``Session.watchers``) while it follows
    nothing: the session's next stream starts the connection's follower."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def wake(self) -> None:
        self.connection._start_follower()


#: each resume plan's outcome label (``/metrics``)
RESUME_OUTCOMES: dict[type, str] = {resume.Exact: "exact", resume.Gap: "gap",
                                    resume.Stored: "stored", resume.NotFound: "not_found"}

#: the delivery controls: what each does to the current subscription, and the state it answers
DELIVERY: dict[type, Callable[[Subscription, Any], DeliveryState]] = {
    Pause: lambda sub, control: sub.pause(),
    Resume: lambda sub, control: sub.resume(),
    Skip: lambda sub, control: sub.skip(),
    Speed: lambda sub, control: sub.speed(control.cps),
}

#: the control table: each control's handler (``handle_control``)
CONTROLS: dict[type, Callable[[Connection, Any], Awaitable[None]]] = {
    Start: Connection._on_start,
    Stop: Connection._on_stop,
    Ping: Connection._on_ping,
    QueueRemove: Connection._on_queue_remove,
    QueueMove: Connection._on_queue_move,
    Pause: Connection._on_delivery,
    Resume: Connection._on_delivery,
    Skip: Connection._on_delivery,
    Speed: Connection._on_delivery,
    ResumeFrom: Connection._on_resume_from,
}
