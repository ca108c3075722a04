"""The stream log: one stream's ops and events, numbered by ``seq``, kept while the stream may
be resumed.

The stream's task appends (synchronously: appending never waits); every reader follows it
with its own :class:`LogCursor` (a position; nothing is copied per reader), so several tabs can
follow one stream and a reconnecting client can be given exactly the entries after its last
``seq``. Waiting is done by the readers: the log calls ``wake_for_entry()`` on each attached
:class:`Waiter` for a new entry and ``wake()`` when it finishes.

``seq`` starts at 1 and numbers the log's entries. Besides them the log keeps:

- running totals: the document's visible characters after each entry (what pacing and
  backpressure count);
- the answer's *source*: the markdown as the model wrote it, in the pieces it came in (not
  numbered: clients that render markdown themselves, the AI SDK adapter, read it; each entry
  records how many pieces came before it, so a reader can interleave text and events exactly);
- once the stream is over, its terminal events (an optional ``error`` and the
  ``stream_complete``), which readers send after the last entry, and its final document.

A finished log no reader follows any more is compacted (:meth:`MemoryStreamLog.compact`,
:mod:`streamer.log.compact`): its ops merged into runs, its source text joined, a few bytes
per run instead of ~300 per op; the same replay from every ``seq`` that stays addressable
(:meth:`StreamLog.replays_from`).

:class:`StreamLog` is the interface (a ``Protocol``: a Redis Streams engine would implement
it); :class:`MemoryStreamLog` is the in-memory engine. Memory: one :class:`LogEntry` per op or
event (an op is a few dozen bytes plus its text/HTML) and the source text, bounded by
``streams.max_response_chars``; once compacted, about 33 bytes per merged run and the text
the ``stream_complete`` holds anyway. Pure: no I/O, no Trio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from streamer.log.compact import ENTRY_BYTES, STR_BYTES, CompactLog, Document, compact, replay
from streamer.render.ops import Op, apply_op
from streamer.wire.events import Error, LogEvent, StreamComplete


class Waiter(Protocol):
    """Anything a log can wake (the runtime's re-armable Trio flag): ``wake`` when the log
    finishes, ``wake_for_entry`` for a new entry (its reader may have said that entries
    cannot change what it waits for: a subscription waiting for its next frame)."""

    def wake(self) -> None: ...

    def wake_for_entry(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log entry: its ``seq``, the document's size after it (``total_chars``, visible
    characters), either a document ``op`` or a stream ``event`` (reasoning, a tool call, a
    retry notice: sent in order, stamped with ``seq``), ``source_parts``: how many pieces
    of the source text came before it, and ``chars``: the visible characters it adds (0 for
    events; a field, not a property, because pacing reads it for every entry)."""

    seq: int
    op: Op | None
    total_chars: int
    event: LogEvent | None = None
    source_parts: int = 0
    chars: int = 0


class LogCursor(Protocol):
    """A reader's position in one log: everything up to :attr:`seq` has been read."""

    @property
    def seq(self) -> int:
        """The last ``seq`` read (0: nothing yet)."""

    @property
    def total_chars(self) -> int:
        """The document's visible characters up to the cursor (what this reader delivered)."""

    @property
    def has_pending(self) -> bool:
        """Entries after the cursor exist."""

    @property
    def at_end(self) -> bool:
        """The log is finished and every entry has been read: only its terminal events are
        left to send."""

    def pending_chars(self) -> Iterator[int]:
        """Visible characters of each entry after the cursor, in order (lazy)."""

    def take(self, count: int | None = None) -> list[LogEntry]:
        """The next ``count`` entries (all pending ones if ``None``); moves the cursor past
        them."""


class StreamLog(Protocol):
    """Seq-numbered ops and events of one stream, its source text and its terminal events.

    Writers: the stream's generation only. Readers: through :meth:`cursor`, never by index.
    """

    @property
    def stream_id(self) -> str: ...

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` appended (0: none)."""

    @property
    def total_chars(self) -> int:
        """The document's visible characters after the last entry."""

    @property
    def finished(self) -> bool:
        """The terminal events are recorded: nothing more will be appended."""

    @property
    def evicted(self) -> bool:
        """The entries were dropped (the replay window is over): only a snapshot resumes."""

    @property
    def complete(self) -> StreamComplete | None:
        """The ``stream_complete`` event, once finished."""

    @property
    def error(self) -> Error | None:
        """The ``error`` event sent before ``stream_complete`` when the stream failed."""

    @property
    def source_count(self) -> int:
        """How many pieces of source text were appended."""

    def append(self, op: Op) -> LogEntry:
        """Add one document op. Raises ``RuntimeError`` once finished."""

    def append_event(self, ev: LogEvent) -> LogEntry:
        """Add one stream event (no characters). Raises ``RuntimeError`` once finished."""

    def append_source(self, text: str) -> None:
        """Add one piece of the source markdown (not numbered; wakes source readers only).
        Raises ``RuntimeError`` once finished."""

    def source(self, start: int, stop: int) -> list[str]:
        """Source pieces ``start`` to ``stop`` (indexes as in :attr:`LogEntry.source_parts`)."""

    def finish(self, complete: StreamComplete, error: Error | None = None,
               blocks: Sequence[str] | None = None) -> None:
        """Record the terminal events (the first call wins) and the final document's
        ``blocks`` (what replaying every op gives: the chunker's; ``None``: replayed when
        needed)."""

    def evict(self) -> None:
        """Drop the entries of a finished log (its final document stays). Raises
        ``RuntimeError`` while running."""

    def snapshot(self) -> tuple[int, list[str]]:
        """``(seq, blocks)``: the document as of the latest ``seq``. Raises ``RuntimeError``
        once evicted."""

    def final_blocks(self) -> list[str]:
        """The finished document's blocks (kept after eviction too). Raises
        ``RuntimeError`` while running."""

    def replays_from(self, seq: int) -> bool:
        """Whether a reader that has everything up to ``seq`` (``0 <= seq <= last_seq``) can
        be given exactly the rest: always, until the log is compacted; then from a boundary
        (0, an event's ``seq``, the last ``seq`` of a merged run) or from inside a run that
        sets its block's whole HTML, not from inside a ``text`` or ``splice`` run."""

    def cursor(self, after_seq: int = 0) -> LogCursor:
        """A reader positioned after ``after_seq`` (0: from the start; clamped to the log)."""

    def attach(self, waiter: Waiter, *, source: bool = False) -> None:
        """Wake ``waiter`` on every entry and on the end (and on source text with
        ``source=True``)."""

    def detach(self, waiter: Waiter) -> None: ...


class MemoryStreamLog:
    """The in-memory engine of :class:`StreamLog` (one process; the replay window in RAM)."""

    def __init__(self, stream_id: str) -> None:
        self._stream_id = stream_id
        self._entries: list[LogEntry] = []
        self._total_chars = 0
        self._error: Error | None = None
        self._complete: StreamComplete | None = None
        self._source: list[str] = []
        self._source_count = 0
        self._waiters: set[Waiter] = set()
        self._source_waiters: set[Waiter] = set()
        self._snapshot_blocks: list[str] = []
        self._snapshot_seq = 0
        self._last_seq = 0
        self._evicted = False
        #: the final document (from ``finish``, or replayed when first needed)
        self._document: Document | None = None
        #: the entries once compacted (then ``_entries`` is empty)
        self._compact: CompactLog | None = None
        self._compact_pending = False
        self._bytes: int | None = None  # retained_bytes of a finished log, once measured

    @property
    def stream_id(self) -> str:
        return self._stream_id

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def total_chars(self) -> int:
        return self._total_chars

    @property
    def finished(self) -> bool:
        return self._complete is not None

    @property
    def evicted(self) -> bool:
        return self._evicted

    @property
    def complete(self) -> StreamComplete | None:
        return self._complete

    @property
    def error(self) -> Error | None:
        return self._error

    @property
    def source_count(self) -> int:
        return self._source_count

    @property
    def entries(self) -> tuple[LogEntry, ...]:
        """Every entry, oldest first (for tests and tools; readers use :meth:`cursor`); the
        merged runs once compacted."""
        if self._compact is not None:
            return tuple(self._compact.entries(0, None, LogEntry))
        return tuple(self._entries)

    @property
    def compacted(self) -> bool:
        return self._compact is not None

    @property
    def retained_bytes(self) -> int:
        """An estimate of the bytes :meth:`evict` would free: the entries (~250 bytes each
        and their text) or the compacted runs, the source pieces but the ``stream_complete``'s
        markdown. Measured once for a finished log (O(entries)), again after it changes."""
        if self._bytes is not None:
            return self._bytes
        size = 0
        if not self._evicted:
            markdown = self._complete.markdown if self._complete is not None else None
            size = sum(STR_BYTES + len(p) for p in self._source if p is not markdown)
            if self._compact is not None:
                size += self._compact.nbytes
            else:
                size += sum(ENTRY_BYTES + (len(e.op.html or e.op.text or "") if e.op else 0)
                            for e in self._entries)
        if self._complete is not None:
            self._bytes = size
        return size

    def _check_open(self) -> None:
        if self._complete is not None:
            raise RuntimeError(f"stream {self._stream_id} is finished; cannot append")

    def append(self, op: Op) -> LogEntry:
        self._check_open()
        chars = max(0, op.chars)
        self._total_chars += chars
        self._last_seq += 1
        entry = LogEntry(self._last_seq, op, self._total_chars, None, self._source_count,
                         op.chars)
        self._entries.append(entry)
        for waiter in self._waiters:
            waiter.wake_for_entry()
        return entry

    def append_event(self, ev: LogEvent) -> LogEntry:
        self._check_open()
        self._last_seq += 1
        entry = LogEntry(self._last_seq, None, self._total_chars, ev, self._source_count)
        self._entries.append(entry)
        for waiter in self._waiters:
            waiter.wake_for_entry()
        return entry

    def append_source(self, text: str) -> None:
        self._check_open()
        self._source.append(text)
        self._source_count = len(self._source)
        self._wake(self._source_waiters)

    def source(self, start: int, stop: int) -> list[str]:
        return self._source[start:stop]

    def finish(self, complete: StreamComplete, error: Error | None = None,
               blocks: Sequence[str] | None = None) -> None:
        if self._complete is None:
            self._error = error
            self._complete = complete
            if blocks is not None:
                self._document = Document.of(blocks, complete.html)
            self._wake(self._waiters)

    def compact(self) -> None:
        """Compact the finished log (:mod:`streamer.log.compact`) now, or as soon as no
        reader is attached (a reader's cursor is a position in the entries: every reader
        attaches before it reads). Once compacted, :meth:`replays_from` refuses a ``seq``
        inside a merged ``text`` or ``splice`` run. Raises ``RuntimeError`` while running."""
        complete = self._complete
        if complete is None:
            raise RuntimeError(f"stream {self._stream_id} is running; cannot compact its log")
        if self._compact is not None or self._evicted:
            return
        if self._waiters or self._source_waiters:
            self._compact_pending = True
            return
        self._compact, self._source = compact(self._entries, self._source, self._final(),
                                              complete.markdown)
        self._source_count = len(self._source)
        self._entries = []
        self._snapshot_blocks = []
        self._compact_pending = False
        self._bytes = None

    def evict(self) -> None:
        if self._complete is None:
            raise RuntimeError(f"stream {self._stream_id} is running; cannot evict its log")
        self._final()  # the document outlives the entries (a late joiner's snapshot)
        self._entries = []
        self._source = []
        self._snapshot_blocks = []
        self._compact = None
        self._compact_pending = False
        self._evicted = True
        self._bytes = None

    def final_blocks(self) -> list[str]:
        if self._complete is None:
            raise RuntimeError(f"stream {self._stream_id} is running; no final document yet")
        return self._final().blocks()

    def _final(self) -> Document:
        assert self._complete is not None
        if self._document is None:
            self._document = Document.of(replay(self._entries), self._complete.html)
        return self._document

    def replays_from(self, seq: int) -> bool:
        return self._compact is None or self._compact.replays_from(seq)

    def snapshot(self) -> tuple[int, list[str]]:
        """Replays only the entries since the previous snapshot, so late joiners cost what
        they need and the append path pays nothing for them; a finished log's is its final
        document."""
        if self._evicted:
            raise RuntimeError(f"stream {self._stream_id}: log evicted")
        if self._complete is not None and (self._compact is not None
                                           or self._document is not None):
            return self._last_seq, self._final().blocks()
        for entry in islice(self._entries, self._snapshot_seq, None):
            if entry.op is not None:
                apply_op(self._snapshot_blocks, entry.op)
        self._snapshot_seq = len(self._entries)
        return self._snapshot_seq, list(self._snapshot_blocks)

    def cursor(self, after_seq: int = 0) -> MemoryLogCursor:
        seq = min(max(0, after_seq), self._last_seq)
        if self._compact is None:
            return MemoryLogCursor(self, seq)
        # inside a merged run: positioned before it, its op made absolute (replays_from)
        inside = not self._compact.at_boundary(seq)
        return MemoryLogCursor(self, self._compact.index_after(seq), inside)

    def attach(self, waiter: Waiter, *, source: bool = False) -> None:
        self._waiters.add(waiter)
        if source:
            self._source_waiters.add(waiter)

    def detach(self, waiter: Waiter) -> None:
        self._waiters.discard(waiter)
        self._source_waiters.discard(waiter)
        if self._compact_pending and not self._waiters and not self._source_waiters:
            self.compact()

    def _wake(self, waiters: set[Waiter]) -> None:
        for waiter in waiters:
            waiter.wake()

    # the cursor's view of the entries (one module owns the list: the cursor reads it here);
    # an index counts entries (= seq until compacted) or, once compacted, merged runs

    def _size(self) -> int:
        return self._last_seq if self._compact is None else len(self._compact)

    def _entry_slice(self, start: int, stop: int | None, inside: bool = False
                     ) -> list[LogEntry]:
        if self._compact is not None:
            return self._compact.entries(start, stop, LogEntry, inside=inside)
        return self._entries[start:stop]

    def _chars_after(self, index: int) -> Iterator[int]:
        if self._compact is not None:
            return map(self._compact.chars, range(index, len(self._compact)))
        return (entry.chars for entry in islice(self._entries, index, None))

    def _total_at(self, index: int) -> int:
        if self._compact is not None:
            return self._compact.total_at(index)
        if 0 < index <= len(self._entries):
            return self._entries[index - 1].total_chars
        return self._total_chars if index else 0

    def _seq_at(self, index: int) -> int:
        return index if self._compact is None else self._compact.seq_at(index)


class MemoryLogCursor:
    """A :class:`LogCursor` into a :class:`MemoryStreamLog` (an index into its entries:
    ``seq`` = index until the log is compacted, which waits until no reader is attached)."""

    __slots__ = ("_inside", "_log", "_seq")

    def __init__(self, log: MemoryStreamLog, index: int, inside: bool = False) -> None:
        self._log = log
        self._seq = index  # the index (named for the common case, where it is the seq)
        self._inside = inside  # the reader has part of the next (merged) entry

    @property
    def seq(self) -> int:
        return self._log._seq_at(self._seq)

    @property
    def total_chars(self) -> int:
        return self._log._total_at(self._seq)

    @property
    def has_pending(self) -> bool:
        return self._seq < self._log._size() and not self._log.evicted

    @property
    def at_end(self) -> bool:
        return self._log.finished and not self.has_pending

    def pending_chars(self) -> Iterator[int]:
        return self._log._chars_after(self._seq)

    def take(self, count: int | None = None) -> list[LogEntry]:
        stop = None if count is None else self._seq + count
        batch = self._log._entry_slice(self._seq, stop, self._inside)
        self._seq += len(batch)
        self._inside = self._inside and not batch
        return batch
