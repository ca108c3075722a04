"""Generation's policy without Trio: provider events → log entries, the size limit, the
first-output rule, tool rounds, and the retry policy."""

from __future__ import annotations

import pytest

from streamer.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    ResponseTooLarge,
)
from streamer.log.stream_log import MemoryStreamLog
from streamer.providers import (
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.runtime.generation import (
    Generation,
    RetryPolicy,
    after_first_output,
    answer_finish,
    next_step,
    retry_delay_s,
)
from streamer.tools import ToolResult
from streamer.wire.events import Reasoning, ToolCall

RENDERER = Renderer()


def generation(max_chars: int = 1000) -> Generation:
    return Generation(MemoryStreamLog("s_1"), Chunker(RENDERER), session_id="sess",
                      stream_id="s_1", max_response_chars=max_chars)


def events(gen: Generation) -> list[object]:
    return [e.event for e in gen.log.cursor().take() if e.event is not None]


def test_text_becomes_source_and_ops_and_asks_for_backpressure() -> None:
    gen = generation()
    assert gen.feed(TextDelta("Hello ")) and gen.feed(TextDelta("**world**"))
    gen.close()
    assert gen.log.source(0, gen.log.source_count) == ["Hello ", "**world**"]
    assert gen.chunker.html == "<p>Hello <strong>world</strong></p>\n"
    assert gen.log.total_chars > 0 and all(e.op is not None for e in gen.log.cursor().take())


def test_other_events_go_to_the_log_beside_the_document() -> None:
    gen = generation()
    assert not gen.feed(ReasoningDelta("think"))
    assert not gen.feed(ToolCallStart("c1", "calc"))
    gen.feed(ToolCallDelta("c1", '{"e"'))
    gen.feed(ToolCallComplete("c1", "calc", {"e": "1"}))
    gen.feed(Usage(3, 4, "tokens"))
    gen.feed(Finish("tool_calls"))
    assert events(gen) == [
        Reasoning("sess", "s_1", "think"), ToolCall.started("sess", "s_1", "c1", "calc"),
        ToolCall.delta("sess", "s_1", "c1", '{"e"'),
        ToolCall.complete("sess", "s_1", "c1", "calc", {"e": "1"})]
    assert gen.usage == {"input_tokens": 3, "output_tokens": 4, "unit": "tokens"}
    assert gen.finish == "tool_calls" and [c.call_id for c in gen.calls] == ["c1"]


def test_the_first_output_is_text_reasoning_or_a_tool_call_start() -> None:
    for first in (TextDelta("a"), ReasoningDelta("r"), ToolCallStart("c", "t")):
        gen = generation()
        assert not gen.starts_output(Usage(1, 1, "tokens")) and not gen.first_output
        assert gen.starts_output(first) and gen.first_output
        assert not gen.starts_output(TextDelta("b"))  # only once per call
        gen.begin_step()
        assert not gen.first_output


def test_the_size_limit_keeps_what_fits_then_raises() -> None:
    gen = generation(max_chars=10)
    gen.feed(TextDelta("abcdef"))
    with pytest.raises(ResponseTooLarge, match="10 characters"):
        gen.feed(TextDelta("ghijklmn"))
    gen.close()
    assert gen.chunker.markdown == "abcdefghij"
    assert "".join(gen.log.source(0, gen.log.source_count)) == "abcdefghij"


def test_a_tool_round_is_remembered_and_later_text_set_apart() -> None:
    gen = generation()
    gen.begin_step()
    gen.feed(TextDelta("Let me check."))
    call = ToolCallComplete("c1", "calc", {"e": "1+1"})
    gen.feed(call)
    result = ToolResult("c1", "calc", "2")
    gen.tool_result(call, result)
    gen.end_round([result])
    assert gen.rounds[0].text == "Let me check." and gen.rounds[0].results == (result,)
    gen.begin_step()
    assert gen.calls == [] and gen.text == []
    gen.feed(TextDelta("It is 2."))
    gen.close()
    assert gen.chunker.markdown == "Let me check.\n\nIt is 2."
    assert events(gen)[-1] == ToolCall.answered("sess", "s_1", "c1", "calc", "2", False)


def test_next_step_answers_runs_tools_or_stops_at_the_limit() -> None:
    assert next_step("stop", 0, 0, 3) == "answer"
    assert next_step("tool_calls", 0, 0, 3) == "answer"  # asked for tools, named none
    assert next_step("tool_calls", 2, 0, 3) == "tools"
    assert next_step("tool_calls", 1, 3, 3) == "exhausted"
    assert [answer_finish(f) for f in ("stop", "length", "tool_calls")] == [
        "stop", "length", "stop"]


POLICY = RetryPolicy(retries=3, base_ms=1000, budget_s=30)


def test_retries_back_off_with_full_jitter_within_the_budget() -> None:
    exc = ProviderUnavailable("refused")
    top = [retry_delay_s(exc, n, POLICY, first_output=False, time_left_s=30,
                         uniform=lambda lo, hi: hi) for n in range(3)]
    assert top == [1.0, 2.0, 4.0]
    assert retry_delay_s(exc, 0, POLICY, first_output=False, time_left_s=30,
                         uniform=lambda lo, hi: lo) == 0.0
    assert retry_delay_s(exc, 3, POLICY, first_output=False, time_left_s=30) is None
    assert retry_delay_s(exc, 2, POLICY, first_output=False, time_left_s=3.9,
                         uniform=lambda lo, hi: hi) is None  # past the budget


def test_retry_after_is_honoured_and_some_failures_are_never_retried() -> None:
    limited = ProviderRateLimited("slow down", retry_after_ms=2500)
    assert retry_delay_s(limited, 0, POLICY, first_output=False, time_left_s=30) == 2.5
    for exc in (ProviderTimeout("silent"), ProviderError("bad key", retryable=False)):
        assert retry_delay_s(exc, 0, POLICY, first_output=False, time_left_s=30) is None
    assert retry_delay_s(limited, 0, POLICY, first_output=True, time_left_s=30) is None


def test_after_the_first_output_a_dropped_call_is_a_provider_error() -> None:
    for exc in (ProviderUnavailable("reset"), ProviderRateLimited("overloaded")):
        ended = after_first_output(exc)
        assert type(ended) is ProviderError and ended.code == "provider_error"
        assert ended.detail == exc.detail and ended.retryable
        assert ended.message == "the model provider failed"  # never the detail
    timeout = ProviderTimeout("silent")
    assert after_first_output(timeout) is timeout
