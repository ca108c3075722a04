"""Ownership pieces against a real ``redis-server``, in one process: the lease's compare-first
renew and release (``engines/redis_lease.py``), the one claim on a lost stream's partial
answer, and the drain that waits for its publishers to store their ends
(``RedisEngine.flush``) before the server nursery closes."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from streamer.engines import redis_lease as lease
from streamer.engines.redis_log import RedisLogFollower, connect
from tests.engines.test_redis_log import RedisServer
from tests.shells.test_pipeline import connect as connect_recorder
from tests.shells.test_pipeline import open_pipeline, start

#: every wait is bounded by this (s)
BOUND_S = 30.0


async def test_a_lease_is_renewed_and_released_only_by_its_holder(
        redis_server: RedisServer) -> None:
    with trio.fail_after(BOUND_S):
        async with connect(redis_server.url) as redis:
            assert await lease.take_lease(redis, "t:", "s_1", "p_a", 10_000)
            assert not await lease.take_lease(redis, "t:", "s_1", "p_b", 10_000)  # NX
            assert await lease.renew_lease(redis, "t:", "s_1", "p_b", 10_000) == 0
            assert not await lease.release_lease(redis, "t:", "s_1", "p_b", 10_000)
            assert await lease.lease_holder(redis, "t:", "s_1") == "p_a"
            assert await lease.renew_lease(redis, "t:", "s_1", "p_a", 10_000) == 1
            await redis.flushall()  # the owner takes it again at its next renewal
            assert await lease.renew_lease(redis, "t:", "s_1", "p_a", 10_000) == 2
            assert await lease.release_lease(redis, "t:", "s_1", "p_a", 10_000)
            assert await lease.lease_holder(redis, "t:", "s_1") == lease.ENDED
            assert await redis.pttl("t:lease:s_1") > 5_000
            assert await lease.take_lease(redis, "t:", "s_2", "p_a", 200)
            await trio.sleep(0.4)
            assert await lease.lease_holder(redis, "t:", "s_2") is None  # expired: the owner died
            claims = [await lease.claim_lost(redis, "t:", "s_2", p, 10_000) for p in "bcb"]
            assert claims == [True, False, False]


async def test_drain_waits_for_the_publishers_to_store_the_ends(
        redis_server: RedisServer) -> None:
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery:
            registry, session = await open_pipeline(nursery, **{
                "engine.kind": "redis", "engine.redis_url": redis_server.url})
            _, recorder = await connect_recorder(nursery, session)
            stream = session.submit(start("*word* " * 400, mode="off", interval_ms=2))
            await recorder.wait_for("chunk")
            await registry.drain(0)  # the stream is cancelled: server_shutting_down
            nursery.cancel_scope.cancel()  # what the server does once the drain returned
        assert stream.log.finished and registry.engine is not None
        assert registry.engine.publishing == 0
        async with connect(redis_server.url) as redis:
            follower = RedisLogFollower(redis, stream.stream_id)
            await follower.catch_up()
            assert await lease.lease_holder(redis, "streamer:", stream.stream_id) == lease.ENDED
    mirrored = follower.log
    assert mirrored.finished and mirrored.complete is not None
    assert mirrored.complete.finish_reason == "error"
    assert mirrored.error is not None and mirrored.error.code == "server_shutting_down"
    assert mirrored.last_seq == stream.log.last_seq


async def test_queue_sharing_and_routing_before_redis_is_ready_are_bounded(
        autojump_clock: trio.testing.MockClock) -> None:
    """An engine whose Redis never became ready: a queued start is recorded as not shared
    (it stays queued here, the start is not refused), a routed queue control is
    ``control_not_delivered``; neither raises ``TooSlowError`` at the client."""
    from streamer.errors import ControlNotDelivered
    from streamer.runtime.registry import Registry
    from streamer.runtime.replication import RETRY_S, RedisEngine
    from tests.conftest import make_config

    config = make_config(**{"engine.kind": "memory"})
    engine = RedisEngine(config, lambda stream: None)  # never run: never ready
    async with trio.open_nursery() as nursery:
        registry = Registry(config)
        registry.bind(nursery)
        session = registry.get_or_create("s-not-ready")
        stream = session.submit(start("word " * 5, mode="off"))
        t0 = trio.current_time()
        await engine.share_queued(session, stream)
        assert trio.current_time() - t0 == pytest.approx(RETRY_S)
        assert any(t.event == "queued_not_shared" for t in stream.trace)
        with pytest.raises(ControlNotDelivered):
            await engine.route_queue(session, "queue_remove", "s_other", 0)
        nursery.cancel_scope.cancel()
