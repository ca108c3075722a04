"""The client's block list, as the ops sent so far build it, and the ops that change it.

:class:`Blocks` is the chunker's mirror of what every client holds (``docs/protocol.md``,
"Document operations"): the blocks' HTML, which of them were sent as final, where the
committed blocks end and which slots the open tail's blocks fill. Every change to the mirror
goes through it, and it returns the op that makes the same change on a client: a ``text`` op
where the new HTML is the old one plus plain text at its last text position, a ``splice``
where the block keeps most of its beginning, else a ``replace`` (or an ``append`` for a new
slot). So the invariant "the ops applied to an empty list give :attr:`Blocks.html`" holds by
construction.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import html
from typing import Final

from streamer.render.chunker.metrics import ChunkerStats, text_length
from streamer.render.ops import Op, escape_text, split_trailer, trailer_start

__all__ = ["SPLICE_MIN_BLOCK", "Blocks", "appended_text"]

#: A block shorter than this changes by ``replace``: a ``splice`` saves little there.
SPLICE_MIN_BLOCK: Final = 256


def appended_text(old: str, new: str) -> str | None:
    """The plain text ``t`` with ``append_text(old, t) == new``, or ``None`` if there is none.

    ``new`` must be ``head + X + trailer`` where ``(head, trailer) = split_trailer(old)`` and
    ``X`` is serialized text: no ``<``, and ``escape_text(html.unescape(X)) == X``.
    An empty result means ``new == old``.
    """
    head, trailer = split_trailer(old)
    end = len(new) - len(trailer)
    if end < len(head) or not new.startswith(head) or not new.endswith(trailer):
        return None
    x = new[len(head):end]
    if "<" in x:
        return None
    t = html.unescape(x) if "&" in x else x
    if escape_text(t) != x:
        return None
    return t


def _appended_after(old: str, new: str, cut: int) -> str | None:
    """:func:`appended_text` for ``new = old[:cut] + new[cut:]`` in O(change): the plain text
    ``t`` with ``append_text(old, t) == new``, or ``None``."""
    if new[cut:cut + 1] == "<" or cut != (start := trailer_start(old)):
        return None  # (markup first: no plain text)
    trailer = old[start:]
    if len(new) - len(trailer) < start or not new.endswith(trailer):
        return None
    return appended_text(trailer, new[start:])


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (bisection over slices
    compared in C: O(length) copied, O(log length) steps)."""
    lo, hi = 0, min(len(a), len(b))
    while hi - lo > 32:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    while lo < hi and a[lo] == b[lo]:
        lo += 1
    return lo


def _splice_cut(old: str, new: str, cut: int | None) -> int | None:
    """Where a ``splice`` from ``old`` to ``new`` cuts (``old[:c] == new[:c]``), or ``None``
    when a ``replace`` is the better op: a short block, a change of most of the block, or a
    removed part that is not ASCII (``trim`` must count the same in every language).

    ``cut``: a known common prefix at a tag boundary (a splice path's), moved on past what
    the removed and the new part still share; else the common prefix is found (O(block),
    after a render that cost more) and moved back to just after a tag, so that it splits no
    tag or entity.
    """
    if len(new) < SPLICE_MIN_BLOCK or not old:
        return None
    if cut is None:
        cut = _common_prefix(old, new)
        if cut < len(old):
            cut = old.rfind(">", 0, cut) + 1
    else:
        shared = _common_prefix(old[cut:], new[cut:])
        if shared:
            cut = max(cut, old.rfind(">", cut, cut + shared) + 1) if cut + shared < len(old) \
                else cut + shared
    if 2 * (len(new) - cut) > len(new) or (not old.isascii() and not old[cut:].isascii()):
        return None
    return cut


class Blocks:
    """The client's block list and the ops that change it. See the module docstring.

    Args:
        stats: the stream's counters; the ops are counted there by kind.

    Attributes:
        html: the blocks (``""`` for a slot whose block was folded into an earlier one).
        final: per slot, whether an op with ``final=True`` was sent for it.
        committed: slots ``[0, committed)`` hold committed blocks (never rendered again
            during ``feed``).
        tail: the open tail's blocks, which fill the slots from ``committed`` on (slots
            after them hold ``""``).
    """

    __slots__ = ("_stats", "committed", "final", "html", "tail")

    def __init__(self, stats: ChunkerStats) -> None:
        self._stats = stats
        self.html: list[str] = []
        self.final: list[bool] = []
        self.committed = 0
        self.tail: list[str] = []

    def insert_last(self, cut: int, html_text: str) -> None:
        """Insert ``html_text`` into the tail's last block at ``cut``, with no op (the hot
        path sent its text ops already)."""
        slot = self.committed + len(self.tail) - 1
        old = self.html[slot]
        new = old[:cut] + html_text + old[cut:]
        self.html[slot] = new
        self.tail[-1] = new

    def append_text(self, text: str) -> Op:
        """The tail's last block grows by plain ``text`` (not empty) at its last text
        position: the ``text`` op (:func:`~streamer.render.ops.append_text`, one copy
        fewer)."""
        slot = self.committed + len(self.tail) - 1
        old = self.html[slot]
        cut = trailer_start(old)
        new = old[:cut] + escape_text(text) + old[cut:]
        self.html[slot] = new
        self.tail[-1] = new
        self._stats.text_ops += 1
        return Op("text", slot, text=text, chars=len(text))

    def splice_last(self, cut: int, piece: str, added_chars: int) -> list[Op]:
        """The tail's last block becomes ``last[:cut] + piece`` (``cut`` at a tag boundary):
        its op, a ``text`` op where it is one, else a ``splice`` (O(piece) on the wire);
        ``[]`` if nothing changes. ``added_chars``: the visible characters ``piece`` adds."""
        slot = self.committed + len(self.tail) - 1
        old = self.html[slot]
        if piece == old[cut:]:
            return []
        new = old[:cut] + piece
        self.tail[-1] = new
        return [self._change(slot, old, new, final=False, added_chars=added_chars, cut=cut)]

    def sync(self, tail: list[str], n_final: int) -> list[Op]:
        """Make the tail's slots hold ``tail`` (the slots after it ``""``), and commit its
        first ``n_final`` blocks: their ops carry ``final=True`` (but for a block with a
        literal ``]``: a reference definition that arrives later may still make it a link,
        CommonMark §4.7). Returns the ops, in slot order."""
        ops: list[Op] = []
        base = self.committed
        n_slots = len(self.html)
        for i, new in enumerate(tail):
            slot = base + i
            final = i < n_final and "]" not in new
            if slot < n_slots:
                old = self.html[slot]
                if old != new:
                    ops.append(self._change(slot, old, new, final=final))
                elif final:
                    ops.append(self._marker(slot))
            else:
                ops.append(self._append(new, final=final))
        for slot in range(base + len(tail), n_slots):
            if self.html[slot]:
                ops.append(self._change(slot, self.html[slot], "", final=False))
        self.committed += n_final
        self.tail = tail[n_final:] if n_final else tail
        return ops

    def close(self, full: list[str]) -> list[Op]:
        """End of the stream: make the list ``full`` (the slots past it ``""``) and mark every
        slot final. A change to a block already sent as final counts as a close repair."""
        ops: list[Op] = []
        n_slots = len(self.html)
        for i, new in enumerate(full):
            if i >= n_slots:
                ops.append(self._append(new, final=True))
            elif self.html[i] != new:
                ops.append(self._repair(i, new))
            elif not self.final[i]:
                ops.append(self._marker(i))
        for i in range(len(full), n_slots):
            if self.html[i]:
                ops.append(self._repair(i, ""))
            elif not self.final[i]:
                ops.append(self._marker(i))
        self.final = [True] * len(self.html)
        self.committed = len(self.html)
        self.tail = []
        return ops

    def _repair(self, slot: int, new: str) -> Op:
        if self.final[slot]:
            self._stats.close_repairs += 1
        return self._change(slot, self.html[slot], new, final=True)

    def _change(self, slot: int, old: str, new: str, *, final: bool,
                added_chars: int | None = None, cut: int | None = None) -> Op:
        """A ``text`` op if ``new`` is ``old`` plus plain text, else a ``splice`` where the
        blocks share most of their beginning (:func:`_splice_cut`), else a ``replace``.

        ``added_chars``: the visible characters ``new`` adds, when the caller knows them (a
        splice: the inserted piece's), so a long block is not measured again per op.
        ``cut``: ``old[:cut] == new[:cut]``, at a tag boundary, when the caller knows it (a
        splice path): the op then costs O(change), not O(block).
        """
        self.html[slot] = new
        self.final[slot] = self.final[slot] or final
        if cut is None:
            text = appended_text(old, new) if old else None
        else:
            text = _appended_after(old, new, cut)
        if text:
            self._stats.text_ops += 1
            return Op("text", slot, text=text, final=final, chars=len(text))
        cut = _splice_cut(old, new, cut)
        if cut is not None:
            self._stats.splice_ops += 1
            piece = new[cut:]
            chars = (added_chars if added_chars is not None
                     else max(0, text_length(piece) - text_length(old[cut:])))
            return Op("splice", slot, html=piece, final=final, chars=chars,
                      trim=len(old) - cut)
        self._stats.replace_ops += 1
        chars = (added_chars if added_chars is not None
                 else max(0, text_length(new) - text_length(old)))
        return Op("replace", slot, html=new, final=final, chars=chars)

    def _append(self, new: str, *, final: bool) -> Op:
        slot = len(self.html)
        self.html.append(new)
        self.final.append(final)
        self._stats.append_ops += 1
        return Op("append", slot, html=new, final=final, chars=text_length(new))

    def _marker(self, slot: int) -> Op:
        """An empty ``text`` op: changes nothing, marks the block final."""
        self.final[slot] = True
        self._stats.markers += 1
        return Op("text", slot, text="", final=True)
