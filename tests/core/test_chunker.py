"""The incremental renderer (``streamer.render.chunker``): invariants 1, 2 and 5 under any split.

For every stream: after each ``feed`` the ops, applied with ``apply_op`` to the client's list,
give exactly ``chunker.blocks``, every block touched is one complete sanitized element (or an
empty slot), and after ``close`` the joined blocks equal the one-shot render. The fast path
runs in verify mode (it re-renders and compares). Flicker (``flicker_chars``) is checked on
the realistic answers and against the chunker without hold-back on the spec examples.

Corpora: the CommonMark spec examples (``tests/corpus/commonmark-spec.json``, 655 of them),
realistic answers (``tests/corpus/answers``), and the XSS corpus (``tests/corpus/xss.md``).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.render.chunker import (
    Chunker,
    ChunkerClosedError,
    appended_text,
    flicker_chars,
    text_length,
)
from streamer.render.chunker.budget import RenderBudget
from streamer.render.holdback import HOLD_MAX_CHARS, HoldBack
from streamer.render.markdown import RenderConfig, Renderer
from streamer.render.ops import Op, append_text, apply_op
from streamer.render.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_URL_SCHEMES

HERE = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(__file__).resolve().parents[1] / "corpus" / "commonmark-spec.json"
ANSWERS = sorted((HERE / "corpus" / "answers").glob("*.md"))
XSS_PATH = HERE / "corpus" / "xss.md"

RENDERER = Renderer()
VOID_TAGS = frozenset({"br", "hr", "img"})


def _load_spec() -> list[dict[str, object]]:
    if not SPEC_PATH.exists():
        return []
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


SPEC = _load_spec()
needs_spec = pytest.mark.skipif(
    not SPEC, reason=f"CommonMark spec corpus not found at {SPEC_PATH}"
)


# -- checking helpers ----------------------------------------------------------------------


class _Shape(HTMLParser):
    """Counts root elements and checks that every tag is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.roots = 0
        self.ok = True
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.stack:
            self.roots += 1
        self.attrs.extend((tag, name, value) for name, value in attrs)
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.stack:
            self.roots += 1
        self.attrs.extend((tag, name, value) for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False

    def handle_data(self, data: str) -> None:
        if not self.stack and data.strip():
            self.ok = False  # text outside the root element


def parse_block(block: str) -> _Shape:
    shape = _Shape()
    shape.feed(block)
    shape.close()
    return shape


def assert_complete_element(block: str, renderer: Renderer = RENDERER) -> None:
    """Invariant 1 for one block: sanitized (a fixed point of the cleaner), one element."""
    if block == "":
        return  # a folded slot
    assert renderer.sanitize(block) == block, f"not sanitized: {block!r}"
    shape = parse_block(block)
    assert shape.ok and not shape.stack and shape.roots == 1, f"not one element: {block!r}"


def stream(
    text: str, deltas: list[str], renderer: Renderer = RENDERER, *, check_blocks: bool = True,
    hold_back: bool = True, budget: RenderBudget | None = None,
) -> tuple[Chunker, list[Op]]:
    """Stream ``deltas`` (which join to ``text``) and check invariants 1 and 2 at every step
    (``budget``: the chunker's work budget, by default the renderer's config)."""
    assert "".join(deltas) == text
    chunker = Chunker(renderer, verify_fast_path=True, hold_back=hold_back, budget=budget)
    client: list[str] = []
    all_ops: list[Op] = []
    for delta in deltas:
        ops = chunker.feed(delta)
        for op in ops:
            apply_op(client, op)
            if check_blocks:
                assert_complete_element(client[op.block], renderer)
            assert op.chars >= 0
        all_ops.extend(ops)
        assert client == chunker.blocks
        assert chunker.open_chars == len(chunker._tail) + sum(map(len, chunker._deferred))
    ops = chunker.close()
    for op in ops:
        apply_op(client, op)
        if check_blocks:
            assert_complete_element(client[op.block], renderer)
    all_ops.extend(ops)
    assert client == chunker.blocks
    assert chunker.markdown == text and chunker.markdown_chars == len(text)
    assert "".join(client) == renderer.render(text), (deltas, client, renderer.render_blocks(text))
    assert chunker.closed and chunker.close() == []
    return chunker, all_ops


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = [0, *sorted(set(c for c in cuts if 0 < c < len(text))), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


def fixed(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@st.composite
def cut_points(draw: st.DrawFn, length: int) -> list[int]:
    if length < 2:
        return []
    return draw(st.lists(st.integers(1, length - 1), max_size=min(length - 1, 48)))


# -- unit cases ----------------------------------------------------------------------------


def test_plain_paragraph_growth_is_text_ops() -> None:
    text = "Hello world, this is plain text"
    chunker, ops = stream(text, fixed(text, 3))
    assert ops[0] == Op("append", 0, html="<p>Hel</p>\n", chars=4)
    grow = ops[1:-1]
    assert grow and all(op.op == "text" for op in grow)
    assert "Hel" + "".join(op.text or "" for op in ops[1:]) == text
    assert chunker.stats.fast_path > 0


def test_text_op_chars_and_final_marker() -> None:
    chunker = Chunker(RENDERER)
    assert chunker.feed("Hi") == [Op("append", 0, html="<p>Hi</p>\n", chars=3)]
    assert chunker.feed(" there") == [Op("text", 0, text=" there", chars=6)]
    # trailing spaces are invisible until more text arrives
    assert chunker.feed("  ") == []
    assert chunker.feed("x") == [Op("text", 0, text="  x", chars=3)]
    assert chunker.close() == [Op("text", 0, text="", final=True)]


def test_text_ops_carry_unescaped_text() -> None:
    chunker, ops = stream("a < b & c", ["a", " <", " b &", " c"])
    texts = [op.text for op in ops if op.op == "text" and op.text]
    assert "".join(texts) == " < b & c"
    assert chunker.html == "<p>a &lt; b &amp; c</p>\n"


def test_setext_heading_replaces_paragraph() -> None:
    chunker, ops = stream("Title\n=====\n\nBody\n", ["Title\n", "=", "====\n", "\nBo", "dy\n"])
    kinds = [(op.op, op.block) for op in ops]
    assert ("replace", 0) in kinds
    replaced = next(op for op in ops if op.op == "replace" and op.block == 0)
    assert replaced.html == "<h1>Title</h1>\n"
    assert chunker.blocks == ["<h1>Title</h1>\n", "<p>Body</p>\n"]


@pytest.mark.parametrize("deltas", [
    ["- \n \r\n- a"],  # a blank line that holds a carriage return makes the list loose
    ["- a\n", " \r\n", "- b\n"],
    ["Para ends.\n\nNext", " one.\n\n- item\n"],  # several lines in one delta
    ["see https://e.com/a)", "!"],  # a bare URL takes in ")!" (GFM §6.9)
    ["see https://e.com/a)", "?", " x"],
    # the pipes of a line under a delimiter row can make it a table's
    ["?https://e.co", "m/", "a\n\n|---|---", "|\n _u_\r\n]", "|---|---|\n*e*- word; ",
     "| c | d |\n|---|---|\n`c()`$m$Foo> |", " c | d", " |", "\n)\n\n$m$x) "],
    # "~~s~~_u": the HTML shows "s_u", yet the "_" follows "~" and can open emphasis
    ["  | c | ", "d |\n~~s~~_u_a#  - w", "ord  - ", "(x)> > > **b**.#;_(", "$m$",
     "a\t*e* - ", "\\ \n", "?"],
    # mistune takes a link reference definition's label across blank lines: "[" at a line
    # start with no "]" yet holds back every commit
    ["\n\n[`c", "(", ")` \r\n```py\n", "\r\n.~~~\n\t**b**\n_u_#\r\n", "$m", "$`\\[)``",
     "`py\nx)]:;,[l](https://e", ".com/l)~~s~", "~", ":;*:"],
    ["[a\n\nb\n\n", "c]: /u\n"],
])
def test_found_by_fuzzing(deltas: list[str]) -> None:
    text = "".join(deltas)
    for hold_back in (True, False):
        stream(text, deltas, hold_back=hold_back)
        stream(text, list(text), hold_back=hold_back)


@pytest.mark.parametrize("fence", ["```\n", "```` \n", "   ```\n", "~~~~~\n"])
@pytest.mark.parametrize("after", ["", "\n", "\nNext.\n", "\n    indented\n", "\n\n```\nx\n```\n",
                                   "text\n", "```\n"])
def test_a_closing_fence_needs_no_render(fence: str, after: str) -> None:
    """A whole line that closes the open fence changes no block (the code's last newline
    is dropped while it is open and after), and the blank line after it shows nothing."""
    opening = "~~~~\n" if fence.startswith("~") else "```python\n"
    for code in ("x = 1\ny = 2\n", "x = 1\n\ny = 2\n\n", ""):
        text = opening + code + fence + after
        lines = text.splitlines(keepends=True)
        for hold_back in (True, False):
            chunker, _ = stream(text, lines, hold_back=hold_back)
            stream(text, list(text), hold_back=hold_back)
            if "\n\n" not in code and after in ("", "\n"):
                assert chunker.stats.tail_renders == 1  # the fence's opening line only


def test_setext_underline_is_not_committed_early() -> None:
    # "para" followed by a complete "---" line must stay open: it is an <h2>, not <p> + <hr>.
    chunker, _ = stream("para\n---\n", ["para\n", "---\n"])
    assert chunker.blocks == ["<h2>para</h2>\n"]


def test_link_reference_defined_after_use_converges() -> None:
    text = "See [the docs][d] first.\n\nMore text here.\n\nAnd more.\n\n[d]: https://example.com/docs\n\nEnd.\n"
    for deltas in (fixed(text, 1), fixed(text, 4), [text]):
        chunker, _ = stream(text, deltas)
        assert 'href="https://example.com/docs"' in chunker.blocks[0]
        # the block held a literal "]", so it was never promised final before close()
        assert chunker.stats.close_repairs == 0


def test_link_reference_defined_before_use_resolves_while_streaming() -> None:
    text = "[d]: https://example.com/d\n\nIntro paragraph.\n\nSee [d] now.\n"
    chunker = Chunker(RENDERER)
    for delta in fixed(text, 2):
        chunker.feed(delta)
    assert chunker.stats.commits >= 2
    assert any('href="https://example.com/d"' in b for b in chunker.blocks)
    stream(text, fixed(text, 2))


def test_fold_to_empty_slot_then_reuse() -> None:
    chunker = Chunker(RENDERER, hold_back=False)  # the core alone: hold-back would wait here
    client: list[str] = []

    def feed(delta: str) -> list[Op]:
        ops = chunker.feed(delta)
        for op in ops:
            apply_op(client, op)
        assert client == chunker.blocks
        return ops

    feed("-\n*")  # two lists: "-" and "*"
    assert client == ["<ul>\n<li></li>\n</ul>\n", "<ul>\n<li></li>\n</ul>\n"]
    ops = feed("a")  # "*a" is now a lazy continuation of the first item: one block
    assert Op("replace", 1, html="", chars=0) in ops
    assert client == ["<ul>\n<li>*a</li>\n</ul>\n", ""]
    ops = feed("\n\n- b\n\npara")
    # growth reuses the empty slot with a replace before appending
    assert [op.op for op in ops if op.block == 1] == ["replace"]
    assert client[1] != ""
    for op in chunker.close():
        apply_op(client, op)
    assert "".join(client) == RENDERER.render("-\n*a\n\n- b\n\npara")


def test_consecutive_ordered_lists_are_one_loose_list() -> None:
    text = "Intro.\n\n1. a\n2. b\n\n1. c\n2. d\n\nAfter.\n"
    for deltas in (fixed(text, 1), fixed(text, 4)):
        chunker, _ = stream(text, deltas)
        assert chunker.stats.close_repairs == 0
        assert sum(b.startswith("<ol") for b in chunker.blocks) == 1


def test_committed_blocks_are_final_and_never_rerendered() -> None:
    paragraphs = [f"Paragraph number {i} with some words in it.\n\n" for i in range(40)]
    text = "".join(paragraphs)
    chunker = Chunker(RENDERER)
    final_blocks: set[int] = set()
    for delta in fixed(text, 4):
        for op in chunker.feed(delta):
            assert op.block not in final_blocks, "a final block changed"
            if op.final:
                final_blocks.add(op.block)
    assert len(final_blocks) >= 38
    # the open tail never holds more than the last paragraph and the start of the next line
    assert chunker.stats.commits >= 38
    chunker.close()
    assert chunker.html == RENDERER.render(text)


def test_tail_stays_short_for_long_documents() -> None:
    text = "".join(
        f"## Section {i}\n\nSome text for section {i}.\n\n- a\n- b\n\n" for i in range(60)
    )
    chunker = Chunker(RENDERER)
    longest = 0
    for delta in fixed(text, 4):
        chunker.feed(delta)
        longest = max(longest, len(chunker._tail))
    assert longest < 80
    chunker.close()
    assert chunker.html == RENDERER.render(text)


def test_chars_counts_visible_text() -> None:
    assert text_length("<p>a &amp; <em>b</em></p>\n") == len("a & b\n")
    block = '<p><a href="https://x.y" title="a>b" rel="noopener noreferrer nofollow">x</a></p>\n'
    assert text_length(block) == len("x\n")
    _, ops = stream("Hello *world*", ["Hel", "lo *wor", "ld*"])
    assert sum(op.chars for op in ops) >= len("Hello world")


def test_appended_text_matches_append_text() -> None:
    old = "<ul>\n<li>a <em>b</em></li>\n</ul>\n"
    assert appended_text(old, append_text(old, "c & <d>")) == "c & <d>"
    assert appended_text(old, "<ul>\n<li>a <em>b</em> x</li>\n</ul>\n") is None
    assert appended_text("<p>a</p>\n", "<p>a<br>\nb</p>\n") is None


def test_split_surrogate_pair_and_nul() -> None:
    text = "smile \ud83d\ude00 and nul \x00 end"
    stream(text, ["smile \ud83d", "\ude00 and nul \x00", " end"])
    assert "\U0001F600" in RENDERER.render(text)


def test_crlf_split_between_deltas() -> None:
    text = "line one\r\nline two\r\n\r\n- item\r\n\r\nlast\r"
    for size in (1, 2, 3):
        stream(text, fixed(text, size))


def test_quote_ended_by_a_list_is_not_committed_early() -> None:
    # mistune emits the quote *after* the list when that list is ended by a fence:
    # "> a\n- \n```" renders [<ul>, <blockquote>, <pre>]. Committing the quote when the list
    # line completed would have promised a block that close() must move.
    for text in (
        "> a\n- \n```",
        "> note\n- a\n- b\n## Next\n\nText.\n",
        "a\n> a\n10.",  # "10." is glued to the paragraph *before* the quote
        "P.\n- U\n\n> Y\n10. O",  # ... even through a list and a blank line
        "P.\n- U\n> > Y\n10. O",
    ):
        for deltas in [list(text)] + [[text[:k], text[k:]] for k in range(1, len(text))]:
            chunker, _ = stream(text, deltas)
            assert chunker.stats.close_repairs == 0, deltas


def test_reference_definition_line_does_not_prove_a_cut() -> None:
    text = "- \n[x]: http://u.v\na"  # one list item: the definition line renders nothing
    chunker, _ = stream(text, list(text))
    assert chunker.stats.close_repairs == 0
    assert chunker.blocks == ["<ul>\n<li>a</li>\n</ul>\n"]


def test_partial_line_does_not_decide_a_cut() -> None:
    # With the partial "|", "curl x | jq" is a table header that interrupts the paragraph;
    # once "|" grows into a row it is a paragraph line again. The cut before it must not
    # be committed on the strength of the partial line.
    text = "para\ncurl x | jq\n| x | y |\n"
    k = len("para\ncurl x | jq\n|")
    chunker, _ = stream(text, [text[:k], text[k:]])
    assert chunker.stats.close_repairs == 0
    assert chunker.blocks[0].startswith("<p>para curl")  # a soft break renders as a space


def test_empty_and_closed() -> None:
    chunker = Chunker(RENDERER)
    assert chunker.feed("") == []
    assert chunker.close() == []
    assert chunker.html == "" == RENDERER.render("")
    with pytest.raises(ChunkerClosedError):
        chunker.feed("x")


# -- the CommonMark spec corpus ------------------------------------------------------------


@needs_spec
def test_spec_corpus_loaded() -> None:
    assert len(SPEC) == 655


@needs_spec
@pytest.mark.parametrize("index", range(len(SPEC) or 1))
def test_spec_example_one_char_deltas(index: int) -> None:
    text = str(SPEC[index]["markdown"])
    _, ops = stream(text, list(text))
    # invariant 5: holding back never shows more raw syntax than rendering every prefix
    _, raw_ops = stream(text, list(text), hold_back=False)
    assert flicker_chars(ops) <= flicker_chars(raw_ops)


@needs_spec
@pytest.mark.parametrize("index", range(len(SPEC) or 1))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_spec_example_random_splits(index: int, data: st.DataObject) -> None:
    text = str(SPEC[index]["markdown"])
    cuts = data.draw(cut_points(len(text)), label="cuts")
    stream(text, split_at(text, cuts))
    stream(text, split_at(text, cuts), hold_back=False)  # the core alone takes any split


@needs_spec
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_spec_concatenations_random_splits(data: st.DataObject) -> None:
    """Several examples in a row: commits happen between them, definitions cross them."""
    picks = data.draw(st.lists(st.integers(0, len(SPEC) - 1), min_size=2, max_size=5), label="ex")
    sep = data.draw(st.sampled_from(["\n", "\n\n", ""]), label="sep")
    text = sep.join(str(SPEC[i]["markdown"]) for i in picks)
    cuts = data.draw(cut_points(len(text)), label="cuts")
    stream(text, split_at(text, cuts))


#: Markdown fragments whose combinations reach block starts, lazy lines, fences, tables,
#: definitions, entities, autolinks and line-ending tricks.
FUZZ_TOKENS = [
    "a", "b c", "Foo", "word", "\n", "\n", "\n\n", "- ", "* ", "+ ", "1. ", "2) ", "> ", "#", "## ",
    " ", "  ", "    ", "\t", "```", "~~~", "|", "| a |", "---", "===", "[x]", "[x]: http://u.v\n",
    "(http://a.b)", "*", "**", "_", "`", "<div>", "<!--", "-->", "&amp;", "&copy", ";",
    "http://x.y", "https", "://", ":", ".", ",", "\\", "~~", "]", "[", "!", "<", ">", "\r\n",
    "e\u0301", "2", "10.", "\\(", "\\)", "\\[", "\\]", "$$", "\\(x^2\\)", "\\[\n",
]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fuzzed_markdown_random_splits(data: st.DataObject) -> None:
    text = "".join(data.draw(st.lists(st.sampled_from(FUZZ_TOKENS), max_size=60), label="tokens"))
    cuts = data.draw(cut_points(len(text)), label="cuts")
    chunker, _ = stream(text, split_at(text, cuts))
    assert chunker.stats.close_repairs == 0
    chunker, _ = stream(text, list(text))
    assert chunker.stats.close_repairs == 0
    chunker, _ = stream(text, split_at(text, cuts), hold_back=False)
    assert chunker.stats.close_repairs == 0


#: Tokens of the constructs the splice paths meet, mixed: inline elements and the punctuation
#: after them, bare URLs, tables, nested items, quotes, fences, carriage returns.
WIDE_TOKENS = [
    "a", "word", "Foo", " ", " ", "\n", "\n", "\n\n", "- ", "  - ", "1. ", "   1. ", "> ", "> > ",
    "```\n", "```py\n", "~~~\n", "| a | b |\n", "|---|---|\n", "| c | d |\n", "**b**", "*e*",
    "`c()`", "_u_", "[l](https://e.com/l)", "https://e.com/a", ")", "!", "?", ".", ":", ",", ";",
    "(", "*", "_", "`", "~~s~~", "$m$", "#", "## ", "  ", "\t", "[", "]", "<", "&amp;", "\\",
    "x)", "\r\n", " \r\n", "\\(x_1\\)", "\\[y\\]", "\\(", "\\)", "\\[\n", "\\]\n",
]


def fuzz_tokens(data: st.DataObject, tokens: list[str], max_size: int = 40) -> str:
    """Tokens drawn and joined, streamed split at drawn points with and without hold-back
    (invariants 1 and 2 checked, no close-time repair); the text."""
    text = "".join(data.draw(st.lists(st.sampled_from(tokens), max_size=max_size),
                             label="tokens"))
    cuts = data.draw(cut_points(len(text)), label="cuts")
    for hold_back in (True, False):
        chunker, _ = stream(text, split_at(text, cuts), hold_back=hold_back)
        assert chunker.stats.close_repairs == 0
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wide_fuzz_random_splits(data: st.DataObject) -> None:
    fuzz_tokens(data, WIDE_TOKENS)


# -- realistic answers ---------------------------------------------------------------------


def _answer_id(path: Path) -> str:
    return path.stem


#: Flicker a realistic answer may show (``flicker_chars``), and why: constructs that reach
#: backwards, which no hold-back can foresee. Every other answer shows none.
FLICKER_ALLOWED = {
    # reference links whose definitions come at the end (CommonMark §4.7): "[text][ref]"
    # shows as text until the definition arrives
    "05_quotes_links": 161,
    # a row with an escaped pipe has fewer cells than the header, and mistune then renders
    # the whole table as a paragraph (GFM says it is a table: mistune's quirk, kept)
    "02_comparison_table": 12,
}


def assert_no_flicker(path: Path, ops: list[Op]) -> None:
    """Invariant 5 on a realistic answer: no raw syntax shown that later turns into
    formatting, beyond the backward-reaching constructs of :data:`FLICKER_ALLOWED`."""
    assert flicker_chars(ops) <= FLICKER_ALLOWED.get(path.stem, 0)


@pytest.mark.parametrize("path", ANSWERS, ids=_answer_id)
@pytest.mark.parametrize("size", [1, 4])
def test_answer_fixed_deltas(path: Path, size: int) -> None:
    text = path.read_text(encoding="utf-8")
    chunker, ops = stream(text, fixed(text, size))
    assert chunker.stats.close_repairs == 0
    assert_no_flicker(path, ops)
    # the tail was cut (committed) along the way, and most ops are plain-text appends
    assert chunker.stats.commits > 0
    assert sum(op.op == "text" for op in ops) > len(ops) / 2


@pytest.mark.parametrize("path", ANSWERS, ids=_answer_id)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_answer_random_deltas(path: Path, seed: int) -> None:
    text = path.read_text(encoding="utf-8")
    rng = random.Random(seed)
    deltas, i = [], 0
    while i < len(text):
        n = rng.choice([1, 2, 3, 4, 5, 8, 13, 40, 200])
        deltas.append(text[i:i + n])
        i += n
    chunker, ops = stream(text, deltas)
    assert chunker.stats.close_repairs == 0
    assert_no_flicker(path, ops)


def test_all_answers_as_one_long_document() -> None:
    text = "\n\n".join(p.read_text(encoding="utf-8") for p in ANSWERS) * 2
    chunker, ops = stream(text, fixed(text, 4), check_blocks=False)
    assert chunker.stats.close_repairs == 0
    text_ops = sum(op.op == "text" and bool(op.text) for op in ops)
    assert text_ops / len(ops) > 0.5


def test_answers_with_images_enabled() -> None:
    renderer = Renderer(RenderConfig(allow_images=True))
    text = "Look: ![a cat](https://example.com/cat.png \"Cat\") and ![x](javascript:alert(1)).\n"
    chunker, _ = stream(text, fixed(text, 3), renderer)
    assert ('<img src="https://example.com/cat.png" alt="a cat" title="Cat" loading="lazy">'
            in chunker.html)


# -- XSS corpus ----------------------------------------------------------------------------

_ALLOWED_ATTRS = {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
_ALLOWED_ATTRS.setdefault("a", set()).add("rel")
_EVENT_ATTR_RE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def assert_no_xss(block: str) -> None:
    assert "<script" not in block.lower()
    # attribute values are always double-quoted by the serializer: blank them out first, so
    # that a title *containing* the text "onclick=" is not mistaken for an attribute
    assert not _EVENT_ATTR_RE.search(re.sub(r'"[^"]*"', '""', block)), block
    for tag, name, value in parse_block(block).attrs:
        assert name in _ALLOWED_ATTRS.get(tag, set()), (tag, name, block)
        if name in ("href", "src"):
            scheme = (value or "").split(":", 1)[0].lower()
            assert scheme in ALLOWED_URL_SCHEMES, block


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_xss_corpus_random_splits(data: st.DataObject) -> None:
    text = XSS_PATH.read_text(encoding="utf-8")
    cuts = data.draw(cut_points(len(text)), label="cuts")
    chunker = Chunker(RENDERER, verify_fast_path=True)
    client: list[str] = []
    for delta in split_at(text, cuts):
        for op in chunker.feed(delta):
            apply_op(client, op)
            assert_no_xss(client[op.block])
    for op in chunker.close():
        apply_op(client, op)
        assert_no_xss(client[op.block])
    assert "".join(client) == RENDERER.render(text)


def test_xss_corpus_one_char_deltas() -> None:
    text = XSS_PATH.read_text(encoding="utf-8")
    chunker, _ = stream(text, list(text))
    for block in chunker.blocks:
        assert_no_xss(block)


# -- hold-back (streamer.render.holdback): what is shown when ---------------------------


def shown_after_each(text: str, size: int = 1) -> list[str]:
    """The released (decided) text after each delta; checks that nothing is lost."""
    hold = HoldBack()
    shown, out = "", []
    for delta in fixed(text, size):
        shown += hold.feed(delta)
        out.append(shown)
        assert text.startswith(shown)
    assert shown + hold.flush() == text
    return out


@pytest.mark.parametrize(("text", "held_from"), [
    ("Hello **bold", "**bold"),  # emphasis that may still close
    ("use `code", "`code"),
    ("a [link](https://exa", "[link]"),
    ("see <https://x", "<https"),
    ("AT&am", "&am"),
    ("trailing  ", "  "),
    ("cost $x", "$x"),
    ("go https://example.com/pa", "https"),
    ("#", "#"),  # heading marker without its space
    ("-", "-"),  # list marker, thematic break or setext underline
    ("12.", "12."),
    ("``", "``"),  # a fence may open
    ("```py", "```py"),  # the info string is not complete
    ("[ref]: /u", "[ref]"),  # a link reference definition renders nothing
    ("| a | b |\n", "| a"),  # a table header until its delimiter row
    ("| a |\n|---|\n| x", "| x"),  # a row until complete (mistune drops short rows' tables)
    ("```\ncode\n``", "``"),  # may be the closing fence
    ("$$\nx^2\n", "$$"),  # a math block until its closing $$
])
def test_undecided_syntax_is_held(text: str, held_from: str) -> None:
    hold = HoldBack()
    shown = hold.feed(text)
    assert shown == text[:text.rindex(held_from)] if held_from in text else shown == ""
    assert shown + hold.flush() == text


@pytest.mark.parametrize("text", [
    "a snake_case name",  # intraword "_" cannot open
    "2 * 3 = 6",  # "*" before a space cannot open
    "**bold** and *em* and `code` and [a](https://b.c) done",
    "| a | b |\n|---|---|\n| x | y |\n",
    "```py\nx = 1\n```\n",
    "- [ ] task\n- [x] done\n",
    "AT&amp;T &copy; 5 > 3",
    "which wow http",  # words starting like URLs are released once they end
])
def test_decided_text_is_released(text: str) -> None:
    hold = HoldBack()
    shown = hold.feed(text + "\n\n")
    assert shown == text + "\n\n"


def test_code_block_shows_when_the_fence_line_ends_and_grows_by_line() -> None:
    steps = shown_after_each("```python\nx = 1\ny = 2\n```\n")
    assert "```python" not in steps[5]
    assert "```python\n" in steps  # the fence line, whole, as soon as it ends
    assert "```python\nx = 1" in steps  # code characters are never held
    assert steps[-1].endswith("```\n")


def test_unclosed_emphasis_is_released_when_its_paragraph_ends() -> None:
    steps = shown_after_each("I have 2*3 apples and pears.\n\nNext")
    assert "I have 2*3 apples and pears.\n\n" in steps
    assert all("*" not in s or s.endswith(("\n\n", "Next", "Nex", "Ne", "N")) for s in steps)


@pytest.mark.parametrize("text", [
    "**" + "word " * (HOLD_MAX_CHARS // 2),  # emphasis that never closes
    "> **" + "word " * HOLD_MAX_CHARS,
    "```\n" + "`" * (3 * HOLD_MAX_CHARS),  # a code line that may be the closing fence
    "[" * (2 * HOLD_MAX_CHARS),
    "$$" + "x" * (2 * HOLD_MAX_CHARS),
    "<" + "a" * (2 * HOLD_MAX_CHARS),
])
def test_hold_is_bounded(text: str) -> None:
    hold = HoldBack()
    shown = "".join(hold.feed(delta) for delta in fixed(text, 4))
    assert hold.overflows >= 1 and len(text) - len(shown) <= HOLD_MAX_CHARS
    assert shown + hold.flush() == text


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_hold_back_loses_nothing(data: st.DataObject) -> None:
    text = "".join(data.draw(st.lists(st.sampled_from(FUZZ_TOKENS), max_size=80), label="tokens"))
    cuts = data.draw(cut_points(len(text)), label="cuts")
    hold = HoldBack()
    shown = ""
    for delta in split_at(text, cuts):
        shown += hold.feed(delta)
        assert text.startswith(shown)
    assert shown + hold.flush() == text


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_answer_slices_random_splits(data: st.DataObject) -> None:
    """Any slice of a realistic answer (starting mid-line, mid-list, mid-table), split
    anywhere, with and without hold-back: the fast and splice paths meet every shape."""
    source = ANSWERS[data.draw(st.integers(0, len(ANSWERS) - 1), label="answer")]
    full = source.read_text(encoding="utf-8")
    start = data.draw(st.integers(0, len(full) - 1), label="start")
    text = full[start:start + data.draw(st.integers(1, 800), label="length")]
    cuts = data.draw(cut_points(len(text)), label="cuts")
    for hold_back in (True, False):
        chunker, _ = stream(text, split_at(text, cuts), hold_back=hold_back)
        assert chunker.stats.close_repairs == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depths=st.lists(st.integers(1, 19), min_size=1, max_size=30),
       words=st.lists(st.sampled_from(["alpha", "beta gamma", "**bold** x", "`c()` y",
                                       "[l](https://e.com/l) z", "delta."]), min_size=1),
       hold_back=st.booleans(), seed=st.integers(0, 2**16))
def test_quotes_changing_depth_stream_like_one_render(
        depths: list[int], words: list[str], hold_back: bool, seed: int) -> None:
    """Lines of a quote at any depth (lazy continuations, deeper quotes, past mistune's
    nesting limit): the quote-line path agrees with a full render at every step."""
    rng = random.Random(seed)
    text = "".join("> " * d + rng.choice(words) + "\n" for d in depths)
    deltas, i = [], 0
    while i < len(text):
        n = rng.choice([1, 2, 3, 4, 7, 16])
        deltas.append(text[i:i + n])
        i += n
    chunker, _ = stream(text, deltas, hold_back=hold_back)
    assert chunker.stats.close_repairs == 0


#: Inline elements and the characters that may follow them directly: the splice and quote
#: paths put punctuation after a closer only where it leaves the closer as it is.
CLOSER_WORDS = ["**bold**", "*em*", "_u_", "__uu__", "`c()`", "[l](https://e.com/l)",
                "(p)*e*", "x*y*", "*(a)*", "**(b)**", "~~s~~", "$m$", "word", "https://e.com/u",
                "a_b_c", "*a **b** c*", "![i](https://e.com/i.png)"]
CLOSER_FOLLOWERS = ["", ".", "!", ":", ",", "?", ";", " ", "!.", ".x", "x", "*", "_", ")",
                    ")!", ")?", ").", "!)"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_punctuation_right_after_a_closed_element(data: st.DataObject) -> None:
    """A sentence that ends right after emphasis, a code span or a link (``**b**!``), in a
    paragraph, a list item or a quote at any depth, split anywhere: every path agrees with
    a full render at every step (verify mode)."""
    lines = []
    for _ in range(data.draw(st.integers(1, 8), label="lines")):
        prefix = data.draw(st.sampled_from(["", "> ", "> > ", "> > > ", "- ", "1. "]))
        words = data.draw(st.lists(st.tuples(st.sampled_from(CLOSER_WORDS),
                                             st.sampled_from(CLOSER_FOLLOWERS)),
                                   min_size=1, max_size=4), label="words")
        lines.append(prefix + "Some " + " ".join(w + f for w, f in words))
    text = "\n".join(lines) + data.draw(st.sampled_from(["", "\n", "\n\nEnd.\n"]))
    cuts = data.draw(cut_points(len(text)), label="cuts")
    for hold_back in (True, False):
        chunker, _ = stream(text, split_at(text, cuts), hold_back=hold_back)
        assert chunker.stats.close_repairs == 0


def _long(kind: str, lines: int) -> str:
    rng = random.Random(3)
    words = ["token", "stream", "editor", "**bold**", "`code()`", "*em*", "latency",
             "[link](https://e.com/x)", "buffer", "model"]

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) \
            + rng.choice([".", "!", ":", ""])

    if kind == "code":
        body = "".join(rng.choice(["x = 1", "    if a < b and c & d:", "", "print(x)"]) + "\n"
                       for _ in range(lines))
        return "```python\n" + body + "```\n"
    if kind == "list":
        return "".join(f"- Item {sentence()}\n" + (f"  - Sub {sentence()}\n" if i % 3 == 0
                                                     else "") for i in range(lines))
    if kind == "table":
        return "| A | B | C |\n|---|---|---|\n" + "".join(
            f"| {rng.choice(words)} | cell {i} | {rng.choice(words)} |\n" for i in range(lines))
    if kind == "quotes":
        return "".join("> " * rng.randint(1, 6) + "Quote " + sentence() + "\n"
                       for _ in range(lines))
    return "".join(f"Text *a **b _{i}_ c** d* {sentence()} " for i in range(lines)) + "\n"


@pytest.mark.parametrize("kind", ["code", "list", "table", "quotes", "emphasis"])
def test_one_long_block_grows_without_rendering_it_again(kind: str) -> None:
    """One long code block, list (with nested items), table, quote that changes depth, or
    paragraph of nested emphasis, in 4-character deltas: the whole block is rendered a
    bounded number of times, not once per line, and each change carries its own size (a
    ``splice`` or ``text`` op), not the block's: the work per delta does not grow with the
    block (the benchmark measures the time)."""
    text = _long(kind, 2000 if kind == "code" else 600)
    chunker = Chunker(RENDERER)
    ops: list[Op] = []
    for i in range(0, len(text), 4):
        ops.extend(chunker.feed(text[i:i + 4]))
    ops.extend(chunker.close())
    assert chunker.html == RENDERER.render(text)
    assert chunker.stats.tail_renders <= 3, chunker.stats
    block_size = max(len(b) for b in chunker.blocks)
    assert block_size > 15_000
    assert max(len(op.html or op.text or "") for op in ops[1:]) < 400


def test_quote_lines_at_other_depths_need_no_render() -> None:
    text = "".join("> " * d + "plain words here\n" for d in (1, 3, 2, 5, 1, 4, 6, 2) * 20)
    chunker, _ = stream(text, fixed(text, 4))
    assert chunker.stats.tail_renders <= 2


@pytest.mark.parametrize("digit", ["²", "٣", "１"])  # noqa: RUF001 (a full-width digit)
def test_a_line_may_start_with_a_digit_that_is_not_ascii(digit: str) -> None:
    """An ordered item's number is ASCII digits (CommonMark §5.2): a line that starts with
    another digit (a superscript, an Arabic-Indic or a full-width one) is paragraph text (the
    hold-back raised AssertionError on it)."""
    text = f"Intro.\n\n{digit} a footnote\n\n{digit}. not a list\n"
    for size in (1, 4, len(text)):
        stream(text, fixed(text, size))


@pytest.mark.parametrize("text", ["```\r`\n\n-", "\r~~~\n\nb\n", "```\rcode\n\nText\n",
                                  "~~~\r\r\nu", "1. =\r1.\n\n"])
def test_a_lone_carriage_return_ends_a_line(text: str) -> None:
    """A lone ``\\r`` ends a line (CommonMark §2.1): ``"```\\r`"`` opens a fence whose code
    holds the backtick, so the blank line and what follows are code, not a new block (the
    tail was committed at the blank line, and the document ended otherwise; and the fast path
    took ``"u"`` after ``"~~~\r\r\n"`` as the code's first line, where it is the second; and a
    blank line after ``"1. =\r1."`` as showing nothing, where the empty item makes the list
    loose)."""
    for size in (1, 3, len(text)):
        stream(text, fixed(text, size))
        stream(text, fixed(text, size), hold_back=False)


@pytest.mark.parametrize("code", ["\ude00", "a\x00b", "\ud83d"])
def test_a_code_span_with_what_the_pipeline_normalizes(code: str) -> None:
    """A code span holding a lone surrogate or NUL renders as the pipeline renders it
    (U+FFFD), also where the simple renderers would take the line (they passed it through)."""
    text = f"`{code}`\n\n- `{code}`\n"
    assert RENDERER.render_inline_simple(f"`{code}`") is None
    for size in (1, 4, len(text)):
        stream(text, fixed(text, size))
        stream(text, fixed(text, size), hold_back=False)


@pytest.mark.parametrize("text", [
    # an open fence's empty code renders as an empty closed one does: no cut inside it
    "```\n\n```\n```\na",
    # digits alone on a line of code in an item may become an item's marker ("1.")
    "1. x\n*a b\n    ```\n1. y\n*c d\n    ```\n1.",
])
def test_what_a_later_character_changes_is_not_taken_early(text: str) -> None:
    for hold_back in (True, False):
        for deltas in (list(text), [text[:-1], text[-1:]]):
            chunker, _ = stream(text, deltas, hold_back=hold_back)
            assert chunker.stats.close_repairs == 0
