"""The last-item path: a list's last top-level item rendered again alone, not the list.

A list is the one block the commit rule never cuts after (``commit._container_hazard``), so
while it grows, the open tail holds all of it. The splice paths of :mod:`.splice` take the
lines of a *tight* list's items; this path takes the rest: loose lists (a blank line between
items), items with several paragraphs, code blocks, quotes or blank lines in them. Each
delta renders the markdown from the last top-level item's start (its *region*) behind a
dummy item of the same marker that gives it the list's looseness (``"- x\\n\\n"`` before a
loose list's region, ``"- x\\n"`` before a tight one's), and the items after the dummy
replace the last item's HTML in the block: O(item), not O(list).

Only where that is the render of the whole list: the region starts at a column-0 item
marker with items before it; the rendered dummy is the dummy of that looseness (else the
region made a tight list loose, which changes every item); the result is one list with the
block's opening tag (no block after it, no other list); the region holds no possible link
reference definition (one applies to the earlier items too) and no carriage return.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple

from streamer.render.chunker.budget import MeteredRenderer
from streamer.render.chunker.lines import DEF_LINE_RE, ITEM_MARKER_RE
from streamer.render.chunker.metrics import text_length
from streamer.render.markdown import RefLinks

__all__ = ["ItemAt", "LastItem"]

#: A top-level ``<li>`` (any attributes) or its end, for counting nesting depth.
_LI_TAG_RE: Final = re.compile(r"<li[ >]|</li>")
#: A column-0 list item marker line (what starts a new top-level item in a region).
_TOP_MARKER_RE: Final = re.compile(r"(?m)^(?:[-+*]|[0-9]{1,9}[.)])(?:[ \t]|$)")
_TASK_LIST: Final = '<ul data-type="taskList">\n'
#: The tags of the containers a paragraph may be in (group 1: a closing tag; group 2: the
#: name).
_CONTAINER_TAG_RE: Final = re.compile(r"<(/?)(li|ul|ol|blockquote|p)[ >]")


class ItemAt(NamedTuple):
    """Where the last top-level item is: in the tail's markdown and in the block's HTML."""

    #: the item's first character in the tail (a column-0 marker)
    start: int
    #: where its ``<li>`` begins in the block
    offset: int
    #: the dummy items (markdown with the line ending that gives the list's looseness, and
    #: HTML): one, or both (tight, loose) while the items so far render the same either way
    dummies: tuple[tuple[str, str], ...]


def _top_items(html: str) -> list[int]:
    """Where the top-level ``<li>`` elements of a list's items (``html``: items only, no
    list tags) begin. Code and text never hold a literal ``<li`` (the sanitizer escapes
    text), so the tags count the nesting."""
    starts: list[int] = []
    depth = 0
    for m in _LI_TAG_RE.finditer(html):
        if m.group() == "</li>":
            depth -= 1
        else:
            if depth == 0:
                starts.append(m.start())
            depth += 1
    return starts


def _direct_paragraph(items: str) -> bool:
    """Whether a list's items (``items``: their HTML) hold a paragraph of their own, not in
    a quote or a nested list: the only element a list's looseness changes (mistune's
    ``_transform_tight_list``: a tight list's paragraphs lose their ``<p>``)."""
    depth = 0
    for m in _CONTAINER_TAG_RE.finditer(items):
        if m.group(2) == "p":
            if not m.group(1) and depth == 1:
                return True
        elif m.group(1):
            depth -= 1
        else:
            depth += 1
    return False


def _open_tag(block: str) -> str:
    """A list block's opening tag with its newline (``<ul>\\n``, ``<ol start="3">\\n``)."""
    return block[:block.find(">\n") + 2]


class LastItem:
    """The last-item path of one stream (see the module docstring), and what it learned
    about the last block since the tail's last render (:meth:`reset`).

    Args:
        renderer: the pipeline, metered (:class:`~.budget.MeteredRenderer`).

    Attributes:
        chars: the visible characters the last splice added (its op's ``chars``).
    """

    __slots__ = ("_at", "_dummies", "_renderer", "chars")

    def __init__(self, renderer: MeteredRenderer) -> None:
        self._renderer = renderer
        self.chars = 0
        #: the dummy items' HTML, by dummy markdown (found once per stream)
        self._dummies: dict[str, str | None] = {}
        self._at: ItemAt | Literal[False] | None = None

    def reset(self) -> None:
        """Forget the last item's place (the tail was rendered again or cut)."""
        #: the last item's place; ``None``: not looked up yet; ``False``: no such item
        self._at = None

    def splice(self, old_tail: str, delta: str, last: str,
               refs: RefLinks) -> tuple[int, str] | None:
        """The last block ``last`` (a list) with its items from the last top-level item on
        rendered again with ``delta``: ``(cut, html)`` (the block becomes
        ``last[:cut] + html``), or ``None`` where this path does not hold."""
        if not last.startswith(("<ul", "<ol")) or "\r" in delta:
            return None
        at = self._at
        if at is None:
            at = self._at = self._find(old_tail, last, refs) or False
        if at is False:
            return None
        region = old_tail[at.start:] + delta
        if DEF_LINE_RE.search(region) is not None:
            return None  # a definition would apply to the earlier items too
        items = None
        for dummy, dummy_html in at.dummies:
            piece = self._render(dummy + region, last, refs)
            if piece is None or not piece.startswith(dummy_html) \
                    or (items is not None and piece[len(dummy_html):] != items):
                # the region changed the list's looseness (or is no item of it), or the
                # looseness matters now and is not known
                return None
            items = piece[len(dummy_html):]
            if not _direct_paragraph(items):
                break  # (looseness wraps the items' own paragraphs only: the same if tight)
        if not items:
            return None
        self._advance(at, region, items)
        self.chars = max(0, text_length(items) - text_length(last[at.offset:-6]))
        return at.offset, items + last[-6:]

    def _render(self, markdown: str, last: str, refs: RefLinks) -> str | None:
        """The items' HTML of ``markdown`` rendered as one list of the kind of ``last`` (its
        opening tag, less any ``start``), or ``None``."""
        blocks, _ = self._renderer.render_part(markdown, refs)
        if len(blocks) != 1 or not blocks[0].endswith(last[-6:]):
            return None
        tag = _open_tag(blocks[0])
        if tag != _open_tag(last) and not (tag.startswith("<ol") and last.startswith("<ol")):
            return None
        return blocks[0][len(tag):-6]

    def _dummy_html(self, dummy: str, last: str, refs: RefLinks) -> str | None:
        """The HTML of the dummy item ``dummy`` (its markdown with its line ending) in a
        list of such items (rendered once per stream), or ``None``."""
        if dummy not in self._dummies:
            both = self._render(dummy + dummy, last, refs)
            half = len(both) // 2 if both is not None else 0
            self._dummies[dummy] = both[:half] if both and both[:half] == both[half:] else None
        return self._dummies[dummy]

    def _find(self, tail: str, last: str, refs: RefLinks) -> ItemAt | None:
        """The last top-level item of the list at the end of ``tail``: its column-0 marker
        line after indented and blank lines, its HTML at the end of ``last`` behind other
        items, and the list's looseness (the context whose render of the item matches)."""
        start = tail.rfind("\n", 0, len(tail) - 1) + 1
        while start > 0 and tail[start] in " \t\n":
            start = tail.rfind("\n", 0, start - 1) + 1
        marker = ITEM_MARKER_RE.match(tail, start)
        if marker is None or start == 0 or "\r" in tail[start:]:
            return None
        sign = marker.group(1)
        bullet = sign if sign in "-+*" else "1" + sign[-1]
        text = " [ ] x" if last.startswith(_TASK_LIST) else " x"
        old_items = last[len(_open_tag(last)):-6]
        found: list[tuple[str, str]] = []
        offset = 0
        for ending in ("\n", "\n\n"):  # tight, loose
            dummy = bullet + text + ending
            dummy_html = self._dummy_html(dummy, last, refs)
            piece = self._render(dummy + tail[start:], last, refs) if dummy_html else None
            if dummy_html is None or piece is None or not piece.startswith(dummy_html):
                continue
            item = piece[len(dummy_html):]
            if item and old_items.endswith(item) and len(item) < len(old_items):
                # (both, if the item renders the same in a tight and a loose list)
                found.append((dummy, dummy_html))
                offset = len(last) - 6 - len(item)
        # (the loose one first: a region rendered there without <p> is the same when tight)
        return ItemAt(start, offset, tuple(reversed(found))) if found else None

    def _advance(self, at: ItemAt, region: str, items: str) -> None:
        """After a splice: the last item's place is that of the region's last top-level
        item, where the region's column-0 markers and the rendered items agree in number
        (else the region stays as it is, and grows)."""
        markers = [m.start() for m in _TOP_MARKER_RE.finditer(region)]
        if len(markers) < 2:
            return
        tops = _top_items(items)
        if len(tops) != len(markers):
            return
        self._at = ItemAt(at.start + markers[-1], at.offset + tops[-1], at.dummies)
