"""``[limits]`` counted in Redis with the redis engine (issue 17): the connections and the
streams of an identity, and the streams it starts per minute, hold over every process
together, with the refusals of one process (``rate_limited``); a mirror of another process's
stream is not a second stream; an ended stream or a closed connection frees its place at
once; the counts of a process that died lapse with their lease, a living one's are renewed."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from streamer.config import Config
from streamer.conversation import Message
from streamer.engines import redis_limits
from streamer.engines.redis_limits import RedisLimits
from streamer.engines.redis_log import connect
from streamer.errors import RateLimited
from streamer.runtime.registry import Registry
from streamer.runtime.waiter import Waiter
from streamer.wire.controls import Start
from tests.conftest import ServerProcess, create_session, make_config, serving
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.engines.test_redis_serve import DOCUMENT, ECHO_SLOW, serve_env, ws

#: one redis-server for the module (each test its own key prefix)
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")
#: the servers' ``limits.max_streams_per_identity``
MAX_STREAMS = 2
#: every wait of a test is bounded by this (s)
BOUND_S = 60.0


@contextmanager
def limited(redis_server: RedisServer, tmp: Path, env: dict[str, str]
            ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Processes A and B (``--engine redis``) with the limits of ``env`` (every client is
    the anonymous identity)."""
    command = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--engine", "redis",
               "--redis-url", redis_server.url]
    with ExitStack() as stack:
        a = stack.enter_context(serving(command, {**serve_env(tmp, "a"), **env}))
        b = stack.enter_context(serving(command, {**serve_env(tmp, "b"), **env}))
        yield a, b


@pytest.fixture(scope="module")
def limited_pair(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A and B, each allowing :data:`MAX_STREAMS` streams per identity."""
    with limited(redis_server, tmp_path_factory.mktemp("limits-pair"), {
            "STREAMER_LIMITS_MAX_STREAMS_PER_IDENTITY": str(MAX_STREAMS),
            "STREAMER_ENGINE_KEY_PREFIX": "lim:"}) as pair:
        yield pair


async def answer(conn: WebSocketConnection) -> dict[str, Any]:
    """The first ``stream_start`` or ``error`` event on ``conn``."""
    while True:
        ev = json.loads(await conn.get_message())
        if ev["type"] in ("stream_start", "error"):
            return ev  # type: ignore[no-any-return]


async def start(stack: AsyncExitStack, server: ServerProcess, session_id: str
                ) -> tuple[WebSocketConnection, dict[str, Any]]:
    """A slow echo stream started on ``server`` in ``session_id`` (its connection held open
    by ``stack``): the connection and the start's answer."""
    conn = await stack.enter_async_context(open_websocket_url(
        f"{ws(server)}/ws/stream/{session_id}"))
    await conn.send_message(json.dumps({"type": "start", "prompt": DOCUMENT, "provider": "echo",
                                        "echo": ECHO_SLOW, "pacing": {"mode": "off"}}))
    return conn, await answer(conn)


async def test_concurrent_streams_are_limited_over_both_processes(
        limited_pair: tuple[ServerProcess, ServerProcess], redis_server: RedisServer) -> None:
    a, b = limited_pair
    with trio.fail_after(BOUND_S):
        for sid in ("limits-1", "limits-2", "limits-3"):
            await create_session(a.base_url, sid)
        async with AsyncExitStack() as stack:
            first, ev = await start(stack, a, "limits-1")
            assert ev["type"] == "stream_start"
            # a client of limits-1 on B: B mirrors A's stream, which is still one stream
            follower = await stack.enter_async_context(open_websocket_url(
                f"{ws(b)}/ws/stream/limits-1"))
            assert (await answer(follower))["type"] == "stream_start"
            _, ev = await start(stack, b, "limits-2")
            assert ev["type"] == "stream_start", ev
            for server in (a, b):  # the third on either process is refused
                _, ev = await start(stack, server, "limits-3")
                assert (ev["type"], ev["code"]) == ("error", "rate_limited"), ev
                assert ev["message"] == f"streams per identity ({MAX_STREAMS}) reached"
                assert ev["retry_after_ms"] > 0
            # the first ends: its place is free at once, on the other process too
            await first.send_message(json.dumps({"type": "stop"}))
            while (ev := json.loads(await first.get_message()))["type"] != "stream_complete":
                pass
            async with connect(redis_server.url) as redis:
                key = "lim:limits:streams:anonymous"  # A releases it as the stream ends
                while await redis.zcard(key) >= MAX_STREAMS:  # noqa: ASYNC110 - in Redis
                    await trio.sleep(0.01)
            _, ev = await start(stack, b, "limits-3")
            assert ev["type"] == "stream_start", ev


async def test_connections_are_limited_over_both_processes(
        redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"STREAMER_LIMITS_MAX_CONNECTIONS_PER_IDENTITY": "2",
           "STREAMER_ENGINE_KEY_PREFIX": "conn:"}
    with limited(redis_server, tmp_path_factory.mktemp("conn-pair"), env) as (a, b), \
            trio.fail_after(BOUND_S):
        await create_session(a.base_url, "conn-sess-1")
        async with AsyncExitStack() as stack:
            held = []
            for server in (a, b):
                conn = await stack.enter_async_context(open_websocket_url(
                    f"{ws(server)}/ws/stream/conn-sess-1"))
                assert json.loads(await conn.get_message())["type"] == "connected"
                held.append(conn)
            async with open_websocket_url(f"{ws(a)}/ws/stream/conn-sess-1") as third:
                ev = json.loads(await third.get_message())
                assert (ev["type"], ev["code"]) == ("error", "rate_limited"), ev
                assert ev["message"] == "connections per identity (2) reached"
                with pytest.raises(ConnectionClosed) as closed:
                    await third.get_message()
                assert closed.value.reason.code == 1013  # try again later
            async with httpx.AsyncClient(base_url=b.base_url, timeout=BOUND_S) as client:
                refused = await client.get("/api/sessions/conn-sess-1/events")
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
            await held[0].aclose()  # A's connection ends: its place is free on B too
            async with connect(redis_server.url) as redis:
                while await redis.zcard("conn:limits:conns:anonymous") >= 2:  # noqa: ASYNC110
                    await trio.sleep(0.01)  # A releases it in Redis as the socket closes
            async with open_websocket_url(f"{ws(b)}/ws/stream/conn-sess-1") as again:
                assert json.loads(await again.get_message())["type"] == "connected"


def limits_config(redis_server: RedisServer, prefix: str, **changes: Any) -> Config:
    return make_config(**{"engine.kind": "redis", "engine.redis_url": redis_server.url,
                          "engine.key_prefix": prefix, **changes})


@pytest.fixture
async def two(redis_server: RedisServer, nursery: trio.Nursery,
              request: pytest.FixtureRequest) -> AsyncIterator[tuple[Registry, Registry]]:
    """Two registries (as two processes would hold) on one Redis, with the test's limits."""
    marker = request.node.get_closest_marker("config")
    config = limits_config(redis_server, f"{request.node.name}:", **marker.kwargs)
    first, second = Registry(config), Registry(config)
    first.bind(nursery)
    second.bind(nursery)
    yield first, second


def quick(prompt: str) -> Start:
    return Start((Message("user", prompt),), provider="echo")


@pytest.mark.config(**{"limits.streams_per_minute": 3, "limits.max_streams_per_identity": 0})
async def test_streams_per_minute_are_counted_over_both_processes(
        two: tuple[Registry, Registry]) -> None:
    first, second = two
    with trio.fail_after(BOUND_S):
        sessions = [first.get_or_create("rate-a"), second.get_or_create("rate-b")]
        started = [await sessions[i % 2].start(quick(f"hi {i}")) for i in range(3)]
        with pytest.raises(RateLimited, match=r"streams per minute \(3\) reached") as refused:
            await sessions[1].start(quick("one too many"))
        assert 0 < refused.value.retry_after_ms <= 60_000
        assert second.limits.hits["limits.streams_per_minute"] == 1
        for stream in started:
            await stream.done.wait()
        with pytest.raises(RateLimited):  # ended streams still count in the minute
            await sessions[0].start(quick("still too many"))


@pytest.mark.config(**{"limits.streams_per_minute": 0, "limits.max_streams_per_identity": 1,
                       "streams.max_prompt_chars": 10})
async def test_a_start_refused_after_counting_gives_its_place_back(
        two: tuple[Registry, Registry]) -> None:
    first, second = two
    with trio.fail_after(BOUND_S):
        session = first.get_or_create("refund-ss")
        with pytest.raises(Exception, match="exceed"):  # payload_too_large, after counting
            await session.start(quick("far longer than ten characters"))
        stream = await second.get_or_create("refund-tt").start(quick("short"))
        await stream.done.wait()


async def test_a_dead_process_s_streams_lapse_and_a_living_one_s_are_renewed(
        redis_server: RedisServer, nursery: trio.Nursery,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_limits, "LEASE_S", 0.6)
    monkeypatch.setattr(redis_limits, "RENEW_S", 0.2)
    config = limits_config(redis_server, "lease:")
    living, dying, other = (RedisLimits(config) for _ in range(3))
    for limits in (living, other):
        await nursery.start(limits.run)
    async with trio.open_nursery() as process:
        await process.start(dying.run)
        held = await living.reserve("carol", 2, 0)
        gone = await dying.reserve("carol", 2, 0)
        assert held.token is not None and gone.token is not None
        assert (await other.reserve("carol", 2, 0)).refused == "max_streams_per_identity"
        dying._held.clear()  # killed: it never releases (nor renews) what it held
        process.cancel_scope.cancel()
    with trio.fail_after(BOUND_S):
        await trio.sleep(1.0)  # past the lease: Redis's clock, so a real wait
        # the dead process's stream lapsed; the living one's was renewed and still counts
        admitted = await other.reserve("carol", 2, 0)
        assert admitted.token is not None
        assert (await other.reserve("carol", 2, 0)).refused == "max_streams_per_identity"
        assert living.held() == 1


async def test_a_connection_closed_here_frees_its_place_before_its_release_arrives(
        redis_server: RedisServer, nursery: trio.Nursery) -> None:
    limits = RedisLimits(limits_config(redis_server, "closed:"))
    await nursery.start(limits.run)
    with trio.fail_after(BOUND_S):
        first = await limits.reserve_connection("dave", "10.0.0.1", 1, 0)
        assert first.token is not None
        limits._wake = Waiter()  # the release below stays on its way (never flushed)
        limits.release(first.token)
        again = await limits.reserve_connection("dave", "10.0.0.1", 1, 0)
    assert again.token is not None, again.refused
