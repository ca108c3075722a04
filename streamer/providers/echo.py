"""The ``echo`` provider: answers with the last user message, unchanged, cut into deltas.

For demos of rich formatting, tests and benchmarks (protocol.md, "The echo provider"): it
behaves like a real provider in every other way (cancellation, usage, limits), so anything
measured with it measures the server. Usage is counted in characters, and so is its input
budget (``providers.echo.max_input_tokens``, 0 = none): exactly, one per character.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import trio

from streamer.config import EchoProviderConfig
from streamer.providers.base import (
    EVENT_BUFFER,
    Finish,
    Provider,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    Usage,
    event_stream,
)
from streamer.runtime import timers

#: the longest answer echo gives (characters; ``start.echo.repeat`` cannot make more: the
#: answer is cut there and finishes with ``length``)
ECHO_MAX_CHARS = 1_000_000


class EchoProvider(Provider):
    """Echo the last user message (``start.echo.repeat`` times) in ``delta_chars`` pieces
    every ``interval_ms``.

    ``interval_ms == 0`` sends as fast as the stream takes them, a buffer's worth
    (:data:`~streamer.providers.base.EVENT_BUFFER`) between checkpoints. With
    ``providers.echo.absolute_schedule`` delta ``i`` is due ``i * interval_ms`` after the first
    (no drift from the time each delta takes: what the load benchmark's lag assumes); a delta
    that is late goes at once. ``max_tokens`` counts characters here; an answer cut by it
    finishes with ``length``. Its waits share one timer per Trio run
    (:mod:`streamer.runtime.timers`), so a thousand echo streams cost the server one timer
    expiry per millisecond at most, not one per delta.
    """

    name = "echo"
    input_unit = "chars"
    exact_count = True
    sends_tools = False
    message_overhead = 0
    request_overhead = 0

    def __init__(self, config: EchoProviderConfig) -> None:
        self.config = config

    def input_budget(self, request: ProviderRequest) -> int | None:
        return self.config.max_input_tokens or None

    async def measure(self, texts: Sequence[str]) -> list[int]:
        return [len(text) for text in texts]

    def model_for(self, request: ProviderRequest) -> str:
        return "echo"

    @event_stream
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        text = next(m.content for m in reversed(request.messages) if m.role == "user")
        delta_chars = request.echo.delta_chars or self.config.delta_chars
        interval_s = (self.config.interval_ms if request.echo.interval_ms is None
                      else request.echo.interval_ms) / 1000
        reason: str = "stop"
        limit = min(ECHO_MAX_CHARS, request.max_tokens if request.max_tokens is not None
                    else ECHO_MAX_CHARS)
        if len(text) * request.echo.repeat > limit:
            text, reason = (text * (limit // max(1, len(text)) + 1))[:limit], "length"
        else:
            text *= request.echo.repeat
        input_chars = sum(len(m.content) for m in request.messages) + len(request.system or "")
        t0 = trio.current_time()
        for start in range(0, len(text), delta_chars):
            if start and interval_s > 0 and self.config.absolute_schedule:
                due = t0 + start // delta_chars * interval_s
                if due > trio.current_time():  # behind schedule: what is due goes at once
                    await timers.sleep_until(due)  # (one timer for every echo stream)
            elif start and interval_s > 0:
                await timers.sleep_until(trio.current_time() + interval_s)
            elif start // delta_chars % EVENT_BUFFER == 0:
                # as fast as the stream takes them: a buffer's worth at a time, as a network
                # read hands a reader what arrived (the full buffer is the flow control)
                await trio.lowlevel.checkpoint()
            yield TextDelta(text[start:start + delta_chars])
        yield Usage(input_chars, len(text), unit="chars")
        yield Finish("length" if reason == "length" else "stop")
