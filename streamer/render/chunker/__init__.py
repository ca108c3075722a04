"""The incremental renderer: markdown deltas in, document operations out.

A :class:`Chunker` turns one stream's text deltas into :class:`~streamer.render.ops.Op`
values that build the client's block list (``docs/protocol.md``, "Document operations")::

    chunker = Chunker(renderer)
    for delta in provider_deltas:
        send(chunker.feed(delta))
    send(chunker.close())
    assert chunker.html == renderer.render(chunker.markdown)

Guarantees, for any split of the text into deltas:

1. After any prefix of the ops, applied with :func:`~streamer.render.ops.apply_op` to an
   empty list, every block is a complete, sanitized element (or ``""``, a slot whose block
   was folded into an earlier one) and the list equals :attr:`Chunker.blocks` at that point.
2. After :meth:`Chunker.close`, ``"".join(blocks) == renderer.render(markdown)`` exactly.
3. Per delta, only the *open tail* is re-rendered; committed blocks are rendered and
   sanitized once (when they are committed) and never again during :meth:`Chunker.feed`.
4. The work per delta does not grow with the answer: amortized O(delta) on any markdown.

Costs: O(delta) per delta on the hot path (most of an answer), O(line) or O(item) on the
fast and splice paths, O(tail) where a render is needed, which a per-stream work budget
(:mod:`.budget`) holds to ``RenderConfig.rerender_ratio`` rendered characters per character
(past it, updates get coarser, never inexact); :meth:`Chunker.close` renders the tail once.
How (hold-back, the commit rule, the fast, hot and splice paths, the budget, the op fields)
is told in ``docs/chunker.md``.

The pieces: :mod:`.core` (the :class:`Chunker`: ``feed``/``close``, dispatch, the hot path),
:mod:`.blocks` (the client's block list and the ops that change it), :mod:`.commit` (commit
rules and the committed text), :mod:`.splice` (the splice paths), :mod:`.listitem` (a list's
last item rendered again alone), :mod:`.fast` (code and line breaks with no render),
:mod:`.lines` (line predicates and regexes), :mod:`.budget` (the metered renders and the
work budget) and :mod:`.metrics` (visible characters, flicker and counters, for ops, tests
and benchmarks).

This package is pure: no I/O, no Trio.
"""

from streamer.render.chunker.blocks import SPLICE_MIN_BLOCK, appended_text
from streamer.render.chunker.core import Chunker, ChunkerClosedError
from streamer.render.chunker.metrics import ChunkerStats, flicker_chars, text_length

__all__ = [
    "SPLICE_MIN_BLOCK",
    "Chunker",
    "ChunkerClosedError",
    "ChunkerStats",
    "appended_text",
    "flicker_chars",
    "text_length",
]
