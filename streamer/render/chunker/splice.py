"""The splice paths: a delta rendered alone and put into the last block, with no render of
the tail.

Each path knows one shape where the piece's HTML, put at a tag boundary of the last block,
is what a render of the whole tail gives (``docs/chunker.md``, "Splices"): markup that
continues a paragraph, heading or list item's line (:meth:`Splicer.inline`), a new line of
a block quote (:meth:`Splicer.quote_line`), complete table rows (:meth:`Splicer.rows`), a new
item of a tight list (:meth:`Splicer.item`) and an indented line in its last item
(:meth:`Splicer.subitem`). Each returns ``(cut, html)``: the last block becomes
``last[:cut] + html``, where ``last[cut:]`` is the little the change replaces; or ``None``
where the shape does not hold (the caller then renders the tail).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

from streamer.render.chunker.budget import MeteredRenderer
from streamer.render.chunker.lines import (
    BLANK_LINE_RE,
    CONTAINER_END_RE,
    DEF_LINE_RE,
    FAST_DELTA_RE,
    FAST_PREV_RE,
    FENCE_ANYWHERE_RE,
    HTML_LINE_RE,
    ITEM_MARKER_RE,
    QUOTE_PREFIX_RE,
    QUOTE_TRAILER_RE,
    SUB_LINE_RE,
    TABLE_DELIM_LINE_RE,
    TailScan,
    bare_url,
    last_item_start,
    latex_open,
    left_open,
    punct_after_closer,
    quote_content,
)
from streamer.render.chunker.listitem import LastItem
from streamer.render.chunker.metrics import text_length
from streamer.render.markdown import RefLinks
from streamer.render.ops import trailer_start

__all__ = ["Splice", "Splicer"]

#: A splice path's result: the last block becomes ``last[:cut] + html``.
Splice = tuple[int, str]


def _split_quote_delta(old_tail: str, delta: str) -> tuple[str, str, str] | None:
    """A quote line's delta, as ``(head, rest, prev)``: the end of the previous line (plain
    text, maybe ``""``), the new line, and the previous line's text with everything before
    it; or ``None``. The new line must be the delta's last, after the newline that ends the
    previous one (in ``delta``, or last in ``old_tail``)."""
    if old_tail.endswith("\n"):
        if "\n" in delta:
            return None
        head, rest, prev = "", delta, old_tail[:-1]
    else:
        nl = delta.find("\n")
        if nl < 0 or "\n" in delta[nl + 1:]:
            return None
        head, rest, prev = delta[:nl], delta[nl + 1:], old_tail + delta[:nl]
    if head and not FAST_DELTA_RE.fullmatch(head):
        return None
    return head, rest, prev


def _quote_prev_ok(old_tail: str, head: str, prev: str, last: str) -> bool:
    """Whether the previous line of a quote, ``prev``'s last line, is a plain paragraph line
    of the quote ``last`` that ends as it was rendered: in plain text, or in a closed code
    span, link or emphasis followed by the newline or by ``head``'s plain text (after a
    space, or punctuation that leaves the closer as it is: :func:`punct_after_closer`)."""
    if head:
        if not FAST_PREV_RE.fullmatch(prev[-1]) or not (
                old_tail[-1] == " " or FAST_PREV_RE.fullmatch(old_tail[-1])
                or punct_after_closer(old_tail, head)):
            return False
    elif not FAST_PREV_RE.fullmatch(prev[-1]) and prev[-1] not in "`)*_":
        return False
    line_start = prev.rfind("\n") + 1
    if "\r" in prev[line_start:] or quote_content(prev, line_start, last) is None:
        return False
    # head may extend a bare URL (GFM §6.9); a newline ends one, so with no head the
    # previous line's last word is as it was rendered
    return not (head and "://" in prev[max(line_start, prev.rfind(" ", line_start) + 1):])


class Splicer:
    """The splice paths of one stream, and what they learned about the last block since the
    tail's last render (:meth:`reset`).

    Args:
        renderer: the pipeline (its fast renderers first, mistune where they decline).
        scan: the open tail's scans, shared with the chunker.

    Attributes:
        chars: the visible characters the last splice inserted (its op's ``chars``).
    """

    __slots__ = ("_checked_head", "_item_at", "_last", "_p_checked", "_renderer", "_scan",
                 "_table_columns", "_table_head", "chars")

    def __init__(self, renderer: MeteredRenderer, scan: TailScan) -> None:
        self._renderer = renderer
        self._scan = scan
        self._last = LastItem(renderer)
        self.chars = 0
        self.reset()

    def reset(self) -> None:
        """Forget what was learned about the last block (the tail was rendered or cut)."""
        #: how much of the last block's HTML the splice path found closed (0: nothing yet)
        self._checked_head = 0
        #: how much of the last block's HTML :meth:`_tight_list` found free of ``<p>``
        self._p_checked = 0
        #: the last block's table header and delimiter row (markdown), once looked up, and
        #: its number of columns for simple rows (0: rows go to mistune)
        self._table_head: str | None = None
        self._table_columns = 0
        #: :meth:`subitem`'s last find: (the item's start in the tail, the block's length,
        #: where the item's HTML begins in the block)
        self._item_at: tuple[int, int, int] | None = None
        self._last.reset()

    def last_item(self, old_tail: str, delta: str, last: str,
                  refs: RefLinks) -> Splice | None:
        """The last block, a list, with its last top-level item rendered again with
        ``delta`` (:class:`~.listitem.LastItem`: loose lists, items with blank lines,
        code or quotes), or ``None``. O(item), not O(list)."""
        spliced = self._last.splice(old_tail, delta, last, refs)
        if spliced is not None:
            self.chars = self._last.chars
        return spliced

    def changed(self, cut: int) -> None:
        """The last block changed from ``cut`` on (a splice was applied)."""
        self._p_checked = min(self._p_checked, cut)

    def quote_line(self, old_tail: str, delta: str, last: str) -> str | Splice | None:
        """A new line of plain text in a block quote ``last``, at any depth: the text op's
        text (a ``str``) when it continues the deepest paragraph, a :data:`Splice` when
        markup joins it or it opens quotes deeper than that paragraph's, else ``None``.

        ``delta`` holds the start of the line (its ``>`` markers and a letter-started plain
        text), after the end of the previous one (:func:`_split_quote_delta`), a plain
        paragraph line of the quote (:func:`_quote_prev_ok`). A line with at most as many
        markers as the paragraph's quotes are deep continues it (the same quotes, or a lazy
        continuation line, CommonMark §5.1): a soft break, shown as a space, then the text.
        A line with more markers opens the extra quotes inside the deepest one, after its
        paragraph, each quote with a paragraph of the text (as deep as
        :attr:`Renderer.max_quote_depth`, where mistune's nesting is known). The text may
        be simple inline markup (:meth:`Renderer.render_inline_simple`); joining the
        paragraph, only if nothing in it is left open. O(line) with no render, but for one
        copy of the block's string. The caller rules out a possible link reference
        definition in the tail.
        """
        parts = _split_quote_delta(old_tail, delta) if "\r" not in delta else None
        if parts is None:
            return None
        head, rest, prev = parts
        m = QUOTE_PREFIX_RE.match(rest)
        if m is None:
            return None
        content = rest[m.end():].rstrip(" ")
        # plain text, or simple inline markup (rendered without mistune)
        inline = content if content[:1].isalpha() and FAST_DELTA_RE.fullmatch(content) \
            else self._renderer.render_content_simple(content)
        if inline is None or not prev or not _quote_prev_ok(old_tail, head, prev, last):
            return None
        shown = old_tail[len(old_tail.rstrip(" ")):] + head if head else ""
        # the paragraph's end, after the inline elements its text may end in
        end = QUOTE_TRAILER_RE.match(last, trailer_start(last))
        if end is None or not last.startswith("</p>\n", end.end() - 4):
            return None
        cut = end.end() - 4
        depth = last.count("</blockquote>", cut)
        new_depth = m.group().count(">")
        self.chars = len(shown) + 1 + text_length(inline)
        if new_depth <= depth:
            if inline is content and cut == end.start():
                return shown + " " + content
            return self._join_paragraph(last, cut, shown + " " + inline, inline is not content)
        if new_depth > self._renderer.max_quote_depth:
            return None
        extra = new_depth - depth
        return cut, (shown + "</p>\n" + "<blockquote>\n" * extra + "<p>" + inline
                     + "</p>\n" + "</blockquote>\n" * extra + last[cut + 5:])

    def _join_paragraph(self, last: str, cut: int, piece: str, markup: bool) -> Splice | None:
        """``piece`` put at the end of the quote's deepest paragraph (at ``cut``). With
        ``markup``, nothing in the paragraph may be left open (a later closer could pair with
        it); its text is checked once (``_checked_head``, as :meth:`inline`)."""
        checked = self._checked_head if self._checked_head <= cut else 0
        start = max(last.rfind("<p>", 0, cut), checked)
        if markup and left_open(last, start, cut):
            return None
        self._checked_head = cut + len(piece)
        return cut, piece + last[cut:]

    def inline(self, old_tail: str, delta: str, tail: str, last: str,
               refs: RefLinks) -> Splice | None:
        """``delta`` rendered as inline content and spliced into the last block ``last``, or
        ``None`` where that is not known to equal a render of the whole ``tail``
        (``old_tail + delta``; ``refs``: the link definitions it renders with).

        Applies where the fast path's structure holds (the delta continues the current line,
        which is the last text of a paragraph, block quote, ATX heading or last list item,
        and starts as plain text) but the delta holds markup (``**b**``, a link, a code
        span: what hold-back releases once decided). The cut between the block's text so
        far and the new text must follow whitespace, and nothing before it may be left open
        (no literal ``*``, ``~``, backtick, ``[``, ``$``, ``<``, ``\\``, nor an ``_`` that
        could open: a later closer could pair with it). Then the inline text renders as its
        two pieces joined, and only the new piece is rendered: O(delta), not O(paragraph).
        The caller rules out a possible link reference definition in the tail.
        """
        # a final newline changes no render (mistune ends the text with one anyway)
        delta = delta[:-1] if delta.endswith("\n") else delta
        if "\n" in delta or "\r" in delta or delta.endswith("\\"):
            return None  # (a backslash before the newline is a hard break once a line follows)
        if self._scan.has_html_line(tail):
            return None  # an HTML block's text is shown as it is, never parsed as inline
        core = old_tail.rstrip(" ")
        if ("\\)" in delta or "\\]" in delta) and latex_open(core, core.rfind("\n") + 1):
            return None  # it may close a "\\(" before it (which rendered as a plain "(")
        piece = old_tail[len(core):] + delta
        cut = self._inline_cut(core, piece, last)
        if cut is None:
            return None
        html_piece = self._renderer.render_inline_simple(piece.rstrip(" "))
        if html_piece is None:
            if "|" in piece and TABLE_DELIM_LINE_RE.search(old_tail):
                return None  # cells: with a delimiter row above, the line may be a table's
            html_piece = self._renderer.render_inline(piece.rstrip(" "), refs)
        self._checked_head = cut
        self.chars = text_length(html_piece)
        return cut, html_piece + last[cut:]

    def _inline_cut(self, core: str, piece: str, last: str) -> int | None:
        """Where :meth:`inline` puts ``piece`` (after ``core``, the text so far less its
        trailing spaces) in ``last``: right before the closing tag of the text's container
        (``</p>``, ``</li>``, ``</hN>``), after any element the text so far ends in; or
        ``None``."""
        if not core or core[-1] in "\n\t" or "\t" in piece or (
                piece[:1] != " " and not punct_after_closer(core, piece)):
            return None
        line_start = core.rfind("\n") + 1
        if "\r" in core[line_start:]:
            return None
        if piece[0] != " " and bare_url(core[max(line_start, core.rfind(" ", line_start) + 1):]):
            return None  # punctuation that a bare URL may take in (GFM §6.9: "a)!" ends in "!")
        # "[x](" or "![x](" still open: a resolved reference link or image followed by "(" is
        # no literal in the HTML, yet a later ")" makes it an inline link (§6.3)
        opened = core.rfind("](", line_start)
        if opened >= 0 and core.count("(", opened) > core.count(")", opened):
            return None
        end = CONTAINER_END_RE.search(last, trailer_start(last))
        if end is None:
            return None
        cut = end.start()
        inner = self._text_start(core, line_start, last, cut, piece)
        # only the part of the text not already checked (it only grew since: by text ops
        # and splices, each of which ends at a tag boundary)
        checked = self._checked_head if self._checked_head <= cut else 0
        if inner is None or left_open(last, max(inner, checked), cut):
            return None
        return cut

    def _text_start(self, core: str, line_start: int, last: str, cut: int,
                    piece: str) -> int | None:
        """Where the text of the line's container begins in ``last`` (before ``cut``), by
        the kind of the line (:meth:`TailScan.line_kind`), or ``None``."""
        kind = self._scan.line_kind(core, line_start, last)
        if kind is None:
            return None
        if kind == "paragraph":
            return 3
        if kind == "quote":
            return last.rfind("<p>", 0, cut)
        if kind == "item":
            return max(last.rfind("<li", 0, cut), last.rfind("<p>", 0, cut))
        if "#" in piece or core[-1] == "#":  # a closing sequence (§4.2)
            return None
        return 4

    def rows(self, old_tail: str, delta: str, last: str, refs: RefLinks) -> Splice | None:
        """Complete new rows rendered and spliced into the body of the last block, a table,
        or ``None``.

        The rows (``delta``: whole lines that start with ``|``, after a complete line) are
        rendered under the table's own header and delimiter row, so they get the same
        columns; the result must be a table with the same head, else (a row whose cell count
        differs makes mistune drop the whole table) the tail is rendered whole. O(header +
        rows), not O(table).
        """
        if not last.startswith("<table>") or not old_tail.endswith("\n") \
                or not delta.endswith("\n") or "\r" in delta:
            return None
        if any(not line.startswith("|") for line in delta[:-1].split("\n")):
            return None
        head_md = self._table_head
        if head_md is None:
            head_md = self._find_table_head(old_tail, last)
            if head_md is None:
                return None
        body_end = last.rfind("</tbody>")
        simple = self._renderer.render_rows_simple(delta, self._table_columns) \
            if self._table_columns and body_end >= 0 else None
        if simple is not None:
            self.chars = text_length(simple)
            return body_end, simple + last[body_end:]
        piece, _ = self._renderer.render_part(head_md + delta, refs)
        cut = last.find("<tbody>\n")
        if len(piece) != 1 or cut < 0 or not piece[0].startswith(last[:cut + 8]):
            return None
        end = piece[0].rfind("</tbody>")
        if end < 0 or body_end < 0:
            return None
        rows = piece[0][cut + 8:end]
        self.chars = text_length(rows)
        return body_end, rows + last[body_end:]

    def _find_table_head(self, old_tail: str, last: str) -> str | None:
        """The table's header and delimiter row: the first two of the run of ``|`` lines at
        the end of ``old_tail`` (found once per tail render; splices do not move the table's
        start), and the number of columns of the simple row path (a plain header whose
        columns show in ``last``), or ``None``."""
        start = len(old_tail) - 1
        while True:
            prev = old_tail.rfind("\n", 0, start)
            if not old_tail.startswith("|", prev + 1):
                break
            start = prev
            if prev < 0:
                break
        lines = old_tail[start + 1:].split("\n", 2)
        if len(lines) < 3:
            return None
        head_md = self._table_head = lines[0] + "\n" + lines[1] + "\n"
        n_th = last.count("<th>", 0, last.find("</thead>"))
        header = lines[0].strip(" ")
        self._table_columns = n_th if (
            len(header) >= 2 and header[0] == header[-1] == "|" and "\\" not in header
            and "`" not in header and len(header[1:-1].split("|")) == n_th) else 0
        return head_md

    def _tight_list(self, old_tail: str, delta: str, last: str) -> str:
        """``last`` if it is a tight list and ``delta`` begins a line (holding no other)
        after it, else ``""``."""
        if not last.startswith(("<ul", "<ol")) or not old_tail.endswith("\n") \
                or "\n" in delta or "\r" in delta:
            return ""
        # no "<p>" (a loose list); the block only grows at its end between renders, so
        # only what is new since the last look is scanned
        if last.find("<p>", max(0, min(self._p_checked, len(last)) - 2)) >= 0:
            return ""
        self._p_checked = len(last)
        return last

    def item(self, old_tail: str, delta: str, last: str, refs: RefLinks) -> Splice | None:
        """A new top-level item rendered alone and put before the end of the last block, a
        tight list, or ``None``.

        ``delta`` begins a line (and holds no other) with the marker of the list's last
        top-level item (same bullet, or same ordered delimiter); no blank line, HTML line or
        ``<p>`` (a loose list) is in play, so the list stays tight and the earlier items
        cannot change. The item is rendered as a one-item list, whose opening tag must be the
        list's own (a task item joins only a task list, a plain item only a plain list: GFM
        task lists are all-or-nothing here). O(item), not O(list).
        """
        last = self._tight_list(old_tail, delta, last)
        new_marker = ITEM_MARKER_RE.match(delta) if last else None
        if new_marker is None or new_marker.end() >= len(delta):
            return None
        start = last_item_start(old_tail)
        prev_marker = ITEM_MARKER_RE.match(old_tail, start)
        if prev_marker is None or prev_marker.group(1)[-1] != new_marker.group(1)[-1]:
            return None
        rest = old_tail[start:]
        if BLANK_LINE_RE.search(rest) or HTML_LINE_RE.search(rest):
            return None
        piece = self._renderer.render_line_simple(delta)
        if piece is None:
            piece, _ = self._renderer.render_part(delta, refs)
        item = _list_item(piece, last)
        if item is None:
            return None
        self.chars = text_length(item)
        return len(last) - 6, item + last[-6:]

    def subitem(self, old_tail: str, delta: str, last: str, refs: RefLinks) -> Splice | None:
        """The last top-level item of the last block, a tight list, rendered again alone (as
        a one-item list) now that ``delta`` begins an indented line in it (a nested item,
        say), or ``None``.

        The item's lines (from its column-0 marker on) hold no blank line, HTML line, fence
        or possible link reference definition, so the list stays tight and the earlier items
        cannot change. Where the item's HTML begins in the block is found by rendering the
        item as it was (once per block length). O(item), not O(list).
        """
        last = self._tight_list(old_tail, delta, last)
        m = SUB_LINE_RE.match(delta) if last else None
        if m is None or m.end() >= len(delta):
            return None
        start = last_item_start(old_tail)
        if ITEM_MARKER_RE.match(old_tail, start) is None:
            return None
        item_md = old_tail[start:]
        whole = item_md + delta
        if BLANK_LINE_RE.search(whole) or HTML_LINE_RE.search(whole) \
                or FENCE_ANYWHERE_RE.search(whole) or DEF_LINE_RE.search(whole):
            return None
        cached = self._item_at
        offset: int | None
        if cached is not None and cached[:2] == (start, len(last)):
            offset = cached[2]
        else:
            offset = self._item_offset(item_md, last, refs)
            if offset is None:
                return None
        render = self._renderer
        item = _list_item(render.render_item_simple(whole) or render.render_part(whole, refs)[0],
                          last)
        if item is None:
            return None
        self._item_at = (start, offset + len(item) + 6, offset)
        self.chars = max(0, text_length(item) - text_length(last[offset:-6]))
        return offset, item + last[-6:]

    def _item_offset(self, item_md: str, last: str, refs: RefLinks) -> int | None:
        """Where the HTML of the list's last item, ``item_md``, begins in ``last``: the item
        rendered alone as it is, found at the block's end; or ``None``."""
        render = self._renderer
        before = render.render_item_simple(item_md) or render.render_line_simple(item_md) \
            or render.render_part(item_md, refs)[0]
        if len(before) != 1 or not before[0].endswith(last[-6:]):
            return None
        old_item = before[0][before[0].find(">\n") + 2:-6]
        if not last.endswith(old_item + last[-6:]):
            return None
        return len(last) - 6 - len(old_item)


def _list_item(piece: list[str], last: str) -> str | None:
    """The item of ``piece``, a one-item list rendered alone, if that list is of the kind of
    ``last`` (same end tag; a bullet list's opening tag the same, task list or not), else
    ``None``."""
    if len(piece) != 1 or not piece[0].endswith(last[-6:]):  # "</ul>\n" / "</ol>\n"
        return None
    if last.startswith("<ul") and not piece[0].startswith(last[:last.find(">\n") + 2]):
        return None
    if last.startswith("<ol") and not piece[0].startswith("<ol"):
        return None
    return piece[0][piece[0].find(">\n") + 2:-6]
