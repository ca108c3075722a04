"""SSE transport: ``GET /api/sessions/{session_id}/events`` + ``POST …/control``
(:func:`apply_control`).

Each event is ``id:`` (``{stream_id}:{epoch}:{seq}`` for stream events), ``event:`` (the type) and
``data:`` (the JSON); a ``: ping`` comment is the heartbeat. The response body is an async
iterator over the connection's outbox; the connection's tasks run in the server nursery
under their own cancel scope, which the body cancels when Quart closes it (client gone), so no
nursery is ever held open across a ``yield`` (PEP 789).
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from streamer.errors import SessionNotFound
from streamer.runtime.connection import Connection
from streamer.runtime.session import Session
from streamer.wire.codecs import encode_sse, sse_comment
from streamer.wire.controls import Start, parse_control
from streamer.wire.cursor import Cursor

logger = logging.getLogger("streamer.transports.sse")

#: SSE frames buffered between the connection's writer and the HTTP response
BODY_BUFFER = 4


class SSETransport:
    name = "sse"

    def __init__(self, send_channel: trio.MemorySendChannel[bytes], retry_ms: int) -> None:
        self._send = send_channel
        self._retry_ms = retry_ms
        self._first = True

    def encode(self, obj: dict[str, Any], event_id: str | None) -> bytes:
        retry_ms = self._retry_ms if self._first else None  # once, before the first event
        self._first = False
        return encode_sse(obj, event_id, retry_ms=retry_ms)

    def heartbeat(self) -> bytes:
        return sse_comment("ping")

    async def write(self, data: str | bytes) -> None:
        await self._send.send(data if isinstance(data, bytes) else data.encode())

    async def close(self, code: int, reason: str) -> None:
        self._send.close()


class SSEBody:
    """The streaming response body of one SSE connection (an async iterator of bytes)."""

    def __init__(self, session: Session, resume: Cursor | None = None) -> None:
        self.session = session
        self.resume = resume
        self._send, self._receive = trio.open_memory_channel[bytes](BODY_BUFFER)
        self._scope = trio.CancelScope()
        self._started = False

    async def _run(self) -> None:
        transport = SSETransport(self._send, self.session.host.config.server.sse_retry_ms)
        with self._scope:
            try:
                await Connection(self.session, transport.name).serve(transport,
                                                                     resume=self.resume)
            finally:
                self._send.close()

    def __aiter__(self) -> SSEBody:
        return self

    async def __anext__(self) -> bytes:
        if not self._started:
            self._started = True
            self.session.host.start_task(self._run, "sse connection")
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Quart calls this when the response ends (client gone, or timeout)."""
        self._scope.cancel()
        self._receive.close()


async def apply_control(session: Session, connection_id: str | None, raw: bytes) -> None:
    """One control message POSTed for the session's SSE connections: the one named by
    ``connection_id``, else every one (a ``start`` goes to the first only). Each target's
    :class:`~streamer.runtime.control_gate.ControlGate` counts it before it is parsed
    (``docs/protocol.md``, "Limits on control messages"); answers arrive on the event stream.

    Raises:
        SessionNotFound: no such connection in the session (HTTP 404).
        ControlRateLimited: over a target's rate (429 ``rate_limited``, ``Retry-After``).
        InvalidMessage, PayloadTooLarge, UnsupportedProtocol: a malformed message (400, 413).
        StreamerError: the session refused it (queue full, unknown stream, draining).
    """
    connections = [c for c in session.connections if isinstance(c, Connection)
                   and (connection_id is None or c.connection_id == connection_id)]
    if not connections:
        raise SessionNotFound(f"no connection {connection_id} in session {session.session_id}")
    for connection in connections:
        connection.gate.admit()
    control = parse_control(raw, connections[0].json_limits)
    targets = connections[:1] if isinstance(control, Start) else connections
    with trio.fail_after(session.host.config.server.send_timeout_s):
        for connection in targets:
            await connection.handle_control(control)
