"""The resume decision: what a client that comes back with a cursor gets (``docs/protocol.md``,
"Resume"), as a pure function of the cursor, the stream's log, the server's epoch and what the
store holds.

=================  ==========================================================================
plan               when, and what the connection then sends
=================  ==========================================================================
:class:`Exact`     same epoch, the log still in memory, the cursor not past its end: the
                   events after ``after_seq``, then live (``stream_start`` says
                   ``resumed``). With ``ended``, the cursor is one past a finished
                   stream's last ``seq`` ("all of it, the end included"): nothing of it
                   again, following goes on with the session's later streams.
:class:`Gap`       the log is known but cannot replay exactly (``why``: another epoch, the
                   replay window is over, the cursor is ahead, or the finished log was
                   compacted and the cursor is inside a merged ``text`` or ``splice`` run:
                   ``StreamLog.replays_from``): ``error`` ``resume_gap``, then a
                   ``snapshot`` and what follows it. Never a partial replay.
:class:`Stored`    the log is not in memory, the store has this session's answer: ``error``
                   ``resume_gap``, its ``stream_start``, ``snapshot`` and ``stream_complete``.
:class:`NotFound`  neither: ``error`` ``stream_not_found``; the connection follows the
                   session as a new one.
=================  ==========================================================================

Pure: no I/O, no Trio (the store is read by the caller, before the plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streamer.log.stream_log import StreamLog
from streamer.wire.cursor import Cursor


class StoredAnswer(Protocol):
    """What the plan needs of a stored message (``persistence.MessageRecord``)."""

    @property
    def session_id(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Exact:
    """Replay exactly after ``after_seq`` (``ended``: the client has all of it)."""

    after_seq: int
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """The stream is known but cannot be replayed exactly; ``why`` says why (for people)."""

    why: str


@dataclass(frozen=True, slots=True)
class Stored:
    """Only the store has the answer (a stream of an earlier process, or forgotten)."""


@dataclass(frozen=True, slots=True)
class NotFound:
    """No such stream in this session, in memory or in the store."""


Plan = Exact | Gap | Stored | NotFound


def plan(cursor: Cursor, log: StreamLog | None, epoch: str, stored: StoredAnswer | None,
         session_id: str) -> Plan:
    """How to resume ``cursor`` in session ``session_id``.

    Args:
        cursor: the client's ``(stream_id, epoch, last_seq)``.
        log: the stream's log if the stream started in this session, else ``None``.
        epoch: this process's epoch (the name of its in-memory logs).
        stored: the store's message with the cursor's id (``None``: none, or no store).
        session_id: the session the client resumes in (a stored answer must be its own).
    """
    if log is not None:
        same_epoch = cursor.epoch == epoch
        if same_epoch and log.finished and cursor.last_seq == log.last_seq + 1:
            return Exact(log.last_seq + 1, ended=True)
        if same_epoch and not log.evicted and cursor.last_seq <= log.last_seq \
                and log.replays_from(cursor.last_seq):
            return Exact(cursor.last_seq)
        return Gap("the server restarted since" if not same_epoch else
                   "the replay window is over" if log.evicted else
                   "the cursor is ahead of the stream" if cursor.last_seq > log.last_seq else
                   "the finished answer was compacted and the cursor is inside a merged change")
    if stored is not None and stored.session_id == session_id and stored.role == "assistant":
        return Stored()
    return NotFound()
