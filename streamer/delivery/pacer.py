"""The pacer: a sans-IO state machine deciding how many log entries one connection gets now.

One pacer per subscription (connection x stream). It never holds entries and never splits
one: the Trio shell (:mod:`streamer.delivery.subscription`) offers the visible-character cost
of each entry after its cursor, and :meth:`Pacer.take` answers how many of them are due at
``now``; the shell merges those into as few events as possible (:mod:`.merge`: each carrying
the highest ``seq`` it holds). :meth:`Pacer.next_deadline` says when to ask again. Time is a
float in seconds from any monotonic clock (the shell passes ``trio.current_time()``).

Scheduling is GCRA (a virtual-time token bucket): an entry may leave once the virtual send
time ``next_send_at`` is not in the future, and leaving moves it on by ``chars / rate``. It
may lag ``now`` by up to one frame interval, so batching entries into frames keeps the rate.
With ``fixed`` at 20 cps and 4-character entries, entries leave at exactly 0.0, 0.2, 0.4 s.

Modes (protocol.md ``start.pacing``):

``off``
    everything available leaves at the next frame.
``fixed``
    ``cps`` characters per second.
``smooth``
    ``cps`` characters per second, raised to ``backlog / max_lag_s`` so the display never
    lags generation by much more than ``max_lag_s``.

Controls: :meth:`pause`, :meth:`resume`, :meth:`skip` (everything received so far at once,
then unpaced), :meth:`set_cps`. Frames to one connection are at least ``frame_interval_s``
apart; the shell raises that interval under load so the process's frames per second stay
within budget (more characters per frame, fewer frames).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PacingMode = Literal["off", "fixed", "smooth"]
#: tolerance for float time comparisons (s)
EPSILON_S = 1e-9


@dataclass(frozen=True, slots=True)
class Progress:
    """Numbers for the ``progress`` event (characters; ``eta_ms`` is ``None`` when unknown)."""

    received_chars: int
    delivered_chars: int
    backlog_chars: int
    eta_ms: int | None
    generation_done: bool


class Pacer:
    """Per-connection delivery pacing. Pure: no I/O, no clock of its own.

    Args:
        mode: ``off``, ``fixed`` or ``smooth``.
        cps: delivery rate in characters per second (the floor in ``smooth``).
        max_lag_s: ``smooth`` only: the display lag the rate rises to keep.
        frame_interval_s: least time between two frames (``take`` results), >= 0.
        min_cps, max_cps: bounds applied to every rate.

    Raises:
        ValueError: a non-positive rate or negative interval.
    """

    def __init__(self, mode: PacingMode = "smooth", cps: float = 120.0, *,
                 max_lag_s: float = 1.5, frame_interval_s: float = 0.0,
                 min_cps: float = 1.0, max_cps: float = 100_000.0) -> None:
        if cps <= 0 or max_lag_s <= 0 or frame_interval_s < 0 or not 0 < min_cps <= max_cps:
            raise ValueError("pacer: rates and lag must be > 0, frame interval >= 0")
        self.mode: PacingMode = mode
        self.min_cps = min_cps
        self.max_cps = max_cps
        self.cps = self._clamp(cps)
        self.max_lag_s = max_lag_s
        self.frame_interval_s = frame_interval_s
        self.paused = False
        self.skipping = False
        self.received_chars = 0
        self.delivered_chars = 0
        self.generation_done = False
        self._next_send_at = float("-inf")
        self._last_frame_at = float("-inf")
        #: the last :meth:`take` left entries behind (they were waiting for their time)
        self._backlogged = False

    # ------------------------------------------------------------------ inputs

    def _clamp(self, cps: float) -> float:
        return min(self.max_cps, max(self.min_cps, cps))

    def on_received(self, received_chars: int, *, done: bool = False) -> None:
        """The stream now holds ``received_chars`` visible characters in all (monotonic)."""
        self.received_chars = max(self.received_chars, received_chars)
        self.generation_done = self.generation_done or done

    def pause(self) -> None:
        self.paused = True

    def resume(self, now: float) -> None:
        """Deliver again from ``now`` on, without a burst for the time spent paused."""
        if self.paused:
            self.paused = False
            self._next_send_at = max(self._next_send_at, now)

    def skip(self) -> None:
        """Deliver everything received so far at the next frame, then follow unpaced."""
        self.skipping = True
        self.paused = False
        self._last_frame_at = float("-inf")  # at once: not even a frame interval

    def set_cps(self, cps: float, now: float) -> None:
        """Change the rate live; a wait already under way shrinks or grows in proportion.

        ``off`` becomes ``fixed`` (a user who picks a speed wants it), and a skip ends.
        """
        new = self._clamp(cps)
        if self.mode == "fixed" and self._next_send_at > now:
            self._next_send_at = now + (self._next_send_at - now) * self.cps / new
        self.cps = new
        if self.mode == "off":
            self.mode = "fixed"
        self.skipping = False

    def set_frame_interval(self, frame_interval_s: float) -> None:
        self.frame_interval_s = max(0.0, frame_interval_s)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> str:
        """``paused``, ``skipping`` or ``streaming``: the ``state`` event's value."""
        if self.paused:
            return "paused"
        if self.skipping:
            return "skipping"
        return "streaming"

    @property
    def unpaced(self) -> bool:
        return self.mode == "off" or self.skipping

    def rate(self) -> float:
        """The delivery rate now, in characters per second (``inf`` when unpaced)."""
        if self.unpaced:
            return float("inf")
        if self.mode == "smooth":
            backlog = self.received_chars - self.delivered_chars
            return self._clamp(max(self.cps, backlog / self.max_lag_s))
        return self.cps

    # ------------------------------------------------------------------ the decision

    def take(self, now: float, pending_chars: Iterable[int]) -> int:
        """How many of the pending entries leave now (a prefix of ``pending_chars``).

        Args:
            now: the current time (s).
            pending_chars: visible characters of each entry after the cursor, in order; it is
                read lazily and only as far as needed.

        Returns:
            The number of entries due now (0 when paused, between frames, or not yet due).
        """
        if self.paused or now + EPSILON_S < self._last_frame_at + self.frame_interval_s:
            return 0
        count = 0
        if self.unpaced:
            for chars in pending_chars:
                count += 1
                self.delivered_chars += max(0, chars)
        else:
            # GCRA: the virtual clock may trail ``now`` by up to one frame, so a frame carries
            # the characters that accrued while we waited for it. Further behind: if we were
            # idle (the last take sent everything), pacing restarts from ``now`` without a
            # burst; if entries were waiting for their time, this take is late (a busy event
            # loop, a writer that was not ready) and carries what accrued meanwhile, so the
            # rate holds under load (dropping that credit let the display fall behind
            # generation by seconds at 250 streams, issue 16).
            send_at = self._next_send_at
            if send_at < now - self.frame_interval_s - EPSILON_S and not self._backlogged:
                send_at = now
            self._backlogged = False
            for chars in pending_chars:
                if send_at > now + EPSILON_S:
                    self._backlogged = True
                    break
                count += 1
                self.delivered_chars += max(0, chars)
                send_at += max(0, chars) / self.rate()
            self._next_send_at = send_at
        if count:
            self._last_frame_at = now
        return count

    def next_deadline(self, has_pending: bool) -> float | None:
        """When :meth:`take` may next return more than 0 (s), or ``None`` to wait for input.

        ``None`` when paused or with nothing pending: the shell then waits for a new entry or
        a control message instead of a time.
        """
        if self.paused or not has_pending:
            return None
        frame_at = self._last_frame_at + self.frame_interval_s
        if self.unpaced:
            return frame_at
        return max(self._next_send_at, frame_at)

    def progress(self) -> Progress:
        backlog = max(0, self.received_chars - self.delivered_chars)
        rate = self.rate()
        eta_ms: int | None = 0 if backlog == 0 else round(backlog / rate * 1000)
        if self.paused and backlog:
            eta_ms = None
        return Progress(self.received_chars, self.delivered_chars, backlog, eta_ms,
                        self.generation_done)
