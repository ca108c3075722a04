"""The redis engine's cost against the memory engine, in one process (not a test).

    python bench/redis_bench.py [--kb 50] [--delta 4] [--followers 1,10,50] [--reps 3]

Starts its own ``redis-server`` on a free 127.0.0.1 port (persistence off). A realistic answer
(the corpus, repeated to ``--kb`` KB) goes through the real Chunker in ``--delta``-character
deltas into a ``MemoryStreamLog``, as fast as the loop allows (one checkpoint per delta: a
model faster than any real one). Rows:

- ``memory``: the generation alone (what ``engine.kind = "memory"`` costs);
- ``redis publish, every wake``: the same with a ``RedisLogPublisher`` beside it, until the
  ``end`` is stored, one pipeline per wake (never one per entry);
- ``redis publish``: one pipeline per ``PUBLISH_INTERVAL_S`` at most, as the server runs it;
- ``redis + N followers``: and N ``RedisLogFollower`` mirroring it (blocking ``XREAD``, as N
  other processes would), until the last mirror is finished; ``lag ms``: how long after the
  generation ended.

Each figure is the fastest of ``--reps`` runs; compare rows of one run (the machine is noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamer.engines.redis_log import RedisLogFollower, RedisLogPublisher, connect
from streamer.log.stream_log import MemoryStreamLog
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.runtime.replication import PUBLISH_INTERVAL_S
from streamer.wire.events import StreamComplete
from tests.engines.test_redis_log import ANSWERS, RedisServer

RENDERER = Renderer()


def answer(kb: int) -> str:
    corpus = "\n\n".join(path.read_text() for path in sorted(ANSWERS.glob("*.md")))
    return (corpus * (kb * 1024 // len(corpus) + 1))[:kb * 1024]


async def generate(log: MemoryStreamLog, text: str, delta: int) -> float:
    """Feed ``text`` into ``log``; returns when it ended (``trio.current_time``)."""
    chunker = Chunker(RENDERER)
    for start in range(0, len(text), delta):
        piece = text[start:start + delta]
        log.append_source(piece)
        for op in chunker.feed(piece):
            log.append(op)
        await trio.lowlevel.checkpoint()
    for op in chunker.close():
        log.append(op)
    log.finish(StreamComplete("sess", log.stream_id, "stop", "", "", None, log.stream_id, 0))
    return trio.current_time()


async def run_once(url: str, text: str, delta: int, followers: int | None, interval_s: float,
                   n: int) -> tuple[float, float, int, int]:
    """``(seconds, lag after the generation ended, entries, pipelines)``; ``followers``
    ``None``: memory only."""
    log = MemoryStreamLog(f"s_bench{n}")
    start = trio.current_time()
    if followers is None:
        end = await generate(log, text, delta)
        return end - start, 0.0, log.last_seq, 0
    async with connect(url) as redis:
        publisher = RedisLogPublisher(redis, log, prefix="bench:", interval_s=interval_s)
        mirrors = [RedisLogFollower(redis, log.stream_id, prefix="bench:", block_ms=200)
                   for _ in range(followers)]
        ended: list[float] = []

        async def producer() -> None:
            ended.append(await generate(log, text, delta))

        async with trio.open_nursery() as nursery:
            for mirror in mirrors:
                nursery.start_soon(mirror.run)
            nursery.start_soon(publisher.run)
            nursery.start_soon(producer)
        done = trio.current_time()
        assert all(m.log.entries == log.entries for m in mirrors)
        await redis.delete([f"bench:stream:{log.stream_id}"])
    return done - start, done - ended[0], log.last_seq, publisher.batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=50)
    parser.add_argument("--delta", type=int, default=4)
    parser.add_argument("--followers", default="0,1,10")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    text = answer(args.kb)
    server = RedisServer()
    server.start()
    try:
        rows: list[tuple[str, int | None, float]] = [
            ("memory", None, 0.0), ("redis publish, every wake", 0, 0.0)]
        for count in (int(x) for x in args.followers.split(",")):
            rows.append((f"redis + {count} followers" if count else "redis publish", count,
                         PUBLISH_INTERVAL_S))
        print(f"{args.kb} KB answer, {args.delta}-character deltas, best of {args.reps}")
        print(f"{'engine':<28}{'s':>8}{'entries/s':>12}{'lag ms':>9}{'pipelines':>11}")
        for name, followers, interval_s in rows:
            best = min(trio.run(run_once, server.url, text, args.delta, followers, interval_s,
                                rep) for rep in range(args.reps))
            seconds, lag, entries, batches = best
            print(f"{name:<28}{seconds:>8.3f}{entries / seconds:>12,.0f}{lag * 1000:>9.1f}"
                  f"{batches:>11}")
    finally:
        server.stop()


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"({time.monotonic() - t0:.1f} s in all)")
