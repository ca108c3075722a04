"""The stream log's replication when Redis answers late or not at all, against a real
``redis-server``: a pipeline resent because its reply was lost (Redis holds its records
twice) is followed exactly; a stream's key expires even when its publisher never sent the
``end`` (killed)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from coredis.exceptions import ConnectionError as RedisConnectionError

from streamer.engines.redis_keys import Keys, text
from streamer.engines.redis_log import RedisLogFollower, RedisLogPublisher
from streamer.log.stream_log import MemoryStreamLog
from tests.engines.test_redis_log import ANSWERS, BOUND_S, assert_equal_logs, feed_answer


async def test_a_pipeline_resent_after_its_reply_was_lost_is_followed_exactly(
        redis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    log = MemoryStreamLog("s_resent")
    steps = feed_answer(log, (ANSWERS / "02_comparison_table.md").read_text())
    publisher = RedisLogPublisher(redis, log, prefix="t:")
    send = publisher._send
    lost = 0

    async def reply_lost(records: Any) -> bool:
        """Every third pipeline runs, then its connection drops before the reply."""
        nonlocal lost
        stored = await send(records)
        if publisher.batches % 3 == 0:
            lost += 1
            raise RedisConnectionError("connection reset before the reply")
        return stored

    monkeypatch.setattr(publisher, "_send", reply_lost)
    follower = RedisLogFollower(redis, "s_resent", prefix="t:")
    with trio.fail_after(BOUND_S):
        for index, _ in enumerate(steps):
            if index % 7 == 0:
                await publisher.publish()
                await follower.catch_up()  # live, between the copies of a resent batch
        await publisher.publish()
        await publisher.publish()  # the end, resent too if its reply was lost
        await follower.catch_up()
        late = await RedisLogFollower(redis, "s_resent", prefix="t:").run()
    assert lost >= 3
    assert await redis.xlen("t:stream:s_resent") > publisher.batches - lost  # held twice
    assert_equal_logs(follower.log, log)
    assert_equal_logs(late, log)


async def test_a_stream_whose_publisher_died_before_its_end_expires(redis: Any) -> None:
    log = MemoryStreamLog("s_killed")
    steps = feed_answer(log, (ANSWERS / "02_comparison_table.md").read_text())
    publisher = RedisLogPublisher(redis, log, prefix="t:", ttl_s=60)
    with trio.fail_after(BOUND_S):
        for index, _ in enumerate(steps):
            if index == 30:
                break
            if index % 10 == 0:
                await publisher.publish()
        # killed here (SIGKILL): no more pipelines, never the end record
        assert not log.finished and await redis.xlen("t:stream:s_killed") >= 3
        assert 0 < await redis.pttl("t:stream:s_killed") <= 60_000


def test_every_key_is_named_under_the_prefix_and_replies_read_as_text() -> None:
    keys = Keys("p:")
    named = [keys.stream("s_1"), keys.lease("s_1"), keys.lost("s_1"), keys.queued("s_1"),
             keys.meta("s_1"), keys.watched("s_1"), keys.control("p_1"), keys.ack("c_1"),
             keys.session("anonymous:x"), keys.wake("p_1", 2), keys.epoch, keys.starts]
    assert named == ["p:stream:s_1", "p:lease:s_1", "p:lost:s_1", "p:queued:s_1",
                     "p:meta:s_1", "p:watched:s_1", "p:control:p_1", "p:ack:c_1",
                     "p:session:anonymous:x", "p:wake:p_1:2", "p:epoch", "p:starts"]
    assert (keys.store, keys.limits) == ("p:store:", "p:limits:")
    assert [text(None), text(b"1-0"), text("x"), text(3)] == [None, "1-0", "x", "3"]
