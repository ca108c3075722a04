"""The limits on one connection's control messages (``docs/protocol.md``, "Limits on control
messages"), on the ``limits`` library's moving window (``limits.strategies.
MovingWindowRateLimiter`` over one process-wide ``limits.storage.MemoryStorage``; limits docs,
"Rate limiting strategies: Moving Window"):

- **rate**: at most ``server.control_messages_burst`` control messages in any
  ``ceil(burst / server.max_control_messages_per_s)`` seconds (defaults: 40 in any 2 s, i.e.
  20 per second on average, 40 at once). A message beyond is refused unparsed with
  ``rate_limited`` and ``retry_after_ms`` (when the oldest message in the window leaves it).
- **strikes**: an invalid message (``invalid_message``, ``payload_too_large``,
  ``unsupported_protocol``) or a refused one (``rate_limited``) is a strike; the
  ``server.max_invalid_messages``-th strike within ``server.invalid_messages_window_s`` tells
  the transport to close (WebSocket: 1008 after the ``error``). Valid messages do not reset the
  count, so interleaving them games nothing.

Each check is one ``hit``: a few µs. ``MemoryStorage`` itself restarts a timer thread every
10 ms while hits come in (to drop expired entries), which cost a busy server a thread start
per 10 ms and GIL hand-offs (about 0.2 ms per control message, measured); :class:`InlineStorage`
is that storage without the thread: a key keeps at most its limit's ``amount`` entries (older
ones can never decide again) and a connection's keys are dropped when it ends
(:meth:`ControlGate.release`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, memory
from limits.strategies import MovingWindowRateLimiter

from streamer.config import ServerConfig
from streamer.errors import ClientError


class ControlRateLimited(ClientError):
    """A connection sent control messages faster than ``server.max_control_messages_per_s``
    (burst ``server.control_messages_burst``); ``retry_after_ms`` says when one more fits."""

    code = "rate_limited"
    retryable = True


class InlineStorage(MemoryStorage):
    """``limits``' ``MemoryStorage`` for the moving window, without its expiry thread: its
    ``acquire_entry`` (same decision, ``limits/storage/memory.py``) trims a key's entries to
    the limit instead (``tests/core/test_controls_hostile.py`` checks it against the original)."""

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self.locks[key]:
            events = self.events.setdefault(key, [])
            oldest = events[limit - amount] if len(events) > limit - amount else None
            if oldest is not None and oldest.atime >= memory.time.time() - expiry:
                return False
            events[:0] = [memory.Entry(expiry)] * amount
            del events[limit:]
            return True


_shared: MovingWindowRateLimiter | None = None


def shared_limiter() -> MovingWindowRateLimiter:
    """The process's limiter (made on first use)."""
    global _shared
    if _shared is None:
        _shared = MovingWindowRateLimiter(InlineStorage())
    return _shared


class ControlGate:
    """The rate and strike limits of one connection.

    Args:
        key: the connection's id (unique in the process).
        server: the ``[server]`` settings named in the module docstring.
        limiter: where the counts live (default :func:`shared_limiter`).
        clock: the limiter's clock (``time.time``; the ``limits`` storage reads it too).
        on_limit: told the setting's name when a limit refuses (``/metrics``).
    """

    def __init__(self, key: str, server: ServerConfig,
                 limiter: MovingWindowRateLimiter | None = None,
                 clock: Callable[[], float] = time.time,
                 on_limit: Callable[[str], None] | None = None) -> None:
        self.key = key
        self._on_limit = on_limit or (lambda name: None)
        burst = server.control_messages_burst
        self.window_s = math.ceil(burst / server.max_control_messages_per_s)
        self._rate = RateLimitItemPerSecond(burst, self.window_s)
        self._strikes = RateLimitItemPerSecond(server.max_invalid_messages,
                                               server.invalid_messages_window_s)
        self._limiter = limiter or shared_limiter()
        self._clock = clock

    def admit(self) -> None:
        """Count one control message.

        Raises:
            ControlRateLimited: the window is full; ``retry_after_ms`` until a slot frees.
        """
        if self._limiter.hit(self._rate, "rate", self.key):
            return
        self._on_limit("server.max_control_messages_per_s")
        reset = self._limiter.get_window_stats(self._rate, "rate", self.key).reset_time
        raise ControlRateLimited(
            f"more than {self._rate.amount} control messages in {self.window_s} s",
            retry_after_ms=max(1, math.ceil((reset - self._clock()) * 1000)))

    def strike(self) -> bool:
        """Count one invalid or refused message; ``True`` when that makes
        ``server.max_invalid_messages`` within the window: the connection must close."""
        self._limiter.hit(self._strikes, "strikes", self.key)
        if self._limiter.test(self._strikes, "strikes", self.key):
            return False
        self._on_limit("server.max_invalid_messages")
        return True

    def release(self) -> None:
        """Forget this connection's counts (it ended)."""
        self._limiter.clear(self._rate, "rate", self.key)
        self._limiter.clear(self._strikes, "strikes", self.key)
