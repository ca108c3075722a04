"""The redis engine inside one process (``runtime/replication.py``) against a real
``redis-server``: a stream's events carry its epoch from Redis, and Redis lost mid-stream is a
logged error and a trace entry, never the end of the stream or of the server."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import trio

from streamer.runtime import replication
from tests.engines.test_redis_log import RedisServer
from tests.shells.test_pipeline import connect, open_pipeline, start

ANSWER = (Path(__file__).resolve().parents[1] / "corpus" / "answers"
          / "01_python_explanation.md").read_text()
#: every wait is bounded by this (s)
BOUND_S = 30.0


async def test_redis_lost_mid_stream_is_reported_the_stream_goes_on_and_redis_back_is_used(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(replication, "RETRY_S", 0.5)
    caplog.set_level(logging.ERROR, "streamer.runtime")
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery:
            registry, session = await open_pipeline(nursery, **{
                "engine.kind": "redis", "engine.redis_url": redis_server.url})
            _, recorder = await connect(nursery, session)
            stream = session.submit(start(ANSWER, mode="off", interval_ms=4))
            first = await recorder.wait_for("chunk")
            # the stream's epoch is Redis's (INCR), not the process's
            assert re.fullmatch(r"\d+-[0-9a-f]{6}", first["epoch"]), first
            assert first["epoch"] == stream.epoch != registry.epoch
            redis_server.stop()
            complete = await recorder.wait_for("stream_complete")
            document = "".join(recorder.document())
            while registry.engine is None or not registry.engine.failures:  # noqa: ASYNC110
                await trio.sleep(0.05)  # the publisher retries for RETRY_S, then gives up
            # a new stream while Redis is down runs on this process alone
            second = session.submit(start("again *here*", mode="off"))
            again = await recorder.wait_for("stream_complete", 2)
            # Redis back: the same process replicates its new streams again (epoch from Redis)
            redis_server.start()
            third = session.submit(start("back *again*", mode="off"))
            back = await recorder.wait_for("stream_complete", 3)
            nursery.cancel_scope.cancel()
    assert complete["finish_reason"] == "stop" and not recorder.of("error")
    assert document == complete["html"]
    assert complete["markdown"] == ANSWER
    assert "replication_failed" in [entry.event for entry in stream.trace]
    assert again["finish_reason"] == "stop" and second.epoch == registry.epoch
    assert back["finish_reason"] == "stop" and back["markdown"] == "back *again*"
    assert re.fullmatch(r"\d+-[0-9a-f]{6}", third.epoch) and third.epoch != registry.epoch
    assert "replication to redis failed" in caplog.text
