"""CPU-heavy work a client or a model controls, off the event loop and under a deadline.

The one-shot render (``POST /api/render``: 1 MB of unclosed links holds mistune for seconds)
and other steps whose cost a client or a model decides run in worker processes
(``trio-parallel``), not threads: a thread would still stall the event loop (the ``re``
module holds the GIL through a whole match) and could not be stopped. A job past its
deadline has its worker killed (SIGKILL) and replaced. Jobs in flight (running or waiting
for a worker) are bounded too: beyond ``max_jobs`` new work is refused with
``rate_limited`` instead of piling up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TypeVar

import trio
import trio_parallel

from streamer.config import RenderConfig
from streamer.errors import QueueFull, StreamerError
from streamer.render.markdown import Renderer

T = TypeVar("T")

#: what a refused caller is told to wait before retrying (ms)
BUSY_RETRY_AFTER_MS = 1_000


class Offload:
    """Worker processes for CPU-heavy, client-controlled work.

    Args:
        workers: jobs running at once (each holds a process; on a 2-core machine 1 leaves
            the other core to the event loop).
        max_jobs: jobs in flight (running or waiting for a worker) beyond which new ones are
            refused.
    """

    def __init__(self, workers: int = 1, max_jobs: int = 16) -> None:
        self.limiter = trio.CapacityLimiter(workers)
        self.max_jobs = max_jobs
        self.in_flight = 0

    async def run(self, fn: Callable[..., T], *args: object, timeout_s: float,
                  too_slow: StreamerError) -> T:
        """``fn(*args)`` in a worker process (``fn`` and the arguments must pickle; ``fn``
        importable by name); its result, or what it raised.

        Raises:
            QueueFull: ``max_jobs`` jobs are already in flight (``rate_limited``,
                ``retry_after_ms``).
            StreamerError: ``too_slow``, when ``fn`` ran past ``timeout_s`` (its worker is
                killed).
        """
        if self.in_flight >= self.max_jobs:
            raise QueueFull("the server is busy with other heavy requests; retry shortly",
                            retry_after_ms=BUSY_RETRY_AFTER_MS)
        self.in_flight += 1
        try:
            with trio.move_on_after(timeout_s):
                return await trio_parallel.run_sync(fn, *args, kill_on_cancel=True,
                                                    limiter=self.limiter)
            raise too_slow
        finally:
            self.in_flight -= 1


    async def warm(self, config: RenderConfig) -> None:
        """Start a worker and build its renderer now (at start-up, in the background), so
        the first heavy request does not pay for a process start and its imports."""
        try:
            await self.run(render_document, config, "warm", timeout_s=60.0,
                           too_slow=StreamerError("the render worker did not start"))
        except StreamerError:
            pass  # the first real request will try again (and report)


#: each worker process's renderers, built on first use (a worker serves many jobs)
_renderers: dict[RenderConfig, Renderer] = {}

#: how much nicer than the event loop a worker process runs (``nice(2)``; +10 weighs about a
#: tenth of the loop's share in Linux's CFS): a job that shares the loop's core (a pinned
#: server, a busy machine) takes what the loop leaves, never the loop's turn
WORKER_NICE = 10
_lowered = False


def lower_priority() -> None:
    """Lower this worker process's CPU priority by :data:`WORKER_NICE` (once per process;
    where the OS refuses, the job runs at normal priority)."""
    global _lowered
    if not _lowered:
        _lowered = True
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE)


def worker_call(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker process at its lowered priority (what :func:`trio_parallel.
    run_sync` is given: ``fn`` must pickle, i.e. be importable by name or a partial of one)."""
    lower_priority()
    return fn(*args)


def render_document(config: RenderConfig, markdown: str) -> str:
    """The one-shot render of ``markdown`` (``Renderer.render``), in a worker process."""
    lower_priority()
    renderer = _renderers.get(config)
    if renderer is None:
        renderer = _renderers[config] = Renderer(config)
    return renderer.render(markdown)
