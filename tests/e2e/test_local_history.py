"""A long conversation with the real local model (Gemma 3 270M through llama.cpp): it keeps
answering once its history passes the context, earlier turns are dropped oldest first, and
``stream_start`` shows the budget.

Bounded for CI: a small context (``n_ctx`` 256) and answers of at most 8 tokens, so the
history passes the context after a few turns while each turn evaluates at most ~250 tokens
(prompt evaluation dominates on one thread); greedy sampling (temperature 0) for
reproducible answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.conftest import LiveServer, create_session

pytestmark = pytest.mark.local_model

N_CTX, MAX_TOKENS, TURNS = 256, 8, 20
TOPICS = ["rivers", "mountains", "bread", "clocks", "bees", "rain", "maps", "salt", "ships",
          "owls", "glass", "tea", "snow", "kites", "moss", "bells", "ink", "wool", "caves",
          "stars"]


async def one_turn(ws: Any, prompt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a prompt; its ``stream_start`` and ``stream_complete`` (failing on an error)."""
    await ws.send_message(json.dumps({
        "type": "start", "prompt": prompt, "provider": "local", "max_tokens": MAX_TOKENS,
        "temperature": 0, "pacing": {"mode": "off"}}))
    start = None
    while True:
        ev = json.loads(await ws.get_message())
        assert ev["type"] != "error", ev
        if ev["type"] == "stream_start" and not ev.get("queued"):
            start = ev
        if ev["type"] == "stream_complete":
            assert start is not None
            return start, ev


@pytest.mark.config(**{"providers.local.n_ctx": N_CTX, "providers.local.max_tokens": 64})
async def test_a_twenty_turn_conversation_keeps_answering_within_the_context(
        live_server: LiveServer) -> None:
    await create_session(live_server.base_url, "local-history-1")
    starts, completes = [], []
    with trio.fail_after(900):
        async with open_websocket_url(f"{live_server.ws_url}/ws/stream/local-history-1") as ws:
            for i, topic in enumerate(TOPICS[:TURNS], 1):
                start, complete = await one_turn(
                    ws, f"Turn {i}. In a few words, tell me one fact about {topic}.")
                starts.append(start)
                completes.append(complete)
    assert all(c["finish_reason"] in ("stop", "length") for c in completes), completes
    assert all(0 < c["usage"]["output_tokens"] <= MAX_TOKENS for c in completes)
    budget = N_CTX - MAX_TOKENS
    assert {s["max_input_tokens"] for s in starts} == {budget}
    assert all(0 < s["input_tokens"] <= budget for s in starts)
    dropped = [s["history_dropped"] for s in starts]
    assert dropped[0] == 0 and dropped[-1] > 0, dropped  # the history passed the context
    # what the model was sent, as the provider counted it, left room for the answer
    assert all(c["usage"]["input_tokens"] <= budget for c in completes)
