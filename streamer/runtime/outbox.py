"""A connection's outbox: the bounded queue between its tasks and its writer, the writer
itself, and the connection's clock (heartbeats, stuck writes). See
``runtime/connection.py`` for the connection that owns one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

from streamer.observability.metrics import Sent

#: events queued between a connection's tasks and its writer
OUTBOX_EVENTS = 16
#: WebSocket close code when the server closes (RFC 6455 §7.4.1: "going away")
CLOSE_GOING_AWAY = 1001


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
    clock (its one deadline: the heartbeat when idle, ``send_timeout_s`` while writing).

    Nothing on the per-frame path opens a cancel scope (a ``fail_after`` per write and a
    ``move_on_after`` per wait cost a quarter of the server's time at 500 streams, issue
    16): a put goes through at once unless the queue is full, the writer waits on the queue
    without a timeout, and :meth:`watch` (one task per connection, waking once per heartbeat
    interval or half a send timeout) queues heartbeats and gives up a stuck write.

    It also says when the writer has written everything (:meth:`ready`): a subscription
    takes new log entries only then, so while a peer or the event loop is slow the entries
    wait in the shared log and leave merged, as one frame, when the writer is free again
    (adaptive coalescing).

    Args:
        send_timeout_s: the longest a put (queue full) or a write may take; a stuck write
            is noticed between ``send_timeout_s`` and 1.5 times that.
    """

    def __init__(self, send_timeout_s: float) -> None:
        self.send_timeout_s = send_timeout_s
        #: events (JSON object, SSE id), ``HEARTBEAT_ITEM``, or the close code and reason
        self._send, self._receive = trio.open_memory_channel[
            tuple[dict[str, Any], str | None] | tuple[int, str] | None](OUTBOX_EVENTS)
        #: why the peer was given up, whichever task noticed first (the other task may see
        #: only the broken channel the first one left behind)
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

    def _give_up(self, reason: str) -> PeerTooSlow:
        self.too_slow.append(PeerTooSlow(reason))
        return self.too_slow[-1]

    def queued(self) -> int:
        """Events waiting for the writer."""
        return self._send.statistics().current_buffer_used

    def ready(self) -> bool:
        """Whether everything put has been written. If not, :attr:`on_ready` is called once
        it has (the subscription's wake-up)."""
        if self._unwritten == 0:
            return True
        self._wake_when_ready = True
        return False

    async def put(self, obj: dict[str, Any], event_id: str | None) -> None:
        """Queue one event. Raises :class:`PeerTooSlow` after ``send_timeout_s`` full."""
        self._unwritten += 1
        try:
            # the fast path does not yield: a subscription puts a frame's events and goes
            # on to wait, which is its checkpoint
            self._send.send_nowait((obj, event_id))
        except trio.WouldBlock:
            try:
                with trio.fail_after(self.send_timeout_s):
                    await self._send.send((obj, event_id))
            except BaseException as exc:
                self._unwritten -= 1
                if isinstance(exc, trio.TooSlowError):
                    raise self._give_up(
                        f"outbox full for {self.send_timeout_s:g} s") from exc
                raise
        except BaseException:
            self._unwritten -= 1
            # the writer is gone: if that is because the connection is being cancelled,
            # this task ends as cancelled too (as ``send`` would, checkpoint first), not
            # with a broken channel beside its siblings' cancellations
            await trio.lowlevel.checkpoint_if_cancelled()
            raise

    async def close(self, code: int = CLOSE_GOING_AWAY,
                    reason: str = "server shutting down") -> None:
        """After what is queued, the writer closes the connection with ``code`` (RFC 6455
        §7.4.1; SSE: the body ends)."""
        await self._send.send((code, reason))

    async def watch(self, heartbeat_s: float) -> None:
        """The connection's clock: queue a heartbeat when nothing was written for
        ``heartbeat_s``; give the peer up when a write takes over ``send_timeout_s``.

        Raises:
            PeerTooSlow: a write took longer than ``send_timeout_s``.
        """
        check_s = self.send_timeout_s / 2
        while True:
            now = trio.current_time()
            started = self._write_started
            if started is not None:
                if now - started >= self.send_timeout_s:
                    raise self._give_up(f"a write took over {self.send_timeout_s:g} s")
                await trio.sleep_until(min(started + self.send_timeout_s, now + check_s))
                continue
            due = self._last_write + heartbeat_s
            if now >= due and self._unwritten == 0:
                try:
                    self._send.send_nowait(None)
                    self._unwritten += 1
                except trio.WouldBlock:  # full: a write is coming anyway
                    pass
                due = now + heartbeat_s
            await trio.sleep_until(min(due, now + check_s))

    async def write_to(self, transport: Transport, sent: Sent | None = None,
                       on_heartbeat: Callable[[], None] | None = None) -> None:
        """The connection's only writer; returns once it closed the transport on request.
        ``sent`` counts the frames and bytes written (``/metrics``); ``on_heartbeat`` is
        told of each heartbeat written (the followed stream's trace)."""
        async with self._receive:
            while True:
                item = await self._receive.receive()
                if item is None:
                    data = transport.heartbeat()
                elif isinstance(item[0], int):
                    await transport.close(item[0], str(item[1]))
                    return
                else:
                    data = transport.encode(item[0], item[1])
                self._write_started = trio.current_time()
                await transport.write(data)
                self._write_started = None
                self._last_write = trio.current_time()
                self._unwritten -= 1
                if self._unwritten == 0 and self._wake_when_ready:
                    self._wake_when_ready = False
                    if self.on_ready is not None:
                        self.on_ready()
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
