"""Provider faults and provider events through the real pipeline, in virtual time: retries
before the first token (backoff, retry-after, limits), none after it, the two timeouts, and
reasoning / tool-call events that travel beside the document."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio
import trio.testing

from streamer.errors import ProviderError, ProviderUnavailable
from streamer.providers import (
    Finish,
    Provider,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
)
from tests.conftest import logged
from tests.shells.test_pipeline import connect, open_pipeline, start


class ScriptedProvider(Provider):
    """Fails the first ``failures`` calls with ``error`` (before any output), then plays
    ``events`` with ``gap_s`` between them."""

    def __init__(self, name: str, events: list[Any], *, failures: int = 0,
                 error: ProviderError | None = None, gap_s: float = 0.01,
                 first_wait_s: float = 0.0) -> None:
        self.name = name
        self.events = events
        self.failures = failures
        self.error = error or ProviderUnavailable("scripted: connection refused")
        self.gap_s = gap_s
        self.first_wait_s = first_wait_s
        self.calls: list[float] = []

    def model_for(self, request: ProviderRequest) -> str:
        return "scripted-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        self.calls.append(trio.current_time())
        if len(self.calls) <= self.failures:
            raise self.error
        await trio.sleep(self.first_wait_s)
        for item in self.events:
            if isinstance(item, Exception):
                raise item
            yield item
            await trio.sleep(self.gap_s)


async def run(nursery: trio.Nursery, provider: ScriptedProvider, **config: Any
              ) -> tuple[Any, Any]:
    registry, session = await open_pipeline(nursery, allow=(provider.name,), **config)
    registry.providers.register(provider)
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start(provider=provider.name, mode="off"))
    await recorder.wait_for("stream_complete")
    return stream, recorder


async def test_connection_failures_are_retried_with_backoff_then_the_answer_streams(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider("flaky", [TextDelta("Hello "), TextDelta("there")], failures=2)
    stream, recorder = await run(nursery, provider, **{"streams.provider_retry_base_ms": 1000})
    assert len(provider.calls) == 3 and stream.finish_reason == "stop"
    retries = [ev for _, ev in recorder.of("state") if ev["state"] == "retrying"]
    assert [r["attempt"] for r in retries] == [1, 2]
    assert all(r["code"] == "provider_unavailable" and "seq" in r for r in retries)
    # full jitter: attempt k waits uniform(0, base * 2**(k-1))
    gaps = [b - a for a, b in zip(provider.calls, provider.calls[1:], strict=False)]
    assert 0 <= gaps[0] <= 1.0 + 1e-9 and 0 <= gaps[1] <= 2.0 + 1e-9
    assert [r["retry_in_ms"] for r in retries] == [round(g * 1000) for g in gaps]
    assert not recorder.of("error")
    assert "".join(recorder.document()) == "<p>Hello there</p>\n"


async def test_retry_after_is_honoured(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    limited = ProviderUnavailable("scripted: rate limited (429)", retry_after_ms=2_500)
    provider = ScriptedProvider("limited", [TextDelta("ok")], failures=1, error=limited)
    stream, _recorder = await run(nursery, provider)
    assert provider.calls[1] - provider.calls[0] == pytest.approx(2.5)
    assert stream.finish_reason == "stop"


async def test_retries_are_bounded_then_the_error_is_reported(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    provider = ScriptedProvider("down", [TextDelta("never")], failures=99,
                                error=ProviderError("scripted: HTTP 503", retryable=True))
    stream, recorder = await run(nursery, provider, **{"streams.provider_retries": 3})
    assert len(provider.calls) == 4
    (error,) = [ev for _, ev in recorder.of("error")]
    assert error["code"] == "provider_error" and error["message"] == "the model provider failed"
    assert "scripted: HTTP 503" in logged(caplog, error)
    assert stream.finish_reason == "error"


async def test_the_retry_budget_caps_waiting(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    limited = ProviderUnavailable("scripted: rate limited (429)", retry_after_ms=60_000)
    provider = ScriptedProvider("slowlimit", [TextDelta("x")], failures=1, error=limited)
    stream, recorder = await run(nursery, provider, **{"streams.provider_retry_budget_s": 30})
    assert len(provider.calls) == 1 and stream.finish_reason == "error"
    assert recorder.of("error")[0][1]["code"] == "provider_unavailable"


async def test_refused_credentials_are_not_retried(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    refused = ProviderError("scripted: the API key was refused (401)", retryable=False)
    provider = ScriptedProvider("refused", [TextDelta("x")], failures=1, error=refused)
    stream, recorder = await run(nursery, provider)
    assert len(provider.calls) == 1 and stream.finish_reason == "error"
    assert not [ev for _, ev in recorder.of("state") if ev["state"] == "retrying"]


async def test_a_failure_after_the_first_token_is_never_retried(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider("midway", [TextDelta("Partial "), TextDelta("answer"),
                                           ProviderUnavailable("scripted: connection reset")])
    _stream, recorder = await run(nursery, provider)
    assert len(provider.calls) == 1
    assert recorder.of("error")[0][1]["code"] == "provider_error"  # after the first token
    complete = recorder.of("stream_complete")[0][1]
    assert complete["finish_reason"] == "error" and complete["markdown"] == "Partial answer"


async def test_time_to_first_token_and_silence_have_their_own_timeouts(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    late = ScriptedProvider("late", [TextDelta("x")], first_wait_s=9.0)
    stream, recorder = await run(nursery, late, **{"streams.provider_ttft_timeout_s": 5.0,
                                                   "streams.provider_timeout_s": 20.0})
    error = recorder.of("error")[0][1]
    assert error["code"] == "provider_timeout" and "before the first token" in logged(caplog, error)
    assert len(late.calls) == 1  # a timeout is reported, not retried
    gappy = ScriptedProvider("gappy", [TextDelta("a"), TextDelta("b")], gap_s=9.0)
    stream, recorder = await run(nursery, gappy, **{"streams.provider_ttft_timeout_s": 5.0,
                                                    "streams.provider_timeout_s": 20.0})
    assert stream.finish_reason == "stop" and not recorder.of("error")


async def test_reasoning_and_tool_calls_travel_beside_the_document(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ScriptedProvider("tools", [
        ReasoningDelta("The user wants "), ReasoningDelta("the weather."),
        ToolCallStart("call_1", "get_weather"),
        ToolCallDelta("call_1", '{"city": "Pa'), ToolCallDelta("call_1", 'ris"}'),
        ToolCallComplete("call_1", "get_weather", {"city": "Paris"}),
        TextDelta("It is *sunny*."), Finish("stop")])
    stream, recorder = await run(nursery, provider)
    kinds = [ev["type"] for _, ev in recorder.events
             if ev["type"] in ("reasoning", "tool_call", "chunk")]
    assert kinds[:6] == ["reasoning", "reasoning", "tool_call", "tool_call", "tool_call",
                         "tool_call"]
    reasoning = "".join(ev["text"] for _, ev in recorder.of("reasoning"))
    assert reasoning == "The user wants the weather."
    calls = [ev for _, ev in recorder.of("tool_call")]
    assert [c["status"] for c in calls] == ["start", "delta", "delta", "complete"]
    assert "".join(c.get("arguments_delta", "") for c in calls) == '{"city": "Paris"}'
    assert calls[-1]["arguments"] == {"city": "Paris"} and calls[0]["name"] == "get_weather"
    seqs = [ev["seq"] for _, ev in recorder.events if "seq" in ev and ev["type"] != "snapshot"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert "".join(recorder.document()) == "<p>It is <em>sunny</em>.</p>\n"
    assert stream.markdown == "It is *sunny*."
