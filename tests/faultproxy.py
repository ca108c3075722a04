"""A TCP proxy on 127.0.0.1 that cuts connections abruptly at chosen byte offsets.

Tests put it between a client and the real server to drop a connection at a random point of
the server's byte stream: between events, inside an event, inside a WebSocket frame or an
SSE ``data:`` line. The cut closes both sockets at once (with ``SO_LINGER`` 0, so the peer
sees a reset, as when a laptop sleeps or a NAT forgets the flow).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import trio


@dataclass
class FaultProxy:
    port: int
    #: byte offsets (server → client) at which the next connections are cut, one each;
    #: a connection with no planned cut is never cut
    cuts: list[int] = field(default_factory=list)
    connections: int = 0
    cut_count: int = 0


def _reset(stream: trio.SocketStream) -> None:
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


@asynccontextmanager
async def fault_proxy(target_port: int) -> AsyncIterator[FaultProxy]:
    """Serve a proxy to ``127.0.0.1:target_port``; yields it with its own ``port``."""
    proxy = FaultProxy(0)
    async with trio.open_nursery() as nursery:

        async def handle(client: trio.SocketStream) -> None:
            proxy.connections += 1
            cut = proxy.cuts.pop(0) if proxy.cuts else None
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", target_port)
            except OSError:
                await client.aclose()
                return
            async with client, upstream, trio.open_nursery() as pair:

                async def up() -> None:
                    try:
                        while data := await client.receive_some(65536):
                            await upstream.send_all(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                    pair.cancel_scope.cancel()

                async def down() -> None:
                    sent = 0
                    try:
                        while data := await upstream.receive_some(65536):
                            if cut is not None and sent + len(data) >= cut:
                                await client.send_all(data[:max(0, cut - sent)])
                                proxy.cut_count += 1
                                _reset(client)
                                _reset(upstream)
                                break
                            await client.send_all(data)
                            sent += len(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                    pair.cancel_scope.cancel()

                pair.start_soon(up)
                pair.start_soon(down)

        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()

