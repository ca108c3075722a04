"""How much one client may hold and start (``[limits]``, ``docs/security.md``): sessions,
connections and concurrent streams per identity and per address, streams per minute.

Counts of what is held (sessions, connections, streams) are kept here, raised when a thing
opens and lowered when it ends; rates use the ``limits`` library's moving window
(``MovingWindowRateLimiter`` over its in-process ``MemoryStorage``: exact, no burst at a
window edge). Every refusal is ``rate_limited`` with ``retry_after_ms``. A limit of 0 means
none. With ``auth.mode = "none"`` every client is the one anonymous identity, so the
per-identity limits bound the whole server (raise them, or set 0, for load tests).
Counts live in this process (issue 17 moves them to Redis).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from streamer.config import LimitsConfig
from streamer.errors import RateLimited

#: what a client refused for holding too much is told to wait (ms)
HELD_RETRY_AFTER_MS = 5_000


class ClientLimits:
    """The ``[limits]`` of one process.

    Args:
        config: the ``[limits]`` section.
    """

    def __init__(self, config: LimitsConfig) -> None:
        self.config = config
        self.sessions: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.addresses: Counter[str] = Counter()
        #: refusals, by setting (``limits.max_sessions_per_identity``, …; ``/metrics``)
        self.hits: Counter[str] = Counter()
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._per_minute = RateLimitItemPerMinute(max(1, config.streams_per_minute))

    def _check(self, count: int, limit: int, what: str) -> None:
        if limit and count >= limit:
            self.hits["limits.max_" + what.replace(" ", "_")] += 1
            raise RateLimited(f"{what} ({limit}) reached", retry_after_ms=HELD_RETRY_AFTER_MS)

    def check_new_session(self, subject: str) -> None:
        """Raises:
            RateLimited: the identity holds ``max_sessions_per_identity`` sessions."""
        self._check(self.sessions[subject], self.config.max_sessions_per_identity,
                    "sessions per identity")

    def session_created(self, subject: str) -> None:
        self.sessions[subject] += 1

    def session_forgotten(self, subject: str) -> None:
        self.sessions[subject] -= 1
        if self.sessions[subject] <= 0:
            del self.sessions[subject]

    @contextmanager
    def connection(self, subject: str, address: str | None) -> Iterator[None]:
        """Hold one connection slot of ``subject`` and ``address`` for the block.

        Raises:
            RateLimited: ``max_connections_per_identity`` or ``…_per_address`` reached.
        """
        where = address or "-"
        self._check(self.connections[subject], self.config.max_connections_per_identity,
                    "connections per identity")
        self._check(self.addresses[where], self.config.max_connections_per_address,
                    "connections per address")
        self.connections[subject] += 1
        self.addresses[where] += 1
        try:
            yield
        finally:
            for counter, key in ((self.connections, subject), (self.addresses, where)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def check_new_stream(self, subject: str, active: int) -> None:
        """A new stream of ``subject``, which has ``active`` streams running or queued.

        Raises:
            RateLimited: ``max_streams_per_identity`` active, or ``streams_per_minute``
                started in the last minute (``retry_after_ms``: until one leaves it).
        """
        self._check(active, self.config.max_streams_per_identity, "streams per identity")
        if self.config.streams_per_minute and not self._window.hit(self._per_minute, subject):
            self.hits["limits.streams_per_minute"] += 1
            reset_at = self._window.get_window_stats(self._per_minute, subject).reset_time
            wait_ms = max(1, math.ceil((reset_at - time.time()) * 1000))
            raise RateLimited(f"streams per minute ({self.config.streams_per_minute}) reached",
                              retry_after_ms=wait_ms)
