"""A stream's trace: what happened to it and when, so every ending can be explained.

Each entry is ``(t_ms, event, detail)``, with ``t_ms`` the milliseconds since the stream was
created (Trio's clock, so tests in virtual time see exact times). Entries are logged as they
are recorded (logger ``streamer.runtime``, one record each: the event's name, the stream and
session ids and the detail as fields) and served by ``GET /api/streams/{id}/trace``.

The names (``docs/protocol.md``, "Other endpoints"): ``queued``, ``started``,
``provider_call_opened``, ``first_token``, ``retry``, ``subscriber_joined`` / ``_left``,
``control``, ``resumed``, ``resume_gap``, ``backpressure`` / ``_released``,
``tool_started`` / ``_finished``, ``tool_steps_exhausted``, ``cancel_requested`` (with its
``reason``), ``cancelled`` (the same ``reason``), ``error``, ``provider_call_closed``,
``heartbeat`` (a connection following the stream was idle and sent one), ``completed``.

``provider_call_closed`` is recorded once the provider's call is closed (its request ended:
what the model's server saw), with ``closed_by``: ``end`` (with the ``finish``), ``error``
(with the ``code``) or ``cancel``; a cancel's entry carries the ``reason`` of the latest
``cancel_requested`` and ``since_cancel_ms``, how long the call took to close after it.

A trace is bounded (``streams.max_trace_entries``): it keeps its first half (how the stream
began) and a ring of its latest entries; what fell out between them is counted by event
name and shown as one ``dropped`` entry (``{"event": "dropped", "counts": {"control": 19990}}``),
so 20,000 ``pause``/``resume`` frames cost a fixed amount of memory.

Log levels: a stream's beginning and end and everything unusual are INFO (``started``,
``completed`` with ``ttft_ms``, the milliseconds from ``started`` to ``first_token``;
``retry``, ``cancel_requested``, ``cancelled``, ``error``, ``resume_gap``, tools,
``backpressure``, a ``provider_call_closed`` by an error or a cancel). The routine steps every
stream makes (``queued``, ``history``, ``provider_call_opened``, ``first_token``, a
``provider_call_closed`` at the answer's end) and what a client can repeat (``control``,
``subscriber_joined``/``_left``, ``heartbeat``) are DEBUG: two INFO records per answer, so a
burst of starts is not slowed by its own log (every entry stays in the trace either way).

What a trace may hold: event names, codes, reasons (``cancel_requested``/``cancelled``),
counts, connection and call ids and an error's ``error_id``; never exception text, URLs,
file paths or variable names (its owner reads it; the detail behind an ``error_id`` is in
the server's log, logger ``streamer.errors``).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from streamer.observability.logs import fields

logger = logging.getLogger("streamer.runtime")


@dataclass(slots=True)
class TraceEntry:
    t_ms: float
    event: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "event": self.event, **self.detail}


#: what a trace tells its listener of each entry: its name, ``t_ms`` and detail
TraceListener = Callable[[str, float, Mapping[str, Any]], None]
#: events logged at DEBUG (a client can make many of them), the rest at INFO
FREQUENT = frozenset({"control", "subscriber_joined", "subscriber_left", "heartbeat"})
#: the steps every answer makes, also logged at DEBUG (``completed`` carries ``ttft_ms``)
ROUTINE = frozenset({"queued", "history", "provider_call_opened", "first_token"})
#: the default bound of one trace (``streams.max_trace_entries``)
MAX_ENTRIES = 256


class Trace:
    """The entries of one stream, oldest first, at most ``max_entries`` (+1 ``dropped``).

    Args:
        stream_id: the stream's id (for the log lines).
        max_entries: entries kept: the first ``max_entries // 2`` and the latest rest.
    """

    def __init__(self, stream_id: str, max_entries: int = MAX_ENTRIES, *,
                 session_id: str | None = None) -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        #: called with each entry's name, time and detail after it is recorded (metrics)
        self.listener: TraceListener | None = None
        self._head_size = max(1, max_entries // 2)
        self.head: list[TraceEntry] = []
        self.tail: deque[TraceEntry] = deque(maxlen=max(1, max_entries - self._head_size))
        #: entries that fell out of the ring, by event name
        self.dropped: Counter[str] = Counter()
        #: when the stream was created (Trio's clock, s): entry ``t_ms`` counts from here
        self.t0 = trio.current_time()
        #: the latest ``cancel_requested``: its ``t_ms`` and reason
        self._cancel: tuple[float, Any] | None = None
        #: ``t_ms`` of ``started`` and of the first ``first_token`` after it (``ttft_ms``)
        self._started_ms: float | None = None
        self._ttft_ms: float | None = None

    def record(self, name: str, **detail: Any) -> None:
        """Add an entry (ms since the stream was created) and log it."""
        t_ms = round((trio.current_time() - self.t0) * 1000, 3)
        if name == "cancel_requested":
            self._cancel = (t_ms, detail.get("reason"))
        elif name == "provider_call_closed" and detail.get("closed_by") == "cancel" \
                and self._cancel is not None:
            detail = {**detail, "reason": self._cancel[1],
                      "since_cancel_ms": round(t_ms - self._cancel[0], 3)}
        elif name == "started":
            self._started_ms, self._ttft_ms = t_ms, None
        elif name == "first_token" and self._ttft_ms is None and self._started_ms is not None:
            self._ttft_ms = round(t_ms - self._started_ms, 3)
        elif name == "completed" and self._ttft_ms is not None:
            detail = {**detail, "ttft_ms": self._ttft_ms}
        entry = TraceEntry(t_ms, name, detail)
        if len(self.head) < self._head_size:
            self.head.append(entry)
        else:
            if len(self.tail) == self.tail.maxlen:
                self.dropped[self.tail[0].event] += 1
            self.tail.append(entry)
        level = logging.DEBUG if name in FREQUENT or name in ROUTINE or (
            name == "provider_call_closed" and detail.get("closed_by") == "end") \
            else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "stream %s", name, extra=fields(
                stream_id=self.stream_id, session_id=self.session_id, event=name, **detail))
        if self.listener is not None:
            self.listener(name, t_ms, detail)

    @property
    def entries(self) -> list[TraceEntry]:
        """The kept entries, a ``dropped`` entry where some fell out."""
        middle = []
        if self.dropped:
            first_kept = self.tail[0].t_ms if self.tail else 0.0
            middle = [TraceEntry(first_kept, "dropped", {"counts": dict(self.dropped)})]
        return [*self.head, *middle, *self.tail]

    def __iter__(self) -> Iterator[TraceEntry]:
        return iter(self.entries)
