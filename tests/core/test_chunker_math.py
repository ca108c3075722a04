"""Math in LaTeX's delimiters, ``\\(…\\)`` and ``\\[…\\]``, streamed (``docs/chunker.md``,
"Math delimiters"): the one-shot render makes them the same elements as ``$…$`` and
``$$…$$``; streamed in any split, with and without hold-back, every block after every
delta is a complete sanitized element and the end equals the one-shot render; with hold-back
the delimiters are never shown as text that later turns into math.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.render.chunker import flicker_chars
from streamer.render.chunker.lines import OpenBlocks
from streamer.render.holdback import HoldBack
from tests.core.test_chunker import RENDERER, fixed, fuzz_tokens, stream

INLINE_X2 = '<span data-type="inline-math" data-latex="x^2"></span>'
BLOCK_E = '<div data-type="block-math" data-latex="E = mc^2"></div>\n'

#: Answers as models write them: every delimiter closed, in paragraphs, headings, lists,
#: quotes and tables, next to markup, escaped backslashes and code.
ANSWERS = [
    "The area is \\(\\pi r^2\\), and \\(x^2\\) grows.\n",
    "Intro:\n\n\\[\nE = mc^2\n\\]\n\nAfter **bold** \\(a_1 + b\\) done.\n",
    "# Heading \\(h\\)\n\nText \\[ \\frac{1}{2} \\] inline.\n",
    "- item \\(x_1\\)\n- two \\[y\\] end\n\n> quote \\(q\\) and *em*\n",
    "| a | b |\n|---|---|\n| \\(x\\) | y |\n| 1 | \\(z\\) |\n",
    "1. Step:\n   \\[\n   x = 1\n   \\]\n2. Next \\(y\\).\n",
    "Not math: \\\\(a\\\\), `\\(code\\)` and \\(\\) stay.\n",
    "Mixed $a$ and \\(b\\) and $$c$$ and \\[d\\].\n\n$$\ne\n$$\n",
    "\\[\nx\n\ny\n\\]\n\nz\n",
]


# -- the one-shot render -------------------------------------------------------------------


@pytest.mark.parametrize(("latex", "dollars"), [
    ("\\(x^2\\)", "$x^2$"),
    ("a \\(x^2\\) b", "a $x^2$ b"),
    ("a \\( x^2 \\) b", "a $x^2$ b"),  # spaces inside the delimiters are dropped
    ("\\[x^2\\]", "$$x^2$$"),
    ("\\[\nE = mc^2\n\\]\n", "$$\nE = mc^2\n$$\n"),
    ("a \\[x^2\\] b", "a $$x^2$$ b"),  # inside a paragraph: inline, as $$…$$ there
    ("- a\n  \\[\n  x\n  \\]\n", "- a\n  $$\n  x\n  $$\n"),
    ("> \\[x\\]\n", "> $$x$$\n"),
    ("para\n\\[\nx\n\\]\nmore", "para\n$$\nx\n$$\nmore"),
    ("**\\(x\\)**", "**$x$**"),
    ("| a |\n|---|\n| \\(x\\) |\n", "| a |\n|---|\n| $x$ |\n"),
])
def test_latex_delimiters_render_as_dollar_math(latex: str, dollars: str) -> None:
    assert RENDERER.render(latex) == RENDERER.render(dollars)
    assert "data-latex" in RENDERER.render(latex)


def test_latex_math_elements() -> None:
    assert RENDERER.render("\\(x^2\\)") == f"<p>{INLINE_X2}</p>\n"
    assert RENDERER.render("\\[\nE = mc^2\n\\]\n") == BLOCK_E


@pytest.mark.parametrize(("text", "html"), [
    ("\\\\(x\\\\)", "<p>\\(x\\)</p>\n"),  # an escaped backslash, then a parenthesis
    ("`\\(x\\)`", "<p><code>\\(x\\)</code></p>\n"),  # code keeps its text
    ("```\n\\(x\\)\n```\n", "<pre><code>\\(x\\)</code></pre>\n"),
    ("\\(\\) and \\[\\]", "<p>() and []</p>\n"),  # empty: escaped characters
    ("\\(a\nb\\)", "<p>(a b)</p>\n"),  # inline math stays on its line
    ("\\( x", "<p>( x</p>\n"),  # never closed
    ("see \\[1\\] ok", '<p>see <span data-type="inline-math" data-latex="1"></span> ok</p>\n'),
])
def test_what_is_not_math_or_is(text: str, html: str) -> None:
    assert RENDERER.render(text) == html


# -- hold-back -----------------------------------------------------------------------------


def _shown(text: str) -> list[str]:
    hold = HoldBack()
    shown, out = "", []
    for ch in text:
        shown += hold.feed(ch)
        out.append(shown)
    assert shown + hold.flush() == text
    return out


@pytest.mark.parametrize(("text", "held_from"), [
    ("cost \\(x^", "\\(x^"),
    ("a \\[x", "\\[x"),
    ("\\[\nE = mc^2\n", "\\[\n"),  # a display block, whole, until its closer's line ends
    ("\\[x\\] and", "\\[x"),
    ("a \\(x\\", "\\(x"),
])
def test_open_latex_math_is_held(text: str, held_from: str) -> None:
    hold = HoldBack()
    shown = hold.feed(text)
    assert shown == text[:text.index(held_from)]
    assert shown + hold.flush() == text


@pytest.mark.parametrize("text", [
    "a \\(x\\) b\n\n", "a \\\\(x b\n\n", "a \\( x\nb\n\n", "\\[\nx\n\\]\n\n", "a \\(\\) b\n\n",
])
def test_decided_latex_is_released(text: str) -> None:
    assert HoldBack().feed(text) == text


def test_inline_math_shows_whole_when_it_closes() -> None:
    steps = _shown("The area \\(\\pi r^2\\) grows.")
    assert "The area \\(\\pi r^2\\)" in steps
    assert all("\\(" not in s or "\\pi r^2\\)" in s for s in steps)


# -- streamed ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ANSWERS)
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_latex_answers_stream_like_one_render_without_flicker(text: str, size: int) -> None:
    chunker, ops = stream(text, fixed(text, size))
    assert chunker.stats.close_repairs == 0
    assert flicker_chars(ops) == 0  # never "(x^2" shown, then math
    chunker, _ = stream(text, fixed(text, size), hold_back=False)
    assert chunker.stats.close_repairs == 0


def test_unclosed_display_math_is_not_committed_early() -> None:
    # a blank line inside a display block: before the closer, the lines are paragraphs,
    # and a cut between them would be wrong once "\\]" (or "$$") makes them one block
    for opener, closer in (("\\[", "\\]"), ("$$", "$$")):
        text = f"{opener}\nx\n\ny\n\nz\n{closer}\n\nafter\n"
        chunker, _ = stream(text, list(text), hold_back=False)
        assert chunker.blocks[0].startswith('<div data-type="block-math"')


@pytest.mark.parametrize(("text", "open_"), [
    ("\\[\nx\n", True), ("\\[\nx\n\\]\n", False), ("$$\nx\n\n", True), ("$$x$$\n", False),
    ("> \\[\n> x\n", True), ("- \\[x\\]\n", False), ("text\n", False), ("\\]\n", False),
    ("```\n$$\n", True), ("```\n$$\n```\n", False), ("```\n\n```\n```\n", True),
    ("~~~\n```\n", True), ("``` `x`\n", False),
])
def test_open_blocks(text: str, open_: bool) -> None:
    scan = OpenBlocks()
    assert scan.open_at(text, len(text)) is open_
    # line by line, as the commit rule asks, the same
    scan.reset()
    starts = [i + 1 for i, c in enumerate(text) if c == "\n"]
    assert [scan.open_at(text, p) for p in starts][-1] is open_
    assert scan.open_at(text, 0) is False  # an earlier line start: scanned again


#: Pieces of math in LaTeX's delimiters and what may surround them.
MATH_TOKENS = [
    "a", "word", " ", " ", "\n", "\n", "\n\n", "\\(", "\\)", "\\[", "\\]", "\\[\n", "\n\\]\n",
    "x^2", "\\frac{1}{2}", "\\\\", "\\", "(", ")", "[", "]", "$", "$$", "$$\n", "- ", "> ",
    "1. ", "   ", "**", "*", "`", "```\n", "| a |\n|---|\n| ", " |\n", "#", "# ", "\\(x\\)",
    "\\[y\\]", "\\)!", "_",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_latex_math_fuzz_random_splits(data: st.DataObject) -> None:
    text = fuzz_tokens(data, MATH_TOKENS)
    chunker, _ = stream(text, list(text))
    assert chunker.stats.close_repairs == 0
