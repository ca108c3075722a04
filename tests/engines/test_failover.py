"""One owner per generation (issue 17): real ``streamer serve --engine redis`` processes and a
real ``redis-server``. The process generating a stream is killed with SIGKILL mid-stream:
every subscriber on the other processes gets ``generation_lost`` and the partial answer (the
mirror's document as it was) within the lease time, never a hang; the partial answer is
persisted by exactly one surviving process and read through its REST API."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import ServerProcess, create_session, serving
from tests.engines.test_redis_log import RedisServer, running_redis
from tests.engines.test_redis_serve import (
    DOCUMENT,
    render,
    serve_env,
    start_and_cut,
    ws,
)
from tests.resume_client import Doc, ws_follow

#: the servers' ``engine.lease_ttl_s`` (s)
LEASE_TTL_S = 1.5
#: a lost owner is noticed within twice the lease TTL (``runtime/ownership.py``); the rest is
#: the margin of a loaded 2-core machine
LOST_WITHIN_S = 2 * LEASE_TTL_S + 2.0
#: every wait of a test is bounded by this (s)
BOUND_S = 60.0

#: one redis-server for the module's servers
redis_server = pytest.fixture(running_redis, scope="module", name="redis_server")


@contextmanager
def cluster(redis: RedisServer, tmp: Path, names: str) -> Iterator[list[ServerProcess]]:
    """One ``streamer serve --engine redis`` process per letter of ``names``, sharing
    ``redis`` (each with its own SQLite file), stopped at the end (SIGTERM, or already dead)."""
    command = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--engine", "redis",
               "--redis-url", redis.url]
    with ExitStack() as stack:
        yield [stack.enter_context(serving(command, {
            **serve_env(tmp, name), "STREAMER_ENGINE_LEASE_TTL_S": str(LEASE_TTL_S)}))
            for name in names]


async def until(done: Callable[[], bool]) -> None:
    """Poll ``done`` (other tasks' copies of a stream) every 10 ms."""
    while not done():  # noqa: ASYNC110 - state of other tasks
        await trio.sleep(0.01)


async def stored_answer(server: ServerProcess, session_id: str, stream_id: str
                        ) -> dict[str, object] | None:
    """The stored assistant message ``stream_id`` of the session on ``server`` (REST)."""
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get(f"/api/sessions/{session_id}/messages")
    assert response.status_code == 200, response.text
    found = [m for m in response.json()["messages"] if m["message_id"] == stream_id]
    return found[0] if found else None


async def test_killing_the_generating_process_ends_the_stream_with_its_partial_answer(
        redis_server: RedisServer, tmp_path: Path) -> None:
    sid = "failover-kill-1"
    with cluster(redis_server, tmp_path, "abc") as (a, b, c):
        expected = await render(b, DOCUMENT)
        with trio.fail_after(BOUND_S):
            await create_session(a.base_url, sid)
            starter = await start_and_cut(ws(a), sid, 10)
            resumed = Doc(stream_id=starter.stream_id, epoch=starter.epoch,
                          last_seq=starter.last_seq, blocks=list(starter.blocks))
            joiners = [Doc(), Doc()]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws_follow, ws(b), sid, resumed)  # the cut-off client
                nursery.start_soon(ws_follow, ws(b), sid, joiners[0])  # a new tab on B
                nursery.start_soon(ws_follow, ws(c), sid, joiners[1])  # and one on C
                # every mirror follows live
                await until(lambda: min(d.last_seq for d in (resumed, *joiners))
                            > starter.last_seq)
                a.process.kill()  # SIGKILL: no drain, no end record, no lease release
                killed_at = trio.current_time()
                with trio.fail_after(LOST_WITHIN_S):
                    await until(lambda: all(d.complete for d in (resumed, *joiners)))
                ended_in = trio.current_time() - killed_at
            stream_id = starter.stream_id
            assert stream_id is not None
            stored: list[dict[str, object] | None] = [None, None]
            while stored == [None, None]:
                await trio.sleep(0.05)
                stored = [await stored_answer(server, sid, stream_id) for server in (b, c)]
            await trio.sleep(LEASE_TTL_S)  # the other survivor had time to write it too
            stored = [await stored_answer(server, sid, stream_id) for server in (b, c)]
    assert ended_in < LOST_WITHIN_S
    partial = resumed.complete
    assert partial is not None and partial["finish_reason"] == "error"
    for doc in (resumed, *joiners):
        assert doc.complete is not None and doc.complete["finish_reason"] == "error", doc
        assert [e["code"] for e in doc.errors] == ["generation_lost"], doc.errors
        assert doc.errors[0]["retryable"] is True
        # the partial answer: what the mirror had, the same on every process
        assert doc.html == doc.complete["html"]
        assert doc.complete["markdown"] and DOCUMENT.startswith(doc.complete["markdown"])
    assert resumed.snapshots == 0  # the cut-off client resumed exactly, then got the end
    assert partial["html"] and len(partial["markdown"]) < len(DOCUMENT)
    assert partial["html"] != expected
    # persisted as the stream's partial answer, in the store every process shares (Redis,
    # persistence.store = auto): both survivors read the one record the claim's winner wrote
    # (that only one writes is test_ownership.py's claim test)
    assert stored[0] is not None and stored[0] == stored[1], stored
    record = stored[0]
    assert record["role"] == "assistant" and record["finish_reason"] == "error"
    assert record["status"] == "complete"
    assert (record["markdown"], record["html"]) in {
        (d.complete["markdown"], d.complete["html"]) for d in (resumed, *joiners)
        if d.complete is not None}
