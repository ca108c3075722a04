"""Commit rules: where the open tail may be cut, and the committed prefix of the text.

A cut moves the tail's earlier blocks into the committed prefix, whose blocks are never
rendered again during ``feed``. :class:`CommitRule` finds a cut a render proves
(rules (A) and (B) of ``docs/chunker.md``, "Commit rule"); :func:`settled` tells when a
blank line and a new block's first character prove it with no render; :class:`Committed`
keeps the committed parts, their slots and their link reference definitions, and renders
what :meth:`~streamer.render.chunker.Chunker.close` must check again.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

from typing import NamedTuple

from streamer.render.chunker.blocks import Blocks
from streamer.render.chunker.budget import MeteredRenderer
from streamer.render.chunker.lines import LONE_CR_RE, OpenBlocks, TailScan, fence_state
from streamer.render.chunker.metrics import ChunkerStats
from streamer.render.markdown import RefLinks, Renderer

__all__ = ["CommitRule", "Committed", "Cut", "settled"]


class Cut(NamedTuple):
    """A verified cut of the tail: the committed part is ``tail[:at]``."""

    #: where the cut is (a line start of the tail)
    at: int
    #: how many of the tail's blocks the part before the cut holds
    n_blocks: int
    #: the link reference definitions the part before the cut adds
    refs: RefLinks


def _starts_new_block(first: str) -> bool:
    """Whether a line starting with ``first`` after a blank line can only start a new block.

    Excluded: indentation (list item or indented code continuation), list markers (``-``,
    ``+``, ``*``, digits: the same list may go on) and ``[`` (a link reference definition
    renders nothing, so it proves nothing). Anything else (a letter, ``#``, ``>``, ``|``,
    a fence, ``<``, ``_``, …) begins a paragraph, heading, quote, table, code or HTML block.
    """
    return not first.isspace() and not first.isdigit() and first not in "-+*["


def _after_blank_line(text: str, p: int) -> bool:
    """Whether the line before the line start ``p > 0`` is blank (whitespace only)."""
    return text[text.rfind("\n", 0, p - 1) + 1:p].isspace()


def _container_hazard(last_before: str, first_after: str, after_blank_line: bool) -> bool:
    """Whether mistune may still change blocks before a cut because of lines after it.

    Two mistune quirks (``BlockParser.parse_block_quote``, ``list_parser``): while a list or
    block quote is parsed, the block before it is still ``state.tokens[-1]``, and the construct
    that ends the container is parsed *inside* that call, against that state:

    * a list's item collection parses a following block quote (even after blank lines) as
      its end, and a quote parses a following list as its end; a list whose number is not 1
      may not interrupt a paragraph, so ``append_paragraph`` glues it to the paragraph before
      the whole chain: ``"P.\\n- U\\n\\n> Y\\n10. O"`` renders
      ``[<blockquote>Y</blockquote>, <ul>U</ul>, <p>P.\\n10. O</p>]``;
    * a quote is inserted before the *last* token only, so a quote ended by a list that a
      fence then ends comes out after the list: ``"> a\\n- \\n```"`` renders
      ``[<ul>, <blockquote>, <pre>]``.

    So the chunker never cuts right after a list, nor after a quote or between a paragraph and
    a following list or quote unless a blank line precedes the cut (a blank line ends a
    quote's parse and makes ``tokens[-1]`` a blank-line token).

    The renderer no longer has either quirk (``streamer.render.markdown._BlockParser``: a
    list or quote ends at the line that starts the other one, and its state's loop parses
    that line; ``docs/chunker.md``, "Lists and quotes that end each other"): the examples
    above render in document order. The margin stays; it only delays a cut.
    """
    if last_before.startswith(("<ul", "<ol")):
        return True
    if after_blank_line:
        return False
    if last_before.startswith("<blockquote"):
        return True
    return last_before.startswith("<p>") and first_after.startswith(("<blockquote", "<ul", "<ol"))


def _label_open(tail: str) -> bool:
    """Whether ``tail`` may end inside a link reference definition's label that began at a
    line start: mistune takes up to 500 characters, blank lines included, as a label
    (``LINK_LABEL``; CommonMark §4.7 allows no blank line), so ``[a\\n\\nb\\n\\nc]: /u`` is one
    definition that renders nothing, and no block since its ``[`` is settled (nor while its
    ``]`` is last or followed by ``:``). Looks at the last 501 characters only."""
    start = max(0, len(tail) - 501)
    i = tail.rfind("[", start)
    if i < 0:
        return False
    close = tail.find("]", i)
    eol = tail.find("\n", i)
    if close >= 0 and (eol < 0 or close < eol or tail[close + 1:close + 2] not in ("", ":")):
        return False  # a one-line label (the usual paths know those), or no definition's
    line = tail[tail.rfind("\n", 0, i) + 1:i]
    return line.strip(" \t>*+-0123456789.)") == ""


def settled(tail: str, delta: str, blocks: list[str], scan: TailScan) -> bool:
    """Whether ``delta``, a line that begins in column 0 after a blank line (``tail`` ends in
    one), starts a new block that settles the tail's ``blocks``: they can be committed with
    no render. The caller rules out an open column-0 fence.

    Nothing continues a paragraph, heading, table, closed code block, block quote or
    thematic break across a blank line into a line that starts with anything but whitespace
    or ``[`` (no lazy line, no setext underline, §4.3, §5.1), and a blank line ends a quote's
    parse (so :func:`_container_hazard` does not apply). Left to the render path: after a
    list as the last block, any line but a letter, ``#``, fence or ``|`` one (an item or
    indented text may go on with it, and mistune parses a following quote as the list's
    end), or any line at all if the tail holds a quote (mistune puts a quote that a list
    ended after the list); open fences and math blocks (a blank line is their content), HTML
    blocks (one may run on past a blank line), and ``[`` (a link reference definition renders
    nothing, and applies to earlier blocks: ``close`` reconciles those).
    """
    if not tail.endswith("\n\n") or not blocks or delta[0] in " \t\n\r[" or _label_open(tail):
        return False
    if blocks[-1].startswith(("<ul", "<ol")) and not (
            (delta[0].isalpha() or delta[0] in "#`~|")
            and not any(b.startswith("<blockquote") for b in blocks)):
        # after a list, only a letter, a heading, a fence or a table line (mistune parses a
        # following quote as the list's end, even across blank lines), and not after a quote
        # that a list ended: mistune puts that quote after the list once the list ends
        return False
    if scan.has_html_line(tail):
        return False
    fences = scan.fence_marks(tail)
    # a fence open at the end swallows the blank line and what follows; "```" may be
    # content, not a closer ("```\n```rust\n"): follow them line by line (a lone "\r" ends
    # a line too, CommonMark §2.1, which fence_state does not follow: left to a render)
    return not fences or not (
        "$$" in fences or "\\[" in fences or LONE_CR_RE.search(tail)
        or fence_state(tail)[0] is not None
        or any(b.startswith(("<ul", "<ol", "<blockquote")) for b in blocks))


class CommitRule:
    """Finds verified cuts of the open tail (``docs/chunker.md``, "Commit rule"). Each
    candidate line start is tried once per rule until the next commit (:meth:`reset`).

    Args:
        renderer: the pipeline the cuts are checked against.
        stats: the stream's counters (``commit_checks``).
    """

    __slots__ = ("_open", "_renderer", "_scanned_a", "_stats", "_tried_a", "_tried_b")

    def __init__(self, renderer: MeteredRenderer, stats: ChunkerStats) -> None:
        self._renderer = renderer
        self._stats = stats
        #: highest commit candidate (a line start in tail coordinates) tried per rule
        self._tried_a = 0
        self._tried_b = 0
        #: line starts up to here were looked at as (A) candidates (each line once)
        self._scanned_a = 0
        #: fences and math blocks open at a candidate (no cut there)
        self._open = OpenBlocks()

    def reset(self) -> None:
        """The tail was cut: its coordinates start again."""
        self._tried_a = self._tried_b = self._scanned_a = 0
        self._open.reset()

    def _last_a(self, tail: str, line_start: int) -> int | None:
        """The last line start up to ``line_start`` (the last line's) not tried yet that is
        an (A) candidate, or ``None``. Usually the last line; after a render of several
        lines at once (a multi-line delta, or text the work budget kept aside) an earlier
        one may be. Each line is looked at once per tail (:attr:`_scanned_a`)."""
        lo = max(self._tried_a, self._scanned_a)
        p = line_start
        found = None
        while p > lo:
            if p < len(tail) and _starts_new_block(tail[p]) and _after_blank_line(tail, p):
                found = p
                break
            p = tail.rfind("\n", 0, p - 1) + 1
        # the last line, if it has not begun, is looked at again when it has
        self._scanned_a = line_start if line_start < len(tail) \
            else tail.rfind("\n", 0, line_start - 1) + 1
        return found

    def _candidate(self, tail: str, line_start: int) -> tuple[int, int] | None:
        """The next untried candidate: ``(p, end)``, the cut and the end of the text it is
        verified on (rule (A): the whole tail; rule (B): the complete lines only), or
        ``None``."""
        p = self._last_a(tail, line_start)
        if p is not None:
            self._tried_a = p
            return p, len(tail)
        q = tail.rfind("\n", 0, line_start - 1) + 1
        # "[" may open a link reference definition, which renders nothing: a line that
        # renders nothing proves nothing about where the previous block ends.
        if q > self._tried_b and not tail[q].isspace() and tail[q] != "[":
            self._tried_b = q
            return q, line_start
        return None

    def find(self, tail: str, blocks: list[str], refs: RefLinks,
             committed_refs: RefLinks) -> Cut | None:
        """A verified cut of ``tail``, or ``None``.

        ``blocks``/``refs``: the render of the whole ``tail`` (with ``committed_refs``, the
        definitions of the committed text). The cut is verified on the text up to the end of
        the candidate line: for (A) that is the whole tail; for (B) the complete lines only,
        because a partial next line can decide what the candidate line is (``"curl x |
        y\\n|"``: the partial ``|`` makes the line a table header, which stops being one when
        the ``|`` grows into a table row).
        """
        line_start = tail.rfind("\n") + 1
        if line_start == 0 or _label_open(tail):
            return None
        candidate = self._candidate(tail, line_start)
        if candidate is None:
            return None
        p, end = candidate
        if any(mark in tail for mark in ("`", "~", "$$", "\\[")) and self._open.open_at(tail, p):
            return None  # a fence or a math block is open at p (OpenBlocks)
        self._stats.commit_checks += 1
        render = self._renderer.render_part
        if end == len(tail):
            ref_blocks, ref_refs = blocks, refs
        else:
            ref_blocks, ref_refs = render(tail[:end], committed_refs)
        all_refs = {**committed_refs, **ref_refs} if ref_refs else committed_refs
        post_blocks, _ = render(tail[p:end], all_refs)
        n_pre = len(ref_blocks) - len(post_blocks)
        if not post_blocks or n_pre < 0 or ref_blocks[n_pre:] != post_blocks:
            return None
        if n_pre and _container_hazard(
                ref_blocks[n_pre - 1], post_blocks[0], _after_blank_line(tail, p)):
            return None
        if end != len(tail):
            # the blocks sent now (the render of the whole tail) must agree with the cut too
            all_refs = {**committed_refs, **refs} if refs else committed_refs
            if len(blocks) < n_pre or blocks[n_pre:] != render(tail[p:], all_refs)[0]:
                return None
        pre_blocks, pre_refs = render(tail[:p], committed_refs)
        if pre_blocks != ref_blocks[:n_pre] or pre_blocks != blocks[:n_pre]:
            return None
        return Cut(p, n_pre, pre_refs)


class Committed:
    """The committed prefix of the text, in parts (each ends with a newline): per part its
    first slot, its number of blocks and how many link reference definitions were known
    when it was committed; and the definitions of the whole prefix (:attr:`refs`, first
    definition of a label wins, CommonMark §4.7)."""

    __slots__ = ("_slots", "chars", "parts", "refs")

    def __init__(self) -> None:
        self.parts: list[str] = []
        #: the committed text's length
        self.chars = 0
        self.refs: RefLinks = {}
        self._slots: list[tuple[int, int, int]] = []

    def add(self, markdown: str, first_slot: int, n_blocks: int, refs: RefLinks) -> None:
        """Commit ``markdown``, whose ``n_blocks`` blocks fill the slots from ``first_slot``
        on, with the link reference definitions ``refs`` it holds."""
        self.parts.append(markdown)
        self.chars += len(markdown)
        self._slots.append((first_slot, n_blocks, len(self.refs)))
        self.refs.update({k: v for k, v in refs.items() if k not in self.refs})

    def final_blocks(self, renderer: Renderer, tail: str, blocks: Blocks) -> list[str]:
        """The whole document's blocks: the committed ones (re-rendered where a link
        definition that came later may apply: a part with a block not yet final), then
        ``tail`` rendered once more."""
        render = renderer.render_part
        tail_blocks, tail_refs = render(tail, self.refs) if tail else ([], {})
        all_refs = {**self.refs, **tail_refs} if tail_refs else self.refs
        full: list[str] = []
        for md, (first, n, n_refs) in zip(self.parts, self._slots, strict=True):
            part = blocks.html[first:first + n]
            if len(all_refs) > n_refs and not all(blocks.final[first:first + n]):
                again, _ = render(md, all_refs)
                if len(again) != n:  # cannot happen: a definition changes no block structure
                    return renderer.render_blocks("".join(self.parts) + tail)
                part = again
            full.extend(part)
        full.extend(tail_blocks)
        return full
