"""The stream log: one stream's ops, numbered by ``seq``, kept while the stream may be resumed.

The stream's task appends (synchronously: appending never waits); every subscription reads
with its own cursor (an index; nothing is copied per subscriber), so several tabs can follow
one stream and a reconnecting client can be given exactly the entries after its last ``seq``.
Waiting is done by the subscribers: the log calls ``wake()`` on each registered
:class:`Waiter` when something changes.

``seq`` starts at 1 and numbers the log's entries; entry ``seq`` is ``entries[seq - 1]``.
The log also keeps running totals (visible characters) and, once the stream is over, its
terminal events (an optional ``error`` and the ``stream_complete``), which subscribers send
after the last entry.

Memory: one :class:`LogEntry` per op (an op is a few dozen bytes plus its text/HTML), bounded
by ``streams.max_response_chars``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streamer.render.ops import Op, apply_op
from streamer.wire.events import Error, LogEvent, StreamComplete


class Waiter(Protocol):
    def wake(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log entry: its sequence number, the document's size after it (visible chars), and
    either a document ``op`` or a prebuilt stream ``event`` (``reasoning``, ``tool_call``, a
    provider ``state`` notice) that subscribers send in order, stamped with ``seq``."""

    seq: int
    op: Op | None
    total_chars: int
    event: LogEvent | None = None

    @property
    def chars(self) -> int:
        """Visible characters this entry adds to the document (0 for events)."""
        return self.op.chars if self.op is not None else 0


class StreamLog:
    """Seq-numbered ops of one stream, plus its terminal events."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.entries: list[LogEntry] = []
        self.total_chars = 0
        self.error: Error | None = None
        self.complete: StreamComplete | None = None
        self._waiters: set[Waiter] = set()
        self._snapshot_blocks: list[str] = []
        self._snapshot_seq = 0
        self._last_seq = 0
        self._evicted = False

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def evicted(self) -> bool:
        """The entries were dropped (replay window over): only a snapshot can resume."""
        return self._evicted

    def evict(self) -> None:
        """Drop the entries of a finished log (keeps ``last_seq`` and the terminal events).

        Raises ``RuntimeError`` if the log is not finished.
        """
        if self.complete is None:
            raise RuntimeError(f"stream {self.stream_id} is running; cannot evict its log")
        self.entries = []
        self._snapshot_blocks = []
        self._evicted = True

    @property
    def finished(self) -> bool:
        return self.complete is not None

    def append(self, op: Op) -> LogEntry:
        """Add one op; returns its entry. Raises ``RuntimeError`` after :meth:`finish`."""
        if self.complete is not None:
            raise RuntimeError(f"stream {self.stream_id} is finished; cannot append")
        self.total_chars += max(0, op.chars)
        self._last_seq += 1
        entry = LogEntry(self._last_seq, op, self.total_chars)
        self.entries.append(entry)
        self._wake_all()
        return entry

    def append_event(self, ev: LogEvent) -> LogEntry:
        """Add one non-document event (no chars); subscribers send it stamped with its ``seq``.

        Raises ``RuntimeError`` after :meth:`finish`.
        """
        if self.complete is not None:
            raise RuntimeError(f"stream {self.stream_id} is finished; cannot append")
        self._last_seq += 1
        entry = LogEntry(self._last_seq, None, self.total_chars, ev)
        self.entries.append(entry)
        self._wake_all()
        return entry

    def finish(self, complete: StreamComplete, error: Error | None = None) -> None:
        """Record the terminal events; subscribers send them after the last entry."""
        if self.complete is None:
            self.error = error
            self.complete = complete
            self._wake_all()

    def snapshot(self) -> tuple[int, list[str]]:
        """The whole document as of the latest ``seq``: ``(seq, blocks)``.

        Replays only the entries since the previous snapshot, so late joiners cost what they
        need and the append path pays nothing for them.

        Raises ``RuntimeError`` once the log is evicted (use the stream's final blocks).
        """
        if self._evicted:
            raise RuntimeError(f"stream {self.stream_id}: log evicted")
        for entry in self.entries[self._snapshot_seq:]:
            if entry.op is not None:
                apply_op(self._snapshot_blocks, entry.op)
        self._snapshot_seq = len(self.entries)
        return self._snapshot_seq, list(self._snapshot_blocks)

    def attach(self, waiter: Waiter) -> None:
        self._waiters.add(waiter)

    def detach(self, waiter: Waiter) -> None:
        self._waiters.discard(waiter)

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.wake()
