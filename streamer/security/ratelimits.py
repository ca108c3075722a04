"""How much one client may hold and start (``[limits]``, ``docs/security.md``): sessions,
connections and concurrent streams per identity and per address, streams per minute.

Counts of what is held (sessions, connections, streams) are kept here, raised when a thing
opens and lowered when it ends; rates use the ``limits`` library's moving window
(``MovingWindowRateLimiter`` over its in-process ``MemoryStorage``: exact, no burst at a
window edge). Every refusal is ``rate_limited`` with ``retry_after_ms``. A limit of 0 means
none. With ``auth.mode = "none"`` every client is the one anonymous identity, so the
per-identity limits bound the whole server (raise them, or set 0, for load tests).
Counts live in this process; with ``engine.kind = "redis"`` the streams an identity runs or
queues, the streams it started in the last minute and the connections of an identity and of
an address are counted in Redis for every process together (:attr:`ClientLimits.shared`,
``streamer.engines.redis_limits``; ``docs/engines.md``), with the same refusals.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn, Protocol

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from streamer.config import LimitsConfig
from streamer.errors import RateLimited

logger = logging.getLogger("streamer.security")

#: what a client refused for holding too much is told to wait (ms)
HELD_RETRY_AFTER_MS = 5_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """A shared count's answer to a new stream or connection: ``token`` names its place
    (``None``: refused); ``refused`` the limit (``max_streams_per_identity``,
    ``streams_per_minute``, ``max_connections_per_identity`` or ``…_per_address``),
    ``retry_after_ms`` until the minute's window frees a start."""

    token: str | None
    refused: str = ""
    retry_after_ms: int = 0


class Ending(Protocol):
    """What a shared count watches of an admitted stream (``runtime.stream.Stream``)."""

    @property
    def stream_id(self) -> str: ...

    @property
    def state(self) -> str:
        """``queued``, ``running`` or ``done``."""


class SharedCounts(Protocol):
    """Streams and connections counted where every process sees them
    (``engines.redis_limits``)."""

    async def reserve(self, subject: str, max_streams: int, per_minute: int) -> Verdict:
        """Count a new stream of ``subject`` unless it runs or queues ``max_streams`` or
        started ``per_minute`` in the last minute (0: no limit). Raises on a lost store
        (the caller then counts in this process)."""

    async def reserve_connection(self, subject: str, address: str, max_identity: int,
                                 max_address: int) -> Verdict:
        """Count a connection of ``subject`` from ``address`` unless either holds its
        limit (0: none); release it with :meth:`release`. Raises like :meth:`reserve`."""

    def bind(self, token: str, stream: Ending) -> None:
        """The admitted stream: its count is held while it runs, released when it ends."""

    def release(self, token: str, *, refund: bool = False) -> None:
        """Release a count now (``refund``: the start never happened, its minute's hit goes
        too)."""

    def ended(self, stream_id: str) -> None:
        """The bound stream ended: release its count now."""


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
        #: the redis engine's counts of streams and connections, shared by every process
        #: (``None``: counted here)
        self.shared: SharedCounts | None = None

    def _check(self, count: int, limit: int, what: str) -> None:
        if limit and count >= limit:
            self._refuse(limit, what)

    def _refuse(self, limit: int, what: str) -> NoReturn:
        self.hits["limits.max_" + what.replace(" ", "_")] += 1
        raise RateLimited(f"{what} ({limit}) reached", retry_after_ms=HELD_RETRY_AFTER_MS)

    def _refuse_rate(self, wait_ms: int) -> NoReturn:
        self.hits["limits.streams_per_minute"] += 1
        raise RateLimited(f"streams per minute ({self.config.streams_per_minute}) reached",
                          retry_after_ms=max(1, wait_ms))

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

    async def reserve_connection(self, subject: str, address: str | None) -> str | None:
        """With :attr:`shared`: count a connection of ``subject`` from ``address`` for
        every process; pass the token to :meth:`connection`. ``None``: counted there, in
        this process (no shared count, or it failed: logged).

        Raises:
            RateLimited: ``max_connections_per_identity`` or ``…_per_address`` reached,
                over every process.
        """
        config = self.config
        if self.shared is None or not (config.max_connections_per_identity
                                       or config.max_connections_per_address):
            return None
        try:
            verdict = await self.shared.reserve_connection(
                subject, address or "-", config.max_connections_per_identity,
                config.max_connections_per_address)
        except Exception as exc:  # the shared store is down: count here rather than not
            logger.error("limits: the shared count failed (%s); counting in this process",
                         exc)
            return None
        if verdict.token is not None:
            return verdict.token
        if verdict.refused == "max_connections_per_address":
            self._refuse(config.max_connections_per_address, "connections per address")
        self._refuse(config.max_connections_per_identity, "connections per identity")

    @contextmanager
    def connection(self, subject: str, address: str | None, token: str | None = None
                   ) -> Iterator[None]:
        """Hold one connection slot of ``subject`` and ``address`` for the block (counted
        here, unless :meth:`reserve_connection` counted it for every process: ``token``,
        released when the block ends).

        Raises:
            RateLimited: ``max_connections_per_identity`` or ``…_per_address`` reached.
        """
        where = address or "-"
        if token is None:
            self._check(self.connections[subject], self.config.max_connections_per_identity,
                        "connections per identity")
            self._check(self.addresses[where], self.config.max_connections_per_address,
                        "connections per address")
        self.connections[subject] += 1
        self.addresses[where] += 1
        try:
            yield
        finally:
            if token is not None and self.shared is not None:
                self.shared.release(token)
            for counter, key in ((self.connections, subject), (self.addresses, where)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def check_new_stream(self, subject: str, active: int) -> None:
        """A new stream of ``subject``, which has ``active`` streams running or queued (a
        no-op with :attr:`shared`: :meth:`reserve_stream` counted it).

        Raises:
            RateLimited: ``max_streams_per_identity`` active, or ``streams_per_minute``
                started in the last minute (``retry_after_ms``: until one leaves it).
        """
        if self.shared is None:
            self._check_here(subject, active)

    def _check_here(self, subject: str, active: int) -> None:
        self._check(active, self.config.max_streams_per_identity, "streams per identity")
        if self.config.streams_per_minute and not self._window.hit(self._per_minute, subject):
            reset_at = self._window.get_window_stats(self._per_minute, subject).reset_time
            self._refuse_rate(math.ceil((reset_at - time.time()) * 1000))

    async def reserve_stream(self, subject: str, active: int) -> str | None:
        """With :attr:`shared`: count a new stream of ``subject`` for every process (a
        mirror of another process's stream is never counted: only starts are). ``None``:
        nothing to release (no shared count, or the shared store failed: then the stream
        was counted here, with ``active`` streams of ``subject`` in this process).

        Raises:
            RateLimited: as :meth:`check_new_stream`, over every process.
        """
        if self.shared is None:
            return None
        config = self.config
        try:
            verdict = await self.shared.reserve(subject, config.max_streams_per_identity,
                                                config.streams_per_minute)
        except Exception as exc:  # the shared store is down: count here rather than not
            logger.error("limits: the shared count failed (%s); counting in this process",
                         exc)
            self._check_here(subject, active)
            return None
        if verdict.token is not None:
            return verdict.token
        if verdict.refused == "streams_per_minute":
            self._refuse_rate(verdict.retry_after_ms)
        self._refuse(config.max_streams_per_identity, "streams per identity")

    def admitted(self, token: str | None, stream: Ending) -> None:
        """The stream :meth:`reserve_stream` counted (``token``) was submitted: its count
        is held until it ends."""
        if token is not None and self.shared is not None:
            self.shared.bind(token, stream)

    def refund(self, token: str | None) -> None:
        """The start :meth:`reserve_stream` counted was refused after all (nothing runs)."""
        if token is not None and self.shared is not None:
            self.shared.release(token, refund=True)

    def stream_ended(self, stream_id: str) -> None:
        """A stream of this process ended: its shared count is released at once."""
        if self.shared is not None:
            self.shared.ended(stream_id)
