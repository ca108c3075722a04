"""The chunker's work budget: what it re-renders, metered, and when it must wait.

Every render the chunker asks for during ``feed`` goes through a :class:`MeteredRenderer`,
which counts the markdown characters handed to the pipeline (``ChunkerStats.rendered_chars``:
the cost proxy of ``docs/chunker.md``, "Work budget"; mistune's cost is about linear in its
input). :class:`RenderBudget` allows a stream ``allowance + ratio * n`` re-rendered
characters after ``n`` characters of text; past that, the chunker defers: it keeps the
decided text aside, sends nothing, and renders the tail once with all of it when the budget
allows again (``streamer.config.RenderConfig``: ``rerender_ratio``,
``rerender_allowance_chars``). So the work of any stream is at most linear in its length,
whatever shape its markdown takes, and the client's blocks stay a render of a prefix of the
text (complete, sanitized, exact once closed).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamer.render.markdown import RefLinks, Renderer

__all__ = ["MeteredRenderer", "RenderBudget"]


class MeteredRenderer:
    """A :class:`~streamer.render.markdown.Renderer`'s methods that the chunker's paths call,
    each adding the length of its input to :attr:`chars`.

    Args:
        renderer: the process's renderer (shared, stateless).

    Attributes:
        chars: markdown characters rendered so far (the simple renderers' too: they are
            cheaper per character, so the count is an upper bound of the work).
        max_quote_depth: the renderer's (:attr:`Renderer.max_quote_depth`).
    """

    __slots__ = ("_renderer", "chars", "max_quote_depth")

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer
        self.chars = 0
        self.max_quote_depth = renderer.max_quote_depth

    def render_part(self, markdown: str, ref_links: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> tuple[list[str], RefLinks]:
        """:meth:`Renderer.render_part`, metered."""
        self.chars += len(markdown)
        return self._renderer.render_part(markdown, ref_links)

    def render_inline(self, text: str,
                      ref_links: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        """:meth:`Renderer.render_inline`, metered."""
        self.chars += len(text)
        return self._renderer.render_inline(text, ref_links)

    def render_inline_simple(self, text: str) -> str | None:
        """:meth:`Renderer.render_inline_simple`, metered."""
        self.chars += len(text)
        return self._renderer.render_inline_simple(text)

    def render_content_simple(self, content: str) -> str | None:
        """:meth:`Renderer.render_content_simple`, metered."""
        self.chars += len(content)
        return self._renderer.render_content_simple(content)

    def render_line_simple(self, line: str) -> list[str] | None:
        """:meth:`Renderer.render_line_simple`, metered."""
        self.chars += len(line)
        return self._renderer.render_line_simple(line)

    def render_item_simple(self, item: str) -> list[str] | None:
        """:meth:`Renderer.render_item_simple`, metered."""
        self.chars += len(item)
        return self._renderer.render_item_simple(item)

    def render_rows_simple(self, rows: str, columns: int) -> str | None:
        """:meth:`Renderer.render_rows_simple`, metered."""
        self.chars += len(rows)
        return self._renderer.render_rows_simple(rows, columns)


class RenderBudget:
    """How many characters a stream may have re-rendered after ``n`` characters of text:
    ``allowance + ratio * n`` (amortized O(1) per character: ``ratio``).

    Args:
        ratio: re-rendered characters allowed per character of text (``> 0``).
        allowance: re-rendered characters allowed up front (``>= 0``), so that an ordinary
            answer never waits.
    """

    __slots__ = ("allowance", "ratio")

    def __init__(self, ratio: int, allowance: int) -> None:
        if ratio <= 0 or allowance < 0:
            raise ValueError("the budget needs ratio > 0 and allowance >= 0")
        self.ratio = ratio
        self.allowance = allowance

    def exceeded(self, spent: int, text_chars: int) -> bool:
        """Whether ``spent`` re-rendered characters are more than ``text_chars`` characters
        of text allow."""
        return spent > self.allowance + self.ratio * text_chars
