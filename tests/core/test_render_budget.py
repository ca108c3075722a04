"""The default work budget (``[render] rerender_ratio``, ``rerender_allowance_chars``): an
ordinary answer never waits for it, and it holds the shapes it exists for to a flat cost.

Counted, not timed: ``ChunkerStats.rendered_chars`` (the work's proxy, docs/chunker.md,
"Work budget") and ``ChunkerStats.deferred``."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.config import RenderConfig
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from tests.core.chunker_shapes import SHAPES

RENDERER = Renderer(RenderConfig())
CORPUS = sorted((Path(__file__).parents[1] / "corpus" / "answers").glob("*.md"))

#: the shapes only the budget holds: one paragraph with an opener on every line, and
#: containers whose single block grows and renders whole
BUDGET_SHAPES = ["label_lines", "delimiter_soup", "star_lines", "list_in_quote", "hard_breaks"]


def feed_all(text: str, delta: int) -> Chunker:
    chunker = Chunker(RENDERER)
    for i in range(0, len(text), delta):
        chunker.feed(text[i:i + delta])
    return chunker


@pytest.mark.parametrize("delta", [1, 4])
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_an_ordinary_answer_never_waits_for_the_budget(path: Path, delta: int) -> None:
    """The realistic answers (up to 17 rendered characters per character: a nested list)
    stream with every update, at the model's 4-character deltas and at 1-character ones."""
    chunker = feed_all(path.read_text(), delta)
    assert chunker.stats.deferred == 0, (chunker.stats.rendered_chars, len(chunker.markdown))


@pytest.mark.parametrize("name", BUDGET_SHAPES)
def test_the_budget_keeps_the_work_per_character_flat(name: str) -> None:
    """Rendered characters per character stay under the budget's constant at every size
    (``ratio``, plus the allowance spread over the answer and the render that spent it),
    and do not grow from 8k to 32k (at 2k such a shape may cost less: it is still under
    the allowance, its quadratic part small)."""
    config = RENDERER.config
    per_char = {}
    for n in (2_000, 8_000, 32_000):
        chunker = feed_all(SHAPES[name](n), 1)
        per_char[n] = chunker.stats.rendered_chars / n
        assert per_char[n] <= config.rerender_ratio + config.rerender_allowance_chars / n + 3
    assert per_char[32_000] <= 1.2 * per_char[8_000] + 1, per_char
