"""Measures of a stream's ops: visible characters (the ``chars`` of an op), flicker, counters.

:func:`text_length` is the pacing cost the chunker puts on its ops (``docs/protocol.md``, "Op
fields"); :class:`ChunkerStats` and :func:`flicker_chars` are for tests and benchmarks, not
part of the wire protocol.

This module is pure: no I/O, no Trio.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Final

from streamer.render.ops import Op, apply_op

__all__ = ["TAG_RE", "ChunkerStats", "flicker_chars", "text_length"]

#: A tag as html5ever serializes it (attribute values are always double-quoted).
TAG_RE: Final = re.compile(r'<(?:[^>"]|"[^"]*")*>')


@dataclass(slots=True)
class ChunkerStats:
    """Counters for benchmarks and tests (not part of the wire protocol)."""

    #: non-empty deltas fed
    deltas: int = 0
    #: deltas handled by the fast path (no render)
    fast_path: int = 0
    #: deltas that only grew held-back text (no render, no op)
    held: int = 0
    #: deltas rendered as inline content spliced into the last block (no tail render)
    splices: int = 0
    #: tail re-renders in :meth:`Chunker.feed`
    tail_renders: int = 0
    #: commit candidates checked / committed
    commit_checks: int = 0
    commits: int = 0
    #: ops emitted, by kind (the empty ``text`` ops that only mark ``final`` are ``markers``)
    append_ops: int = 0
    replace_ops: int = 0
    splice_ops: int = 0
    text_ops: int = 0
    markers: int = 0
    #: blocks already sent with ``final=True`` that :meth:`Chunker.close` had to change
    close_repairs: int = 0
    #: markdown characters handed to the renderer during ``feed`` (the work budget's cost
    #: proxy: ``budget.MeteredRenderer``)
    rendered_chars: int = 0
    #: deltas kept aside because the work budget was exceeded (rendered later, in one go)
    deferred: int = 0


def text_length(block: str) -> int:
    """Visible characters of a block's HTML: tags removed, entities decoded.

    Newlines between tags count (about one per line of HTML); it is a pacing cost, not a
    typographic measure. ``text_length(append_text(b, t)) == text_length(b) + len(t)``.
    """
    return len(html.unescape(TAG_RE.sub("", block)))


def _visible(block: str) -> str:
    """A block's visible characters without whitespace (what flicker is counted in)."""
    return "".join(html.unescape(TAG_RE.sub("", block)).split())


def flicker_chars(ops: list[Op]) -> int:
    """Flicker of a stream, for tests and benchmarks: visible characters a client showed that
    a later op took away or changed.

    Applies ``ops`` to an empty block list; for every ``replace`` or ``splice``, counts the
    old block's visible non-whitespace characters past the longest common prefix with the
    new block's
    (``*foo`` shown, then ``<em>foo</em>``: the ``*`` and ``foo`` count; ``<p>Title</p>``
    turned into ``<h1>Title</h1>``, or text that only grows, count nothing). Whitespace is
    left out: the newlines between tags are no characters a reader sees.
    """
    blocks: list[str] = []
    count = 0
    for op in ops:
        changes = op.op in ("replace", "splice") and op.block < len(blocks)
        old = _visible(blocks[op.block]) if changes else ""
        apply_op(blocks, op)
        if changes:
            new = _visible(blocks[op.block])
            if not new.startswith(old):
                common = next((k for k, (a, b) in enumerate(zip(old, new, strict=False))
                               if a != b), len(new))
                count += len(old) - common
    return count
