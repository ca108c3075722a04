"""Where a client's copy of a stream ends: the cursor ``(stream_id, epoch, seq)`` and the SSE
event ids that carry it (``docs/protocol.md``, "Identity and ordering" and "Resume").

A stream's events are numbered by ``seq`` (1, 2, …: the stream log's entries). ``epoch`` names
the server's in-memory log those numbers belong to; it changes when history could have been
lost (a restart). The SSE ``id:`` of a stream event is ``"{stream_id}:{epoch}:{seq}"``; a
reconnecting EventSource sends it back as ``Last-Event-ID``, a WebSocket client puts the three
fields on its URL or in a ``resume`` control. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamer.errors import InvalidMessage

#: session ids a client may invent: URL-safe, 8-64 characters (protocol.md, "Transports")
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: stream ids are the server's, but clients echo them back
STREAM_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: an epoch as the server makes them (8 hex digits), with room to spare
EPOCH_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: the largest ``seq`` a client may name: JavaScript's largest exact integer (2**53 - 1)
MAX_SEQ = 2**53 - 1
#: a ``seq`` in text (URL query, event id): ASCII digits only (``str.isdigit`` would take
#: ``"²"``, which ``int`` refuses), at most 16 of them (``MAX_SEQ`` has 16)
SEQ_RE = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a client's copy of a stream ends: ``(stream_id, epoch, last_seq)``.

    ``epoch`` is ``None`` when the client does not know it (then the server replays only if
    it can prove nothing was lost, else it answers ``resume_gap`` and a ``snapshot``).
    ``last_seq`` is the highest ``seq`` the client applied; ``last_seq + 1`` after a finished
    stream's last ``seq`` means "all of it, the end included".
    """

    stream_id: str
    epoch: str | None
    last_seq: int


def event_id(stream_id: str, epoch: str, seq: int) -> str:
    """The SSE ``id:`` of a stream event: ``"{stream_id}:{epoch}:{seq}"``."""
    return f"{stream_id}:{epoch}:{seq}"


def parse_event_id(text: str) -> Cursor:
    """Parse ``Last-Event-ID`` / ``?last_event_id=`` (``"{stream_id}:{epoch}:{seq}"``).

    Raises:
        InvalidMessage: the id does not have that shape (``seq``: 1-16 ASCII digits, at most
            :data:`MAX_SEQ`).
    """
    parts = text.strip().split(":")
    if len(parts) != 3 or not STREAM_ID_RE.fullmatch(parts[0]) \
            or not EPOCH_RE.fullmatch(parts[1]) or _seq(parts[2]) is None:
        raise InvalidMessage("an event id is '{stream_id}:{epoch}:{seq}', seq at most "
                             f"{MAX_SEQ}")
    return Cursor(parts[0], parts[1], int(parts[2]))


def _seq(value: str | int) -> int | None:
    """``value`` as a ``seq`` (0 to :data:`MAX_SEQ`), or ``None`` if it is not one."""
    if isinstance(value, str):
        if not SEQ_RE.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        return None
    return value


def parse_cursor(stream_id: str | None, epoch: str | None, last_seq: str | int | None
                 ) -> Cursor | None:
    """A cursor from separate fields (a WebSocket URL's query, or a ``resume`` control).

    Returns ``None`` when neither ``stream_id`` nor ``last_seq`` is given.

    Raises:
        InvalidMessage: only one of ``stream_id``/``last_seq``, or a malformed value
            (``last_seq``: an integer, or 1-16 ASCII digits, from 0 to :data:`MAX_SEQ`).
    """
    if stream_id is None and last_seq is None:
        return None
    if stream_id is None or last_seq is None:
        raise InvalidMessage("resume: give both 'stream_id' and 'last_seq', or neither")
    if not STREAM_ID_RE.fullmatch(stream_id):
        raise InvalidMessage("resume: 'stream_id' is not a valid stream id")
    if epoch is not None and not EPOCH_RE.fullmatch(epoch):
        raise InvalidMessage("resume: 'epoch' is not a valid epoch")
    seq = _seq(last_seq)
    if seq is None:
        raise InvalidMessage(f"resume: 'last_seq' must be an integer from 0 to {MAX_SEQ}")
    return Cursor(stream_id, epoch, seq)
