"""Document operations: ``apply_op`` (``splice`` included), ``merge_ops`` (the pacer's merge)
and the ``chunk`` event round trip, on the op streams the chunker really emits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.render.ops import Op, apply_op, merge_ops, merge_runs
from streamer.wire.events import chunk_event, op_from_chunk

RENDERER = Renderer()
ANSWERS = sorted((Path(__file__).parents[1] / "corpus" / "answers").glob("*.md"))


def stream_ops(text: str, delta: int = 3) -> list[Op]:
    chunker = Chunker(RENDERER)
    ops: list[Op] = []
    for i in range(0, len(text), delta):
        ops.extend(chunker.feed(text[i:i + delta]))
    ops.extend(chunker.close())
    assert chunker.html == RENDERER.render(text)
    return ops


def applied(ops: list[Op], blocks: list[str] | None = None) -> list[str]:
    blocks = [] if blocks is None else blocks
    for op in ops:
        apply_op(blocks, op)
    return blocks


def long_list(items: int) -> str:
    return "".join(f"- item number {i} with *some* `code` and more words\n" for i in range(items))


def long_table(rows: int) -> str:
    return "| A | B | C |\n|---|---|---|\n" + "".join(
        f"| cell {i} | **b{i}** | c |\n" for i in range(rows))


def test_splice_trims_the_end_and_appends() -> None:
    blocks = ["<ul>\n<li>a</li>\n</ul>\n"]
    apply_op(blocks, Op("splice", 0, html="<li>b</li>\n</ul>\n", trim=6))
    assert blocks == ["<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"]
    apply_op(blocks, Op("splice", 0, html="", trim=0))
    assert blocks == ["<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"]


@pytest.mark.parametrize("op", [Op("splice", 1, html="x", trim=0),
                                Op("splice", 0, html=None, trim=0),
                                Op("splice", 0, html="x", trim=99),
                                Op("splice", 0, html="x", trim=-1)])
def test_splice_that_does_not_fit_is_an_error(op: Op) -> None:
    with pytest.raises(ValueError):
        apply_op(["<p>a</p>\n"], op)


@pytest.mark.parametrize("text", [long_list(300), long_table(300)], ids=["list", "table"])
def test_a_growing_list_or_table_is_sent_by_splices_of_its_new_part(text: str) -> None:
    """Each new item or row costs its own size on the wire, not the block's: the ops that
    change the big block carry at most a few hundred characters (the whole block is
    ~15 KB), and applying them gives the one-shot render."""
    ops = stream_ops(text, delta=4)
    assert "".join(applied(ops)) == RENDERER.render(text)
    splices = [op for op in ops if op.op == "splice"]
    assert len(splices) >= 250
    assert max(len(op.html or "") for op in splices) < 300
    assert all(len(op.html or "") < 300 for op in ops if op.op == "replace")
    assert all(0 <= op.trim < 64 for op in splices)


def test_chunk_event_round_trip_keeps_trim() -> None:
    op = Op("splice", 3, html="<li>b</li>\n</ul>\n", final=True, trim=6)
    ev = chunk_event("s", "t", 7, op)
    assert ev["trim"] == 6 and ev["op"] == "splice"
    back = op_from_chunk(ev)
    assert (back.op, back.block, back.html, back.trim, back.final) == (
        "splice", 3, op.html, 6, True)
    assert "trim" not in chunk_event("s", "t", 8, Op("replace", 0, html="<p>x</p>"))


STREAMS = {p.stem: stream_ops(p.read_text(encoding="utf-8")) for p in ANSWERS}
STREAMS["list"] = stream_ops(long_list(60))
STREAMS["table"] = stream_ops(long_table(60))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(STREAMS)), data=st.data())
def test_merging_any_windows_gives_the_same_document(name: str, data: st.DataObject) -> None:
    """The pacer merges whatever run of ops it delivers at once: any cut of the stream into
    windows, each merged, builds exactly the blocks the ops build one by one, with the same
    pacing cost; a merge never yields more ops than it got."""
    ops = STREAMS[name]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(ops) - 1)), max_size=30)))
    blocks: list[str] = []
    start = 0
    for end in [*cuts, len(ops)]:
        window = ops[start:end]
        runs = merge_runs(window)
        merged = [op for _, op in runs]
        assert merged == merge_ops(window)
        assert len(merged) <= len(window)
        # each merged op names the last op it holds: strictly increasing (its seq), the
        # last one the window's end
        lasts = [last for last, _ in runs]
        assert lasts == sorted(set(lasts)) and lasts[-1] == len(window) - 1
        assert sum(op.chars for op in merged) == sum(op.chars for op in window)
        before = list(blocks)
        applied(merged, blocks)
        assert blocks == applied(window, before)
        start = end
    assert blocks == applied(ops)


def test_merge_folds_splices_into_one_op() -> None:
    base = "<ul>\n" + "".join(f"<li>{i}</li>\n" for i in range(100)) + "</ul>\n"
    ops = [Op("append", 0, html=base, chars=5)]
    ops += [Op("splice", 0, html=f"<li>n{i}</li>\n</ul>\n", trim=6, chars=3) for i in range(50)]
    ops.append(Op("text", 0, text=" & more", chars=7))
    merged = merge_ops(ops)
    assert len(merged) == 1 and merged[0].op == "append"
    assert [merged[0].html] == applied(ops)
    # splices after a text op: the text goes into the block the splices trim
    tail = [Op("text", 0, text="x"), Op("splice", 0, html="<li>y</li>\n</ul>\n", trim=6),
            Op("splice", 0, html="<li>z</li>\n</ul>\n", trim=6), Op("text", 0, text="!")]
    merged = merge_ops(tail)
    assert [op.op for op in merged] == ["text", "splice"]
    assert merged[1].trim == 6
    assert applied(merged, [base]) == applied(tail, [base])
