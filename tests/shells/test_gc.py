"""The server's full garbage collections (``server.gc_full_interval_s``), in virtual time."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import trio
import trio.testing

from streamer.server import collect_garbage


class Node:
    """A cycle's member (what a closed connection's frames and traceback make)."""

    def __init__(self) -> None:
        self.me = self


@contextmanager
def no_own_collections() -> Iterator[None]:
    """Python's own collections do not come (thresholds out of reach), from an empty start."""
    threshold = gc.get_threshold()
    gc.set_threshold(10**9, 10**6, 10**6)
    try:
        gc.collect()
        yield
    finally:
        gc.set_threshold(*threshold)


async def collected_within(seconds: float, dead: weakref.ref[Node]) -> bool:
    """Whether :func:`collect_garbage` (every 10 s) freed ``dead``'s object within
    ``seconds``; it is still there at 9 s."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect_garbage, 10.0)
        await trio.sleep(9.0)
        assert dead() is not None  # garbage, not collected yet
        await trio.sleep(seconds - 9.0)
        nursery.cancel_scope.cancel()
    return dead() is None


def garbage_after(generation: int) -> weakref.ref[Node]:
    """A cycle that survived a collection of ``generation`` (so it is now in the next one),
    then became garbage."""
    node = Node()
    gc.collect(generation)
    dead = weakref.ref(node)
    del node
    return dead


async def test_cycles_in_the_oldest_generation_are_collected_every_interval(
        autojump_clock: trio.testing.MockClock) -> None:
    with no_own_collections():
        assert await collected_within(11.0, garbage_after(1))


async def test_cycles_that_survived_a_young_collection_are_collected_every_interval(
        autojump_clock: trio.testing.MockClock) -> None:
    """The soak's leak (issue 16): with ``gc_gen0_threshold`` at 100,000 the middle
    generation is collected only every 50 young collections, so a closed connection's
    cycle that survived one young collection waited there for minutes."""
    with no_own_collections():
        assert await collected_within(11.0, garbage_after(0))


async def test_no_collection_when_no_young_collection_ran_since_the_last(
        autojump_clock: trio.testing.MockClock) -> None:
    """An idle server pays for no full collection (nothing left the youngest generation)."""
    calls: list[int] = []
    with no_own_collections(), \
            mock.patch("gc.collect", side_effect=lambda *a: calls.append(1) or 0):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect_garbage, 10.0)
            await trio.sleep(35.0)
            nursery.cancel_scope.cancel()
    assert calls == []
