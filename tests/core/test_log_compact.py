"""A finished log, compacted (``streamer/log/compact.py``): replay from every cursor gives the
uncompacted log's document and events, or a snapshot where the plan says so; compaction
waits for the log's readers; the bytes it frees."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.log.resume import Exact, Gap, plan
from streamer.log.stream_log import LogEntry, MemoryStreamLog
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.render.ops import apply_op
from streamer.wire.cursor import Cursor
from streamer.wire.events import Reasoning, Sources, StreamComplete, ToolCall

RENDERER = Renderer()
ANSWERS = Path(__file__).resolve().parents[1] / "corpus" / "answers"

PIECES = st.sampled_from([
    "word ", "more words. ", "\n\n", "# Title\n", "- item\n", "1. first\n", "> quote\n",
    "```py\nx = 1\n", "```\n", "| a | b |\n|---|---|\n| 1 | 2 |\n", "**bold** ", "*em*",
    "`code` ", "\n", "Setext\n===\n", "[link](https://a.example) ", "    indented\n",
    "---\n", "<b>raw</b> ", "$x^2$ ", "  \n", "text\n- b\n  - c\n"])
#: what comes between two deltas: nothing mostly, or a stream event
EVENTS = st.sampled_from(["", "", "", "", "reasoning", "tool", "sources"])


def feed(log: MemoryStreamLog, pieces: list[tuple[str, str]], delta: int,
         with_blocks: bool) -> list[str]:
    """Stream ``pieces`` through a real Chunker into ``log`` in ``delta``-character deltas,
    with each piece's event before it; finish the log. Returns the final blocks."""
    chunker = Chunker(RENDERER)
    sid = log.stream_id
    for text, event in pieces:
        if event == "reasoning":
            log.append_event(Reasoning("sess", sid, "hmm"))
        elif event == "tool":
            log.append_event(ToolCall.answered("sess", sid, "c1", "clock", "12:00", False))
        elif event == "sources":
            log.append_event(Sources("sess", sid, (("https://a.example", "A"),)))
        for start in range(0, len(text), delta):
            part = text[start:start + delta]
            log.append_source(part)
            for op in chunker.feed(part):
                log.append(op)
    for op in chunker.close():
        log.append(op)
    blocks = chunker.blocks
    markdown = "".join(log.source(0, log.source_count))
    log.finish(StreamComplete("sess", sid, "stop", "".join(blocks), markdown, None, sid, 1),
               None, blocks if with_blocks else None)
    return blocks


def document(entries: tuple[LogEntry, ...] | list[LogEntry], upto: int | None = None,
             blocks: list[str] | None = None) -> list[str]:
    out = list(blocks or [])
    for entry in entries:
        if entry.op is not None and (upto is None or entry.seq <= upto):
            apply_op(out, entry.op)
    return out


def events_after(entries: tuple[LogEntry, ...] | list[LogEntry], seq: int) -> list[object]:
    return [(e.seq, e.event, e.source_parts) for e in entries
            if e.event is not None and e.seq > seq]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.tuples(PIECES, EVENTS), min_size=1, max_size=30),
       delta=st.integers(1, 7), with_blocks=st.booleans())
def test_replay_from_every_cursor_equals_the_uncompacted_log(
        pieces: list[tuple[str, str]], delta: int, with_blocks: bool) -> None:
    log = MemoryStreamLog("s_c")
    final = feed(log, pieces, delta, with_blocks)
    original = log.entries
    source = log.source(0, log.source_count)
    totals = {0: 0, **{e.seq: e.total_chars for e in original}}
    assert document(original) == final
    log.compact()
    assert log.compacted and log.last_seq == (original[-1].seq if original else 0)
    compacted = log.entries
    assert len(compacted) <= len(original)
    assert log.snapshot() == (log.last_seq, final) and log.final_blocks() == final
    assert "".join(log.source(0, log.source_count)) == "".join(source)
    for entry in compacted:  # events keep their place in the text exactly
        if entry.event is not None:
            before = next(e for e in original if e.seq == entry.seq).source_parts
            assert "".join(log.source(0, entry.source_parts)) == "".join(source[:before])
    exact = inside = 0
    runs = {0, *(e.seq for e in compacted)}
    for seq in range(0, log.last_seq + 1):
        decision = plan(Cursor("s_c", "ep", seq), log, "ep", None, "sess")
        if not log.replays_from(seq):
            assert isinstance(decision, Gap) and "merged change" in decision.why
            inside += 1
            continue
        exact += 1
        assert decision == Exact(seq)
        cursor = log.cursor(seq)
        if seq in runs:
            assert cursor.seq == seq and cursor.total_chars == totals[seq]
        else:  # inside a run: placed before it (its block comes whole)
            assert cursor.seq < seq and cursor.total_chars <= totals[seq]
        assert sum(cursor.pending_chars()) == log.total_chars - cursor.total_chars
        rest = cursor.take()
        # the client's document at ``seq`` (from the live log), then the compacted rest
        assert document(rest, blocks=document(original, seq)) == final
        assert [(e.seq, e.event) for e in rest if e.event is not None] == \
            [(s, ev) for s, ev, _ in events_after(original, seq)]
        assert cursor.at_end and cursor.seq == log.last_seq
    # 0, every event and the last seq stay addressable
    assert log.replays_from(0) and log.replays_from(log.last_seq)
    assert all(log.replays_from(e.seq) for e in original if e.event is not None)
    # the seqs of the runs and events, 0, and those inside runs that set a whole block
    assert exact >= len(compacted) + 1 and exact + inside == log.last_seq + 1


def test_a_long_answer_compacts_to_its_runs_and_shares_the_document() -> None:
    text = (ANSWERS / "09_long_debugging_guide.md").read_text()
    log = MemoryStreamLog("s_long")
    blocks = feed(log, [(text, "")], 4, True)
    before = log.retained_bytes
    entries = len(log.entries)
    complete = log.complete
    assert complete is not None
    log.compact()
    assert len(log.entries) <= len(blocks) * 2 < entries / 10
    assert log.source_count == 1 and log.source(0, 1)[0] is complete.markdown
    after = log.retained_bytes
    assert after < before / 20 and after < len(complete.html) / 4, (before, after)
    # runs that end as a final block hold no HTML: the document is one string
    assert log.final_blocks() == blocks
    assert sum(len(b) for b in blocks) == len(complete.html)


class Flag:
    def wake(self) -> None:
        pass

    def wake_for_entry(self) -> None:
        pass


def test_compaction_waits_for_the_last_reader_and_eviction_keeps_the_document() -> None:
    log = MemoryStreamLog("s_r")
    reader, source_reader = Flag(), Flag()
    log.attach(reader)
    log.attach(source_reader, source=True)
    final = feed(log, [("para one\n\npara two", ""), (" and more", "reasoning")], 3, False)
    cursor = log.cursor(2)
    log.compact()
    assert not log.compacted  # readers hold positions in the entries
    assert [e.seq for e in cursor.take(2)] == [3, 4]
    log.detach(reader)
    assert not log.compacted
    log.detach(source_reader)
    assert log.compacted
    log.evict()
    assert log.evicted and log.retained_bytes == 0 and log.final_blocks() == final
    assert isinstance(plan(Cursor("s_r", "ep", 1), log, "ep", None, "sess"), Gap)


def test_an_unfinished_log_is_not_compacted() -> None:
    log = MemoryStreamLog("s_u")
    log.append_source("x")
    try:
        log.compact()
    except RuntimeError:
        pass
    else:
        raise AssertionError("a running log was compacted")
    assert not log.compacted
