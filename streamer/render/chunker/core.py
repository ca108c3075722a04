"""The :class:`Chunker`: ``feed``/``close``, the dispatch between its paths, and the hot path.

It owns the open tail (the text after the committed prefix, always cut at a line start) and
what was derived from it, and asks its pieces for the rest: :class:`~.blocks.Blocks` (the
client's block list and its ops), :class:`~.commit.CommitRule` and :class:`~.commit.Committed`
(cuts and the committed text), :class:`~.lines.TailScan` (incremental scans of the tail),
:class:`~.splice.Splicer` (the splice paths) and :mod:`~.fast` (code and line breaks with no
render). How the paths fit together is told in ``docs/chunker.md``.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

from collections.abc import Callable

from streamer.render.chunker.blocks import Blocks
from streamer.render.chunker.budget import MeteredRenderer, RenderBudget
from streamer.render.chunker.commit import CommitRule, Committed, settled
from streamer.render.chunker.fast import closes_fence, fast_code, fast_softbreak
from streamer.render.chunker.lines import (
    CODE_DELTA_RE,
    DEF_LINE_RE,
    EMPTY_ITEM_RE,
    FAST_DELTA_RE,
    TailScan,
    code_matches,
    in_code_line,
    open_fence,
)
from streamer.render.chunker.metrics import ChunkerStats
from streamer.render.chunker.splice import Splice, Splicer
from streamer.render.holdback import HoldBack
from streamer.render.markdown import RefLinks, Renderer
from streamer.render.ops import Op, escape_text, trailer_start

__all__ = ["Chunker", "ChunkerClosedError"]


class ChunkerClosedError(RuntimeError):
    """:meth:`Chunker.feed` was called after :meth:`Chunker.close`."""


def _no_plain(delta: str) -> str | None:
    """:meth:`HoldBack.feed_plain` without a hold-back (never called: the hot path's plain
    branch is off then)."""
    return None


class Chunker:
    """Incremental markdown → block ops for one stream. See :mod:`streamer.render.chunker`.

    Args:
        renderer: the process's :class:`~streamer.render.markdown.Renderer` (shared,
            stateless).
        verify_fast_path: re-render after every fast-path or spliced delta and raise
            ``AssertionError`` if the result differs (for tests; costs what those paths save).
        hold_back: hold back undecided syntax (:class:`~streamer.render.holdback.HoldBack`);
            off, every delta is rendered as it comes (tests of the rendering core use that).
        budget: the work budget (:class:`~.budget.RenderBudget`); by default the renderer's
            ``config.rerender_ratio`` and ``config.rerender_allowance_chars``.
    """

    def __init__(self, renderer: Renderer, *, verify_fast_path: bool = False,
                 hold_back: bool = True, budget: RenderBudget | None = None) -> None:
        self._renderer = renderer
        self._verify_fast_path = verify_fast_path
        self._stats = ChunkerStats()
        self._blocks = Blocks(self._stats)
        self._committed = Committed()
        #: every render during ``feed`` goes through the meter (the budget counts it)
        self._meter = meter = MeteredRenderer(renderer)
        self._budget = budget if budget is not None else RenderBudget(
            renderer.config.rerender_ratio, renderer.config.rerender_allowance_chars)
        #: decided text kept aside while the budget is exceeded (rendered in one go later)
        self._deferred: list[str] = []
        self._rule = CommitRule(meter, self._stats)
        self._scan = TailScan()
        self._splicer = Splicer(meter, self._scan)
        #: the open tail (:attr:`_tail` joins ``_tail_str`` and the deltas in ``_tail_more``
        #: that the hot path appended); its blocks are ``_blocks.tail``
        self._tail_str = ""
        self._tail_more: list[str] = []
        #: link reference definitions in the tail, as of its last render
        self._tail_refs: RefLinks = {}
        #: a fence opened in column 0 that is still open at the tail's end (the last block is
        #: its code block): its marker and where its code starts in the tail; or ``None``
        self._open_fence: tuple[str, int] | None = None
        #: a line of the tail may be a link reference definition (:data:`DEF_LINE_RE`)
        self._def_line = False
        #: the tail's length right after :meth:`_close_fence` closed its fence (else -1)
        self._fence_closed_at = -1
        #: the last :meth:`_feed_cheap` rendered the rest of its feed
        self._rendered_rest = False
        #: the hot path (:meth:`_feed_hot`): on; on for code; on for plain words through
        #: HoldBack.feed_plain; the spaces at the tail's end, not shown yet; the last block's
        #: slot, its last text position (:func:`trailer_start`), and the texts the hot path
        #: appended there since (joined into the block by :meth:`_flush_hot`)
        self._hot = self._hot_code = self._hot_plain = False
        self._hot_spaces = self._hot_slot = self._hot_cut = 0
        self._hot_texts: list[str] = []
        #: counters not yet folded into ``_stats`` (the hot path's: cheaper than attributes
        #: of another object): deltas fed, hot-path deltas, those of them with no op
        self._n_deltas = self._n_hot = self._n_hot_spaces = 0
        self._n_chars = 0
        self._closed = False
        #: holds back undecided syntax; the chunker renders what it decides
        self._hold = HoldBack() if hold_back else None
        self._hold_plain: Callable[[str], str | None] = \
            self._hold.feed_plain if self._hold is not None else _no_plain

    # -- views --------------------------------------------------------------------------

    @property
    def blocks(self) -> list[str]:
        """A copy of the client's current block list (``""`` for a folded slot)."""
        self._flush_hot()
        return list(self._blocks.html)

    @property
    def html(self) -> str:
        """The client's current document: ``"".join(blocks)``."""
        self._flush_hot()
        return "".join(self._blocks.html)

    @property
    def stats(self) -> ChunkerStats:
        """The counters so far (for benchmarks and tests)."""
        st = self._stats
        st.rendered_chars = self._meter.chars
        if self._n_deltas or self._n_hot:
            st.deltas += self._n_deltas
            st.fast_path += self._n_hot
            st.text_ops += self._n_hot - self._n_hot_spaces
            self._n_deltas = self._n_hot = self._n_hot_spaces = 0
        return st

    @property
    def _tail(self) -> str:
        if self._tail_more:
            self._tail_str += "".join(self._tail_more)
            self._tail_more.clear()
        return self._tail_str

    @_tail.setter
    def _tail(self, value: str) -> None:
        self._tail_str = value
        self._tail_more.clear()

    @property
    def markdown(self) -> str:
        """All text fed so far (joins the committed parts: O(length), don't call per delta)."""
        held = self._hold.pending if self._hold is not None else ""
        return "".join(self._committed.parts) + self._tail + "".join(self._deferred) + held

    @property
    def markdown_chars(self) -> int:
        """``len(markdown)``, in O(1): for size limits checked per delta."""
        return self._n_chars

    @property
    def open_chars(self) -> int:
        """What a render of the open tail would take now, in characters (the tail and the
        text the work budget kept aside): the most one ``feed`` or ``close`` renders, for a
        caller that moves large renders off its event loop. O(1)."""
        held = len(self._hold.pending) if self._hold is not None else 0
        return self._n_chars - self._committed.chars - held

    @property
    def closed(self) -> bool:
        return self._closed

    # -- input --------------------------------------------------------------------------

    def feed(self, delta: str) -> list[Op]:
        """Take the next text delta (any length, any split); return the ops it causes.

        Raises:
            ChunkerClosedError: after :meth:`close`.
        """
        if self._closed:
            raise ChunkerClosedError("feed() after close()")
        if not delta:
            return []
        self._n_deltas += 1
        self._n_chars += len(delta)
        if self._hot_plain:
            # the hot path's common case: plain words mid-line, decided and checked at once
            plain = self._hold_plain(delta)
            if plain is not None:
                return self._feed_hot(plain)
        decided = self._hold.feed(delta) if self._hold is not None else delta
        if not decided:
            self._stats.held += 1
            return []
        if self._hot:
            if CODE_DELTA_RE.fullmatch(decided) if self._hot_code \
                    else FAST_DELTA_RE.fullmatch(decided):
                return self._feed_hot(decided)
            self._leave_hot()
        if self._deferred or self._budget.exceeded(self._meter.chars, self._n_chars):
            return self._feed_deferred(decided)
        return self._feed_decided(decided)

    def _feed_deferred(self, delta: str) -> list[Op]:
        """The budget was exceeded (``docs/chunker.md``, "Work budget"): keep ``delta`` aside
        with no op, until the budget allows a render again; then render the tail with all
        the text kept aside, once (a coarser update, still exact and well-formed)."""
        self._deferred.append(delta)
        self._stats.deferred += 1
        if self._budget.exceeded(self._meter.chars, self._n_chars):
            return []
        text = "".join(self._deferred)
        self._deferred.clear()
        return self._feed_render(text)

    def _feed_hot(self, delta: str) -> list[Op]:
        """The fast path again, right after it appended plain text on the same line: what it
        checked still holds (the line's start and kind did not change, the text before the
        delta ends in a letter, digit or ``, . : ? ! ' " - (``, and no ``/`` could have come
        to make a bare URL), so only the delta's characters are checked (by the caller).
        Likewise code mid-line in an open fence (:func:`~.fast.fast_code`'s checks hold).
        O(delta): the tail and the block grow by appending to lists (plain text needs no
        escaping in HTML), joined when another path needs them. The one op per delta of
        most of an answer: its counters are folded into :attr:`stats` when read, and it
        reads only this object's attributes (one lookup each)."""
        self._tail_more.append(delta)
        self._n_hot += 1
        if self._hot_code:
            text = delta
            self._hot_texts.append(escape_text(delta))
        else:
            if delta[-1] == " ":
                core = delta.rstrip(" ")
                if not core:  # spaces only: shown once text follows (a paragraph drops them)
                    self._hot_spaces += len(delta)
                    self._n_hot_spaces += 1
                    return []
                text = " " * self._hot_spaces + core if self._hot_spaces else core
                self._hot_spaces = len(delta) - len(core)
            elif self._hot_spaces:
                text = " " * self._hot_spaces + delta
                self._hot_spaces = 0
            else:
                text = delta
            self._hot_texts.append(text)
        if self._verify_fast_path:
            self._flush_hot()
            self._verify("hot path")
        return [Op("text", self._hot_slot, None, text, False, len(text))]

    def _maybe_enter_hot(self) -> None:
        """Enter the hot path if the fast path's plain branch would take any plain delta now
        (the checks of :meth:`_fast_text` for a delta of ``FAST_DELTA_RE`` characters), or
        code mid-line in the last block's code block (:func:`~.lines.in_code_line`)."""
        tail_blocks = self._blocks.tail
        if not tail_blocks or self._open_fence is not None or self._def_line:
            return
        tail = self._tail
        if self._scan.takes_plain(tail.rstrip(" "), tail_blocks[-1]):
            self._enter_hot()
        elif in_code_line(tail, tail_blocks[-1]):
            self._enter_hot(code=True)  # code mid-line in an indented or nested code block

    def _enter_hot(self, *, code: bool = False) -> None:
        """After a plain-text fast path: the next plain delta may take :meth:`_feed_hot`
        (``code``: after code in an open fence, mid-line: the next delta without a newline
        or a character the renderer normalizes)."""
        tail = self._tail
        self._hot = True
        self._hot_code = code
        self._hot_plain = not code and self._hold is not None
        self._hot_spaces = 0 if code else len(tail) - len(tail.rstrip(" "))
        blocks = self._blocks
        self._hot_slot = slot = blocks.committed + len(blocks.tail) - 1  # (its last slot)
        self._hot_cut = trailer_start(blocks.html[slot])
        self._hot_texts = []

    def _flush_hot(self) -> None:
        """Join the texts the hot path appended into the last block (at its last text
        position, :attr:`_hot_cut`)."""
        if self._hot_texts:
            joined = "".join(self._hot_texts)
            self._hot_texts = []
            self._blocks.insert_last(self._hot_cut, joined)
            self._hot_cut += len(joined)

    def _leave_hot(self) -> None:
        self._flush_hot()
        self._hot = self._hot_plain = False

    def _feed_decided(self, delta: str) -> list[Op]:
        """Grow the tail by ``delta``, text the hold-back filter has released.

        Whole, or else line by line, each piece (a line with its newline) takes a path that
        needs no render of the tail where one applies (:meth:`_feed_cheap`); from the first
        piece that does not, the rest is rendered in one go. A delta of several lines is
        tried whole only where a path takes several lines at once: code in an open fence,
        table rows (``|``), or a line break followed by a letter (a soft break) or ``>`` (a
        quote's next line).
        """
        nl = delta.find("\n")
        if nl < 0 or nl == len(delta) - 1 or self._open_fence is not None or delta[0] == "|" \
                or delta[nl + 1].isalpha() or delta[nl + 1] == ">":
            cheap = self._feed_cheap(delta, delta)
            if cheap is not None or nl < 0 or nl == len(delta) - 1:
                return cheap if cheap is not None else self._feed_render(delta)
        ops: list[Op] = []
        start = 0
        while start < len(delta):
            nl = delta.find("\n", start)
            end = len(delta) if nl < 0 or nl == len(delta) - 1 else nl + 1
            cheap = self._feed_cheap(delta[start:end], delta[start:])
            if cheap is None:
                ops.extend(self._feed_render(delta[start:]))
                break
            ops.extend(cheap)
            if self._rendered_rest:
                break
            start = end
        return ops

    def _feed_cheap(self, delta: str, rest: str) -> list[Op] | None:
        """The ops of ``delta`` (a line, or the end of one) by a fast path or a splice, or
        ``None`` (the tail unchanged). ``rest``: ``delta`` and what follows it in this feed;
        after a commit of the settled tail it is rendered in one go, and
        :attr:`_rendered_rest` says so."""
        if self._hot:
            self._leave_hot()
        old_tail = self._tail
        self._rendered_rest = False
        committed = self._commit_settled(old_tail, delta)
        if committed is not None:
            # the tail's blocks are committed; ``delta`` begins the new tail on its own
            if delta[0].isalpha() and FAST_DELTA_RE.fullmatch(delta):
                return committed + self._new_paragraph(delta)
            self._rendered_rest = True
            return committed + self._feed_render(rest)
        self._tail = old_tail + delta
        if self._open_fence is not None and self._close_fence(old_tail, delta):
            return []
        tail_blocks = self._blocks.tail
        if tail_blocks and tail_blocks[-1].startswith("<blockquote>") and not self._def_line:
            quoted = self._splicer.quote_line(old_tail, delta, tail_blocks[-1])
            if quoted is not None:
                return self._feed_fast(quoted) if isinstance(quoted, str) \
                    else self._feed_spliced(*quoted)
        fast = self._fast_text(old_tail, delta)
        if fast is not None:
            ops = self._feed_fast(fast)
            if self._open_fence is None:
                if FAST_DELTA_RE.fullmatch(delta):
                    self._enter_hot()  # plain text on the line
            elif fast and not delta.endswith("\n"):
                # code on a line that already has its first non-space character (so no
                # later character can make it a closing fence): the hot path takes code
                line = self._tail[self._tail.rfind("\n") + 1:]
                if line.strip(" \t"):
                    self._enter_hot(code=True)
            return ops
        spliced = self._splice(old_tail, delta)
        if spliced is not None:
            ops = self._feed_spliced(*spliced)
            if not delta.endswith("\n"):
                self._maybe_enter_hot()
            return ops
        self._tail = old_tail
        return None

    def _splice(self, old_tail: str, delta: str) -> Splice | None:
        """The splice paths in turn (:class:`~.splice.Splicer`), for ``delta`` after
        ``old_tail``, or ``None``."""
        tail_blocks = self._blocks.tail
        if not tail_blocks:
            return None
        last = tail_blocks[-1]
        refs = self._committed.refs
        if self._tail_refs:
            refs = {**refs, **self._tail_refs}
        splicer = self._splicer
        spliced = None if self._def_line \
            else splicer.inline(old_tail, delta, self._tail, last, refs)
        if spliced is None:
            spliced = splicer.rows(old_tail, delta, last, refs)
        if spliced is None:
            spliced = splicer.item(old_tail, delta, last, refs)
            if spliced is not None and DEF_LINE_RE.search(delta) is not None:
                self._def_line = True  # (its destination may come on the next line)
        if spliced is None:
            spliced = splicer.subitem(old_tail, delta, last, refs)
        if spliced is None and not self._def_line:
            spliced = splicer.last_item(old_tail, delta, last, refs)
        return spliced

    def _commit_settled(self, old_tail: str, delta: str) -> list[Op] | None:
        """A line that begins in column 0 after a blank line and settles the tail's blocks
        (:func:`~.commit.settled`): commit them with no render (their ops, marking them
        final), leaving the tail empty; or ``None``."""
        blocks = self._blocks
        if self._open_fence is not None or not settled(old_tail, delta, blocks.tail, self._scan):
            return None
        self._committed.add(old_tail, blocks.committed, len(blocks.tail), self._tail_refs)
        self._stats.commits += 1
        ops = blocks.sync(blocks.tail, len(blocks.tail))
        self._tail = ""
        self._rule.reset()
        self._reset_tail_state()
        return ops

    def _new_paragraph(self, delta: str) -> list[Op]:
        """Plain text that begins a line, with a letter, on an empty tail: a new paragraph
        (§4.8), appended with no render."""
        self._stats.fast_path += 1
        self._tail = delta
        # (into a slot left empty, if there is one)
        ops = self._blocks.sync(["<p>" + escape_text(delta.rstrip(" ")) + "</p>\n"], 0)
        self._verify("new paragraph")
        return ops

    def _reset_tail_state(self) -> None:
        """Forget what was derived from the tail's text (after a render or a commit; the
        commit candidates tried are reset by the commits themselves)."""
        self._tail_refs = {}
        self._fence_closed_at = -1
        self._open_fence = None
        self._def_line = False
        self._scan.reset()
        self._splicer.reset()

    def _feed_render(self, delta: str) -> list[Op]:
        """Render the tail grown by ``delta``; commit what the render proves settled."""
        if self._hot:
            self._leave_hot()
        tail = self._tail + delta
        self._tail = tail
        self._stats.tail_renders += 1
        simple = self._meter.render_line_simple(tail)
        refs: RefLinks
        if simple is not None:
            blocks, refs = simple, {}
        else:
            blocks, refs = self._meter.render_part(tail, self._committed.refs)
        self._reset_tail_state()
        self._tail_refs = refs
        cut = self._rule.find(tail, blocks, refs, self._committed.refs)
        n_final = 0
        if cut is not None:
            self._committed.add(tail[:cut.at], self._blocks.committed, cut.n_blocks, cut.refs)
            self._tail = tail[cut.at:]
            self._rule.reset()
            self._stats.commits += 1
            n_final = cut.n_blocks
        ops = self._blocks.sync(blocks, n_final)
        self._open_fence = self._fence_at_end()
        self._def_line = DEF_LINE_RE.search(self._tail) is not None
        if not tail.endswith("\n"):
            self._maybe_enter_hot()
        return ops

    def _fence_at_end(self) -> tuple[str, int] | None:
        """The column-0 fence open at the tail's end, if the last block is its code block as
        the fast path models it (:func:`~.lines.code_matches`)."""
        tail_blocks = self._blocks.tail
        if not tail_blocks or not tail_blocks[-1].startswith("<pre><code"):
            return None
        fence = open_fence(self._tail)
        if fence and not code_matches(tail_blocks[-1], self._tail[fence[1]:]):
            return None
        return fence

    def close(self) -> list[Op]:
        """End of text: release what is held, reconcile, mark every block final.

        The open tail is rendered once more; committed parts are not, except those holding a
        block not yet final (a literal ``]``) when link reference definitions arrived after
        them (CommonMark §4.7: a definition applies to the whole document). Committed blocks
        are otherwise exactly what a full render gives (each cut was verified when it was
        made), so this costs the tail, not the answer.

        Returns:
            The ops that make ``"".join(blocks) == renderer.render(markdown)`` and carry
            ``final=True`` for every slot not already final. Calling it again returns ``[]``.
        """
        if self._closed:
            return []
        rest = self._hold.flush() if self._hold is not None else ""
        self._leave_hot()
        ops: list[Op] = []
        if self._deferred:
            # the text kept aside joins the tail, which is rendered once below
            self._tail = self._tail + "".join(self._deferred) + rest
            self._deferred.clear()
        elif rest:
            ops = self._feed_decided(rest)
        self._closed = True
        full = self._committed.final_blocks(self._renderer, self._tail, self._blocks)
        ops.extend(self._blocks.close(full))
        return ops

    # -- the fast path ------------------------------------------------------------------

    def _fast_text(self, old_tail: str, delta: str) -> str | None:
        """The text the fast path appends to the last block, or ``None`` if it does not apply."""
        tail_blocks = self._blocks.tail
        if not tail_blocks:
            return None
        last = tail_blocks[-1]
        if self._open_fence is not None:
            return fast_code(old_tail, delta, self._open_fence, last)
        if self._def_line:
            return None  # the text may be a link reference definition's (rendering nothing)
        if delta == "\n" and len(old_tail) == self._fence_closed_at:
            return ""  # a blank line right after a closed fence shows nothing
        if delta == "\n" and old_tail.endswith("\n") and not last.startswith("<pre") \
                and not self._scan.fence_marks(old_tail) and not (
                    last.startswith(("<ul", "<ol")) and EMPTY_ITEM_RE.search(
                        old_tail, max(0, old_tail.rfind("\n", 0, len(old_tail) - 1)))) \
                and not any(b.startswith("<blockquote") for b in tail_blocks[:-1]):
            # a blank line at the end shows nothing until the next line begins (after a
            # list too: it makes the list loose only once another item follows; but mistune
            # makes it loose at once after an empty last item, "- a\n-\n\n"; and a blank
            # line can move a quote that a list ended: "> - a\n- b\n\n> c\n" + "\n"
            # puts "> c" before the first quote)
            return ""
        if delta.endswith("\n") and "\n" not in delta[:-1] and old_tail[-1:] != "\n":
            # the line's end alone changes no render (mistune ends the text with a newline
            # anyway): what shows is the text before it
            if delta == "\n":
                return "" if old_tail and old_tail[-1] != " " else None
            text = self._fast_text(old_tail, delta[:-1])
            return None if text is None or delta[-2] == " " else text
        if "\n" in delta and last.startswith(("<p>", "<blockquote>")):
            if self._scan.has_html_line(self._tail):
                return None  # an HTML block (shown escaped) keeps its newlines
            # (the last line is all it looks at)
            return fast_softbreak(old_tail[old_tail.rfind("\n") + 1:], delta, last)
        if old_tail[-1:] == "\n" and delta[0].isalpha() and last.startswith("<p>"):
            # the next line of a paragraph, begun after its newline came alone (which showed
            # nothing): a soft break too
            if self._scan.has_html_line(self._tail):
                return None
            prev = old_tail.rfind("\n", 0, len(old_tail) - 1) + 1
            return fast_softbreak(old_tail[prev:-1], "\n" + delta, last)
        if not FAST_DELTA_RE.fullmatch(delta):
            return None
        core = old_tail.rstrip(" ")
        if not self._scan.takes_plain(core, last):
            return None
        return (old_tail[len(core):] + delta).rstrip(" ")

    def _close_fence(self, old_tail: str, delta: str) -> bool:
        """Whether ``delta`` closes the open column-0 fence (:func:`~.fast.closes_fence`).
        The code block then shows what it showed (the renderer drops the code's last newline
        while the fence is open and after it closes), so nothing is sent and nothing
        rendered; the fence is no longer open."""
        assert self._open_fence is not None
        if not closes_fence(old_tail, delta, self._open_fence):
            return False
        self._stats.fast_path += 1
        self._open_fence = None
        self._fence_closed_at = len(old_tail) + len(delta)
        self._verify("fence close")
        return True

    def _feed_spliced(self, cut: int, piece: str) -> list[Op]:
        """The last block becomes ``last[:cut] + piece`` (a splice path's result: ``cut`` is
        at a tag boundary, ``last[cut:]`` is the little the change replaces). Sent as a
        ``text`` op where it is one, else a ``splice`` (O(piece) on the wire)."""
        self._stats.splices += 1
        ops = self._blocks.splice_last(cut, piece, self._splicer.chars)
        if ops:
            self._splicer.changed(cut)
        self._verify("splice")
        return ops

    def _feed_fast(self, text: str) -> list[Op]:
        self._stats.fast_path += 1
        ops = [self._blocks.append_text(text)] if text else []
        self._verify("fast path")
        return ops

    def _verify(self, path: str) -> None:
        """With ``verify_fast_path``: the tail's blocks must be what a render gives."""
        if self._verify_fast_path:
            expected, _ = self._renderer.render_part(self._tail, self._committed.refs)
            if expected != self._blocks.tail:
                raise AssertionError(
                    f"{path} diverged on tail {self._tail!r}: "
                    f"{self._blocks.tail!r} != {expected!r}"
                )
