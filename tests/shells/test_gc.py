"""The server's full garbage collections (``server.gc_full_interval_s``), in virtual time."""

from __future__ import annotations

import gc
import weakref

import trio
import trio.testing

from streamer.server import collect_garbage


class Node:
    """A cycle's member (what a closed connection's frames and traceback make)."""

    def __init__(self) -> None:
        self.me = self


async def test_cycles_in_the_oldest_generation_are_collected_every_interval(
        autojump_clock: trio.testing.MockClock) -> None:
    threshold = gc.get_threshold()
    gc.set_threshold(10**9, 10**6, 10**6)  # Python's own collections do not come
    try:
        node = Node()
        gc.collect(1)  # it survives the middle generation: now in the oldest
        dead = weakref.ref(node)
        del node
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect_garbage, 10.0)
            await trio.sleep(9.0)
            assert dead() is not None  # garbage, not collected yet
            await trio.sleep(2.0)
            assert dead() is None
            nursery.cancel_scope.cancel()
    finally:
        gc.set_threshold(*threshold)
