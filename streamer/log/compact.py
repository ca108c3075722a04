"""A finished stream's log, compacted: the same replay in a few bytes per merged run.

While a stream runs its log holds one :class:`~streamer.log.stream_log.LogEntry` per op (a
model token is often one ``text`` op: ~300 bytes each with its source piece). Once it is
finished and no reader follows it, :func:`compact` folds it:

- the ops between two stream events merge into runs (:func:`~streamer.render.ops.merge_runs`,
  the delivery merge), each stamped with the ``seq`` of the last op it holds, as a client
  that got it merged would have it. The document after each run is the document after that
  ``seq``: every stamp (and every event's ``seq``) stays a cursor that replays exactly. A
  ``seq`` inside a run does too when the run sets its block's whole HTML (an ``append`` or
  ``replace``, nearly all: it is sent as a ``replace`` of that block, all the run changes);
  inside a ``text`` or ``splice`` run (a change relative to the reader's block:
  :meth:`CompactLog.replays_from` says no) it is answered with a snapshot
  (``docs/protocol.md``, "Resume");
- a run that ends as the final document's block (an ``append`` or ``replace`` whose HTML is
  the block's last state, nearly all of them) keeps no HTML of its own: it is a slice of the
  final document (:class:`Document`), which ``stream_complete.html`` holds anyway;
- the source pieces join into one string per span between events (one string for an answer
  without events: ``stream_complete.markdown`` itself), each entry's ``source_parts`` counted
  in the joined pieces (exact at events, which are what readers interleave text with);
- the rest lives in flat arrays (``seq``, total characters, source parts, block, kind): about
  33 bytes a run, and a few hundred runs for a 60,000-character answer.

Entries are built again when read (:meth:`CompactLog.entries`). Pure: no I/O, no Trio.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Protocol, TypeVar, cast

from streamer.render.ops import Op, OpKind, apply_op, merge_runs
from streamer.wire.events import Sources

#: op kinds by code (the low two bits of a run's code; bit 2: ``final``)
KINDS: tuple[OpKind, ...] = ("append", "replace", "text", "splice")
_CODES = {kind: code for code, kind in enumerate(KINDS)}
_FINAL = 4
_EVENT = 255  # (its low bits say "splice": nothing resumes inside an event)
#: a run's estimated size in a compacted log: five array slots and a list slot (bytes)
RUN_BYTES = 41
#: a live entry's estimated size (a ``LogEntry``, its ``Op``, ints, a list slot; bytes)
ENTRY_BYTES = 250
#: a string's fixed cost beyond its characters (bytes)
STR_BYTES = 50


@dataclass(frozen=True, slots=True)
class Document:
    """A finished document: ``html`` (the blocks joined) and where each block starts.

    Block ``i`` is ``html[bounds[i]:bounds[i + 1]]``: one string for the whole document
    (shared with ``stream_complete.html``) instead of one per block.
    """

    html: str
    bounds: array[int]

    @classmethod
    def of(cls, blocks: Sequence[str], html: str | None = None) -> Document:
        """The document of ``blocks``; ``html``, when it is their join, is kept instead of a
        new join (the same string as the ``stream_complete`` event's)."""
        joined = "".join(blocks)
        bounds = array("q", [0])
        for block in blocks:
            bounds.append(bounds[-1] + len(block))
        return cls(html if html == joined and html is not None else joined, bounds)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def block(self, index: int) -> str:
        return self.html[self.bounds[index]:self.bounds[index + 1]]

    def blocks(self) -> list[str]:
        return [self.block(i) for i in range(len(self))]


E = TypeVar("E")


class Entry(Protocol):
    """What :func:`compact` needs of a log entry (``stream_log.LogEntry``)."""

    @property
    def seq(self) -> int: ...

    @property
    def op(self) -> Op | None: ...

    @property
    def total_chars(self) -> int: ...

    @property
    def source_parts(self) -> int: ...


class CompactLog:
    """The compacted entries of one finished log (build with :func:`compact`).

    Each item is a run of ops or an event entry, in ``seq`` order. ``objs[i]`` is the
    event's entry, the run's :class:`Op`, or ``None`` for a run whose HTML is the final
    block (:class:`Document`).
    """

    __slots__ = ("blocks", "codes", "document", "objs", "parts", "seqs", "totals")

    def __init__(self, document: Document) -> None:
        self.document = document
        self.seqs = array("q")
        self.totals = array("q")
        self.parts = array("q")
        self.blocks = array("q")
        self.codes = bytearray()
        self.objs: list[object] = []

    def __len__(self) -> int:
        return len(self.seqs)

    def add(self, seq: int, total: int, parts: int, obj: object, op: Op | None) -> None:
        self.seqs.append(seq)
        self.totals.append(total)
        self.parts.append(parts)
        self.blocks.append(op.block if op is not None else -1)
        self.codes.append(_CODES[op.op] | (_FINAL if op.final else 0) if op is not None
                          else _EVENT)
        self.objs.append(obj)

    @property
    def nbytes(self) -> int:
        """Estimated bytes held beyond the document (the runs, the events' payloads)."""
        own = sum(_payload(obj) for obj in self.objs if obj is not None)
        return len(self) * RUN_BYTES + own

    def index_after(self, seq: int) -> int:
        """How many items have a ``seq`` up to ``seq`` (a cursor's index)."""
        return bisect_right(self.seqs, seq)

    def at_boundary(self, seq: int) -> bool:
        """``seq`` is 0, an event's ``seq`` or a run's stamp: the document there is the
        uncompacted log's."""
        i = self.index_after(seq)
        return seq == 0 or (i > 0 and self.seqs[i - 1] == seq)

    def replays_from(self, seq: int) -> bool:
        """A reader with everything up to ``seq`` (at most the last ``seq``) can be given
        exactly the rest: ``seq`` is a boundary, or inside a run that sets its block's whole
        HTML (``append``, ``replace``: the run is sent as a ``replace``). A ``seq`` inside a
        run of ``text`` or ``splice`` (a change relative to what the reader has) is not."""
        return self.at_boundary(seq) or self.codes[self.index_after(seq)] & 3 in (0, 1)

    def seq_at(self, index: int) -> int:
        return self.seqs[index - 1] if index else 0

    def total_at(self, index: int) -> int:
        return self.totals[index - 1] if index else 0

    def chars(self, index: int) -> int:
        return self.totals[index] - self.total_at(index)

    def entries(self, start: int, stop: int | None,
                make: Callable[[int, Op, int, None, int, int], E], *,
                inside: bool = False) -> list[E]:
        """Items ``start`` to ``stop`` built again with ``make`` (``LogEntry``: ``seq``, op,
        total characters, no event, source parts, characters); events as they were kept.
        ``inside``: the reader has part of item ``start`` (:meth:`replays_from`), so an
        ``append`` there comes as a ``replace`` of the block it already has."""
        end = len(self) if stop is None else min(stop, len(self))
        return [self._entry(i, make, inside and i == start) for i in range(start, end)]

    def _entry(self, i: int, make: Callable[[int, Op, int, None, int, int], E],
               inside: bool = False) -> E:
        obj = self.objs[i]
        if obj is not None and not isinstance(obj, Op):
            return cast(E, obj)  # an event's entry, kept as it was
        op = obj if obj is not None else Op(
            KINDS[self.codes[i] & 3], self.blocks[i],
            html=self.document.block(self.blocks[i]),
            final=bool(self.codes[i] & _FINAL), chars=self.chars(i))
        if inside and op.op == "append":
            op = Op("replace", op.block, html=op.html, final=op.final, chars=op.chars)
        return make(self.seqs[i], op, self.totals[i], None, self.parts[i], op.chars)


def _payload(obj: object) -> int:
    if isinstance(obj, Op):
        return STR_BYTES + len(obj.html or obj.text or "")
    return ENTRY_BYTES


def replay(entries: Sequence[Entry]) -> list[str]:
    """The document after every op of ``entries`` (merged first: linear in the ops' sizes)."""
    blocks: list[str] = []
    ops: list[Op] = [e.op for e in entries if e.op is not None]
    for _, op in merge_runs(ops):
        apply_op(blocks, op)
    return blocks


def compact(entries: Sequence[Entry], source: Sequence[str], document: Document,
            markdown: str | None) -> tuple[CompactLog, list[str]]:
    """``(the compacted entries, the joined source pieces)`` of a finished log.

    Args:
        entries: the log's entries in ``seq`` order (events have ``op`` ``None``).
        source: its source pieces.
        document: its final document (what replaying every op gives).
        markdown: the answer's markdown (``stream_complete.markdown``): kept as the one
            piece when it is the joined source, so the text is held once.
    """
    cuts = _source_cuts(entries, len(source))
    out = CompactLog(document)
    ops: list[Op] = []
    lasts: list[Entry] = []
    final = document.blocks()

    def flush() -> None:
        for last, op in merge_runs(ops):
            entry = lasts[last]
            parts = bisect_right(cuts, entry.source_parts) - 1
            ends = op.op in ("append", "replace") and op.block < len(final) \
                and op.html == final[op.block]
            out.add(entry.seq, entry.total_chars, parts, None if ends else op, op)
        ops.clear()
        lasts.clear()

    for entry in entries:
        if entry.op is not None:
            ops.append(entry.op)
            lasts.append(entry)
            continue
        flush()
        parts = bisect_right(cuts, entry.source_parts) - 1
        out.add(entry.seq, entry.total_chars, parts,
                replace(entry, source_parts=parts),  # type: ignore[type-var]
                None)
    flush()
    pieces = ["".join(source[a:b]) for a, b in pairwise(cuts)]
    if len(pieces) == 1 and markdown is not None and pieces[0] == markdown:
        pieces = [markdown]
    return out, pieces


def _source_cuts(entries: Sequence[Entry], count: int) -> list[int]:
    """Where the joined source pieces begin: at 0, at every event's ``source_parts`` (and
    after the piece a ``sources`` event's list is), and the end."""
    cuts = {0, count}
    for entry in entries:
        if entry.op is None:
            cuts.add(min(entry.source_parts, count))
            if isinstance(getattr(entry, "event", None), Sources):
                cuts.add(min(entry.source_parts + 1, count))
    return sorted(cuts) if count else [0]
