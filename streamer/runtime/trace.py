"""A stream's trace: what happened to it and when, so every ending can be explained.

Each entry is ``(t_ms, event, detail)``, with ``t_ms`` the milliseconds since the stream was
created (Trio's clock, so tests in virtual time see exact times). Entries are logged as they
are recorded (logger ``streamer.runtime``) and served by ``GET /api/streams/{id}/trace``.

The names (``docs/protocol.md``, "Other endpoints"): ``queued``, ``started``,
``provider_call_opened``, ``first_token``, ``retry``, ``subscriber_joined`` / ``_left``,
``control``, ``resumed``, ``resume_gap``, ``backpressure`` / ``_released``,
``tool_started`` / ``_finished``, ``tool_steps_exhausted``, ``cancel_requested`` (with its
``reason``), ``cancelled`` (the same ``reason``), ``error``, ``provider_call_closed``,
``completed``.

What a trace may hold: event names, codes, reasons (``cancel_requested``/``cancelled``),
counts, connection and call ids and an error's ``error_id``; never exception text, URLs,
file paths or variable names (its owner reads it; the detail behind an ``error_id`` is in
the server's log, logger ``streamer.errors``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

logger = logging.getLogger("streamer.runtime")


@dataclass(slots=True)
class TraceEntry:
    t_ms: float
    event: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "event": self.event, **self.detail}


class Trace:
    """The entries of one stream, oldest first."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.entries: list[TraceEntry] = []
        self._t0 = trio.current_time()

    def record(self, name: str, **detail: Any) -> None:
        """Add an entry (ms since the stream was created) and log it."""
        t_ms = round((trio.current_time() - self._t0) * 1000, 3)
        self.entries.append(TraceEntry(t_ms, name, detail))
        logger.info("stream %s %s %s", self.stream_id, name, detail or "")

    def __iter__(self) -> Iterator[TraceEntry]:
        return iter(self.entries)
