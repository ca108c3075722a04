"""The ceiling: two bare servers that send one WebSocket message per token (issue 16).

``python -m bench.bare ws PORT``: trio-websocket alone; ``python -m bench.bare asgi PORT``: a
bare ASGI app on hypercorn's Trio worker (the stack streamer runs on, without quart or
streamer); ``python -m bench.bare quart PORT``: a bare quart-trio app on hypercorn (the
idle-memory floor, ``bench/bare_idle.py``). All bind 127.0.0.1 and answer a text message
``"N"`` with ``N`` messages of four characters, then ``"done"``; nothing else. The harness
starts them pinned to the server's core.
"""

from __future__ import annotations

import sys
from typing import Any

import trio

TOKEN = "abcd"


async def serve_trio_websocket(port: int) -> None:
    from trio_websocket import WebSocketRequest, serve_websocket

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                count = int(await ws.get_message())
                for _ in range(count):
                    await ws.send_message(TOKEN)
                await ws.send_message("done")
        except Exception:  # the client went away
            return

    print(f"listening on {port}", flush=True)
    await serve_websocket(handler, "127.0.0.1", port, ssl_context=None)


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare ASGI WebSocket app (ASGI spec, "WebSocket" scope)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            for _ in range(int(event["text"])):
                await send({"type": "websocket.send", "text": TOKEN})
            await send({"type": "websocket.send", "text": "done"})
        else:
            return


def quart_app() -> Any:
    """The bare quart-trio app: one WebSocket route (any path) speaking the same protocol."""
    from quart import websocket
    from quart_trio import QuartTrio

    app = QuartTrio("bare")

    @app.websocket("/")
    @app.websocket("/<path:rest>")
    async def ws(rest: str = "") -> None:
        while True:
            for _ in range(int(await websocket.receive())):
                await websocket.send(TOKEN)
            await websocket.send("done")

    return app


async def serve_hypercorn(port: int, app: Any = asgi_app) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    print(f"listening on {port}", flush=True)
    await serve(app, config)


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "ws":
        trio.run(serve_trio_websocket, port)
    else:
        trio.run(serve_hypercorn, port, quart_app() if kind == "quart" else asgi_app)
