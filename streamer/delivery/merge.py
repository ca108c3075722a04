"""The merge: a batch of log entries the pacer let through → as few wire events as possible.

Consecutive document ops become ``chunk`` events through
:func:`~streamer.render.ops.merge_runs` (ops on one block merge; ops on other blocks, and a
``splice`` after a ``text`` on one block, stay apart), each stamped with the highest ``seq`` it
holds; a stream event (reasoning, a tool call, a retry notice) ends the run and is sent as it
is, stamped with its own ``seq``. Every event carries the epoch, so its ``(stream_id, epoch,
seq)`` is a resume cursor. Cost: linear in the ops' sizes. Pure: no I/O, no Trio.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamer.log.stream_log import LogEntry
from streamer.render.ops import Op, merge_runs
from streamer.wire.events import Chunk, LogEvent

#: the events a batch of log entries becomes: merged chunks, stamped stream events
Delivered = Chunk | LogEvent


def merge_entries(batch: Sequence[LogEntry], session_id: str, stream_id: str,
                  epoch: str) -> list[Delivered]:
    """The events of ``batch`` (entries in ``seq`` order), merged, each with its ``seq``."""
    out: list[Delivered] = []
    ops: list[Op] = []
    seqs: list[int] = []
    for entry in batch:
        if entry.op is not None:
            ops.append(entry.op)
            seqs.append(entry.seq)
            continue
        if ops:
            out += _chunks(ops, seqs, session_id, stream_id, epoch)
            ops, seqs = [], []
        assert entry.event is not None
        out.append(entry.event.stamped(entry.seq, epoch))
    if ops:
        out += _chunks(ops, seqs, session_id, stream_id, epoch)
    return out


def _chunks(ops: list[Op], seqs: list[int], session_id: str, stream_id: str,
            epoch: str) -> list[Delivered]:
    return [Chunk(session_id, stream_id, seqs[last], op, epoch) for last, op in merge_runs(ops)]
