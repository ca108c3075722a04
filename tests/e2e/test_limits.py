"""What one client may hold and start (``[limits]``, issue 15): each limit refuses with
``rate_limited`` and ``retry_after_ms`` (HTTP 429 with ``Retry-After``; a WebSocket gets the
``error`` event and close 1013), and frees its slot when the thing ends."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.conftest import LiveServer, create_session

ECHO = {"delta_chars": 4, "interval_ms": 0}


def start(prompt: str = "hi", interval_ms: float = 0) -> dict[str, object]:
    return {"type": "start", "prompt": prompt, "provider": "echo", "pacing": {"mode": "off"},
            "echo": {"delta_chars": 1, "interval_ms": interval_ms}}


@pytest.mark.config(**{"limits.max_sessions_per_identity": 3})
async def test_sessions_per_identity(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        ids = [(await client.post("/api/sessions")).json()["session_id"] for _ in range(3)]
        refused = await client.post("/api/sessions")
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert refused.json()["retry_after_ms"] > 0 and int(refused.headers["retry-after"]) >= 1
        assert (await client.post("/api/chat", json={
            "messages": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}],
            "provider": "echo"})).status_code == 429
        # an existing session is not a new one, and deleting one frees its slot
        again = await client.post("/api/sessions", json={"session_id": ids[0]})
        assert again.status_code == 200
        assert (await client.delete(f"/api/sessions/{ids[0]}")).status_code == 204
        assert (await client.post("/api/sessions")).status_code == 201


@pytest.mark.config(**{"limits.max_connections_per_identity": 2})
async def test_connections_per_identity_over_websocket_and_sse(live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url)
    url = f"{live_server.ws_url}/ws/stream/{sid}"
    with trio.fail_after(20):
        async with open_websocket_url(url) as one, open_websocket_url(url) as two:
            for ws in (one, two):
                assert json.loads(await ws.get_message())["type"] == "connected"
            async with open_websocket_url(url) as three:
                refused = json.loads(await three.get_message())
                assert refused["code"] == "rate_limited" and refused["retry_after_ms"] > 0
                with pytest.raises(ConnectionClosed) as closed:
                    await three.get_message()
                assert closed.value.reason.code == 1013
            async with httpx.AsyncClient(base_url=live_server.base_url) as client:
                sse = await client.get(f"/api/sessions/{sid}/events")
                assert sse.status_code == 429 and sse.json()["code"] == "rate_limited"
        # both closed: their slots are free again (the server notices within moments)
        while True:
            async with open_websocket_url(url) as again:
                if json.loads(await again.get_message())["type"] == "connected":
                    break
            await trio.sleep(0.05)


@pytest.mark.config(**{"limits.streams_per_minute": 2})
async def test_streams_per_minute(live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        for _ in range(2):
            done = await client.post(f"/api/sessions/{sid}/complete", json=start())
            assert done.json()["finish_reason"] == "stop"
        refused = await client.post(f"/api/sessions/{sid}/complete", json=start())
    assert refused.status_code == 429
    assert 0 < refused.json()["retry_after_ms"] <= 60_000


@pytest.mark.config(**{"limits.max_streams_per_identity": 1})
async def test_concurrent_streams_per_identity(live_server: LiveServer) -> None:
    one = await create_session(live_server.base_url)
    two = await create_session(live_server.base_url)
    with trio.fail_after(20):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{one}") as ws:
            await ws.get_message()
            await ws.send_message(json.dumps(start("x" * 200, interval_ms=20)))
            while json.loads(await ws.get_message())["type"] != "stream_start":
                pass
            async with httpx.AsyncClient(base_url=live_server.base_url) as client:
                refused = await client.post(f"/api/sessions/{two}/complete", json=start())
                assert refused.status_code == 429
                assert "streams per identity" in refused.json()["message"]
                await ws.send_message(json.dumps({"type": "stop"}))
                while json.loads(await ws.get_message())["type"] != "stream_complete":
                    pass
                done = await client.post(f"/api/sessions/{two}/complete", json=start())
                assert done.status_code == 200


@pytest.mark.config(**{"limits.idle_connection_timeout_s": 0.3})
async def test_a_connection_without_a_stream_is_closed_when_idle(
        live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url)
    with trio.fail_after(10):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/{sid}") as ws:
            await ws.get_message()
            await ws.send_message(json.dumps(start("y" * 40, interval_ms=20)))  # ~0.8 s
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ev = json.loads(await ws.get_message())
                    if ev["type"] == "stream_complete":
                        completed_at = trio.current_time()
            assert closed.value.reason.code == 1001 and closed.value.reason.reason == "idle"
            # the stream itself was never cut: idle counts only after it ended
            assert trio.current_time() - completed_at >= 0.25


@pytest.mark.config(**{"limits.max_connections_per_identity": 1})
async def test_an_sse_connection_gives_its_slot_back_when_the_client_leaves(
        live_server: LiveServer) -> None:
    sid = await create_session(live_server.base_url)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        async with client.stream("GET", f"/api/sessions/{sid}/events") as events:
            assert events.status_code == 200
            async for text in events.aiter_text():
                if "connected" in text:
                    break
            held = await client.get(f"/api/sessions/{sid}/events")
            assert held.status_code == 429
        with trio.fail_after(10):
            while True:  # the server notices the client left, then the slot is free
                async with client.stream("GET", f"/api/sessions/{sid}/events") as again:
                    if again.status_code == 200:
                        break
                await trio.sleep(0.05)
