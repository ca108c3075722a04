"""A minimal WebSocket client over a Trio socket, for the load generator (RFC 6455).

Only what the load needs: the opening handshake (section 4.1, no extensions), text frames in
(unmasked, possibly fragmented, section 5.4) and out (masked, section 5.3), pings answered,
a close frame ends :meth:`MiniWS.receive` with :class:`Closed`. No validation of the server's
handshake key, no UTF-8 checks: it talks to servers on 127.0.0.1 that the harness started.
It costs the load process far less per message than trio-websocket (wsproto's state machine
and events); ``python -m bench --client trio-websocket`` measures the difference.
"""

from __future__ import annotations

import base64
import os

import trio


class Closed(Exception):
    """The server sent a close frame or closed the connection."""


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65_536:
        head = bytes([0x80 | opcode, 0xFE]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0xFF]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    if not n:
        return head + mask
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + masked


class MiniWS:
    """An open connection: :meth:`connect`, then :meth:`send` / :meth:`receive` text."""

    def __init__(self, stream: trio.abc.Stream, buffered: bytes = b"") -> None:
        self.stream = stream
        self.buf = bytearray(buffered)

    @classmethod
    async def connect(cls, host: str, port: int, path: str,
                      rcvbuf: int | None = None) -> MiniWS:
        """Open ``ws://host:port/path``; raises :class:`ConnectionError` unless ``101``.
        ``rcvbuf``: the socket's receive buffer (``SO_RCVBUF``, set before connecting, so
        the window the server sees is small: a client that stops reading stops the server's
        writes soon)."""
        if rcvbuf is None:
            stream = await trio.open_tcp_stream(host, port)
        else:
            sock = trio.socket.socket()
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, rcvbuf)
            await sock.connect((host, port))
            stream = trio.SocketStream(sock)
        return await cls.over(stream, host, port, path)

    @classmethod
    async def over(cls, stream: trio.abc.Stream, host: str, port: int, path: str) -> MiniWS:
        """The opening handshake on an open ``stream`` (TCP, or a ``trio.SSLStream`` for
        ``wss://``); raises :class:`ConnectionError` unless ``101``."""
        key = base64.b64encode(os.urandom(16)).decode()
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            more = await stream.receive_some(65_536)
            if not more:
                raise ConnectionError("closed during the handshake")
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            await stream.aclose()
            raise ConnectionError(head[:300].decode(errors="replace"))
        return cls(stream, rest)

    async def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            more = await self.stream.receive_some(262_144)
            if not more:
                raise Closed("connection closed")
            self.buf += more

    async def receive(self) -> str:
        """The next text (or binary) message, decoded as UTF-8."""
        parts: list[bytes] = []
        while True:
            await self._fill(2)
            b0, n = self.buf[0], self.buf[1] & 0x7F
            offset = 2
            if n == 126:
                await self._fill(4)
                n, offset = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                await self._fill(10)
                n, offset = int.from_bytes(self.buf[2:10], "big"), 10
            await self._fill(offset + n)
            payload = bytes(self.buf[offset:offset + n])
            del self.buf[:offset + n]
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise Closed(payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                await self.stream.send_all(frame(0xA, payload))
            elif opcode != 0xA:
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    async def send(self, text: str) -> None:
        await self.stream.send_all(frame(0x1, text.encode()))

    async def aclose(self) -> None:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            try:
                await self.stream.send_all(frame(0x8, (1000).to_bytes(2, "big")))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await self.stream.aclose()
