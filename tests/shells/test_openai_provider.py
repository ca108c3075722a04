"""The ``openai`` provider against a real HTTP server on 127.0.0.1 replaying a transcript.

The fake upstream is a plain Trio TCP server (not a mock of the SDK), so the official
``openai`` SDK does its real HTTP and SSE parsing, and the upstream can see exactly when the
client closes its connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio

from streamer.config import OpenAIProviderConfig
from streamer.errors import (
    PROVIDER_FAILED,
    PROVIDER_NO_MODEL,
    PROVIDER_NOT_CONFIGURED,
    ProviderError,
)
from streamer.conversation import Message
from streamer.providers import Finish, ProviderRequest, TextDelta, Usage
from streamer.providers.openai_compat import OpenAIProvider
from tests.conftest import logged

TRANSCRIPT = (Path(__file__).parents[1] / "data" / "transcripts" / "openai_chat_stream.sse").read_bytes()


@dataclass
class Upstream:
    """A one-route HTTP/1.1 server: answers POST /v1/chat/completions."""

    status: int = 200
    body: bytes = TRANSCRIPT
    endless: bool = False
    #: send ``body``, then keep the connection open, silent, until the client leaves
    stall: bool = False
    #: send ``body`` as one chunk of a chunked response, then close without the last chunk
    #: (a connection cut mid-body: the SDK's transport raises its own error, unwrapped)
    cut: bool = False
    #: per request, in order: (status, body, extra headers); then ``status``/``body``
    script: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    closed_at: float | None = None
    port: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(body) < length:
            body += await stream.receive_some(65536)
        self.requests.append(json.loads(body))
        status, payload, headers = (self.script.pop(0) if self.script
                                    else (self.status, self.body, {}))
        kind = b"text/event-stream" if status == 200 else b"application/json"
        extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        if self.cut and status == 200:
            extra += b"transfer-encoding: chunked\r\n"
        await stream.send_all(b"HTTP/1.1 %d X\r\ncontent-type: %s\r\nconnection: close\r\n"
                              % (status, kind) + extra
                              + (b"content-length: %d\r\n" % len(payload)
                                 if status != 200 else b"") + b"\r\n")
        if self.cut and status == 200:
            await stream.send_all(b"%x\r\n%s\r\n" % (len(payload), payload))
            await stream.aclose()
            return
        if self.stall and status == 200:
            await stream.send_all(payload)
            while await stream.receive_some(1024):
                pass
            self.closed_at = trio.current_time()
            return
        if not self.endless or status != 200:
            await stream.send_all(payload)
            await stream.aclose()
            return
        async with trio.open_nursery() as nursery:
            async def produce() -> None:
                i = 0
                while True:
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                             "model": "m", "choices": [{"index": 0, "delta": {
                                 "content": f"tok{i} "}, "finish_reason": None}]}
                    await stream.send_all(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    i += 1
                    await trio.sleep(0.02)

            nursery.start_soon(produce)
            while await stream.receive_some(1024):  # b"" once the client closed
                pass
            self.closed_at = trio.current_time()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> Upstream:
    server = Upstream()
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


def provider_for(server: Upstream) -> OpenAIProvider:
    return OpenAIProvider(OpenAIProviderConfig(base_url=f"http://127.0.0.1:{server.port}/v1",
                                               model="gpt-test", api_key_env="STREAMER_TEST_KEY"))


#: what a connection cut mid-body reads as (wrapped by the SDK, or its transport's own error)
CUT = r"cannot connect|the connection failed"

REQUEST = ProviderRequest((Message("user", "Say hello"),), system="Be brief.", max_tokens=16)


async def test_streams_text_usage_and_finish(upstream: Upstream) -> None:
    events = []
    async with provider_for(upstream).stream(REQUEST) as channel:
        async for item in channel:
            events.append(item)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello **world**!"
    assert Usage(9, 3) in events and events[-1] == Finish("stop")
    sent = upstream.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["model"] == "gpt-test" and sent["max_tokens"] == 16


async def test_refused_key_names_the_setting(upstream: Upstream) -> None:
    upstream.status = 401
    upstream.body = b'{"error": {"message": "bad key", "type": "invalid_request_error"}}'
    with pytest.raises(ProviderError, match="STREAMER_TEST_KEY is not set") as info:
        async with provider_for(upstream).stream(REQUEST) as channel:
            async for _ in channel:
                pass
    assert info.value.retryable is False
    assert info.value.message == PROVIDER_NOT_CONFIGURED  # what a client reads


async def test_leaving_closes_the_upstream_connection_within_100ms(upstream: Upstream) -> None:
    upstream.endless = True
    async with provider_for(upstream).stream(REQUEST) as channel:
        received = 0
        async for item in channel:
            received += isinstance(item, TextDelta)
            if received == 3:
                left_at = trio.current_time()
                break
    with trio.fail_after(5):
        while upstream.closed_at is None:
            await trio.sleep(0.001)
    assert upstream.closed_at - left_at < 0.1


DATA = Path(__file__).parents[1] / "data" / "transcripts"


async def collect(provider: OpenAIProvider) -> list[object]:
    events = []
    async with provider.stream(REQUEST) as channel:
        async for item in channel:
            events.append(item)
    return events


async def test_streamed_tool_calls_become_start_delta_complete(upstream: Upstream) -> None:
    from streamer.providers import ToolCallComplete, ToolCallDelta, ToolCallStart
    upstream.body = (DATA / "openai_tool_calls.sse").read_bytes()
    events = await collect(provider_for(upstream))
    assert events[0] == ToolCallStart("call_Wx1", "get_weather")
    deltas = [e.arguments_delta for e in events if isinstance(e, ToolCallDelta)]
    assert "".join(deltas) == '{"city": "Paris"}' and len(deltas) == 3
    assert ToolCallComplete("call_Wx1", "get_weather", {"city": "Paris"}) in events
    assert events[-1] == Finish("tool_calls") and Usage(41, 12) in events


async def test_perplexity_citations_become_a_sources_list(upstream: Upstream) -> None:
    """Perplexity's ``search_results`` become one :class:`Citations` after the text (the
    document's list: :meth:`Citations.markdown`; the AI SDK's ``source-url`` parts)."""
    from streamer.providers.base import Citations

    upstream.body = (DATA / "perplexity_citations.sse").read_bytes()
    events = await collect(provider_for(upstream))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Trio is a library for structured concurrency [1][2]."
    citations = [e for e in events if isinstance(e, Citations)]
    assert citations == [Citations((
        ("https://example.org/trio", "Trio docs"),
        ("https://example.com/structured-concurrency", "Notes on structured concurrency")))]
    assert citations[0].markdown() == (
        "\n\n**Sources**\n\n1. [Trio docs](<https://example.org/trio>)\n"
        "2. [Notes on structured concurrency](<https://example.com/structured-concurrency>)\n")
    assert events[-1] == Finish("stop") and events[-2] == citations[0]


async def test_429_then_success_is_retried_by_the_stream(upstream: Upstream,
                                                         nursery: trio.Nursery) -> None:
    """Through the whole pipeline: the stream honours retry-after, tells subscribers it is
    retrying, then streams the answer from the second response."""
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_pipeline import connect, start

    upstream.script = [(429, b'{"error": {"message": "slow down"}}', {"retry-after": "0.2"}),
                       (500, b'{"error": {"message": "boom"}}', {})]
    registry = Registry(make_config(**{
        "providers.openai.base_url": f"http://127.0.0.1:{upstream.port}/v1",
        "providers.openai.api_key_env": "STREAMER_TEST_KEY",
        "streams.provider_retry_base_ms": 50.0}))
    registry.bind(nursery)
    session = registry.get_or_create("retry-e2e-1")
    _connection, recorder = await connect(nursery, session)
    session.submit(start("hi", provider="openai", mode="off"))
    with trio.fail_after(10):
        complete = await recorder.wait_for("stream_complete")
    retrying = [ev for _, ev in recorder.of("state") if ev["state"] == "retrying"]
    assert [(r["code"], r["attempt"]) for r in retrying] == [
        ("rate_limited", 1), ("provider_error", 2)]
    assert retrying[0]["retry_in_ms"] == 200
    assert complete["finish_reason"] == "stop" and complete["markdown"] == "Hello **world**!"
    assert len(upstream.requests) == 3 and not recorder.of("error")


@pytest.mark.parametrize("how", ["stop", "last subscriber gone", "server drain"])
async def test_every_cancellation_closes_the_upstream_connection_within_100ms(
        upstream: Upstream, nursery: trio.Nursery, how: str) -> None:
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_pipeline import connect, start

    upstream.endless = True
    registry = Registry(make_config(**{
        "providers.openai.base_url": f"http://127.0.0.1:{upstream.port}/v1",
        "providers.openai.api_key_env": "STREAMER_TEST_KEY", "streams.grace_period_s": 0.0,
        "server.drain_timeout_s": 0.0}))
    registry.bind(nursery)
    session = registry.get_or_create("cancel-upstream")
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start("hi", provider="openai", mode="off"))
    with trio.fail_after(10):
        await recorder.wait_for("chunk", 3)
        cancelled_at = trio.current_time()
        if how == "stop":
            session.stop(None)
        elif how == "last subscriber gone":
            connection.cancel_scope.cancel()
        else:
            nursery.start_soon(registry.drain, 0.0)
        while upstream.closed_at is None:
            await trio.sleep(0.001)
        await stream.done.wait()
    assert upstream.closed_at - cancelled_at < 0.1
    assert stream.finish_reason in ("cancelled", "error")
    assert any(t.event == "provider_call_closed" for t in stream.trace)


def first_events(n: int) -> bytes:
    """The first ``n`` SSE events of the recorded OpenAI transcript (no finish, no [DONE])."""
    return b"".join(part + b"\n\n" for part in TRANSCRIPT.split(b"\n\n")[:n])


async def pipeline(upstream: Upstream, nursery: trio.Nursery, **config: object) -> object:
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_pipeline import connect, start

    registry = Registry(make_config(**{
        "providers.openai.base_url": f"http://127.0.0.1:{upstream.port}/v1",
        "providers.openai.api_key_env": "STREAMER_TEST_KEY", **config}))
    registry.bind(nursery)
    session = registry.get_or_create("faults-openai")
    _connection, recorder = await connect(nursery, session)
    session.submit(start("hi", provider="openai", mode="off"))
    with trio.fail_after(10):
        await recorder.wait_for("stream_complete")
    return recorder


async def test_a_connection_dropped_after_some_chunks_is_an_error_not_an_end(
        upstream: Upstream, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    upstream.body = first_events(3)  # "", "Hello", " **wor" and then the socket closes
    recorder = await pipeline(upstream, nursery)
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_error" and error["message"] == PROVIDER_FAILED
    assert "ended early" in logged(caplog, error)
    complete = recorder.of("stream_complete")[0][1]
    assert complete["finish_reason"] == "error" and complete["markdown"] == "Hello **wor"
    assert len(upstream.requests) == 1  # after the first token: never retried


async def test_a_connection_cut_mid_body_is_a_retryable_provider_error(upstream: Upstream) -> None:
    """Mid-body, SDKs on httpx let the transport's own error through unwrapped; openai 3.63+
    (on httpx2) wraps it as ``APIConnectionError``. Either way a retryable ``ProviderError``,
    and the provider never names the transport library."""
    upstream.body, upstream.cut = first_events(3), True
    events: list[object] = []
    with pytest.raises(ProviderError, match=CUT) as info:
        async with provider_for(upstream).stream(REQUEST) as channel:
            async for item in channel:
                events.append(item)
    assert info.value.retryable is True
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello **wor"


async def test_a_stalled_stream_times_out(upstream: Upstream, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    upstream.body = first_events(2)
    upstream.stall = True
    recorder = await pipeline(upstream, nursery, **{"streams.provider_timeout_s": 0.3})
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_timeout" and "between tokens" in logged(caplog, error)
    assert upstream.closed_at is not None  # and the stalled connection was closed


async def test_500_three_times_then_the_error_is_reported(
        upstream: Upstream, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    upstream.script = [(500, b'{"error": {"message": "boom"}}', {})] * 3
    recorder = await pipeline(upstream, nursery, **{"streams.provider_retries": 2,
                                                    "streams.provider_retry_base_ms": 10.0})
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_error" and error["message"] == PROVIDER_FAILED
    assert "HTTP 500" in logged(caplog, error) and "boom" in logged(caplog, error)
    assert len(upstream.requests) == 3
    assert len([ev for _, ev in recorder.of("state") if ev["state"] == "retrying"]) == 2


async def test_unknown_provider_and_unreachable_upstream_are_reported(
        nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_pipeline import connect, start

    port = Upstream().port or 1  # nothing listens on port 1 of 127.0.0.1
    registry = Registry(make_config(**{
        "providers.openai.base_url": f"http://127.0.0.1:{port}/v1",
        "streams.provider_retries": 1, "streams.provider_retry_base_ms": 1.0,
        # listed (so the policy lets it through) but never registered: found out at run time
        "policy.providers": ("openai", "nonesuch")}))
    registry.bind(nursery)
    session = registry.get_or_create("faults-unreach")
    _connection, recorder = await connect(nursery, session)
    session.submit(start("hi", provider="openai", mode="off"))
    session.submit(start("hi", provider="nonesuch", mode="off"))
    with trio.fail_after(10):
        await recorder.wait_for("stream_complete", 2)
    codes = [ev["code"] for _, ev in recorder.of("error")]
    assert codes == ["provider_unavailable", "provider_unavailable"]
    unreachable, unknown = [ev for _, ev in recorder.of("error")]
    assert unreachable["message"] == "the model provider is unavailable"
    assert f"http://127.0.0.1:{port}/v1" in logged(caplog, unreachable)
    assert "cannot connect" in logged(caplog, unreachable)
    assert "unknown provider 'nonesuch'" in unknown["message"]  # the client's own input


def test_presets_fill_only_what_is_left_empty() -> None:
    from streamer.providers.openai_compat import resolve_preset
    perplexity = resolve_preset(OpenAIProviderConfig(preset="perplexity"))
    assert (perplexity.base_url, perplexity.model, perplexity.api_key_env) == (
        "https://api.perplexity.ai", "sonar", "PERPLEXITY_API_KEY")
    ollama = resolve_preset(OpenAIProviderConfig(preset="ollama", model="qwen3:4b"))
    assert (ollama.base_url, ollama.model, ollama.api_key_env) == (
        "http://127.0.0.1:11434/v1", "qwen3:4b", "")
    assert resolve_preset(OpenAIProviderConfig()).base_url == "https://api.openai.com/v1"


async def test_a_server_preset_without_a_model_names_the_setting() -> None:
    provider = OpenAIProvider(OpenAIProviderConfig(preset="vllm"))
    with pytest.raises(ProviderError, match="providers.openai.model") as info:
        async with provider.stream(REQUEST) as channel:
            async for _ in channel:
                pass
    assert info.value.retryable is False


async def test_an_unknown_model_names_the_setting_and_is_not_retried(
        upstream: Upstream, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    upstream.script = [(404, b'{"error": {"message": "The model does not exist"}}', {})]
    recorder = await pipeline(upstream, nursery)
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_error" and error["message"] == PROVIDER_NO_MODEL
    assert "providers.openai.model" in logged(caplog, error)
    assert error["retryable"] is False and len(upstream.requests) == 1


async def test_rate_limited_until_the_retries_run_out(
        upstream: Upstream, nursery: trio.Nursery) -> None:
    upstream.script = [(429, b'{"error": {"message": "slow down"}}', {"retry-after": "0.05"})] * 3
    recorder = await pipeline(upstream, nursery, **{"streams.provider_retries": 2})
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "rate_limited" and error["retry_after_ms"] == 50
    assert len(upstream.requests) == 3
