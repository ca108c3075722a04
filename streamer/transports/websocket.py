"""WebSocket transport: ``GET /ws/stream/{session_id}``, one JSON object per text frame."""

from __future__ import annotations

from typing import Any

from quart import Websocket

from streamer.runtime.connection import Connection
from streamer.runtime.session import Session
from streamer.wire.codecs import encode_json
from streamer.wire.cursor import Cursor
from streamer.wire.events import Heartbeat

#: WebSocket close code for a client that broke the control-message limits (RFC 6455 §7.4.1:
#: policy violation; ``docs/protocol.md``, "Limits on control messages")
CLOSE_POLICY_VIOLATION = 1008
#: WebSocket close code when a limit is reached (IANA registry: "Try Again Later")
CLOSE_TRY_AGAIN_LATER = 1013
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


async def _frame(websocket: Websocket) -> str | bytes:
    """The next frame's data: ``str`` (text frame) or ``bytes`` (binary frame). Quart hands
    an empty binary frame over as ``None`` (``event.get("bytes") or event["text"]``)."""
    data: str | bytes | None = await websocket.receive()
    return b"" if data is None else data


async def serve_websocket(session: Session, websocket: Websocket,
                          resume: Cursor | None = None) -> None:
    """Serve an accepted WebSocket until either side closes it; ``resume`` continues a
    stream after the client's cursor (from the URL's ``stream_id``/``epoch``/``last_seq``).

    Each frame is one control message (:meth:`Connection.receive`: a binary frame is
    ``invalid_message``). The ``server.max_invalid_messages``-th invalid or over-rate message
    within ``server.invalid_messages_window_s`` is answered with its ``error``, then the
    socket is closed with 1008 and nothing more is read."""
    transport = WebSocketTransport(websocket)

    async def receive_controls(connection: Connection) -> None:
        while await connection.receive(await _frame(websocket)):
            pass
        await connection.close_after(None, CLOSE_POLICY_VIOLATION,
                                     "too many invalid or over-rate messages")

    await Connection(session, transport.name).serve(transport, receive_controls, resume=resume)
