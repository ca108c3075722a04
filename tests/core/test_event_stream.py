"""``providers.base.event_stream``: ``trio.as_safe_channel`` with a buffer. The generator runs
ahead of its reader up to ``EVENT_BUFFER`` events and no further; a reader that fell behind
takes what has arrived without waiting; errors leave as themselves; leaving the block
closes the generator at once (issue 16: the provider's deltas handed over in batches)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
import trio
import trio.testing

from streamer.providers.base import EVENT_BUFFER, event_stream


class Counting:
    def __init__(self, fail_at: int | None = None) -> None:
        self.made = 0
        self.closed = False
        self.fail_at = fail_at

    @event_stream
    async def stream(self, count: int) -> AsyncGenerator[int, None]:
        try:
            for i in range(count):
                if i == self.fail_at:
                    raise ValueError(f"failed at {i}")
                self.made += 1
                yield i
                await trio.sleep(0.01)
        finally:
            self.closed = True


async def test_runs_ahead_up_to_the_buffer_and_no_further(
        autojump_clock: trio.testing.MockClock) -> None:
    source = Counting()
    async with source.stream(10 * EVENT_BUFFER) as events:
        assert await events.receive() == 0
        await trio.sleep(10)  # a reader far behind
        # the generator made what the buffer holds (plus the one it waits to hand over)
        assert source.made == EVENT_BUFFER + 2
        batch = []
        while True:  # what has arrived, taken without waiting
            try:
                batch.append(events.receive_nowait())
            except trio.WouldBlock:
                break
        assert batch == list(range(1, EVENT_BUFFER + 2))  # the buffer and the one waiting
    assert source.closed  # leaving the block closed the generator
    assert source.made < 10 * EVENT_BUFFER


async def test_the_whole_sequence_in_order_then_the_end(
        autojump_clock: trio.testing.MockClock) -> None:
    source = Counting()
    async with source.stream(100) as events:
        assert [i async for i in events] == list(range(100))
    assert source.closed


async def test_an_error_leaves_as_itself_after_what_came_before(
        autojump_clock: trio.testing.MockClock) -> None:
    source = Counting(fail_at=5)
    got: list[int] = []
    with pytest.raises(ValueError, match="failed at 5"):
        async with source.stream(100) as events:
            async for i in events:
                got.append(i)
    assert got == [0, 1, 2, 3, 4]


async def test_an_error_of_the_reader_is_not_hidden_by_the_generator(
        autojump_clock: trio.testing.MockClock) -> None:
    source = Counting()
    with pytest.raises(KeyError):
        async with source.stream(100) as events:
            await events.receive()
            await trio.sleep(1)  # the generator now waits on a full buffer
            raise KeyError("reader")
    assert source.closed
