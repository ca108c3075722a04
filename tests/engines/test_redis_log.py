"""The redis engine of the stream log against a real ``redis-server`` (started per test on a
free 127.0.0.1 port, persistence off): a realistic answer published on one side and followed
on the other ends equal; late followers replay exactly; ``FLUSHALL`` and a Redis restart
mid-stream give a gap or a clear error, never a wrong document; the codec round-trips every
record kind."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from streamer.engines.redis_log import (
    BATCH_RECORDS,
    LogGap,
    RedisLogFollower,
    RedisLogPublisher,
    RedisUnavailable,
    batch_fields,
    batch_records,
    connect,
)
from streamer.log.codec import Record, decode_record, encode_record
from streamer.log.stream_log import LogEntry, MemoryStreamLog
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.render.ops import Op, apply_op
from streamer.wire import events
from streamer.wire.events import Error, Reasoning, Sources, StreamComplete, ToolCall

REDIS_SERVER = Path("/usr/bin/redis-server")
ANSWERS = Path(__file__).resolve().parents[1] / "corpus" / "answers"
RENDERER = Renderer()
#: every wait in these tests is bounded by this (seconds)
BOUND_S = 15.0


class RedisServer:
    """A real redis-server on a free loopback port, no persistence; restartable."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped after (skips the test without redis-server)."""
    if not REDIS_SERVER.exists():
        pytest.skip("/usr/bin/redis-server is missing (scripts/setup.sh --test installs it)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()



def complete(log: MemoryStreamLog, reason: str = "stop") -> StreamComplete:
    return StreamComplete("sess", log.stream_id, reason, "<p>x</p>", "x",  # type: ignore[arg-type]
                          {"output_tokens": 3}, "m_1", 12)


def feed_answer(log: MemoryStreamLog, text: str, delta: int = 7) -> Iterator[None]:
    """Append ``text`` to ``log`` through the real Chunker in ``delta``-character pieces (with
    the source, a reasoning event first and a tool call and sources midway), yielding after
    each piece; finishes the log."""
    chunker = Chunker(RENDERER)
    log.append_event(Reasoning("sess", log.stream_id, "thinking about it"))
    half = len(text) // 2
    for start in range(0, len(text), delta):
        piece = text[start:start + delta]
        log.append_source(piece)
        for op in chunker.feed(piece):
            log.append(op)
        if start <= half < start + delta:
            log.append_event(ToolCall.answered("sess", log.stream_id, "c1", "clock", "12:00",
                                               False))
            log.append_event(Sources("sess", log.stream_id, (("https://a.example", "A"),)))
        yield
    for op in chunker.close():
        log.append(op)
    log.append_source("\n")
    log.finish(complete(log))


def document(log: MemoryStreamLog) -> list[str]:
    blocks: list[str] = []
    for entry in log.entries:
        if entry.op is not None:
            apply_op(blocks, entry.op)
    return blocks


def assert_equal_logs(mirror: MemoryStreamLog, log: MemoryStreamLog) -> None:
    assert mirror.entries == log.entries  # seq, ops, events, totals, source_parts
    assert mirror.source(0, mirror.source_count) == log.source(0, log.source_count)
    assert (mirror.finished, mirror.complete, mirror.error) == (True, log.complete, log.error)


async def generate(log: MemoryStreamLog, text: str, every: int = 5) -> None:
    for index, _ in enumerate(feed_answer(log, text)):
        if index % every == 0:
            await trio.sleep(0.001)


async def test_a_published_answer_is_followed_exactly(redis: Any) -> None:
    text = (ANSWERS / "09_long_debugging_guide.md").read_text()
    log = MemoryStreamLog("s_live")
    publisher = RedisLogPublisher(redis, log, prefix="t:")
    follower = RedisLogFollower(redis, "s_live", prefix="t:", block_ms=200)
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower.run)
            nursery.start_soon(publisher.run)
            await generate(log, text)
    assert_equal_logs(follower.log, log)
    assert follower.epoch == publisher.epoch and publisher.epoch_changes == 0
    assert document(follower.log) == log.snapshot()[1]
    # a finished stream's key expires after the replay window (default 900 s)
    assert 0 < await redis.pttl("t:stream:s_live") <= 900_000
    # batched per wake: far fewer pipelines than entries
    assert publisher.batches < log.last_seq / 3, (publisher.batches, log.last_seq)


async def test_an_error_ending_and_a_late_follower_replay_exactly(redis: Any) -> None:
    log = MemoryStreamLog("s_late")
    for _ in feed_answer(log, (ANSWERS / "02_comparison_table.md").read_text()):
        pass
    log2 = MemoryStreamLog("s_err")
    log2.append_source("par")
    log2.append(Op("append", 0, "<p>par</p>\n", chars=3))
    log2.append_event(events.Retrying("sess", "s_err", 1, 500, "provider_error", "retrying"))
    log2.append_event(events.Waiting("sess", "s_err", 2, 1500))
    log2.append_source("tial")  # source after the last entry: carried by the end record
    log2.finish(complete(log2, "error"),
                Error("provider_error", "The model failed.", True, 1000, "sess", "s_err"))
    with trio.fail_after(BOUND_S):
        for source in (log, log2):
            await RedisLogPublisher(redis, source, prefix="t:").run()
            mirror = await RedisLogFollower(redis, source.stream_id, prefix="t:").run()
            assert_equal_logs(mirror, source)


async def test_flushall_mid_stream_is_a_gap_never_a_wrong_document(redis: Any) -> None:
    log = MemoryStreamLog("s_flush")
    steps = feed_answer(log, (ANSWERS / "07_long_document.md").read_text())
    publisher = RedisLogPublisher(redis, log, prefix="t:")
    follower = RedisLogFollower(redis, "s_flush", prefix="t:", block_ms=100)
    with trio.fail_after(BOUND_S):
        for _ in range(40):
            next(steps)
        await publisher.publish_pending()
        first_epoch = publisher.epoch
        with pytest.raises(trio.TooSlowError):  # follows everything published so far
            with trio.fail_after(0.5):
                await follower.run()
        assert follower.log.last_seq == log.last_seq > 0
        await redis.flushall()
        for _ in range(40):
            next(steps)
        await publisher.publish_pending()
        assert publisher.epoch != first_epoch and publisher.epoch_changes == 1
        with pytest.raises(LogGap) as gap:
            await follower.run()
    assert gap.value.epoch == publisher.epoch
    # the mirror stayed an exact prefix of the stream
    mirrored = follower.log.entries
    assert mirrored == log.entries[:len(mirrored)]
    # the whole log was republished under the new epoch: a new follower ends equal
    with trio.fail_after(BOUND_S):
        for _ in steps:
            pass
        await publisher.run()
        fresh = await RedisLogFollower(redis, "s_flush", prefix="t:").run()
    assert_equal_logs(fresh, log)


async def test_trimmed_entries_are_a_gap_for_a_late_follower(redis: Any) -> None:
    log = MemoryStreamLog("s_trim")
    for _ in feed_answer(log, (ANSWERS / "07_long_document.md").read_text()):
        pass
    with trio.fail_after(BOUND_S):
        await RedisLogPublisher(redis, log, prefix="t:", maxlen=10).run()
        assert await redis.xlen("t:stream:s_trim") < log.last_seq
        with pytest.raises(LogGap, match="missing"):
            await RedisLogFollower(redis, "s_trim", prefix="t:").run()


async def test_an_expected_epoch_that_redis_no_longer_has_is_a_gap(redis: Any) -> None:
    log = MemoryStreamLog("s_epoch")
    log.append(Op("append", 0, "<p>a</p>\n", chars=1))
    log.finish(complete(log))
    with trio.fail_after(BOUND_S):
        await RedisLogPublisher(redis, log, prefix="t:").run()
        with pytest.raises(LogGap, match="epoch"):
            await RedisLogFollower(redis, "s_epoch", prefix="t:", epoch="0.gone").run()


async def test_a_redis_restart_mid_stream_recovers_with_a_new_epoch(
        redis_server: RedisServer) -> None:
    log = MemoryStreamLog("s_restart")
    steps = feed_answer(log, (ANSWERS / "01_python_explanation.md").read_text())
    async with connect(redis_server.url) as redis:
        publisher = RedisLogPublisher(redis, log, prefix="t:", retry_s=BOUND_S)
        follower = RedisLogFollower(redis, "s_restart", prefix="t:", block_ms=100,
                                    retry_s=BOUND_S)
        with trio.fail_after(BOUND_S):
            for _ in range(20):
                next(steps)
            await publisher.publish_pending()
            first_epoch = publisher.epoch
            with pytest.raises(trio.TooSlowError):
                with trio.fail_after(0.5):
                    await follower.run()
            redis_server.stop()
            for _ in range(20):
                next(steps)
            gaps: list[LogGap] = []

            async def follow() -> None:
                with pytest.raises(LogGap) as gap:
                    await follower.run()
                gaps.append(gap.value)

            async with trio.open_nursery() as nursery:  # both retry while Redis is down
                nursery.start_soon(follow)
                nursery.start_soon(publisher.publish)
                await trio.sleep(0.3)
                await trio.to_thread.run_sync(redis_server.start)
            assert publisher.epoch != first_epoch and gaps[0].epoch == publisher.epoch
            assert follower.log.entries == log.entries[:follower.log.last_seq]
            for _ in steps:
                pass
            await publisher.run()
            fresh = await RedisLogFollower(redis, "s_restart", prefix="t:").run()
    assert_equal_logs(fresh, log)


async def test_redis_down_for_longer_than_the_retry_time_is_a_clear_error(
        redis_server: RedisServer) -> None:
    log = MemoryStreamLog("s_down")
    log.append(Op("append", 0, "<p>a</p>\n", chars=1))
    async with connect(redis_server.url) as redis:
        await redis.ping()
        redis_server.stop()
        with trio.fail_after(BOUND_S):
            with pytest.raises(RedisUnavailable, match="unavailable"):
                await RedisLogPublisher(redis, log, prefix="t:", retry_s=0.3).run()
            with pytest.raises(RedisUnavailable):
                await RedisLogFollower(redis, "s_down", prefix="t:", retry_s=0.3).run()


# -- the codec, pure --

#: text that cannot look like a leak to the error-payload check (no paths, no VAR_NAMES)
TEXT = st.text(alphabet="abc xyzé😀<>&\"'\n", max_size=30)
OPS = st.builds(Op, st.sampled_from(["append", "replace", "text", "splice"]),
                st.integers(0, 50), st.none() | TEXT, st.none() | TEXT, st.booleans(),
                st.integers(0, 99), st.integers(0, 9))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
EVENTS = st.one_of(
    st.builds(Reasoning, TEXT, TEXT, TEXT),
    st.builds(ToolCall, TEXT, TEXT, TEXT, st.sampled_from(["start", "delta", "complete",
                                                           "result"]),
              st.none() | TEXT, st.none() | TEXT, JSON_VALUES, st.none() | TEXT,
              st.none() | st.booleans()),
    st.builds(events.Retrying, TEXT, TEXT, st.integers(0, 9), st.integers(0, 10**6), TEXT, TEXT),
    st.builds(events.Waiting, TEXT, TEXT, st.integers(0, 99), st.none() | st.integers(0, 10**6)),
    st.builds(Sources, TEXT, TEXT, st.lists(st.tuples(TEXT, TEXT), max_size=3).map(tuple)),
)


@st.composite
def records(draw: st.DrawFn) -> Record:
    kind = draw(st.sampled_from(["entry", "source", "end"]))
    sources = tuple(draw(st.lists(TEXT, max_size=3)))
    parts = draw(st.integers(0, 10**6))
    epoch = draw(TEXT)
    if kind == "entry":
        seq = draw(st.integers(1, 10**9))
        op = draw(st.none() | OPS)
        entry = (LogEntry(seq, op, 0, None, parts, op.chars) if op is not None
                 else LogEntry(seq, None, 0, draw(EVENTS), parts))
        return Record("entry", epoch, sources, parts, entry)
    if kind == "end":
        done = StreamComplete(draw(TEXT), draw(TEXT), draw(st.sampled_from(
            ["stop", "length", "cancelled", "error"])), draw(TEXT), draw(TEXT),
            draw(st.none() | st.dictionaries(TEXT, st.integers(), max_size=2)), draw(TEXT),
            draw(st.none() | st.integers(0, 10**6)))
        error = draw(st.none() | st.builds(Error, TEXT, TEXT, st.booleans(),
                                           st.none() | st.integers(0, 10**6),
                                           st.none() | TEXT, st.none() | TEXT, TEXT))
        return Record("end", epoch, sources, parts, complete=done, error=error)
    return Record("source", epoch, sources, parts)


@given(records())
def test_the_codec_round_trips_every_record(record: Record) -> None:
    fields = encode_record(record)
    assert all(isinstance(value, str) for value in fields.values())
    as_redis = {key.encode(): value.encode() for key, value in fields.items()}
    assert decode_record(as_redis) == record == decode_record(fields)


@pytest.mark.parametrize("fields", [
    {}, {"k": "entry", "e": "1"}, {"k": "nope", "e": "1", "p": "0"},
    {"k": "entry", "e": "1", "p": "0", "n": "1"}, {"k": "end", "e": "1", "p": "0", "c": "{"},
    {"k": "entry", "e": "1", "p": "0", "n": "1", "v": '{"type": "chunk"}'},
])
def test_a_malformed_record_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        decode_record(fields)


@given(st.lists(records(), min_size=1, max_size=5))
def test_a_batch_of_records_is_one_redis_entry_and_round_trips(batch: list[Record]) -> None:
    fields = batch_fields(batch)
    assert ("b" in fields) == (len(batch) > 1)
    as_redis = {key.encode(): value.encode() for key, value in fields.items()}
    assert batch_records(as_redis) == batch == batch_records(fields)


@pytest.mark.parametrize("raw", ["{", '{"k": "entry"}', "[1, 2]", '[{"k": "nope"}]'])
def test_a_malformed_batch_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        batch_records({"b": raw})


async def test_a_wake_goes_to_redis_in_entries_of_many_records(redis: Any) -> None:
    log = MemoryStreamLog("s_batch")
    for _ in feed_answer(log, (ANSWERS / "07_long_document.md").read_text()):
        pass
    with trio.fail_after(BOUND_S):
        await RedisLogPublisher(redis, log, prefix="t:").run()
        stored = await redis.xlen("t:stream:s_batch")
        mirror = await RedisLogFollower(redis, "s_batch", prefix="t:").run()
    assert stored == -(-(log.last_seq + 1) // BATCH_RECORDS)  # the entries and the end
    assert_equal_logs(mirror, log)


async def test_a_publisher_with_an_interval_sends_at_most_one_pipeline_per_interval(
        redis: Any) -> None:
    log = MemoryStreamLog("s_every")
    publisher = RedisLogPublisher(redis, log, prefix="t:", interval_s=0.1)
    follower = RedisLogFollower(redis, "s_every", prefix="t:", block_ms=100)
    with trio.fail_after(BOUND_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower.run)
            nursery.start_soon(publisher.run)
            started = trio.current_time()
            for _ in feed_answer(log, (ANSWERS / "02_comparison_table.md").read_text()):
                await trio.sleep(0.002)  # one wake per entry: a pipeline each without it
        elapsed = trio.current_time() - started
    assert_equal_logs(follower.log, log)
    assert publisher.batches <= elapsed / 0.1 + 2, (publisher.batches, elapsed)
    assert log.last_seq > 3 * publisher.batches
