"""Transports: what WebSocket and SSE connections share.

:func:`run_connection` owns one connection's nursery (the *connection* lifetime of
``docs/architecture.md``): a writer (the connection's only writer: encodes events, sends a
heartbeat when the connection has been idle for ``heartbeat_interval_s``, and puts a
``send_timeout_s`` deadline on every write, so a dead or stuck peer is noticed even where the
server cannot see the socket close, pgjones/hypercorn#210), the follower of the session's
streams, and the transport's control receiver if it has one.

Memory per connection: the outbox holds at most :data:`OUTBOX_EVENTS` events (a merged chunk
is at most one block of HTML), and a paused or slow client holds only its cursor into the
stream log: nothing else grows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from streamer.errors import InvalidMessage, PayloadTooLarge, StreamerError, UnsupportedProtocol
from streamer.sessions import Connection, Registry, Session
from streamer.wire.controls import parse_control
from streamer.wire.cursor import Cursor
from streamer.wire.events import Connected, Error

logger = logging.getLogger("streamer.transports")

#: events queued between a connection's tasks and its writer
OUTBOX_EVENTS = 16

#: WebSocket close code for a peer that could not keep up (IANA registry: "Try Again Later")
CLOSE_TOO_SLOW = 1013
#: the writer's "close now" sentinel
_CLOSE = None


class Transport(Protocol):
    """The few things a transport does differently."""

    name: str

    def encode(self, obj: dict[str, Any], event_id: str | None) -> str | bytes:
        """One event's JSON object as the transport's frame (``streamer.wire.codecs``)."""

    def heartbeat(self) -> str | bytes: ...

    async def write(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class PeerTooSlow(Exception):
    """A write or a queued event did not go through within ``send_timeout_s``."""


async def run_connection(registry: Registry, session: Session, transport: Transport,
                         receive_controls: Callable[[Connection], Awaitable[None]] | None = None,
                         *, resume: Cursor | None = None,
                         task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED
                         ) -> None:
    """Serve one connection until the peer leaves, is too slow, or the server closes it.

    Never raises for the connection's own failures (they are logged): a broken connection
    must not disturb the nursery it runs in.
    """
    config = registry.config.server
    send_channel, receive_channel = trio.open_memory_channel[
        tuple[dict[str, Any], str | None] | None](OUTBOX_EVENTS)

    #: why the peer was given up, whichever task noticed first (the other task may see only
    #: the broken channel the first one left behind)
    too_slow: list[PeerTooSlow] = []

    def give_up(reason: str) -> PeerTooSlow:
        too_slow.append(PeerTooSlow(reason))
        return too_slow[-1]

    async def queue_event(obj: dict[str, Any], event_id: str | None) -> None:
        try:
            with trio.fail_after(config.send_timeout_s):
                await send_channel.send((obj, event_id))
        except trio.TooSlowError as exc:
            raise give_up(f"outbox full for {config.send_timeout_s:g} s") from exc

    connection = Connection(session, transport.name, queue_event)
    connection.resume = resume

    async def writer() -> None:
        async with receive_channel:
            while True:
                with trio.move_on_after(config.heartbeat_interval_s) as idle:
                    item = await receive_channel.receive()
                if idle.cancelled_caught:
                    data = transport.heartbeat()
                elif item is _CLOSE:
                    await transport.close(1001, "server shutting down")
                    connection.cancel_scope.cancel()
                    return
                else:
                    data = transport.encode(*item)
                try:
                    with trio.fail_after(config.send_timeout_s):
                        await transport.write(data)
                except trio.TooSlowError as exc:
                    raise give_up(f"a write took over {config.send_timeout_s:g} s") from exc

    session.add_connection(connection)
    registry.live_connections.add(connection)
    try:
        async with trio.open_nursery() as nursery:  # the connection's nursery
            connection.cancel_scope = nursery.cancel_scope
            connection.close_outbox = send_channel
            connection.queued_events = lambda: send_channel.statistics().current_buffer_used
            nursery.start_soon(writer)
            await connection.send(Connected(
                session.session_id, connection.connection_id,
                round(config.heartbeat_interval_s * 1000), transport.name, resume is not None,
                registry.epoch), None)
            task_status.started(connection)
            nursery.start_soon(connection.follow)
            if receive_controls is not None:
                nursery.start_soon(receive_controls, connection)
    except Exception as exc:  # the nursery groups its tasks' errors; sort them by kind
        leaves = _leaves(exc)
        if too_slow:
            logger.info("connection %s closed: %s", connection.connection_id, too_slow[0])
            # best effort: a peer that reads nothing may not read this either (1013: try
            # again later, RFC 6455 §7.4.1 registry); the client resumes from its cursor
            with trio.move_on_after(1.0):
                try:
                    await transport.close(CLOSE_TOO_SLOW, "too slow; reconnect and resume")
                except Exception:
                    pass
        elif all(isinstance(e, trio.BrokenResourceError | trio.ClosedResourceError)
                 for e in leaves):
            logger.info("connection %s closed by peer: %r", connection.connection_id, exc)
        else:
            logger.exception("connection %s failed", connection.connection_id)
    finally:
        registry.live_connections.discard(connection)
        session.remove_connection(connection)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The non-group exceptions inside ``exc`` (itself if it is not a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def dispatch_control(connection: Connection, raw: str | bytes | dict[str, Any]) -> bool:
    """Parse and apply one control message; answer problems with an ``error`` event.

    Returns:
        ``True`` if the message was valid, ``False`` if it was an invalid message (the caller
        counts those to close abusive connections).
    """
    max_bytes = connection.registry.config.server.max_message_bytes
    sid = connection.session.session_id
    try:
        control = parse_control(raw, max_bytes)
    except (InvalidMessage, PayloadTooLarge, UnsupportedProtocol) as exc:
        await connection.send(Error.of(exc, session_id=sid), None)
        return False
    try:
        await connection.handle_control(control)
    except StreamerError as exc:
        await connection.send(Error.of(exc, session_id=sid), None)
    return True
