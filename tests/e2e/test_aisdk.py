"""The Vercel AI SDK door: ``POST /api/chat`` read by the real ``ai`` npm package in Node
(its SSE parser, chunk schema and ``readUIMessageStream``; its chat, ``AbstractChat`` with
``DefaultChatTransport``, for stop and resume), against the real server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from streamer.server import serve
from tests.conftest import LiveServer, create_session, make_config
from tests.shells.test_openai_provider import Upstream

NODE_DIR = Path(__file__).parents[1] / "node"
TRANSCRIPTS = Path(__file__).parents[1] / "data" / "transcripts"


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


# ------------------------------------------------------------------ the AI SDK's chat


@dataclass
class ChatRun:
    """One run of ``chat_session.mjs``: its JSON lines, and when (``trio.current_time``) the
    script said it was about to call ``stop()``."""

    lines: list[dict[str, Any]]
    stopping_at: float | None

    @property
    def done(self) -> dict[str, Any]:
        return self.lines[-1]

    @property
    def answer(self) -> dict[str, Any]:
        last: dict[str, Any] = self.done["messages"][-1]
        assert last["role"] == "assistant", self.done
        return last


async def run_chat(scenario: str, api: str, **options: Any) -> ChatRun:
    """Run the AI SDK's chat in Node (``tests/node/chat_session.mjs``), reading its output
    as it comes (the ``stopping`` line is timed on arrival)."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "ai").is_dir():
        pytest.fail("node and tests/node/node_modules are needed: `make test` installs them")
    lines: list[dict[str, Any]] = []
    stopping_at = None
    buffer = b""
    command = [node, str(NODE_DIR / "chat_session.mjs"), scenario, api, json.dumps(options)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(partial(trio.run_process, command,
                                                  stdout=subprocess.PIPE, check=False))
            assert process.stdout is not None
            async for data in process.stdout:
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    lines.append(json.loads(line))
                    if lines[-1]["event"] == "stopping":
                        stopping_at = trio.current_time()
    assert process.returncode == 0 and lines and lines[-1]["event"] == "done", lines
    return ChatRun(lines, stopping_at)


def user_message(text: str) -> dict[str, Any]:
    return {"id": "u1", "role": "user", "parts": [{"type": "text", "text": text}]}


def parts_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's parts without the state the AI SDK adds while they stream."""
    return [{k: v for k, v in part.items() if k != "state"} for part in message["parts"]]


async def trace_of(server: LiveServer, stream_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get(f"/api/streams/{stream_id}/trace")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["trace"]
    return entries


async def serve_upstream(nursery: trio.Nursery, **settings: Any) -> Upstream:
    """A fake OpenAI-compatible server on 127.0.0.1 (``tests/shells``' :class:`Upstream`)
    that notes when its client leaves, by a close or by a reset (the SDK's socket may close
    with unread data, which resets it)."""
    server = Upstream(**settings)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await server.handle(stream)
        except* trio.BrokenResourceError:  # reset by the client: it left
            server.closed_at = server.closed_at or trio.current_time()

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    return await serve_upstream(nursery)


async def openai_server(nursery: trio.Nursery, upstream: Upstream, **changes: Any
                        ) -> LiveServer:
    """The real server with its ``openai`` provider pointed at the fake upstream."""
    config = make_config(**{"providers.openai.base_url": f"http://127.0.0.1:{upstream.port}/v1",
                            "providers.openai.model": "gpt-test",
                            "providers.openai.api_key_env": "STREAMER_TEST_KEY",
                            "streams.grace_period_s": 30.0, **changes})
    stop = trio.Event()
    binds = await nursery.start(partial(serve, config, shutdown_trigger=stop.wait))
    nursery.start_soon(_stop_at_exit, stop)
    return LiveServer(binds[0], config)


async def upstream_closed(upstream: Upstream) -> float:
    """When the fake upstream saw its client leave (it records a time, no event)."""
    with trio.fail_after(5):
        while upstream.closed_at is None:  # noqa: ASYNC110 - Upstream keeps a time only
            await trio.sleep(0.002)
    return upstream.closed_at


async def _stop_at_exit(stop: trio.Event) -> None:
    try:
        await trio.sleep_forever()
    finally:
        stop.set()


async def test_stop_closes_the_upstream_request_within_100ms(
        nursery: trio.Nursery, upstream: Upstream) -> None:
    """``stop()`` of the AI SDK's chat aborts its fetch; the server cancels the answer and
    closes the model's HTTP request at once (``aisdk.stop_on_disconnect``, on by default):
    the fake upstream sees its connection end within 100 ms of ``stop()``. Of 5 stops the
    fastest must be (the path itself waits for nothing: 2-25 ms on a quiet machine), and
    each under 1 s, where the answer used to run on for the 30 s grace period: a loaded
    2-core machine (other suites' browsers) delays single stops to 100-300 ms. The trace
    says why; the partial answer is kept as ``cancelled``."""
    upstream.endless = True  # "tok0 tok1 ..." every 20 ms until the client leaves
    server = await openai_server(nursery, upstream)
    delays = []
    for i in range(5):
        upstream.closed_at = None
        run = await run_chat("stop", f"{server.base_url}/api/chat", id=f"aisdk-stop-000{i}",
                             text="go on forever", afterChars=40, body={"provider": "openai"})
        assert run.stopping_at is not None and run.done["status"] == "ready"
        delays.append(await upstream_closed(upstream) - run.stopping_at)
    print(f"upstream closed {', '.join(f'{1000 * d:.1f}' for d in delays)} ms after stop()")
    assert min(delays) < 0.1 and max(delays) < 1.0
    trace = await trace_of(server, run.answer["id"])
    reasons = [e.get("reason") for e in trace if e["event"] == "cancel_requested"]
    assert reasons == ["chat response closed"]
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        stored = (await client.get("/api/sessions/aisdk-stop-0004/messages")).json()
    assert stored["messages"][-1]["finish_reason"] == "cancelled"
    assert stored["messages"][-1]["markdown"].startswith("tok0 tok1 ")


async def test_with_stop_on_disconnect_off_the_answer_runs_on(
        nursery: trio.Nursery, upstream: Upstream) -> None:
    """The setting decides: off, a closed response leaves the answer running (the grace
    period), so the upstream is still open a second later; the stop endpoint ends it."""
    upstream.endless = True
    server = await openai_server(nursery, upstream, **{"aisdk.stop_on_disconnect": False})
    run = await run_chat("stop", f"{server.base_url}/api/chat", id="aisdk-stop-0010",
                         text="go on forever", afterChars=40, body={"provider": "openai"})
    await trio.sleep(1.0)
    assert upstream.closed_at is None
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        stop = await client.post("/api/chat/aisdk-stop-0010/stop")  # the stop endpoint
    assert stop.status_code == 204
    await upstream_closed(upstream)
    assert run.answer["id"].startswith("s_")


RESUMED_TEXT = "\n\n".join(f"Paragraph {i}: " + "words " * 12 for i in range(12))


@pytest.mark.config(**{"aisdk.stop_on_disconnect": False})
async def test_a_resumed_chat_ends_equal_to_an_uninterrupted_one(
        live_server: LiveServer) -> None:
    """``useChat({resume: true})``'s request, ``GET /api/chat/{id}/stream``: a chat whose
    fetch was aborted mid-answer (a reload) is resumed by a fresh chat holding only the user
    message; its assistant message ends equal, part for part, to an uninterrupted run's.
    After the answer is over the resume request is ``204`` (nothing to resume)."""
    api = f"{live_server.base_url}/api/chat"
    fast = {"provider": "echo", "echo": {"delta_chars": 8, "interval_ms": 1}}
    whole = await run_chat("send", api, id="aisdk-whole-01", text=RESUMED_TEXT, body=fast)
    # slow enough (~6 s) that the resume comes while it runs, even on a loaded machine
    slow = {"provider": "echo", "echo": {"delta_chars": 8, "interval_ms": 50}}
    cut = await run_chat("stop", api, id="aisdk-resume-1", text=RESUMED_TEXT,
                         afterChars=60, body=slow)
    assert 60 <= len(cut.answer["parts"][-1]["text"]) < len(RESUMED_TEXT)
    user = cut.done["messages"][0]
    resumed = await run_chat("resume", api, id="aisdk-resume-1", messages=[user])
    assert resumed.done["status"] == "ready" and resumed.done["error"] is None
    assert [p["text"] for p in resumed.answer["parts"] if p["type"] == "text"] == [RESUMED_TEXT]
    assert parts_of(resumed.answer) == parts_of(whole.answer)
    assert resumed.answer["id"] == cut.answer["id"]  # the same stream
    assert resumed.answer["metadata"] == whole.answer["metadata"]
    late = await run_chat("resume", api, id="aisdk-resume-1", messages=[user])
    assert late.done["messages"] == [user]  # 204: nothing runs
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        assert (await client.get("/api/chat/aisdk-never-01/stream")).status_code == 204


async def test_citations_arrive_as_source_url_parts_and_usage_as_metadata(
        nursery: trio.Nursery, upstream: Upstream) -> None:
    """Perplexity's ``search_results`` become ``source-url`` parts (not markdown text) for
    the AI SDK, while the stored document keeps them as its numbered list; the provider's
    usage is the message's metadata."""
    upstream.body = (TRANSCRIPTS / "perplexity_citations.sse").read_bytes()
    server = await openai_server(nursery, upstream)
    out = await read_with_ai_sdk(server, chat("what is trio?", provider="openai") | {
        "id": "aisdk-cite-001"})
    parts = out["message"]["parts"]
    assert [p["text"] for p in parts if p["type"] == "text"] == [
        "Trio is a library for structured concurrency [1][2]."]
    assert [(p["sourceId"], p["url"], p["title"]) for p in parts
            if p["type"] == "source-url"] == [
        ("source-1", "https://example.org/trio", "Trio docs"),
        ("source-2", "https://example.com/structured-concurrency",
         "Notes on structured concurrency")]
    assert out["message"]["metadata"] == {"finishReason": "stop", "usage": {
        "inputTokens": 5, "outputTokens": 9, "totalTokens": 14, "unit": "tokens"}}
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        stored = (await client.get("/api/sessions/aisdk-cite-001/messages")).json()
    assert stored["messages"][-1]["markdown"].endswith(
        "**Sources**\n\n1. [Trio docs](<https://example.org/trio>)\n"
        "2. [Notes on structured concurrency](<https://example.com/structured-concurrency>)\n")


@pytest.mark.config(**{"security.allowed_origins": ("https://app.example.com",)})
async def test_cors_answers_the_allowed_origin_on_the_chat_routes_only(
        live_server: LiveServer) -> None:
    """A ``useChat`` front end on another origin (``security.allowed_origins``): its
    preflight and its POST are answered for that origin (credentials allowed, never ``*``,
    the stream header readable); a foreign origin gets no CORS headers and a 403, on the
    POST and on the resume GET."""
    app = "https://app.example.com"
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        preflight = await client.options("/api/chat", headers={
            "Origin": app, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.headers["access-control-allow-origin"] == app
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        answer = await client.post("/api/chat", headers={"Origin": app}, json=chat(
            "hi", provider="echo") | {"id": "aisdk-cors-001"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == app
        assert "x-vercel-ai-ui-message-stream" in answer.headers[
            "access-control-expose-headers"].lower()
        resume = await client.get("/api/chat/aisdk-cors-001/stream", headers={"Origin": app})
        assert resume.status_code == 204
        assert resume.headers["access-control-allow-origin"] == app
        evil = "https://evil.example"
        foreign = await client.options("/api/chat", headers={
            "Origin": evil, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in foreign.headers
        for response in (
                await client.post("/api/chat", headers={"Origin": evil},
                                  json=chat("hi", provider="echo")),
                await client.get("/api/chat/aisdk-cors-001/stream", headers={"Origin": evil})):
            assert response.status_code == 403
            assert "access-control-allow-origin" not in response.headers


async def test_resume_and_stop_belong_to_the_chat_s_owner(
        nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    """With identities (``auth.mode = "jwt"``): chat ids are namespaced by owner, so another
    identity naming the same chat finds nothing of its own (resume ``204``, stop ``404``)
    and its stop leaves the owner's answer running; no credentials is ``401``; the owner
    resumes the running answer (``200``) and stops it (``204``)."""
    from tests.e2e.test_security import SECRET, bearer, token

    monkeypatch.setenv("STREAMER_JWT_SECRET", SECRET)
    config = make_config(**{"auth.mode": "jwt", "auth.jwt_audience": "streamer-tests",
                            "auth.jwt_issuer": "test-idp", "policy.providers": ("echo",),
                            "aisdk.stop_on_disconnect": False})
    stop = trio.Event()
    base = (await nursery.start(partial(serve, config, shutdown_trigger=stop.wait)))[0]
    body = chat("x" * 400, provider="echo", echo={"delta_chars": 4, "interval_ms": 20}) | {
        "id": "aisdk-owner-01"}
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=base, headers=bearer(token("alice"))) as alice, \
                httpx.AsyncClient(base_url=base, headers=bearer(token("bob"))) as bob, \
                httpx.AsyncClient(base_url=base) as nobody:
            async with alice.stream("POST", "/api/chat", json=body) as answer:
                lines = answer.aiter_lines()
                await anext(lines)  # the answer runs
                assert (await bob.get("/api/chat/aisdk-owner-01/stream")).status_code == 204
                refused = await bob.post("/api/chat/aisdk-owner-01/stop")
                assert refused.status_code == 404
                assert refused.json()["code"] == "session_not_found"
                assert (await nobody.get("/api/chat/aisdk-owner-01/stream")).status_code == 401
                async with alice.stream("GET", "/api/chat/aisdk-owner-01/stream") as resumed:
                    assert resumed.status_code == 200
                    first = [line async for line in _lines(resumed, 2)]
                assert first[0].startswith('data: {"type":"start","messageId":"s_')
                assert (await alice.post("/api/chat/aisdk-owner-01/stop")).status_code == 204
                tail = [line async for line in lines if line]
    assert tail[-1] == "data: [DONE]"
    assert any('"finishReason":"other"' in line for line in tail)  # alice's stop, not bob's
    stop.set()


async def _lines(response: httpx.Response, count: int) -> AsyncIterator[str]:
    """The first ``count`` non-empty lines of a streamed response."""
    async for line in response.aiter_lines():
        if line:
            yield line
            count -= 1
            if count == 0:
                return


async def test_websocket_clients_get_the_sources_as_an_event_too(
        nursery: trio.Nursery, upstream: Upstream) -> None:
    """Over the streamer protocol the same answer brings a ``sources`` event (seq-numbered,
    before the chunks that add the document's list) and a document ending with the list."""
    upstream.body = (TRANSCRIPTS / "perplexity_citations.sse").read_bytes()
    server = await openai_server(nursery, upstream)
    session_id = await create_session(server.base_url, "aisdk-cite-ws1")
    events = []
    with trio.fail_after(20):
        async with open_websocket_url(f"{server.ws_url}/ws/stream/{session_id}") as ws:
            await ws.send_message(json.dumps({"type": "start", "prompt": "what is trio?",
                                              "provider": "openai"}))
            while not events or events[-1]["type"] != "stream_complete":
                events.append(json.loads(await ws.get_message()))
    sources = [e for e in events if e["type"] == "sources"]
    assert [s["sources"] for s in sources] == [[
        {"url": "https://example.org/trio", "title": "Trio docs"},
        {"url": "https://example.com/structured-concurrency",
         "title": "Notes on structured concurrency"}]]
    later = [e["seq"] for e in events if e["type"] == "chunk" and e["seq"] > sources[0]["seq"]]
    assert later  # the list's chunks follow the event
    assert events[-1]["markdown"].endswith("(<https://example.com/structured-concurrency>)\n")
