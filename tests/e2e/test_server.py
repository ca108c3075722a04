"""End to end: the real server (hypercorn + quart-trio) on 127.0.0.1, real clients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from streamer.render.ops import apply_op
from streamer.wire.events import PROTOCOL_VERSION, op_from_chunk
from tests.conftest import LiveServer, create_session, sse_events

RICH = (Path(__file__).parents[1] / "data" / "rich.md").read_text()


def apply_all(events: list[dict[str, Any]]) -> list[str]:
    blocks: list[str] = []
    last_seq = 0
    for ev in events:
        if ev["type"] == "chunk":
            assert ev["seq"] > last_seq  # strictly increasing, never reused
            last_seq = ev["seq"]
            apply_op(blocks, op_from_chunk(ev))
    return blocks


async def render(server: LiveServer, markdown: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/api/render", json={"markdown": markdown})
        response.raise_for_status()
        return str(response.json()["html"])


async def ws_collect(server: LiveServer, session_id: str, messages: list[dict[str, Any]],
                     until: str = "stream_complete") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    await create_session(server.base_url, session_id)
    with trio.fail_after(30):
        async with open_websocket_url(f"{server.ws_url}/ws/stream/{session_id}") as ws:
            for message in messages:
                await ws.send_message(json.dumps(message))
            while True:
                ev = json.loads(await ws.get_message())
                events.append(ev)
                if ev["type"] == until:
                    return events


async def test_websocket_streams_a_rich_document_exactly(live_server: LiveServer) -> None:
    start = {"type": "start", "prompt": RICH, "provider": "echo",
             "pacing": {"mode": "fixed", "cps": 5000}, "echo": {"delta_chars": 4, "interval_ms": 0}}
    events = await ws_collect(live_server, "ws-rich-001", [start])
    assert events[0]["type"] == "connected" and events[0]["protocol"] == PROTOCOL_VERSION == 2
    complete = events[-1]
    assert complete["finish_reason"] == "stop" and complete["markdown"] == RICH
    assert "".join(apply_all(events)) == complete["html"] == await render(live_server, RICH)
    assert "<table>" in complete["html"] and 'class="language-python"' in complete["html"]


async def test_sse_streams_a_rich_document_exactly(live_server: LiveServer) -> None:
    session_id = await create_session(live_server.base_url, "sse-rich-001")
    body = ""
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
            async with client.stream("GET", f"/api/sessions/{session_id}/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["x-accel-buffering"] == "no"
                started = False
                async for text in response.aiter_text():
                    body += text
                    events = sse_events(body)
                    if not started and events and events[0]["type"] == "connected":
                        started = True
                        control = await client.post(
                            f"/api/sessions/{session_id}/control",
                            params={"connection_id": events[0]["connection_id"]},
                            json={"type": "start", "prompt": RICH, "provider": "echo",
                                  "pacing": {"mode": "off"},
                                  "echo": {"delta_chars": 4, "interval_ms": 0}})
                        assert control.status_code == 202
                    if events and events[-1]["type"] == "stream_complete":
                        break
    events = sse_events(body)
    complete = events[-1]
    assert "".join(apply_all(events)) == complete["html"] == await render(live_server, RICH)
    chunk = next(ev for ev in events if ev["type"] == "chunk")
    assert chunk["_id"] == f"{chunk['stream_id']}:{chunk['epoch']}:{chunk['seq']}"


async def test_invalid_control_message_gets_an_error_and_the_connection_lives(
        live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "invalid-001")
    with trio.fail_after(10):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/invalid-001") as ws:
            assert json.loads(await ws.get_message())["type"] == "connected"
            for bad in ("not json", json.dumps([1, 2]), json.dumps({"type": "warp"}),
                        json.dumps({"type": "speed", "cps": -3}),
                        json.dumps({"type": "start"})):
                await ws.send_message(bad)
                error = json.loads(await ws.get_message())
                assert error["type"] == "error" and error["code"] == "invalid_message"
                assert error["retryable"] is False and error["message"]
            await ws.send_message(json.dumps({"type": "ping", "ts": 42}))
            pong = json.loads(await ws.get_message())
            assert pong == {"type": "pong", "session_id": "invalid-001", "ts": 42}


@pytest.mark.config(**{"server.max_invalid_messages": 3})
async def test_repeated_invalid_messages_close_with_1008(live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "invalid-002")
    with trio.fail_after(10):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/invalid-002") as ws:
            await ws.get_message()
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(10):
                    await ws.send_message("{")
                    await ws.get_message()
            assert closed.value.reason.code == 1008


async def test_rest_complete_render_status_and_trace(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as client:
        created = (await client.post("/api/sessions")).json()
        assert created["ws_url"] == f"/ws/stream/{created['session_id']}"
        result = (await client.post(f"/api/sessions/{created['session_id']}/complete",
                                    json={"type": "start", "prompt": "Hello *REST*",
                                          "provider": "echo"})).json()
        assert result["html"] == "<p>Hello <em>REST</em></p>\n"
        assert result["finish_reason"] == "stop"
        assert result["usage"]["output_tokens"] == len("Hello *REST*")
        trace = (await client.get(f"/api/streams/{result['stream_id']}/trace")).json()
        events = [t["event"] for t in trace["trace"]]
        assert events[0] == "queued" and events[-1] == "completed"
        assert "provider_call_closed" in events
        status = (await client.get("/api/stream/status")).json()
        assert {"sessions", "connections", "active_streams", "uptime_s"} <= set(status)
        assert (await client.get("/healthz")).json()["ok"] is True
        bad = await client.post("/api/render", content=b"{",
                                headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_message"
        missing = await client.get("/api/streams/s_nope/trace")
        assert missing.status_code == 404 and missing.json()["code"] == "stream_not_found"
        index = await client.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]


async def test_sse_client_that_leaves_is_noticed(live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "sse-gone-01")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        async with client.stream("GET", "/api/sessions/sse-gone-01/events") as response:
            async for text in response.aiter_text():
                if "connected" in text:
                    break
            assert (await client.get("/api/stream/status")).json()["connections"] == 1
        with trio.fail_after(10):
            # the server is another task's: poll its status, there is no event to wait on
            while (await client.get("/api/stream/status")).json()["connections"] != 0:  # noqa: ASYNC110
                await trio.sleep(0.05)


@pytest.fixture
def short_quart_response_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quart cuts responses at RESPONSE_TIMEOUT (60 s); make it 1 s to prove SSE ignores it."""
    from quart import Quart

    monkeypatch.setattr(Quart, "default_config",
                        {**Quart.default_config, "RESPONSE_TIMEOUT": 1})


@pytest.mark.config(**{"server.heartbeat_interval_s": 0.25})
async def test_sse_outlives_quarts_response_timeout_and_sends_heartbeats(
        short_quart_response_timeout: None, live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "sse-long-01")
    pings = 0
    started = trio.current_time()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        async with client.stream("GET", "/api/sessions/sse-long-01/events") as response:
            async for text in response.aiter_text():
                pings += text.count(": ping")
                if trio.current_time() - started > 3:
                    break
    assert trio.current_time() - started > 3  # the response was not cut at 1 s
    assert pings >= 8
