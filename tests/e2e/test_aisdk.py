"""The Vercel AI SDK door: ``POST /api/chat`` read by the real ``ai`` npm package in Node
(its SSE parser, chunk schema and ``readUIMessageStream``), against the real server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import LiveServer

NODE_DIR = Path(__file__).parents[1] / "node"


async def read_with_ai_sdk(server: LiveServer, body: dict) -> dict:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "ai").is_dir():
        pytest.fail("node and tests/node/node_modules are needed: `make test` installs them")
    result = await trio.run_process(
        [node, str(NODE_DIR / "read_stream.mjs"), f"{server.base_url}/api/chat",
         json.dumps(body)], capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def chat(text: str, **extra: object) -> dict:
    return {"id": "aisdk-chat-001", "trigger": "submit-message", "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}], **extra}


async def test_a_use_chat_request_streams_a_ui_message(live_server: LiveServer) -> None:
    markdown = "# Title\n\nSome *markdown* with `code`.\n\n- one\n- two\n"
    out = await read_with_ai_sdk(live_server, chat(
        markdown, provider="echo", echo={"delta_chars": 5, "interval_ms": 1}))
    assert out["header"] == "v1" and out["errors"] == []
    message = out["message"]
    assert message["role"] == "assistant" and message["id"].startswith("s_")
    texts = [p["text"] for p in message["parts"] if p["type"] == "text"]
    assert texts == [markdown]
    # the session is a normal streamer session: the answer is persisted with its HTML
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        stored = (await client.get("/api/sessions/aisdk-chat-001/messages")).json()
    assert stored["messages"][-1]["markdown"] == markdown
    assert "<em>markdown</em>" in stored["messages"][-1]["html"]


# listed, so the policy lets it through, but no provider answers to it: a run-time error
@pytest.mark.config(**{"policy.providers": ("echo", "nonesuch")})
async def test_a_provider_error_reaches_the_ai_sdk_as_an_error_chunk(
        live_server: LiveServer) -> None:
    out = await read_with_ai_sdk(live_server, chat("hi", provider="nonesuch"))
    assert out["errors"] and "provider_unavailable" in out["errors"][0]


async def test_a_bad_request_is_a_clear_400(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        response = await client.post("/api/chat", json={"messages": "nope"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_message"


@pytest.mark.config(**{"server.heartbeat_interval_s": 0.2})
async def test_a_quiet_stream_sends_keep_alive_comments(live_server: LiveServer) -> None:
    body = chat("slow answer", provider="echo", echo={"delta_chars": 4, "interval_ms": 300})
    lines: list[str] = []
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client, \
                client.stream("POST", "/api/chat", json=body) as response:
            async for line in response.aiter_lines():
                lines.append(line)
    assert ": ping" in lines  # while the provider is quiet
    assert [line for line in lines if line][-1] == "data: [DONE]"
    out = await read_with_ai_sdk(live_server, body)  # the real reader skips the comments
    assert [p["text"] for p in out["message"]["parts"] if p["type"] == "text"] == [
        "slow answer"]


async def test_the_browser_client_module_deduplicates_by_seq_in_node() -> None:
    """client.js is a plain ES module (``streamer/static/package.json``): Node imports it and
    its DocumentMirror drops replayed chunks and stream events by ``seq``."""
    node = shutil.which("node")
    assert node is not None, "node is needed: `make test` installs it"
    result = await trio.run_process([node, str(NODE_DIR / "mirror_check.mjs")],
                                    capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    out = json.loads(result.stdout)
    assert out["first"] and out["text"] and out["tool"]
    assert out["replayedChunk"] is False and out["replayedTool"] is False
    assert out["afterTool"] is False  # seq 3 was the tool_call: a chunk with it is a replay
    assert out["html"] == "<p>Hello &amp; &lt;you&gt;</p>" and out["lastSeq"] == 3
    assert out["afterSnapshot"] == {"html": "<p>new</p><h2>x</h2>", "lastSeq": 7, "epoch": "e2"}
    assert out["listAppend"] == "<ul><li>ab</li></ul>"
    package = json.loads((Path(__file__).parents[2] / "streamer" / "static" /
                          "package.json").read_text())
    assert package["type"] == "module" and package["exports"]["."]["default"] == "./client.js"
