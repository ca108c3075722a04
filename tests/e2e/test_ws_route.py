"""The streaming WebSocket is served before Quart (issue 16, memory per idle connection):
``GET /ws/stream/{session_id}`` under the app's ``root_path`` goes straight to streamer's
ASGI handler; every other scope, any other WebSocket path included, still reaches Quart and
gets the answer it got before (Quart refuses a WebSocket to a path it does not route with
400, and one from a foreign ``Origin`` with the guard's 403)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
import trio
from hypercorn.middleware.dispatcher import TrioDispatcherMiddleware
from hypercorn.trio import serve as hypercorn_serve
from quart import websocket
from trio_websocket import ConnectionRejected, open_websocket_url

import streamer
from streamer.server import hypercorn_config
from streamer.web.app import create_app
from streamer.web.ws_route import local_path
from tests.conftest import create_session, make_config

ECHO = {"policy.providers": ("echo",), "providers.default": "echo"}
FOREIGN = [("Origin", "https://evil.example")]


async def connected(url: str, headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The first event of a WebSocket to ``url``."""
    with trio.fail_after(10):
        async with open_websocket_url(url, extra_headers=headers) as ws:
            first: dict[str, Any] = json.loads(await ws.get_message())
    return first


async def rejected(url: str, headers: list[tuple[str, str]] | None = None
                   ) -> ConnectionRejected:
    """The refusal of a WebSocket handshake to ``url``."""
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(url, extra_headers=headers):
            pass
    return refused.value


async def test_the_stream_socket_skips_quart_and_other_paths_still_reach_it(
        nursery: trio.Nursery) -> None:
    config = make_config(**ECHO)
    app = create_app(config)
    quart_saw: list[str] = []

    async def seen() -> None:
        quart_saw.append(websocket.path)

    app.before_websocket_funcs[None].insert(0, seen)  # before the guard's

    stop = trio.Event()
    binds = await nursery.start(partial(hypercorn_serve, app, hypercorn_config(config),
                                        shutdown_trigger=stop.wait))
    base, ws = binds[0], "ws" + binds[0][4:]
    sid = await create_session(base)
    first = await connected(f"{ws}/ws/stream/{sid}?last_seq=nope")
    other = await rejected(f"{ws}/ws/other/{sid}")
    deeper = await rejected(f"{ws}/ws/stream/{sid}/more")
    foreign_other = await rejected(f"{ws}/ws/other/{sid}", FOREIGN)
    foreign_stream = await rejected(f"{ws}/ws/stream/{sid}", FOREIGN)
    stop.set()
    assert first["type"] == "error" and first["code"] == "invalid_message"  # the bad cursor
    assert (other.status_code, deeper.status_code) == (400, 400)  # Quart's, as before
    assert foreign_other.status_code == 403
    assert foreign_stream.status_code == 403
    assert json.loads(foreign_stream.body or b"")["code"] == "forbidden"
    assert quart_saw == [f"/ws/other/{sid}", f"/ws/stream/{sid}/more", f"/ws/other/{sid}"]


async def test_the_stream_socket_moves_with_the_root_path(nursery: trio.Nursery) -> None:
    config = make_config(**{**ECHO, "server.root_path": "/chat/"})
    app = streamer.Streamer(config)
    stop = trio.Event()
    binds = await nursery.start(partial(app.serve, shutdown_trigger=stop.wait))
    base, ws = binds[0], "ws" + binds[0][4:]
    sid = await create_session(base + "/chat")
    first = await connected(f"{ws}/chat/ws/stream/{sid}")
    outside = await rejected(f"{ws}/ws/stream/{sid}")
    stop.set()
    assert (first["type"], first["session_id"]) == ("connected", sid)
    assert outside.status_code == 400  # Quart's answer outside the prefix, as before


async def test_the_stream_socket_works_mounted_in_another_app(nursery: trio.Nursery) -> None:
    """Mounted with hypercorn's dispatcher (``docs/embedding.md``): the mount's prefix is the
    ``root_path``, the path stays whole."""
    config = make_config(**ECHO)
    app = streamer.Streamer(config)
    asgi = TrioDispatcherMiddleware({"/streamer": app.create_app()})
    stop = trio.Event()
    binds = await nursery.start(partial(app.serve, asgi, shutdown_trigger=stop.wait))
    base, ws = binds[0], "ws" + binds[0][4:]
    sid = await create_session(base + "/streamer")
    first = await connected(f"{ws}/streamer/ws/stream/{sid}")
    stop.set()
    assert (first["type"], first["session_id"]) == ("connected", sid)


@pytest.mark.parametrize(("path", "root", "local"), [
    ("/ws/stream/abc", "", "/ws/stream/abc"),
    ("/chat/ws/stream/abc", "/chat", "/ws/stream/abc"),
    ("/ws/stream/abc", "/chat", None),  # outside the prefix: Quart refuses it
    ("/chat", "/chat", None),
    ("http://h/ws/stream/abc", "", "/ws/stream/abc"),  # an absolute request target
])
def test_the_local_path_is_what_quart_routes(path: str, root: str, local: str | None) -> None:
    assert local_path({"path": path, "root_path": root}) == local
