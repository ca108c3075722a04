"""The stream log and the resume plan without Trio: cursors, snapshots, eviction, the source
text, and every branch of the resume decision."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streamer.log.resume import Exact, Gap, NotFound, Stored, plan
from streamer.log.stream_log import MemoryStreamLog, StreamLog
from streamer.render.ops import Op
from streamer.wire.cursor import Cursor
from streamer.wire.events import Error, Reasoning, StreamComplete


class Counter:
    def __init__(self) -> None:
        self.woken = 0
        self.entries = 0

    def wake(self) -> None:
        self.woken += 1

    def wake_for_entry(self) -> None:
        self.entries += 1
        self.wake()


def complete(log: MemoryStreamLog) -> StreamComplete:
    return StreamComplete("sess", log.stream_id, "stop", "", "", None, log.stream_id, 1)


def sample_log() -> MemoryStreamLog:
    """seq 1: append (2 chars), 2: reasoning, 3: text (3 chars), 4: text (4 chars)."""
    log = MemoryStreamLog("s_1")
    log.append(Op("append", 0, "<p>ab</p>\n", chars=2))
    log.append_event(Reasoning("sess", "s_1", "hmm"))
    log.append(Op("text", 0, text="cde", chars=3))
    log.append(Op("text", 0, text="fghi", chars=4))
    return log


def test_the_memory_engine_is_a_stream_log() -> None:
    log: StreamLog = MemoryStreamLog("s_1")  # mypy checks the Protocol; this checks it runs
    assert log.last_seq == 0 and not log.finished


def test_entries_are_numbered_and_count_visible_characters() -> None:
    log = sample_log()
    assert [e.seq for e in log.entries] == [1, 2, 3, 4]
    assert [e.total_chars for e in log.entries] == [2, 2, 5, 9]
    assert [e.chars for e in log.entries] == [2, 0, 3, 4]
    assert log.last_seq == 4 and log.total_chars == 9


def test_a_cursor_reads_after_its_seq_without_copying_the_log() -> None:
    log = sample_log()
    cursor = log.cursor(1)
    assert cursor.seq == 1 and cursor.total_chars == 2 and cursor.has_pending
    assert list(cursor.pending_chars()) == [0, 3, 4]
    assert [e.seq for e in cursor.take(2)] == [2, 3]
    assert cursor.seq == 3 and cursor.total_chars == 5
    log.append(Op("text", 0, text="j", chars=1))
    assert [e.seq for e in cursor.take()] == [4, 5] and not cursor.has_pending
    assert not cursor.at_end  # not finished yet
    log.finish(complete(log))
    assert cursor.at_end
    assert log.cursor(99).seq == 5  # clamped to the log


def test_waiters_wake_on_entries_and_the_end_and_source_readers_on_text() -> None:
    log = MemoryStreamLog("s_1")
    entries, source = Counter(), Counter()
    log.attach(entries)
    log.attach(source, source=True)
    log.append_source("ab")
    assert (entries.woken, source.woken) == (0, 1)
    log.append(Op("append", 0, "<p>ab</p>\n", chars=2))
    log.finish(complete(log), Error("provider_error", "boom", False))
    assert (entries.woken, source.woken) == (2, 3)
    assert (entries.entries, source.entries) == (1, 1)  # the entry; the end is a wake
    log.detach(source)
    log.finish(complete(log))  # the first finish wins, and wakes nobody again
    assert source.woken == 3 and log.error is not None


def test_entries_record_where_they_fall_in_the_source_text() -> None:
    log = MemoryStreamLog("s_1")
    log.append_source("Hel")
    log.append_source("lo")
    log.append_event(Reasoning("sess", "s_1", "think"))
    log.append_source("!")
    assert log.entries[0].source_parts == 2 and log.source_count == 3
    assert log.source(0, 2) == ["Hel", "lo"] and log.source(2, 3) == ["!"]


def test_appending_after_the_end_is_a_bug() -> None:
    log = sample_log()
    log.finish(complete(log))
    for append in (lambda: log.append(Op("text", 0, text="x", chars=1)),
                   lambda: log.append_event(Reasoning("sess", "s_1", "x")),
                   lambda: log.append_source("x")):
        with pytest.raises(RuntimeError):
            append()


def test_snapshots_replay_only_what_is_new_and_eviction_keeps_the_numbers() -> None:
    log = sample_log()
    assert log.snapshot() == (4, ["<p>abcdefghi</p>\n"])
    log.append(Op("append", 1, "<p>x</p>\n", chars=1))
    assert log.snapshot() == (5, ["<p>abcdefghi</p>\n", "<p>x</p>\n"])
    with pytest.raises(RuntimeError):
        log.evict()  # still running
    log.finish(complete(log))
    cursor = log.cursor(2)
    log.evict()
    assert log.evicted and log.last_seq == 5 and not cursor.has_pending and cursor.at_end
    with pytest.raises(RuntimeError):
        log.snapshot()


# ------------------------------------------------------------------ the resume plan


@dataclass
class Record:
    session_id: str
    role: str


def test_resume_plan_exact_while_the_log_can_replay() -> None:
    log = sample_log()
    assert plan(Cursor("s_1", "ep", 2), log, "ep", None, "sess") == Exact(2)
    assert plan(Cursor("s_1", "ep", 0), log, "ep", None, "sess") == Exact(0)
    assert plan(Cursor("s_1", "ep", 4), log, "ep", None, "sess") == Exact(4)
    log.finish(complete(log))
    assert plan(Cursor("s_1", "ep", 5), log, "ep", None, "sess") == Exact(5, ended=True)


def test_resume_plan_gaps_say_why() -> None:
    log = sample_log()
    assert plan(Cursor("s_1", "other", 2), log, "ep", None, "sess") == Gap(
        "the server restarted since")
    assert plan(Cursor("s_1", None, 2), log, "ep", None, "sess") == Gap(
        "the server restarted since")
    assert plan(Cursor("s_1", "ep", 5), log, "ep", None, "sess") == Gap(
        "the cursor is ahead of the stream")  # one past the end only counts once finished
    log.finish(complete(log))
    log.evict()
    assert plan(Cursor("s_1", "ep", 2), log, "ep", None, "sess") == Gap(
        "the replay window is over")
    assert plan(Cursor("s_1", "ep", 5), log, "ep", None, "sess") == Exact(5, ended=True)


def test_resume_plan_falls_back_to_the_store_of_the_same_session() -> None:
    cursor = Cursor("s_9", "old", 7)
    assert plan(cursor, None, "ep", Record("sess", "assistant"), "sess") == Stored()
    assert plan(cursor, None, "ep", Record("other", "assistant"), "sess") == NotFound()
    assert plan(cursor, None, "ep", Record("sess", "user"), "sess") == NotFound()
    assert plan(cursor, None, "ep", None, "sess") == NotFound()
