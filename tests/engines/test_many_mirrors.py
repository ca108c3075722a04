"""Many mirrors on one process against a real ``redis-server`` (``engines/redis_reader.py``):
110 streams published elsewhere and followed here leave the process's command client to short
commands (an ``INCR``, a lease renewal, a new stream's begin answer at once, not after a
blocked ``XREAD`` times out), and every mirror ends equal to the one-shot render; the
process's multi-key reader splits its keys, wakes for a stream added mid-read, serves two
cursors of one key and gives up with a clear error when Redis is gone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from streamer.engines.redis_lease import renew_lease, take_lease
from streamer.engines.redis_log import (
    RedisLogFollower,
    RedisLogPublisher,
    RedisUnavailable,
    connect,
)
from streamer.engines.redis_meta import StreamMeta, queue_session
from streamer.engines.redis_reader import StreamReaders
from streamer.log.stream_log import MemoryStreamLog
from streamer.runtime.mirror import MirrorStream
from tests.engines.test_redis_log import (
    ANSWERS,
    RENDERER,
    RedisServer,
    assert_equal_logs,
    document,
    feed_answer,
)
from tests.shells.test_pipeline import open_pipeline, start

#: mirrors on the one process (more than coredis' default pool of 64 connections)
MIRRORS = 110
#: a short command answers within this while the mirrors block (s): a bound against the
#: ~1 s stall of a pool held by blocked reads, not a timing benchmark
FAST_S = 0.2
#: every wait is bounded by this (s)
BOUND_S = 60.0
TEXT = (ANSWERS / "01_python_explanation.md").read_text()
PREFIX = "streamer:"


async def timed(call: Awaitable[Any]) -> float:
    t0 = time.perf_counter()
    await call
    return time.perf_counter() - t0


class Published:
    """A stream published by "another process" (the test): half now, the rest later."""

    def __init__(self, source: Any, session: Any, index: int) -> None:
        self.log = MemoryStreamLog(f"s_many_{index}")
        meta = StreamMeta(self.log.stream_id, session.key, "echo", "echo")
        self.publisher = RedisLogPublisher(
            source, self.log, prefix=PREFIX,
            on_create=lambda pipe: queue_session(pipe, PREFIX, session.key, session.owner,
                                                 900, meta))
        self.steps: Iterator[None] = feed_answer(self.log, TEXT, delta=40)
        self.session = session

    async def publish(self, steps: int | None) -> None:
        for index, _ in enumerate(self.steps):
            if steps is not None and index + 1 >= steps:
                break
        await self.publisher.publish_pending()


async def test_a_hundred_mirrors_leave_short_commands_fast_and_end_exact(
        redis_server: RedisServer) -> None:
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery, connect(redis_server.url) as source:
            registry, _ = await open_pipeline(nursery, **{
                "engine.kind": "redis", "engine.redis_url": redis_server.url})
            engine = registry.engine
            assert engine is not None
            streams = [Published(source, registry.get_or_create(f"many-{i}"), i)
                       for i in range(MIRRORS)]
            for stream in streams:
                await take_lease(source, PREFIX, stream.log.stream_id, "p_elsewhere", 60_000)
                await stream.publish(10)
            mirrors: list[Any] = []
            async with trio.open_nursery() as starting:
                for stream in streams:
                    async def mirror(stream: Published = stream) -> None:
                        mirrors.append(await engine.mirror(stream.session,
                                                           stream.log.stream_id))
                    starting.start_soon(mirror)
            assert all(isinstance(m, MirrorStream) for m in mirrors) and len(mirrors) == MIRRORS
            await trio.sleep(0.5)  # every mirror is in its live read, nothing arrives
            redis, _ = await engine._client()
            incr = await timed(redis.incr(f"{PREFIX}probe"))
            renew = await timed(renew_lease(redis, PREFIX, streams[0].log.stream_id,
                                            "p_elsewhere", 60_000))
            new = registry.get_or_create("many-new").submit(start("a *new* one", mode="off"))
            t0 = time.perf_counter()
            while new.epoch == registry.epoch:  # noqa: ASYNC110 - until begin took its epoch
                await trio.sleep(0.005)
            begin = time.perf_counter() - t0
            for stream in streams:
                await stream.publish(None)
            for m in mirrors:
                await m.done.wait()
            nursery.cancel_scope.cancel()
    print(f"while {MIRRORS} mirrors block: INCR {incr * 1000:.1f} ms, lease renewal"
          f" {renew * 1000:.1f} ms, a new stream's begin {begin * 1000:.1f} ms")
    assert max(incr, renew, begin) < FAST_S, (incr, renew, begin)
    one_shot = RENDERER.render(TEXT)
    by_id = {m.stream_id: m for m in mirrors}
    for stream in streams:
        m = by_id[stream.log.stream_id]
        assert_equal_logs(m.log, stream.log)
        assert "".join(document(m.log)) == one_shot
        assert m.finish_reason == "stop"


@asynccontextmanager
async def running_readers(url: str, **settings: Any
                          ) -> AsyncIterator[tuple[Any, StreamReaders]]:
    """A command client and :class:`StreamReaders` on a blocking client of their own."""
    async with connect(url) as source, connect(url) as blocking, \
            trio.open_nursery() as nursery:
        readers = StreamReaders(blocking, prefix="t:", process_id="p_t", **settings)
        await nursery.start(readers.run)
        yield source, readers
        nursery.cancel_scope.cancel()


async def until_blocked(readers: StreamReaders, followed: int) -> None:
    while readers.followed < followed:  # noqa: ASYNC110
        await trio.sleep(0.01)
    await trio.sleep(0.2)  # the readers are in their blocking reads


def published_log(stream_id: str, chars: int) -> MemoryStreamLog:
    log = MemoryStreamLog(stream_id)
    for _ in feed_answer(log, TEXT[:chars], delta=30):
        pass
    return log


async def test_the_reader_splits_its_keys_and_serves_two_cursors_of_one_key(
        redis_server: RedisServer) -> None:
    logs = [published_log(f"s_r{i}", 400) for i in range(10)]
    with trio.fail_after(BOUND_S):
        async with running_readers(redis_server.url, block_ms=20_000, max_keys=4
                                   ) as (source, readers), trio.open_nursery() as following:
            followers = [RedisLogFollower(source, log.stream_id, prefix="t:", reader=readers)
                         for log in logs]
            for follower in followers:
                following.start_soon(follower.run)
            await until_blocked(readers, 10)
            assert len(readers.readers) == 3  # 4 + 4 + 2 keys
            for log in logs:
                await RedisLogPublisher(source, log, prefix="t:").run()
            late = RedisLogFollower(source, "s_r0", prefix="t:", reader=readers)
            followers.append(late)  # from 0-0, beside a finished cursor of the same key
            following.start_soon(late.run)
    for follower, log in zip(followers, [*logs, logs[0]], strict=True):
        assert_equal_logs(follower.log, log)


async def test_a_stream_added_while_the_reader_blocks_is_read_at_once(
        redis_server: RedisServer) -> None:
    log = published_log("s_new", 300)
    with trio.fail_after(BOUND_S):
        async with running_readers(redis_server.url, block_ms=20_000) as (source, readers):
            idle = RedisLogFollower(source, "s_idle", prefix="t:", reader=readers)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(idle.run)
                await until_blocked(readers, 1)  # blocks for 20 s on s_idle
                await RedisLogPublisher(source, log, prefix="t:").run()
                follower = RedisLogFollower(source, "s_new", prefix="t:", reader=readers)
                with trio.fail_after(5):  # woken by the wake stream, not after 20 s
                    await follower.run()
                assert len(readers.readers) == 1
                nursery.cancel_scope.cancel()
    assert_equal_logs(follower.log, log)


async def test_the_reader_gives_up_with_a_clear_error_when_redis_is_gone(
        redis_server: RedisServer) -> None:
    with trio.fail_after(BOUND_S):
        async with running_readers(redis_server.url, block_ms=200, retry_s=0.5
                                   ) as (source, readers):
            follower = RedisLogFollower(source, "s_gone", prefix="t:", reader=readers)
            redis_server.stop()
            with pytest.raises(RedisUnavailable):
                await follower.run()
            assert readers.followed == 0


async def test_a_read_redis_refuses_ends_its_followers_not_the_reader(
        redis_server: RedisServer) -> None:
    log = published_log("s_after", 200)
    with trio.fail_after(BOUND_S):
        async with running_readers(redis_server.url, block_ms=200) as (source, readers):
            await source.set("t:stream:s_bad", "not a stream")  # XREAD: WRONGTYPE
            bad = RedisLogFollower(source, "s_bad", prefix="t:", reader=readers)
            with pytest.raises(RedisUnavailable, match="wrong kind of value"):
                await bad.run()
            await RedisLogPublisher(source, log, prefix="t:").run()
            after = await RedisLogFollower(source, "s_after", prefix="t:", reader=readers).run()
    assert_equal_logs(after, log)
