"""The replay window in virtual time: a finished answer is compacted once nobody follows it,
a resume inside one of its merged runs gets a snapshot (exact at its boundaries), and the
finished logs are bounded in bytes (``resume.max_finished_bytes``)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from streamer.render.ops import apply_op
from streamer.runtime.registry import Registry
from streamer.wire.cursor import Cursor
from streamer.wire.events import op_from_chunk
from tests.conftest import make_config
from tests.shells.test_cancellation_matrix import reconnect
from tests.shells.test_pipeline import connect, start

#: a few blocks of markdown, streamed in 4-character deltas: hundreds of ops, a few runs
ANSWER = "".join(f"Paragraph {i} has *some* words, `code` and more words.\n\n- item {i}\n"
                 f"- item {i + 1}\n\n" for i in range(12))


def live_document(ops: list[tuple[int, Any]], upto: int) -> list[str]:
    blocks: list[str] = []
    for seq, op in ops:
        if seq <= upto:
            apply_op(blocks, op)
    return blocks


async def finished(registry: Registry, name: str) -> Any:
    """A finished answer of its own session, nobody following it."""
    session = registry.get_or_create(name)
    stream = session.submit(start(ANSWER, mode="off"))
    await stream.done.wait()
    return stream


async def test_a_finished_answer_is_compacted_and_resumes_exactly_at_and_inside_runs(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry = Registry(make_config(**{"policy.providers": ("echo",)}))
    registry.bind(nursery)
    session = registry.get_or_create("s-compact")
    connection, recorder = await connect(nursery, session)  # follows it live, then leaves
    # a delta per entry (echo at interval 0 would join a buffer's worth into one)
    stream = session.submit(start(ANSWER, mode="off", interval_ms=1.0))
    await stream.done.wait()
    ops = [(e.seq, e.op) for e in stream.log.entries if e.op is not None]
    await recorder.wait_for("stream_complete")
    connection.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    log = stream.log
    assert log.compacted and log.complete is not None
    runs = [e.seq for e in log.entries]
    assert len(runs) < log.last_seq / 5
    boundary = runs[len(runs) // 2]
    inside = boundary + 1  # inside the next run (an append: its block comes as a replace)
    assert inside not in runs and log.replays_from(inside)
    for seq in (boundary, inside):
        connection, recorder = await reconnect(
            nursery, stream.owner, Cursor(stream.stream_id, registry.epoch, seq))
        complete = await recorder.wait_for("stream_complete")
        assert not recorder.of("error") and not recorder.of("snapshot")
        # the client's document at ``seq`` (what the live log had sent), then the chunks
        client = live_document(ops, seq)
        for _, ev in recorder.of("chunk"):
            assert ev["seq"] > seq
            apply_op(client, op_from_chunk(ev))
        assert client == stream.final_blocks and "".join(client) == complete["html"]
        connection.cancel_scope.cancel()


async def test_a_followed_answer_is_compacted_when_its_last_reader_leaves(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    registry = Registry(make_config(**{"policy.providers": ("echo",)}))
    registry.bind(nursery)
    session = registry.get_or_create("s-followed")
    connection, recorder = await connect(nursery, session)
    stream = session.submit(start(ANSWER, cps=400.0))
    await stream.done.wait()
    assert not stream.log.compacted  # the connection still delivers it, paced
    await recorder.wait_for("stream_complete")
    connection.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    assert stream.log.compacted
    assert "".join(recorder.document()) == stream.html


async def test_finished_logs_are_bounded_in_bytes_oldest_evicted_first(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    probe = Registry(make_config(**{"policy.providers": ("echo",)}))
    probe.bind(nursery)
    size = (await finished(probe, "s-probe")).log.retained_bytes
    assert 0 < size < len(ANSWER) * 4
    registry = Registry(make_config(**{"policy.providers": ("echo",),
                                       "resume.max_finished_bytes": int(size * 2.5)}))
    registry.bind(nursery)
    streams = [await finished(registry, f"s-{i}") for i in range(4)]
    assert [s.log.evicted for s in streams] == [True, True, False, False]
    assert registry.finished_log_bytes() == 2 * size
    # an evicted answer still has its document: a late resume gets it as a snapshot
    evicted = streams[0]
    assert "".join(evicted.snapshot()[1]) == evicted.html
    assert evicted.snapshot()[0] == evicted.log.last_seq


async def test_the_byte_bound_counts_a_followed_log_at_its_compacted_size(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    """A log kept while a reader still followed it is kept whole, and compacts (shrinks)
    once the reader leaves: the bound then counts its compacted size, so it does not evict
    answers that fit."""
    probe = Registry(make_config(**{"policy.providers": ("echo",)}))
    probe.bind(nursery)
    size = (await finished(probe, "s-probe")).log.retained_bytes
    registry = Registry(make_config(**{"policy.providers": ("echo",),
                                       "resume.max_finished_bytes": int(size * 2.5)}))
    registry.bind(nursery)
    session = registry.get_or_create("s-followed")
    connection, recorder = await connect(nursery, session)
    followed = session.submit(start(ANSWER, cps=400.0))
    await followed.done.wait()
    whole = followed.log.retained_bytes
    assert whole > size * 1.5  # uncompacted: over the bound with one more answer
    await recorder.wait_for("stream_complete")
    connection.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    assert followed.log.compacted and followed.log.retained_bytes == size
    later = await finished(registry, "s-later")
    assert not followed.log.evicted and not later.log.evicted
    assert registry.finished_log_bytes() == 2 * size
    third = await finished(registry, "s-third")  # now over: the oldest goes
    assert [followed.log.evicted, later.log.evicted, third.log.evicted] == [True, False, False]
