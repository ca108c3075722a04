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
=========  ===============================================================================

The *last text position* of a block is the index just before its trailing run of closing
tags (``</…>``) and newlines: the end of the deepest last element. In DOM terms, the
text is appended inside the block's deepest last non-void element, with the marks of that
position (``<p>a <em>b</em></p>`` + ``"c"`` → ``<p>a <em>bc</em></p>``). The chunker only
emits a ``text`` op when the result is byte-for-byte the HTML it would otherwise send in a
``replace``, so applying ops with :func:`apply_op` reproduces the server's blocks exactly.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

OpKind = Literal["append", "replace", "text"]

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
    """Split a block's HTML at its last text position.

    Scans backwards, so the cost is the trailer's length, not the block's.

    Returns:
        ``(head, trailer)`` with ``head + trailer == html``; ``trailer`` is the maximal suffix
        made only of closing tags (``</name>``) and newlines.
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
    return html[:cut], html[cut:]


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
        op: ``append``, ``replace`` or ``text``.
        block: index of the block it changes (0-based).
        html: the block's complete sanitized HTML (``append``/``replace``), else ``None``.
        text: plain text to append (``text``), else ``None``.
        final: the block will not change again.
        chars: visible characters this op adds to the document (its pacing cost, >= 0).
    """

    op: OpKind
    block: int
    html: str | None = None
    text: str | None = None
    final: bool = False
    chars: int = 0


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
    else:  # pragma: no cover - Literal exhausts the cases
        raise ValueError(f"unknown op {op.op!r}")


def merge_ops(ops: list[Op]) -> list[Op]:
    """Merge consecutive ops into as few as give the same result (the pacer's merge).

    Runs of ops on the same block fold into one: ``text`` after ``text`` concatenates,
    ``text`` after ``append``/``replace`` folds into that op's HTML, and ``replace`` after
    anything keeps the earlier op's kind (``append`` stays ``append``). ``final`` and
    ``chars`` accumulate. Ops on different blocks stay separate and in order.
    """
    out: list[Op] = []
    for op in ops:
        if out and out[-1].block == op.block:
            prev = out[-1]
            chars = prev.chars + op.chars
            final = prev.final or op.final
            if op.op == "text":
                if prev.op == "text":
                    merged = Op("text", op.block, text=(prev.text or "") + (op.text or ""),
                                final=final, chars=chars)
                else:
                    merged = Op(prev.op, op.block, html=append_text(prev.html or "", op.text or ""),
                                final=final, chars=chars)
            elif op.op == "replace":
                kind: OpKind = "append" if prev.op == "append" else "replace"
                merged = Op(kind, op.block, html=op.html, final=final, chars=chars)
            else:
                out.append(op)
                continue
            out[-1] = merged
        else:
            out.append(op)
    return out
