"""The redis engine's failures stay local (``docs/engines.md``, "Failure modes"), against a
real ``redis-server``: two registries in one process stand for two processes on one Redis.

- a store that fails while a lost stream's partial answer is persisted is logged, never the
  end of the engine (nor of the server);
- Redis refusing every write (``READONLY``: made a replica of a dead port) while streams run,
  are mirrored, counted and renewed: every long-lived loop logs and goes on, and both
  processes serve new streams locally.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from streamer.config import PersistenceConfig
from streamer.engines import redis_limits
from streamer.engines.redis_control import ControlMessage, send_control
from streamer.engines.redis_log import connect
from streamer.persistence import Store
from streamer.runtime import replication
from streamer.runtime.mirror import MirrorStream
from streamer.runtime.ownership import Ownership
from streamer.runtime.registry import Registry
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream
from tests.engines.test_redis_log import RedisServer
from tests.shells.test_pipeline import connect as connect_recorder
from tests.shells.test_pipeline import open_pipeline, start

#: every wait of a test is bounded by this (s)
BOUND_S = 30.0
#: the generation lease of these tests (s): a lost owner is noticed within twice this
LEASE_TTL_S = 0.6


def engine_settings(redis_server: RedisServer, prefix: str, **changes: Any) -> dict[str, Any]:
    return {"engine.kind": "redis", "engine.redis_url": redis_server.url,
            "engine.key_prefix": prefix, "engine.lease_ttl_s": LEASE_TTL_S, **changes}


def dead_port() -> int:
    """A loopback port nothing listens on (``REPLICAOF`` it: Redis refuses every write)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def mirrored(b: Registry, session: Session, stream: Stream) -> MirrorStream:
    """B's mirror of A's running ``stream``, once it holds some of its entries."""
    while stream.log.last_seq < 3:  # noqa: ASYNC110 - A began it and published some
        await trio.sleep(0.02)
    await trio.sleep(0.1)
    found = await b.resumable(session, stream.stream_id)
    assert isinstance(found, MirrorStream)
    while found.log.last_seq < 3:  # noqa: ASYNC110 - a few of A's entries reached B
        await trio.sleep(0.02)
    return found


async def local_answer(registry: Registry, session_id: str) -> Stream:
    """A short answer on ``registry`` in a new session, to its end."""
    stream = await registry.get_or_create(session_id).start(
        start("still *served* here", mode="off"))
    await stream.done.wait()
    assert stream.finish_reason == "stop" and stream.markdown == "still *served* here"
    return stream


@pytest.fixture
async def process_a(nursery: trio.Nursery) -> AsyncIterator[trio.Nursery]:
    """A nursery for process A that the test may cancel (A killed), inside the test's."""
    async with trio.open_nursery() as a_nursery:
        yield a_nursery
        a_nursery.cancel_scope.cancel()


async def test_a_store_error_while_persisting_a_lost_answer_is_logged_not_fatal(
        redis_server: RedisServer, nursery: trio.Nursery, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "streamer.runtime")
    settings = engine_settings(redis_server, "store:")
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as process_a:
            _, a_session = await open_pipeline(process_a, **settings)
            b, b_session = await open_pipeline(nursery, **settings)
            broken = await Store.open(PersistenceConfig(database_path=str(tmp_path / "b.db")))
            await broken.aclose()  # B's store fails every write from now on
            b.store = broken
            stream = await a_session.start(start("x", provider="slow", mode="off"))
            _, recorder = await connect_recorder(nursery, b_session)
            mirror = await mirrored(b, b_session, stream)
            process_a.cancel_scope.cancel()  # A killed: its lease is no longer renewed
        error = await recorder.wait_for("error")
        await recorder.wait_for("stream_complete")
        while "partial_not_persisted" not in [e.event for e in mirror.trace]:  # noqa: ASYNC110
            await trio.sleep(0.05)  # (persisted after the clients got the end)
        # B's engine is still running: a new stream there is replicated (its epoch Redis's)
        after = await local_answer(b, "after")
        async with connect(redis_server.url) as redis:
            ttl_ms = await redis.pttl(f"store:stream:{stream.stream_id}")
    assert error["code"] == "generation_lost"
    assert 0 < ttl_ms <= 900_000  # its log expires (A never sent its end)
    assert after.epoch != b.epoch
    assert "could not persist the partial answer" in caplog.text


async def test_redis_refusing_writes_never_ends_a_process(
        redis_server: RedisServer, nursery: trio.Nursery, process_a: trio.Nursery,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(redis_limits, "RENEW_S", 0.2)
    monkeypatch.setattr(replication, "WATCH_INTERVAL_S", 0.2)
    caplog.set_level(logging.ERROR)
    settings = engine_settings(redis_server, "ro:", **{
        "limits.max_streams_per_identity": 8})
    with trio.fail_after(BOUND_S):
        a, a_session = await open_pipeline(process_a, **settings)
        b, b_session = await open_pipeline(nursery, **settings)
        first = await a_session.start(start("x", provider="slow", mode="off"))
        second = await a_session.start(start("y", provider="slow", mode="off"))
        counted = await b.get_or_create("b-own").start(start("z", provider="slow", mode="off"))
        _, recorder = await connect_recorder(nursery, b_session)
        mirror = await mirrored(b, b_session, first)
        async with connect(redis_server.url) as redis:
            await redis.replicaof("127.0.0.1", dead_port())  # every write: READONLY
            try:
                assert await redis.get("ro:epoch") is not None  # reads still answer
                await b.resumable(b_session, second.stream_id)  # a reader's wake: a write
                counted.cancel("a client's stop")  # its count's release: a write
                await recorder.wait_for("error")  # A's lease not renewed: lost on B
                await trio.sleep(1.0)  # renewals, announces, claims: refused a few times
                for registry, name in ((a, "a-new"), (b, "b-new")):
                    served = await local_answer(registry, name)
                    assert served.epoch == registry.epoch  # not replicated: this process's
            finally:
                await redis.replicaof("no", "one")
    assert mirror.lost and first.state == "running"  # A's own clients go on
    assert "read only replica" in caplog.text


async def test_an_ack_redis_refuses_is_logged_and_controls_go_on(
        redis_server: RedisServer, nursery: trio.Nursery) -> None:
    ownership = Ownership("acks:", "p_owner", LEASE_TTL_S, 60.0)
    _, session = await open_pipeline(nursery)  # (a memory registry: the stream runs here)
    running = session.submit(start("x", provider="slow", mode="off"))
    ownership.running[running.stream_id] = running
    with trio.fail_after(BOUND_S):
        async with connect(redis_server.url) as redis, trio.open_nursery() as nursery:
            message = ControlMessage.new("stop", running.stream_id, "p_sender")
            await send_control(redis, "acks:", "p_owner", message)
            await redis.replicaof("127.0.0.1", dead_port())
            try:
                nursery.start_soon(ownership.serve_controls, redis)
                await trio.sleep(0.5)  # read, applied (not running), its ack refused
                await redis.replicaof("no", "one")
                again = ControlMessage.new("stop", "s_gone", "p_sender")
                await send_control(redis, "acks:", "p_owner", again)
                reply = await redis.blpop([f"acks:ack:{again.request_id}"], timeout=5)
            finally:
                await redis.replicaof("no", "one")
                nursery.cancel_scope.cancel()
    assert reply is not None and reply[1] == b"not_running"
    await running.done.wait()  # the stop was applied; its trace says the ack was lost
    assert running.finish_reason == "cancelled"
    assert "control_ack_lost" in [entry.event for entry in running.trace]


async def test_a_queued_stream_whose_begin_fails_is_forgotten(
        redis_server: RedisServer, nursery: trio.Nursery) -> None:
    with trio.fail_after(BOUND_S):
        registry, session = await open_pipeline(nursery, **engine_settings(
            redis_server, "queued:"))
        assert registry.engine is not None
        ownership = registry.engine.ownership
        busy = await session.start(start("x", provider="slow", mode="off"))
        while busy.log.last_seq < 1:  # noqa: ASYNC110 - it runs: the next start queues
            await trio.sleep(0.02)
        queued = await session.start(start("after *it*", mode="off"))
        assert list(ownership.queued) == [queued.stream_id]
        async with connect(redis_server.url) as redis:
            await redis.replicaof("127.0.0.1", dead_port())  # its begin: READONLY
            try:
                busy.cancel("a client's stop")
                await queued.done.wait()
            finally:
                await redis.replicaof("no", "one")
    assert queued.finish_reason == "stop" and queued.epoch == registry.epoch  # unreplicated
    assert ownership.queued == {} and queued.stream_id not in ownership.running


async def test_a_frozen_redis_delays_starts_and_connections_boundedly(
        redis_server: RedisServer, nursery: trio.Nursery,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replication, "RETRY_S", 1.5)
    registry, _ = await open_pipeline(nursery, **engine_settings(
        redis_server, "frozen:", **{"engine.command_timeout_s": 0.5,
                                    "limits.max_streams_per_identity": 4,
                                    "limits.max_connections_per_identity": 4}))
    with trio.fail_after(BOUND_S):
        await local_answer(registry, "before")  # replicated: Redis answers
        assert redis_server.process is not None
        os.kill(redis_server.process.pid, signal.SIGSTOP)  # Redis stops answering
        try:
            began = trio.current_time()
            connection = await registry.limits.reserve_connection("anonymous", "127.0.0.1")
            counted_s = trio.current_time() - began
            stream = await local_answer(registry, "frozen")
            started_s = trio.current_time() - began
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
    assert connection is None  # counted by this process alone
    assert counted_s < 2.5  # the limits' bound (2 s)
    assert stream.epoch == registry.epoch  # not replicated: run here only
    # the start's count (2 s), then the begin's bound (RETRY_S), and the answer
    assert started_s - counted_s < 2.5 + 1.5 + 1.0
    assert "replication_failed" in [entry.event for entry in stream.trace]
