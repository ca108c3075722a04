"""The ``anthropic`` provider against a real HTTP server on 127.0.0.1 replaying recorded
Messages streams (see tests/data/transcripts/README.md): the official SDK parses real SSE."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from streamer.config import AnthropicProviderConfig
from streamer.errors import (
    PROVIDER_FAILED,
    PROVIDER_NOT_CONFIGURED,
    ProviderError,
    ProviderUnavailable,
)
from streamer.conversation import Message
from streamer.providers import (
    Finish,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from streamer.providers.anthropic_messages import AnthropicProvider
from tests.conftest import logged
from tests.shells.test_openai_provider import CUT, Upstream, upstream  # noqa: F401 - the fixture

DATA = Path(__file__).parents[1] / "data" / "transcripts"
REQUEST = ProviderRequest((Message("user", "Weather in Paris?"),), system="Be brief.",
                          max_tokens=2048)


def provider_for(server: Upstream, **changes: object) -> AnthropicProvider:
    return AnthropicProvider(AnthropicProviderConfig(
        base_url=f"http://127.0.0.1:{server.port}", model="claude-test",
        api_key_env="STREAMER_TEST_KEY", **changes))  # type: ignore[arg-type]


async def collect(provider: AnthropicProvider) -> list[object]:
    events = []
    async with provider.stream(REQUEST) as channel:
        async for item in channel:
            events.append(item)
    return events


async def test_thinking_text_and_tool_use_are_told_apart(upstream: Upstream) -> None:
    upstream.body = (DATA / "anthropic_thinking_tool_use.sse").read_bytes()
    events = await collect(provider_for(upstream, thinking_budget_tokens=1024))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "The user asks about the weather in Paris."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "Let me check the **weather**.")
    assert ToolCallStart("toolu_01A", "get_weather") in events
    assert "".join(e.arguments_delta for e in events if isinstance(e, ToolCallDelta)) == (
        '{"city": "Paris"}')
    assert ToolCallComplete("toolu_01A", "get_weather", {"city": "Paris"}) in events
    assert events[-2:] == [Usage(25, 89), Finish("tool_calls")]
    sent = upstream.requests[0]
    assert sent["system"] == "Be brief." and sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "temperature" not in sent


async def test_an_error_event_after_http_200_is_raised(upstream: Upstream) -> None:
    upstream.body = (DATA / "anthropic_overloaded_midstream.sse").read_bytes()
    events: list[object] = []
    with pytest.raises(ProviderUnavailable, match="overloaded_error"):
        async with provider_for(upstream).stream(REQUEST) as channel:
            async for item in channel:
                events.append(item)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Partial ", "answer"]


async def test_a_connection_cut_mid_body_is_a_retryable_provider_error(upstream: Upstream) -> None:
    transcript = (DATA / "anthropic_thinking_tool_use.sse").read_bytes()
    upstream.body = transcript[:transcript.index(b"event: content_block_stop")]
    upstream.cut = True
    events = []
    with pytest.raises(ProviderError, match=CUT) as info:
        async with provider_for(upstream, thinking_budget_tokens=1024).stream(REQUEST) as channel:
            async for item in channel:
                events.append(item)
    assert info.value.retryable is True
    assert any(isinstance(e, ReasoningDelta) for e in events)


async def test_refused_key_names_the_setting_and_is_not_retryable(upstream: Upstream) -> None:
    upstream.status = 401
    upstream.body = (b'{"type": "error", "error": {"type": "authentication_error", '
                     b'"message": "invalid x-api-key"}}')
    with pytest.raises(ProviderError, match="STREAMER_TEST_KEY is not set") as info:
        await collect(provider_for(upstream))
    assert info.value.retryable is False
    assert info.value.message == PROVIDER_NOT_CONFIGURED  # what a client reads


async def test_overloaded_529_is_retryable_with_retry_after(upstream: Upstream) -> None:
    upstream.script = [(529, b'{"type": "error", "error": {"type": "overloaded_error", '
                             b'"message": "Overloaded"}}', {"retry-after": "3"})]
    with pytest.raises(ProviderUnavailable) as info:
        await collect(provider_for(upstream))
    assert info.value.retryable and info.value.retry_after_ms == 3000


async def test_mid_stream_overload_ends_the_answer_with_provider_error(
        upstream: Upstream, nursery: trio.Nursery,
        caplog: pytest.LogCaptureFixture) -> None:
    """Through the pipeline: after the first token nothing is retried; the client gets
    ``provider_error`` and the partial answer in ``stream_complete``."""
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_pipeline import connect, start

    upstream.body = (DATA / "anthropic_overloaded_midstream.sse").read_bytes()
    registry = Registry(make_config(**{
        "providers.anthropic.base_url": f"http://127.0.0.1:{upstream.port}",
        "providers.anthropic.api_key_env": "STREAMER_TEST_KEY"}))
    registry.bind(nursery)
    session = registry.get_or_create("anthropic-e2e-1")
    _connection, recorder = await connect(nursery, session)
    session.submit(start("hi", provider="anthropic", mode="off"))
    with trio.fail_after(10):
        complete = await recorder.wait_for("stream_complete")
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_error" and error["message"] == PROVIDER_FAILED
    assert "overloaded" in logged(caplog, error)
    assert complete["finish_reason"] == "error" and complete["markdown"] == "Partial answer"
    assert len(upstream.requests) == 1
