"""The ``echo`` provider's pacing: after each delta (the default) or on an absolute schedule
(``providers.echo.absolute_schedule``, what the load benchmark's lag assumes)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from streamer.config import EchoProviderConfig
from streamer.conversation import EchoOptions, Message
from streamer.providers.base import ProviderRequest, TextDelta
from streamer.providers.echo import EchoProvider


async def delta_times(absolute: bool) -> list[float]:
    """When each of 10 deltas (20 ms apart) arrives at a reader that stalls 100 ms at the 3rd,
    seconds after the first."""
    provider = EchoProvider(EchoProviderConfig(absolute_schedule=absolute))
    request = ProviderRequest(messages=(Message("user", "abcd" * 10),),
                              echo=EchoOptions(delta_chars=4, interval_ms=20))
    times: list[float] = []
    async with provider.stream(request) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                times.append(trio.current_time())
                if len(times) == 3:
                    await trio.sleep(0.1)
    return [t - times[0] for t in times]


@pytest.mark.parametrize("absolute", [False, True])
async def test_schedule(absolute: bool, autojump_clock: trio.testing.MockClock) -> None:
    times = await delta_times(absolute)
    assert len(times) == 10
    assert times[:3] == pytest.approx([0, 0.02, 0.04])
    # the provider runs ahead of a stalled reader (``event_stream``'s buffer): the stall
    # delays one delta, the rest were made on time and catch up with the schedule
    assert times[3] == pytest.approx(0.14)
    assert times[9] == pytest.approx(0.18)


async def answer_of(prompt: str, repeat: int, max_tokens: int | None = None
                    ) -> tuple[str, str]:
    from streamer.providers.base import Finish
    provider = EchoProvider(EchoProviderConfig())
    request = ProviderRequest(messages=(Message("user", prompt),), max_tokens=max_tokens,
                              echo=EchoOptions(delta_chars=7, interval_ms=0, repeat=repeat))
    text, finish = "", ""
    async with provider.stream(request) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, Finish):
                finish = event.reason
    return text, finish


async def test_repeat_makes_a_long_answer_of_a_short_prompt_within_the_limits() -> None:
    assert await answer_of("ab\n", 4) == ("ab\n" * 4, "stop")
    assert await answer_of("abcd", 3, max_tokens=10) == ("abcdabcdab", "length")
    from streamer.providers.echo import ECHO_MAX_CHARS
    text, finish = await answer_of("x" * 9_999, 1000)  # 10 M asked: cut at the maximum
    assert len(text) == ECHO_MAX_CHARS and finish == "length"
