"""Tool use: the model asks, streamer runs the tool inside the stream's cancel scope with a
timeout, sends the result back and the model continues (bounded rounds); ``stop`` cancels a
running tool. Virtual time, plus the real wire formats through the fake upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import trio
import trio.testing

from streamer.errors import InvalidMessage
from streamer.providers import (
    Finish,
    Provider,
    ProviderRequest,
    TextDelta,
    ToolCallComplete,
    ToolCallStart,
)
from streamer.tools import Tools, calculate
from streamer.wire.controls import parse_control
from tests.shells.test_pipeline import connect, open_pipeline


class ToolUser(Provider):
    """Asks for ``calls`` (one round each) until it has that many results, then answers."""

    name = "tooluser"

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.calls = calls
        self.requests: list[ProviderRequest] = []

    def model_for(self, request: ProviderRequest) -> str:
        return "tooluser-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        self.requests.append(request)
        step = len(request.tool_rounds)
        if step < len(self.calls):
            name, arguments = self.calls[step]
            yield TextDelta(f"Step {step}.")
            yield ToolCallStart(f"call_{step}", name)
            yield ToolCallComplete(f"call_{step}", name, arguments)
            yield Finish("tool_calls")
            return
        results = [r.content for rnd in request.tool_rounds for r in rnd.results]
        yield TextDelta("Results: " + "; ".join(results))
        yield Finish("stop")


def start_with_tools(tools: list[str]) -> Any:
    return parse_control({"type": "start", "prompt": "go", "provider": "tooluser",
                          "pacing": {"mode": "off"}, "tools": tools}, 10_000)


async def run(nursery: trio.Nursery, provider: ToolUser, tools: list[str],
              register: Any = None, **config: Any) -> tuple[Any, Any]:
    registry, session = await open_pipeline(nursery, allow=("tooluser",), **config)
    registry.providers.register(provider)
    if register is not None:
        register(registry.tools)
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start_with_tools(tools))
    await recorder.wait_for("stream_complete")
    return stream, recorder


async def test_the_model_calls_a_tool_gets_the_result_and_continues(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ToolUser([("calculate", {"expression": "(17 + 4) * 3"})])
    stream, recorder = await run(nursery, provider, ["calculate"])
    assert [t.name for t in provider.requests[0].tools] == ["calculate"]
    (round_,) = provider.requests[1].tool_rounds
    assert round_.text == "Step 0." and round_.results[0].content == "63"
    statuses = [ev["status"] for _, ev in recorder.of("tool_call")]
    assert statuses == ["start", "complete", "result"]
    assert recorder.of("tool_call")[-1][1]["result"] == "63"
    complete = recorder.of("stream_complete")[0][1]
    assert complete["finish_reason"] == "stop"
    assert complete["markdown"] == "Step 0.\n\nResults: 63"
    assert any(t.event == "tool_finished" for t in stream.trace)


async def test_tool_failures_and_unknown_tools_are_told_to_the_model(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ToolUser([("calculate", {"expression": "__import__('os')"}),
                         ("not_offered", {})])
    _stream, recorder = await run(nursery, provider, ["calculate"])
    results = [ev for _, ev in recorder.of("tool_call") if ev["status"] == "result"]
    assert results[0]["is_error"] and "only numbers" in results[0]["result"]
    assert results[1]["is_error"] and "no tool named 'not_offered'" in results[1]["result"]
    assert recorder.of("stream_complete")[0][1]["finish_reason"] == "stop"


async def test_a_slow_tool_times_out_and_the_answer_goes_on(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    async def slow_lookup() -> str:
        await trio.sleep(60)
        return "never"

    provider = ToolUser([("slow_lookup", {})])
    t0 = trio.current_time()
    _stream, recorder = await run(
        nursery, provider, ["slow_lookup"],
        lambda tools: tools.register(slow_lookup, timeout_s=5.0))
    (result,) = [ev for _, ev in recorder.of("tool_call") if ev["status"] == "result"]
    assert result["is_error"] and "timed out after 5 s" in result["result"]
    assert trio.current_time() - t0 == pytest.approx(5.0, abs=0.1)


async def test_stop_cancels_a_running_tool(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    seen: dict[str, float] = {}
    started = trio.Event()

    async def long_job() -> str:
        seen["started"] = trio.current_time()
        started.set()
        try:
            await trio.sleep(3600)
        finally:
            seen["ended"] = trio.current_time()
        return "done"  # pragma: no cover

    registry, session = await open_pipeline(nursery, allow=("tooluser",))
    registry.providers.register(ToolUser([("long_job", {})]))
    registry.tools.register(long_job, timeout_s=7200)
    _connection, recorder = await connect(nursery, session)
    stream = session.submit(start_with_tools(["long_job"]))
    await started.wait()
    await trio.sleep(10)
    stopped_at = trio.current_time()
    session.stop(None)
    await recorder.wait_for("stream_complete")
    assert seen["ended"] == pytest.approx(stopped_at, abs=0.001)  # cancelled at once
    assert stream.finish_reason == "cancelled"


async def test_rounds_are_bounded(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    provider = ToolUser([("calculate", {"expression": str(i)}) for i in range(10)])
    stream, _recorder = await run(nursery, provider, ["calculate"], **{"tools.max_steps": 2})
    assert len(provider.requests) == 3  # two rounds of tools, then the model's last say
    assert stream.finish_reason == "stop"
    assert any(t.event == "tool_steps_exhausted" for t in stream.trace)


def test_unknown_tools_in_start_are_refused() -> None:
    tools = Tools()
    tools.register(calculate)
    with pytest.raises(InvalidMessage, match="unknown tools"):
        tools.select(("calculate", "rm_rf"))
    assert calculate("2 ** 10 - 24 / 4") == 1018.0
    with pytest.raises(ValueError):
        calculate("9 ** 9999")


async def test_the_openai_wire_format_of_a_tool_round(nursery: trio.Nursery) -> None:
    """The fake upstream first streams a tool call, then an answer: the second request
    carries the assistant's tool_calls and the tool's result as OpenAI documents them."""
    from streamer.runtime.registry import Registry
    from tests.conftest import make_config
    from tests.shells.test_openai_provider import DATA, TRANSCRIPT, Upstream

    server = Upstream()
    listeners = await nursery.start(trio.serve_tcp, server.handle, 0)
    server.port = listeners[0].socket.getsockname()[1]
    server.script = [(200, (DATA / "openai_tool_calls.sse").read_bytes(), {}),
                     (200, TRANSCRIPT, {})]
    registry = Registry(make_config(**{
        "providers.openai.base_url": f"http://127.0.0.1:{server.port}/v1",
        "providers.openai.api_key_env": "STREAMER_TEST_KEY"}))
    registry.bind(nursery)
    registry.tools.register(lambda city: {"city": city, "sky": "sunny"}, name="get_weather",
                            description="Weather in a city", parameters={
                                "type": "object", "properties": {"city": {"type": "string"}}})
    session = registry.get_or_create("tools-openai-1")
    _connection, recorder = await connect(nursery, session)
    session.submit(parse_control({"type": "start", "prompt": "Weather in Paris?",
                                  "provider": "openai", "pacing": {"mode": "off"},
                                  "tools": ["get_weather"]}, 10_000))
    with trio.fail_after(10):
        complete = await recorder.wait_for("stream_complete")
    first, second = server.requests
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_Wx1"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert tool == {"role": "tool", "tool_call_id": "call_Wx1",
                    "content": '{"city": "Paris", "sky": "sunny"}'}
    assert complete["markdown"] == "Hello **world**!"


def test_calculate_refuses_huge_results_before_computing_them() -> None:
    import time

    for expression in ("(((9**99)**99)**99)**16", "((((9**99)**99)**99)**99)**99",
                       "2**3330", "10**999*10", "(9**999)*(9**999)*(9**999)"):
        started = time.perf_counter()
        with pytest.raises(ValueError, match="more than 1000 digits"):
            calculate(expression)
        assert time.perf_counter() - started < 0.05  # refused from the operands' sizes
    assert len(str(calculate("2**3321"))) == 1000
    assert calculate("(-2)**3") == -8 and calculate("2**-2") == 0.25
    with pytest.raises(ValueError, match="too large"):
        calculate("1.5**1e6")


def spin(seconds: float) -> str:
    """A runaway tool: busy for ``seconds`` of CPU (module level: a worker process imports it)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


async def test_an_isolated_tool_is_killed_at_its_timeout_and_the_loop_runs_meanwhile() -> None:
    tools = Tools()
    # the first call starts the worker process (imports take a while on a busy machine)
    warm = tools.register(spin, name="warm", timeout_s=60.0, isolated=True)
    quick = await Tools.call(warm, "c0", "warm", {"seconds": 0.01})
    assert quick.content == "done" and not quick.is_error
    tool = tools.register(spin, timeout_s=1.0, isolated=True)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        started = trio.current_time()
        result = await Tools.call(tool, "c1", "spin", {"seconds": 60})
        elapsed = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert result.is_error and result.content == "error: timed out after 1 s"
    assert elapsed < 5  # killed, not waited for
    assert ticks > 30  # the event loop kept running (the tool was another process)
