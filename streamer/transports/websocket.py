"""WebSocket transport: ``GET /ws/stream/{session_id}``, one JSON object per text frame.

The socket is the ASGI server's (hypercorn) WebSocket as ASGI messages, handled without a
framework in between (:class:`ASGIWebSocket`; the route is ``streamer.web.ws_route``): the
ASGI spec 2.3, "WebSocket" (``websocket.connect``/``accept``/``receive``/``send``/``close``/
``disconnect``, and the ``websocket.http.response`` extension for a refusal before the
upgrade), as hypercorn's ``protocol/ws_stream.py`` speaks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

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
#: RFC 6455 §7.4.1: normal closure (a handler that ends without closing)
CLOSE_NORMAL = 1000
#: the heartbeat frame (sent when the connection has been idle)
HEARTBEAT = encode_json(Heartbeat().to_json())

#: an ASGI ``receive``/``send`` callable (ASGI spec 3.0, "Applications")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class PeerGone(Exception):
    """The peer left: the ASGI server said ``websocket.disconnect``."""


class ASGIWebSocket:
    """One WebSocket as ASGI messages (the scope's ``receive`` and ``send``).

    Sends after the peer left are dropped by hypercorn (``WSStream.app_send``), so a writer
    never fails on a gone peer; the reader learns it from :meth:`receive`.
    """

    __slots__ = ("_receive", "_send", "accepted", "closed", "http_responses")

    def __init__(self, receive: Receive, send: Send, http_responses: bool = False) -> None:
        self._receive = receive
        self._send = send
        #: whether the server takes ``websocket.http.response`` (the scope's ``extensions``)
        self.http_responses = http_responses
        self.accepted = False
        self.closed = False

    async def accept(self, subprotocol: str | None) -> None:
        """Complete the handshake (101), selecting ``subprotocol`` (one the client offered,
        or ``None``)."""
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol,
                          "headers": []})
        self.accepted = True

    async def refuse(self, status: int, headers: Iterable[tuple[bytes, bytes]],
                     body: bytes) -> None:
        """Refuse the handshake with an HTTP response (the ``websocket.http.response``
        extension), or, where the server lacks it, with a bare 403 (``websocket.close``
        before ``accept``)."""
        self.closed = True
        if not self.accepted and self.http_responses:
            await self._send({"type": "websocket.http.response.start", "status": status,
                              "headers": list(headers)})
            await self._send({"type": "websocket.http.response.body", "body": body,
                              "more_body": False})
        else:
            await self._send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})

    async def receive_connect(self) -> bool:
        """Wait for the handshake's ``websocket.connect`` (the first message, ASGI spec);
        ``False``: another message came (a server that breaks the spec).

        Raises:
            PeerGone: the peer left first.
        """
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise PeerGone(message.get("code"))
        return bool(message["type"] == "websocket.connect")

    async def receive(self) -> str | bytes:
        """The next message's data: ``str`` (a text frame) or ``bytes`` (a binary frame).

        Raises:
            PeerGone: the peer closed the connection (or it broke).
        """
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data: bytes | None = message.get("bytes")
                return data if data is not None else message.get("text") or ""
            if kind == "websocket.disconnect":
                self.closed = True
                raise PeerGone(message.get("code"))
            # "websocket.connect" was taken before accept; nothing else is defined

    async def send(self, data: str | bytes) -> None:
        """One text (``str``) or binary (``bytes``) message."""
        if isinstance(data, str):
            await self._send({"type": "websocket.send", "text": data})
        else:
            await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str = "") -> None:
        """Close the connection with ``code`` (RFC 6455 §7.4) and ``reason`` (once)."""
        if self.closed:
            return
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class WebSocketTransport:
    name = "websocket"

    def __init__(self, websocket: ASGIWebSocket) -> None:
        self.websocket = websocket

    def encode(self, obj: dict[str, Any], event_id: str | None) -> str:
        return encode_json(obj)

    def heartbeat(self) -> str:
        return HEARTBEAT

    async def write(self, data: str | bytes) -> None:
        await self.websocket.send(data)

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)


async def serve_websocket(session: Session, websocket: ASGIWebSocket,
                          resume: Cursor | None = None) -> None:
    """Serve an accepted WebSocket until either side closes it; ``resume`` continues a
    stream after the client's cursor (from the URL's ``stream_id``/``epoch``/``last_seq``).

    Each frame is one control message (:meth:`Connection.receive`: a binary frame is
    ``invalid_message``). The ``server.max_invalid_messages``-th invalid or over-rate message
    within ``server.invalid_messages_window_s`` is answered with its ``error``, then the
    socket is closed with 1008 and nothing more is read. The peer leaving ends the
    connection (its tasks are cancelled)."""
    transport = WebSocketTransport(websocket)

    async def receive_controls(connection: Connection) -> None:
        try:
            while await connection.receive(await websocket.receive()):
                pass
        except PeerGone:
            connection.cancel_scope.cancel()
            return
        await connection.close_after(None, CLOSE_POLICY_VIOLATION,
                                     "too many invalid or over-rate messages")

    await Connection(session, transport.name).serve(transport, receive_controls, resume=resume)
