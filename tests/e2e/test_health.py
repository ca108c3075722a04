"""Health checks for a load balancer (issue 18): ``/healthz`` says the process is alive,
``/readyz`` whether it takes new work: 503 while it starts (the providers' warm-up) and while
it drains after SIGTERM, 200 in between."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypercorn.trio import serve as hypercorn_serve
from trio_websocket import open_websocket_url

from streamer.runtime.registry import Registry
from streamer.server import hypercorn_config
from streamer.web.app import create_app
from tests.conftest import LiveServer, create_session, make_config
from tests.e2e.test_logs import spawn, start


async def until_ready(client: httpx.AsyncClient, ready: bool = True,
                      timeout_s: float = 10) -> None:
    """Poll ``/readyz`` until it says ``ready`` (200) or not (503)."""
    with trio.fail_after(timeout_s):
        # the server's state, asked over HTTP: nothing here could set an Event
        while ((await client.get("/readyz")).status_code == 200) != ready:  # noqa: ASYNC110
            await trio.sleep(0.02)


async def probe(client: httpx.AsyncClient) -> tuple[int, dict[str, Any], int]:
    """``(readyz status, its body, healthz status)``."""
    ready = await client.get("/readyz")
    alive = await client.get("/healthz")
    return ready.status_code, ready.json(), alive.status_code


@pytest.mark.config(**{"policy.providers": ("echo",), "providers.default": "echo"})
async def test_a_running_server_is_alive_and_ready(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        await until_ready(client)
        status, body, alive = await probe(client)
        ready = await client.get("/readyz")
    assert (status, body, alive) == (200, {"ready": True, "state": "ready"}, 200)
    assert ready.headers["Cache-Control"] == "no-store"


async def test_not_ready_until_the_providers_are_warm(nursery: trio.Nursery) -> None:
    """The app serves while its providers warm up (imports, clients): ``/readyz`` says 503
    ``starting`` until that is over, ``/healthz`` 200 all along."""
    config = make_config()
    registry = Registry(config)
    warm_called, release = trio.Event(), trio.Event()

    async def slow_warm(names: Any) -> None:
        warm_called.set()
        await release.wait()

    registry.providers.warm = slow_warm  # type: ignore[method-assign]
    stop = trio.Event()
    binds = await nursery.start(partial(hypercorn_serve, create_app(config, registry),
                                        hypercorn_config(config), shutdown_trigger=stop.wait))
    async with httpx.AsyncClient(base_url=binds[0]) as client:
        with trio.fail_after(10):
            await warm_called.wait()
            starting = await probe(client)
        release.set()
        await until_ready(client)
    stop.set()
    assert starting == (503, {"ready": False, "state": "starting"}, 200)


async def test_not_ready_while_draining_after_sigterm(tmp_path: Path) -> None:
    """SIGTERM with a stream running: from then on ``/readyz`` is 503 ``draining`` (a load
    balancer sends nothing new) while ``/healthz`` stays 200 and the stream gets the drain
    time; then the stream is told ``server_shutting_down`` and the process exits cleanly."""
    with spawn(tmp_path, STREAMER_SERVER_DRAIN_TIMEOUT_S="3") as server:
        session_id = await create_session(server.base_url)
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            await until_ready(client)
            async with open_websocket_url(f"{server.ws_url}/ws/stream/{session_id}") as ws:
                await ws.get_message()  # connected
                await ws.send_message(start("x" * 400, 1, 50))  # 20 s of answer
                while json.loads(await ws.get_message())["type"] != "chunk":
                    pass
                server.process.send_signal(signal.SIGTERM)
                await until_ready(client, ready=False, timeout_s=2)
                draining = await probe(client)
                healthz = (await client.get("/healthz")).json()
                refused = await client.post(f"/api/sessions/{session_id}/complete",
                                            json={"type": "start", "prompt": "hi"})
                with trio.fail_after(10):
                    while (ev := json.loads(await ws.get_message()))["type"] != "error":
                        pass
        exit_status = server.process.wait(timeout=20)
    assert draining == (503, {"ready": False, "state": "draining"}, 200)
    assert healthz == {"ok": True, "draining": True}
    assert (refused.status_code, refused.json()["code"]) == (503, "server_shutting_down")
    assert ev["code"] == "server_shutting_down"
    assert exit_status == 0
