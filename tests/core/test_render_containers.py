"""Lists and block quotes that end each other line after line, and containers nested far
past mistune's nesting limit: the one-shot render and the chunker at 1-character deltas end
equal and raise nothing, even with the stack already deep (``docs/chunker.md``, "Lists and
quotes that end each other"; ``streamer.render.markdown._BlockParser``).

mistune parses the block that ends a list item or a quote inside that container's call, so
``"-\\n>b\\n" * n`` (an empty item, a quote line that ends it, the next item ends the quote)
nested 8 frames per pair: a ``RecursionError`` from 123 pairs (615 characters) on a fresh
stack, 98 with 200 frames in use (as under pytest and Hypothesis), and the blocks came out
lists first, then the quotes in reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from streamer.render.chunker import Chunker
from tests.core.test_chunker import RENDERER, fixed, stream

T = TypeVar("T")

#: The smallest unit: an empty list item, then a quote line that ends it.
CHAIN = "-\n>b\n"
#: Frames in use before the render (a server's stack under Trio and a render thread's are
#: shallower; pytest, Hypothesis and a profiler add about this much).
USED = 200

LIST = "<ul>\n<li></li>\n</ul>\n"
QUOTE = "<blockquote>\n<p>b</p>\n</blockquote>\n"

#: Shapes of depth ``n``: lists and quotes that end each other (not nested), and
#: containers nested ``n`` deep in one line (mistune stops nesting at its
#: ``max_nested_level``; the rest is text).
SHAPES: dict[str, Callable[[int], str]] = {
    "list_quote_lines": lambda n: CHAIN * n,
    "quote_list_lines": lambda n: ">b\n-\n" * n,
    "items_and_quotes": lambda n: "".join(f"{i}. x\n> - q{i}\n" for i in range(1, n + 1)),
    "nested_quote_list": lambda n: "> - " * n + "a\n",
    "nested_list_quote": lambda n: "- > " * n + "a\n",
    "nested_quotes": lambda n: "> " * n + "a\n",
}


def with_stack_used(frames: int, call: Callable[[], T]) -> T:
    """``call()`` with ``frames`` more Python frames on the stack."""
    if frames > 0:
        return with_stack_used(frames - 1, call)
    return call()


@pytest.mark.parametrize("n", [1, 2, 3, 50])
def test_lists_and_quotes_that_end_each_other_keep_document_order(n: int) -> None:
    assert RENDERER.render_blocks(CHAIN * n) == [LIST, QUOTE] * n
    assert RENDERER.render_blocks(">b\n-\n" * n) == [QUOTE, LIST] * n


def test_a_list_after_a_chain_is_not_glued_to_the_paragraph_before_it() -> None:
    # mistune parsed "10. O" while the list and the quote were open, against the paragraph
    # before them ("10." may not interrupt a paragraph): "<p>P.\n10. O</p>" came last
    assert RENDERER.render_blocks("P.\n- U\n\n> Y\n10. O") == [
        "<p>P.</p>\n", "<ul>\n<li>U</li>\n</ul>\n",
        "<blockquote>\n<p>Y</p>\n</blockquote>\n", '<ol start="10">\n<li>O</li>\n</ol>\n']
    # a quote that a list ends, the list ended by a fence: quote, list, code
    assert RENDERER.render_blocks("> a\n- \n```") == [
        "<blockquote>\n<p>a</p>\n</blockquote>\n", LIST, "<pre><code></code></pre>\n"]


@pytest.mark.parametrize("n", [1, 20, 98, 200, 5_000])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_one_shot_render_of_deep_shapes_raises_nothing(name: str, n: int) -> None:
    text = SHAPES[name](n)
    blocks = with_stack_used(USED, lambda: RENDERER.render_blocks(text))
    assert blocks and "".join(blocks) == RENDERER.render(text)
    if name == "list_quote_lines":
        assert blocks == [LIST, QUOTE] * n


@pytest.mark.parametrize("n", [1, 20, 200])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_deep_shapes_stream_like_one_render(name: str, n: int) -> None:
    """At 1-character deltas, every op well-formed (``test_chunker.stream``)."""
    text = SHAPES[name](n)
    with_stack_used(USED, lambda: stream(text, fixed(text, 1)))


@pytest.mark.parametrize("name", sorted(set(SHAPES) - {"items_and_quotes"}))
def test_5000_levels_stream_like_one_render(name: str) -> None:
    """Far past any bound, at 1-character deltas, with the stack already deep."""
    text = SHAPES[name](5_000)

    def run() -> str:
        chunker = Chunker(RENDERER)
        for char in text:
            chunker.feed(char)
        chunker.close()
        return chunker.html

    assert with_stack_used(USED, run) == RENDERER.render(text)
