"""The history budget through the pipeline (registry → session → stream → provider), in
virtual time: earlier turns dropped oldest first and ``stream_start`` saying so, a prompt that
alone does not fit, the prompt limit as a setting, and a provider's error unwrapped from the
nursery it left."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest
import trio
import trio.testing

from streamer.conversation import Message
from streamer.errors import PayloadTooLarge, ProviderError
from streamer.providers import Finish, Provider, ProviderRequest, TextDelta
from streamer.runtime.history import fit_request
from streamer.tools import Tool
from tests.shells.test_pipeline import connect, open_pipeline, start


async def turn(session: Any, recorder: Any, text: str, n: int, **kwargs: Any) -> dict[str, Any]:
    """Submit ``text`` and wait for its end (the ``n``-th stream of the session); its
    ``stream_start``."""
    session.submit(start(text, mode="off", **kwargs))
    await recorder.wait_for("stream_complete", n)
    return recorder.of("stream_start")[n - 1][1]


def user(text: str) -> Message:
    return Message("user", text)


def answer(text: str) -> Message:
    return Message("assistant", text)


async def test_the_oldest_turns_are_dropped_and_stream_start_says_how_many(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    # echo counts characters: each turn is a 10-character prompt and its 10-character echo
    _registry, session = await open_pipeline(nursery, **{"providers.echo.max_input_tokens": 30})
    _connection, recorder = await connect(nursery, session)
    first = await turn(session, recorder, "a" * 10, 1)
    assert (first["history_dropped"], first["input_tokens"], first["max_input_tokens"]) == (
        0, 10, 30)
    second = await turn(session, recorder, "b" * 10, 2)
    assert (second["history_dropped"], second["input_tokens"]) == (0, 30)  # exactly fits
    third = await turn(session, recorder, "c" * 10, 3)
    assert (third["history_dropped"], third["input_tokens"]) == (1, 30)
    stream = session.streams[third["stream_id"]]
    assert stream.messages == (user("b" * 10), answer("b" * 10), user("c" * 10))
    complete = recorder.of("stream_complete")[2][1]
    assert complete["usage"]["input_tokens"] == 30  # what the provider was really sent
    (fit,) = [e for e in stream.trace if e.event == "history"]
    assert fit.detail == {"dropped": 1, "kept": 2, "input_size": 30, "budget": 30,
                          "unit": "chars"}
    # the session remembers more than one request sends
    assert len(session.history) == 6


async def test_a_prompt_that_alone_passes_the_budget_fails_and_the_session_goes_on(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _registry, session = await open_pipeline(nursery, **{"providers.echo.max_input_tokens": 30})
    _connection, recorder = await connect(nursery, session)
    await turn(session, recorder, "a" * 10, 1)
    await turn(session, recorder, "z" * 31, 2)
    error = await recorder.wait_for("error")
    assert error["code"] == "payload_too_large" and not error["retryable"]
    assert error["message"] == ("start: the prompt needs 31 characters; the model's input "
                                "budget is 30 characters")
    assert recorder.of("stream_complete")[1][1]["finish_reason"] == "error"
    again = await turn(session, recorder, "b" * 10, 3)  # the session keeps working
    assert recorder.of("stream_complete")[2][1]["finish_reason"] == "stop"
    assert (again["history_dropped"], again["input_tokens"]) == (0, 30)
    assert session.history == [user("a" * 10), answer("a" * 10), user("b" * 10),
                               answer("b" * 10)]


async def test_the_prompt_limit_is_a_setting_checked_on_the_whole_request(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    _registry, session = await open_pipeline(nursery, **{"streams.max_prompt_chars": 45})
    _connection, recorder = await connect(nursery, session)
    with pytest.raises(PayloadTooLarge, match="exceed 45 characters"):
        session.submit(start("x" * 46, mode="off"))
    assert not session.streams  # refused before a stream exists
    await turn(session, recorder, "a" * 20, 1)
    # 20 + 20 earlier + 20 new = 60 characters: over 45, the first turn stays home
    second = await turn(session, recorder, "b" * 20, 2)
    assert second["history_dropped"] == 1
    assert "input_tokens" not in second and "max_input_tokens" not in second  # echo: no budget
    assert session.streams[second["stream_id"]].messages == (user("b" * 20),)
    # and the session does not keep what no request could send
    assert session.history == [user("b" * 20), answer("b" * 20)]


class Counting(Provider):
    """Counts one token per character, has a budget, sends tools; answers "ok"."""

    name = "counting"
    exact_count = True
    message_overhead = 2
    request_overhead = 1

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.seen: list[ProviderRequest] = []

    def model_for(self, request: ProviderRequest) -> str:
        return "counting-1"

    def input_budget(self, request: ProviderRequest) -> int:
        return self.budget

    async def measure(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        self.seen.append(request)
        yield TextDelta("ok")
        yield Finish("stop")


def calc_tool() -> Tool:
    return Tool("calc", "adds", {"type": "object"}, lambda: 0)


async def test_system_tools_and_overheads_count_against_the_budget() -> None:
    tools = (calc_tool(),)
    schema = len('{"name": "calc", "description": "adds", "parameters": {"type": "object"}}')
    history = (user("a" * 10), answer("b" * 10), user("c" * 10), answer("d" * 10))
    request = ProviderRequest(messages=(*history, user("e" * 10)), system="s" * 5, tools=tools)
    fixed = (5 + 2) + (schema + 2) + (10 + 2) + 1  # system, tools, prompt, the request
    provider = Counting(fixed + 24)  # one earlier turn: 2 messages of 10 + 2
    fitted = await fit_request(provider, request, 100_000)
    assert fitted.messages == (user("c" * 10), answer("d" * 10), user("e" * 10))
    assert (fitted.dropped, fitted.size, fitted.budget) == (1, fixed + 24, fixed + 24)
    assert not fitted.estimated
    provider.budget = fixed - 1
    with pytest.raises(PayloadTooLarge, match=f"the prompt, system and the tools need {fixed:,}"
                                              " tokens; the model's input budget is "):
        await fit_request(provider, request, 100_000)
    with pytest.raises(PayloadTooLarge, match="a request may send at most 20"):
        await fit_request(Counting(10_000), request, 20)


async def test_the_estimate_says_about() -> None:
    class Estimating(Counting):
        exact_count = False

        async def measure(self, texts: Sequence[str]) -> list[int]:
            return await Provider.measure(self, texts)

    with pytest.raises(PayloadTooLarge, match="the prompt needs about 28 tokens"):
        await fit_request(Estimating(5), ProviderRequest(messages=(user("x" * 100),)), 10_000)


class NurseryFailing(Provider):
    """Fails inside a nursery of its own before any output, as the local provider's thread
    plumbing does: the error leaves the nursery as an exception group."""

    name = "nursery_failing"

    def model_for(self, request: ProviderRequest) -> str:
        return "nf-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise ProviderError("nursery_failing: context window exceeded", retryable=False,
                                public_message="the request is longer than the model accepts")
        yield Finish("stop")  # pragma: no cover


async def test_a_provider_error_leaving_a_nursery_is_reported_as_itself(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry, session = await open_pipeline(nursery, allow=("nursery_failing",))
    registry.providers.register(NurseryFailing())
    _connection, recorder = await connect(nursery, session)
    session.submit(start("hello", mode="off", provider="nursery_failing"))
    error = await recorder.wait_for("error")
    assert error["code"] == "provider_error"
    assert error["message"] == "the request is longer than the model accepts"
    complete = await recorder.wait_for("stream_complete")
    assert complete["finish_reason"] == "error"
    session.submit(start("again", mode="off"))  # the session goes on
    assert (await recorder.wait_for("stream_complete", 2))["finish_reason"] == "stop"


def http_error(sdk: Any, status: int, body: dict[str, Any]) -> Any:
    """The SDK's exception for an HTTP error answer with this JSON body."""
    import httpx

    response = httpx.Response(status, json=body,
                              request=httpx.Request("POST", "https://api.example/v1"))
    return sdk.APIStatusError(str(body), response=response, body=body) if status != 400 \
        else sdk.BadRequestError(str(body.get("error", body)), response=response, body=body)


def test_remote_context_overflows_are_provider_errors_naming_the_budget() -> None:
    import anthropic
    import openai

    from streamer.config import AnthropicProviderConfig, OpenAIProviderConfig
    from streamer.providers import anthropic_messages, openai_compat

    config = OpenAIProviderConfig(max_input_tokens=8_000)
    overflow = http_error(openai, 400, {"message": "This model's maximum context length is "
                                        "8192 tokens", "code": "context_length_exceeded"})
    exc = openai_compat.translate_error(overflow, config)
    assert (exc.code, exc.retryable) == ("provider_error", False)
    assert exc.message == ("the request is longer than the model accepts (its input budget is "
                           "8,000 tokens)")
    other = openai_compat.translate_error(
        http_error(openai, 400, {"message": "bad temperature", "code": "invalid_value"}), config)
    assert other.message == "the model provider refused the request"
    too_long = http_error(anthropic, 400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > "
        "200000 maximum"}})
    exc = anthropic_messages.translate_error(too_long, AnthropicProviderConfig())
    assert exc.message == ("the request is longer than the model accepts (its input budget is "
                           "100,000 tokens)")
