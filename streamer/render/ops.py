"""Document operations: the unit the chunker produces and every client applies.

The client's document for one stream is a list of top-level blocks, each a complete,
sanitized HTML element (``<p>…</p>``, ``<pre><code>…</code></pre>``, ``<table>…</table>``)
or the empty string (a block the renderer has since folded into another; clients keep its
slot and show nothing). Ops change that list (``docs/protocol.md``, "Document operations"):

=========  ===============================================================================
op         effect on ``blocks``
=========  ===============================================================================
append     ``blocks.append(html)``; ``block`` is always ``len(blocks)`` before the op
replace    ``blocks[block] = html``
text       insert ``escape_text(text)`` at the block's *last text position*
splice     ``blocks[block] = blocks[block][:len(blocks[block]) - trim] + html``: the block's
           last ``trim`` characters (always ASCII: closing tags, newlines, markup) give way
           to ``html``; the result is again a complete element
=========  ===============================================================================

The *last text position* of a block is the index just before its trailing run of closing
tags (``</…>``) and newlines: the end of the deepest last element. In DOM terms, the
text is appended inside the block's deepest last non-void element, with the marks of that
position (``<p>a <em>b</em></p>`` + ``"c"`` → ``<p>a <em>bc</em></p>``). The chunker only
emits a ``text`` op when the result is byte-for-byte the HTML it would otherwise send in a
``replace``, so applying ops with :func:`apply_op` reproduces the server's blocks exactly.

A ``splice`` is how a block that grows by structure, not plain text (a new list item or table
row, markup at the end of a paragraph, a deeper quote), changes without sending the whole
block again: its size is the change's, not the block's. The removed part is ASCII, so
``trim`` is the same count in code points, UTF-8 bytes and UTF-16 code units (what a
JavaScript client slices by).

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

OpKind = Literal["append", "replace", "text", "splice"]

#: One closing tag; a block's trailer is a run of these and newlines.
_CLOSING_TAG_RE = re.compile(r"</[a-zA-Z][a-zA-Z0-9]*>")

#: html5ever's text serialization (what nh3 emits), html5ever ``serialize/mod.rs``
#: ``write_text``: ``&``, U+00A0, ``<`` and ``>`` are escaped in text nodes; quotes are not.
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "\u00a0": "&nbsp;", "<": "&lt;", ">": "&gt;"})


def escape_text(text: str) -> str:
    """Escape plain text exactly as the sanitizer serializes a text node.

    Args:
        text: plain text (already unescaped), as carried by a ``text`` op.

    Returns:
        The HTML source of that text inside an element.
    """
    return text.translate(_TEXT_ESCAPES)


def split_trailer(html: str) -> tuple[str, str]:
    """Split a block's HTML at its last text position (:func:`trailer_start`).

    Returns:
        ``(head, trailer)`` with ``head + trailer == html``; ``trailer`` is the maximal suffix
        made only of closing tags (``</name>``) and newlines.
    """
    cut = trailer_start(html)
    return html[:cut], html[cut:]


def trailer_start(html: str) -> int:
    """Where a block's trailer begins: the index of its last text position.

    Scans backwards, so the cost is the trailer's length, not the block's (and nothing is
    copied: a caller that only needs the index pays O(trailer)).

    Returns:
        ``cut`` such that ``html[cut:]`` is the maximal suffix made only of closing tags
        (``</name>``) and newlines.
    """
    cut = len(html)
    while cut > 0:
        if html[cut - 1] == "\n":
            cut -= 1
            continue
        if html[cut - 1] != ">":
            break
        start = html.rfind("<", 0, cut - 1)
        if start < 0 or not _CLOSING_TAG_RE.fullmatch(html, start, cut):
            break
        cut = start
    return cut


def append_text(html: str, text: str) -> str:
    """Return ``html`` with ``text`` appended at its last text position (the ``text`` op)."""
    head, trailer = split_trailer(html)
    return head + escape_text(text) + trailer


@dataclass(slots=True)
class Op:
    """One change to a stream's block list. Treat it as immutable: one op goes to every
    subscriber of a stream. (Not ``frozen``: a frozen dataclass costs 2.5 times as much to
    construct, and the chunker makes one per delta.)

    Attributes:
        op: ``append``, ``replace``, ``text`` or ``splice``.
        block: index of the block it changes (0-based).
        html: the block's complete sanitized HTML (``append``/``replace``), or the HTML that
            ends the block after the trimmed part (``splice``), else ``None``.
        text: plain text to append (``text``), else ``None``.
        final: the block will not change again.
        chars: visible characters this op adds to the document (its pacing cost, >= 0).
        trim: ``splice`` only: how many characters (ASCII) of the block's end ``html``
            replaces; 0 otherwise.
    """

    op: OpKind
    block: int
    html: str | None = None
    text: str | None = None
    final: bool = False
    chars: int = 0
    trim: int = 0


def apply_op(blocks: list[str], op: Op) -> None:
    """Apply one op to a client-side block list, in place.

    Raises:
        ValueError: the op does not fit the list (an ``append`` not at the end, an index out
            of range, a missing ``html``/``text``). A correct server never causes this.
    """
    if op.op == "append":
        if op.block != len(blocks) or op.html is None:
            raise ValueError(f"append at {op.block} to a list of {len(blocks)} blocks")
        blocks.append(op.html)
    elif op.op == "replace":
        if not 0 <= op.block < len(blocks) or op.html is None:
            raise ValueError(f"replace of block {op.block} in a list of {len(blocks)}")
        blocks[op.block] = op.html
    elif op.op == "text":
        if not 0 <= op.block < len(blocks) or op.text is None:
            raise ValueError(f"text into block {op.block} in a list of {len(blocks)}")
        blocks[op.block] = append_text(blocks[op.block], op.text)
    elif op.op == "splice":
        if not 0 <= op.block < len(blocks) or op.html is None \
                or not 0 <= op.trim <= len(blocks[op.block]):
            raise ValueError(f"splice of block {op.block} in a list of {len(blocks)}")
        old = blocks[op.block]
        blocks[op.block] = old[:len(old) - op.trim] + op.html
    else:  # pragma: no cover - Literal exhausts the cases
        raise ValueError(f"unknown op {op.op!r}")


def merge_ops(ops: list[Op]) -> list[Op]:
    """Merge consecutive ops into as few as give the same result (the pacer's merge).

    Runs of ops on the same block fold into one: ``text`` after ``text`` concatenates,
    ``text`` after ``append``/``replace`` folds into that op's HTML, ``splice`` after
    ``append``/``replace``/``splice`` trims and extends that op's HTML, ``text`` after a
    ``splice`` folds into it when the block's last text position lies in the splice's HTML,
    and ``replace`` after anything keeps the earlier op's kind (``append`` stays ``append``).
    ``final`` and ``chars`` accumulate. Anything else (a ``splice`` after ``text``: the block
    it trims is not in the run) starts a new op; ops on different blocks stay separate and in
    order.

    Linear in the ops' sizes: a run keeps its HTML in pieces, so a long list grown by many
    splices is joined once, not once per op.
    """
    return [op for _, op in merge_runs(ops)]


def merge_runs(ops: list[Op]) -> list[tuple[int, Op]]:
    """:func:`merge_ops`, with the index in ``ops`` of the last op each merged op holds (so a
    caller stamps each merged op with the highest ``seq`` it contains: two merged ops on one
    block, a ``text`` then a ``splice``, get two different ``seq``)."""
    out: list[tuple[int, Op]] = []
    run: _Run | None = None
    last = 0
    for i, op in enumerate(ops):
        if run is not None and run.block == op.block and run.absorb(op):
            last = i
            continue
        if run is not None:
            out.append((last, run.op()))
        run = _Run(op)
        last = i
    if run is not None:
        out.append((last, run.op()))
    return out


class _Run:
    """Consecutive ops on one block, folded (:func:`merge_ops`): the first op's kind, then
    its text or HTML in pieces (joined once, by :meth:`op`)."""

    __slots__ = ("block", "chars", "final", "kind", "pieces", "single", "trim")

    def __init__(self, op: Op) -> None:
        self.block = op.block
        self.kind = op.op
        self.single: Op | None = op  # the op itself while nothing was folded in
        self.final = op.final
        self.chars = op.chars
        self.trim = op.trim
        self.pieces = [(op.text if op.op == "text" else op.html) or ""]

    def absorb(self, op: Op) -> bool:
        """Fold ``op`` (on the same block) into the run, or return ``False`` if it does not
        fold (the run is then left as it was)."""
        if op.op == "append":
            return False
        if op.op == "replace":
            if self.kind != "append":
                self.kind = "replace"
            self.trim = 0
            self.pieces = [op.html or ""]
        elif op.op == "text":
            if self.kind == "text":
                self.pieces.append(op.text or "")
            elif not self._insert_text(op.text or ""):
                return False
        elif self.kind == "text":  # a splice trims a block this run does not hold
            return False
        else:
            self._trim(op.trim)
            self.pieces.append(op.html or "")
        self.single = None
        self.final = self.final or op.final
        self.chars += op.chars
        return True

    def _trim(self, n: int) -> None:
        """Remove ``n`` characters from the end of the HTML (past it: from a splice's base)."""
        pieces = self.pieces
        while n and pieces:
            last = pieces[-1]
            if n >= len(last):
                n -= len(last)
                pieces.pop()
            else:
                pieces[-1] = last[:len(last) - n]
                n = 0
        if n:
            self.trim += n  # only a splice's pieces can run out: the rest comes off its base

    def _insert_text(self, text: str) -> bool:
        """``text`` at the last text position of the run's HTML, if that position is in it."""
        pieces = self.pieces
        k = len(pieces) - 1
        while k > 0 and trailer_start(pieces[k]) == 0:
            k -= 1
        if k < len(pieces) - 1:  # the trailer spans pieces: join them (rare)
            pieces[k:] = ["".join(pieces[k:])]
        last = pieces[k]
        cut = trailer_start(last)
        if self.kind == "splice" and (
                cut == 0 or (last[cut - 1] == ">" and last.rfind("<", 0, cut - 1) < 0)):
            # the last text position (or the tag that ends before it) is in the base
            return False
        pieces[k] = last[:cut] + escape_text(text) + last[cut:]
        return True

    def op(self) -> Op:
        if self.single is not None:
            return self.single
        joined = "".join(self.pieces)
        if self.kind == "text":
            return Op("text", self.block, text=joined, final=self.final, chars=self.chars)
        return Op(self.kind, self.block, html=joined, final=self.final, chars=self.chars,
                  trim=self.trim if self.kind == "splice" else 0)
