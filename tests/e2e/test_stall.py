"""Nothing one client sends stalls another (issue 15): while heavy inputs are being handled,
another stream's frames keep arriving with no gap over 100 ms and ``/healthz`` answers
within 100 ms."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.conftest import LiveServer, create_session

#: what the watcher may see at most between two frames, and /healthz may take (s)
MAX_GAP_S = 0.100
HEAVY_RENDERS = [
    "[" * 1_000_000,                      # unclosed link labels
    "[a](" * 250_000,                     # unclosed link destinations
    "_a " * 330_000,                      # emphasis that never closes
    "*" * 1_000_000,
]


async def watch_while(server: LiveServer, heavy: Callable[[], Awaitable[None]]
                      ) -> tuple[float, float, int]:
    """Stream an ``echo`` answer (a frame every ~20 ms) on one session while ``heavy`` runs
    on another client; ``(largest frame gap, slowest /healthz, frames seen)`` during it."""
    sid = await create_session(server.base_url)
    text = "word " * 4_000
    gaps: list[float] = []
    health: list[float] = []
    done = trio.Event()

    async def probe(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            t0 = trio.current_time()
            assert (await client.get("/healthz")).status_code == 200
            health.append(trio.current_time() - t0)
            await trio.sleep(0.05)

    async with open_websocket_url(f"{server.ws_url}/ws/stream/{sid}") as ws:
        assert json.loads(await ws.get_message())["type"] == "connected"
        await ws.send_message(json.dumps({
            "type": "start", "prompt": text, "provider": "echo", "pacing": {"mode": "off"},
            "echo": {"delta_chars": 4, "interval_ms": 20}}))
        while json.loads(await ws.get_message())["type"] != "chunk":
            pass
        async with trio.open_nursery() as nursery, httpx.AsyncClient(
                base_url=server.base_url, timeout=60) as client:

            async def run_heavy() -> None:
                await heavy()
                done.set()

            nursery.start_soon(run_heavy)
            nursery.start_soon(probe, client)
            last = trio.current_time()
            while not done.is_set():
                ev = json.loads(await ws.get_message())
                now = trio.current_time()
                gaps.append(now - last)
                last = now
                assert ev["type"] != "stream_complete", "the answer ended before the load"
    return max(gaps), max(health), len(gaps)


async def test_heavy_renders_stall_no_other_stream(live_server: LiveServer) -> None:
    async def renders() -> None:
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=60) as client:
            for markdown in HEAVY_RENDERS:
                response = await client.post("/api/render", json={"markdown": markdown})
                # rendered, or stopped at render.max_render_s: either way, in a worker
                assert response.status_code in (200, 413), response.text

    with trio.fail_after(120):
        gap, health, frames = await watch_while(live_server, renders)
    assert frames > 20
    assert gap < MAX_GAP_S, f"a frame gap of {gap * 1000:.0f} ms"
    assert health < MAX_GAP_S, f"/healthz took {health * 1000:.0f} ms"
