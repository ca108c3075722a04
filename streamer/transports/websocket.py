"""WebSocket transport: ``GET /ws/stream/{session_id}``, one JSON object per text frame."""

from __future__ import annotations

from typing import Any

from quart import Websocket

from streamer.runtime.connection import Connection
from streamer.runtime.session import Session
from streamer.wire.codecs import encode_json
from streamer.wire.cursor import Cursor
from streamer.wire.events import Heartbeat

#: WebSocket close code for repeated invalid messages (RFC 6455 §7.4.1: policy violation)
CLOSE_POLICY_VIOLATION = 1008
#: the heartbeat frame (sent when the connection has been idle)
HEARTBEAT = encode_json(Heartbeat().to_json())


class WebSocketTransport:
    name = "websocket"

    def __init__(self, websocket: Websocket) -> None:
        self.websocket = websocket

    def encode(self, obj: dict[str, Any], event_id: str | None) -> str:
        return encode_json(obj)

    def heartbeat(self) -> str:
        return HEARTBEAT

    async def write(self, data: str | bytes) -> None:
        await self.websocket.send(data)

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)


async def serve_websocket(session: Session, websocket: Websocket,
                          resume: Cursor | None = None) -> None:
    """Serve an accepted WebSocket until either side closes it; ``resume`` continues a
    stream after the client's cursor (from the URL's ``stream_id``/``epoch``/``last_seq``).
    ``server.max_invalid_messages`` invalid messages in a row close it (1008)."""
    transport = WebSocketTransport(websocket)
    max_invalid = session.host.config.server.max_invalid_messages

    async def receive_controls(connection: Connection) -> None:
        invalid_in_a_row = 0
        while True:
            raw = await websocket.receive()
            if await connection.receive(raw):
                invalid_in_a_row = 0
                continue
            invalid_in_a_row += 1
            if invalid_in_a_row >= max_invalid:
                await websocket.close(CLOSE_POLICY_VIOLATION, "too many invalid messages")
                connection.cancel_scope.cancel()
                return

    await Connection(session, transport.name).serve(transport, receive_controls, resume=resume)
