"""The merge without Trio: a batch of log entries becomes as few events as possible, each
stamped with the highest ``seq`` it holds and the epoch."""

from __future__ import annotations

from streamer.delivery.merge import merge_entries
from streamer.log.stream_log import MemoryStreamLog
from streamer.render.ops import Op
from streamer.wire.events import Chunk, Reasoning, ToolCall


def test_consecutive_ops_merge_and_stream_events_end_a_run() -> None:
    log = MemoryStreamLog("s_1")
    log.append(Op("append", 0, "<p>a</p>\n", chars=1))
    log.append(Op("text", 0, text="b", chars=1))
    log.append_event(Reasoning("sess", "s_1", "hmm"))
    log.append(Op("text", 0, text="c", chars=1))
    log.append(Op("append", 1, "<p>d</p>\n", chars=1))
    log.append_event(ToolCall.started("sess", "s_1", "c1", "calc"))
    events = merge_entries(log.cursor().take(), "sess", "s_1", "ep")
    assert [(type(ev).__name__, ev.seq, ev.epoch) for ev in events] == [
        ("Chunk", 2, "ep"), ("Reasoning", 3, "ep"), ("Chunk", 4, "ep"), ("Chunk", 5, "ep"),
        ("ToolCall", 6, "ep")]
    first = events[0]
    assert isinstance(first, Chunk) and first.op.html == "<p>ab</p>\n"
    assert merge_entries([], "sess", "s_1", "ep") == []


def test_a_long_run_of_text_ops_is_one_event() -> None:
    log = MemoryStreamLog("s_1")
    log.append(Op("append", 0, "<p></p>", chars=0))
    for i in range(300):
        log.append(Op("text", 0, text=f"w{i} ", chars=len(f"w{i} ")))
    events = merge_entries(log.cursor().take(), "sess", "s_1", "ep")
    assert len(events) == 1 and events[0].seq == 301
