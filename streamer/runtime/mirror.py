"""A stream another process generates, followed here from Redis (``docs/engines.md``): a
:class:`MirrorStream` is a :class:`~streamer.runtime.stream.Stream` whose log is the mirror a
:class:`~streamer.engines.redis_log.RedisLogFollower` fills, so connections, subscriptions and
the resume plan use it unchanged. It never runs a model.

Its follower task (:meth:`MirrorStream.follow`, in the engine's nursery) catches up with what
Redis holds (``XREAD`` without blocking), then follows through the process's one multi-key
reader (``engines/redis_reader.py``) until the ``end`` record. When the stream's
epoch changes in Redis (``FLUSHALL``, a restart without persistence, a failover: the owner
republished the log under a new epoch) the mirror starts again from the new epoch's first
record, and every connection that followed the old one is re-followed from its cursor, so it
gets ``resume_gap`` + ``snapshot`` and then the live entries: never a silent partial replay.
Entries that Redis no longer has (trimmed by ``MAXLEN``), Redis down for longer than the
retry time, or a malformed record end the mirror with an ``error``; so does the owner's lease
gone without an ``end`` (``generation_lost``, ``runtime/ownership.py``). A client's ``stop``
here is routed to the owner (:attr:`MirrorStream.router`) and waited for
(:meth:`MirrorStream.stop_confirmed`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import coredis
import trio

from streamer.conversation import Message
from streamer.delivery.subscription import Subscription
from streamer.engines.redis_log import (
    REDIS_ERRORS,
    LogGap,
    RedisLogFollower,
    RedisUnavailable,
)
from streamer.engines.redis_meta import StreamMeta
from streamer.engines.redis_reader import StreamReaders
from streamer.errors import StreamerError
from streamer.log.stream_log import MemoryStreamLog
from streamer.persistence import MessageRecord
from streamer.runtime.ownership import LOST_REASON
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream, StreamServices
from streamer.runtime.trace import Trace
from streamer.runtime.waiter import Waiter
from streamer.wire.controls import Pacing, ResumeFrom, Start
from streamer.wire.cursor import Cursor
from streamer.wire.events import Error, StreamComplete

logger = logging.getLogger("streamer.runtime")

#: epoch changes a mirror follows before it gives up (each one restarts it from seq 1)
MAX_EPOCH_CHANGES = 8
#: the cancel reasons that end a mirror here; the others (a client's ``stop``) are controls
#: for the process that generates the stream: routed there (:attr:`MirrorStream.router`)
LOCAL_ENDINGS = ("session deleted", "server shutdown", LOST_REASON)


class ReplicationFailed(StreamerError):
    """The stream could not be followed from Redis any further (``internal_error``,
    retryable: a reconnect resumes it from the client's cursor, on any process)."""

    retryable = True
    public_message = "the stream could not be followed further here; reconnect to resume"


class MirrorStream(Stream):
    """A stream of ``session`` generated elsewhere, mirrored from Redis.

    Attributes:
        caught_up: set once the mirror holds what Redis held when it started (or it failed:
            :attr:`failed`); a resume is planned only after it.
        failed: it could not catch up at all (then it is not resumable here).
        epoch_changes: how often the stream's epoch changed while it was followed.
        router: sends a client's ``stop`` to the process that runs the stream and waits for
            its ack (raises ``ControlNotDelivered``); ``None``: not routed (recorded only).
    """

    def __init__(self, session: Session, meta: StreamMeta, services: StreamServices) -> None:
        pacing = Pacing(meta.pacing_mode, meta.pacing_cps)  # type: ignore[arg-type]
        super().__init__(session, Start((Message("user", ""),), provider=meta.provider,
                                        pacing=pacing), services)
        self.session = session
        self.stream_id = meta.stream_id
        self.trace = Trace(meta.stream_id, services.config.streams.max_trace_entries,
                           session_id=session.session_id)
        self.log = MemoryStreamLog(meta.stream_id)
        self.model = meta.model
        self.state = "running"
        self.caught_up = trio.Event()
        self.failed = False
        self.epoch_changes = 0
        self._watch_changed = Waiter()
        self.router: Callable[[], Awaitable[None]] | None = None
        self._stop_pending = False
        self.record("mirrored", provider=meta.provider, model=meta.model)

    def on_subscribers_changed(self) -> None:
        super().on_subscribers_changed()
        self._watch_changed.wake()

    def attach(self, sub: Subscription) -> None:
        super().attach(sub)
        self._watch_changed.wake()

    async def announce(self, redis: coredis.Redis[Any], key: str, interval_s: float,
                       ttl_intervals: int) -> None:
        """While a connection here follows the stream (or the session), keep ``key`` set
        (``PX`` ``ttl_intervals`` times ``interval_s``, renewed every ``interval_s`` and at once
        when a subscriber comes): the generating process's grace period counts it. Runs until
        cancelled; connection errors are skipped."""
        ttl_ms = int(interval_s * ttl_intervals * 1000)
        while True:
            if self.subscribers or self.session.watched():
                try:
                    await redis.set(key, b"1", px=ttl_ms)
                except REDIS_ERRORS as exc:  # (the follower reports Redis's absence)
                    logger.debug("stream %s: not announced: %r", self.stream_id, exc)
            with trio.move_on_after(interval_s):
                await self._watch_changed.wait()

    @property
    def lost(self) -> bool:
        """The mirror ended because its owner's lease was gone (``generation_lost``)."""
        return self.cancel_reason is not None and self.cancel_reason[0] == LOST_REASON

    def cancel(self, reason: str, error: StreamerError | None = None) -> None:
        """End the mirror here on a session delete, a server shutdown or a lost owner; other
        reasons (a client's ``stop``) belong to the generating process: :meth:`stop_confirmed`
        routes them there."""
        if reason in LOCAL_ENDINGS:
            super().cancel(reason, error)
        elif self.state != "done" and self.router is not None:
            self._stop_pending = True
        elif self.state != "done":
            self.record("control_not_routed", reason=reason)

    async def stop_confirmed(self) -> None:
        """Route the ``stop`` asked by :meth:`cancel` to the owner and wait for its ack.

        Raises:
            ControlNotDelivered: the owner did not confirm it in time.
        """
        if self._stop_pending and self.router is not None:
            self._stop_pending = False
            await self.router()

    def records(self) -> list[MessageRecord]:
        """The answer only: the user message is the owner's (a mirror does not know it)."""
        return [record for record in super().records() if record.role == "assistant"]

    async def follow(self, redis: coredis.Redis[Any], *, prefix: str, retry_s: float,
                     block_ms: int, reader: StreamReaders | None = None) -> None:
        """Mirror the stream until its ``end``, following epoch changes; never raises for
        the stream's own failures (they end the mirror with an ``error``). ``redis`` serves
        the catch-up reads (not blocking); the live part is read by ``reader``, the process's
        one multi-key reader (``None``: a blocking ``XREAD`` of its own on ``redis``)."""
        error: StreamerError | None = None
        try:
            with self.cancel_scope:
                error = await self._follow(redis, prefix, retry_s, block_ms, reader)
            if self.cancel_reason is not None:
                error = self.cancel_reason[1] or ReplicationFailed(self.cancel_reason[0])
        finally:
            self._end_mirror(error)

    async def _follow(self, redis: coredis.Redis[Any], prefix: str, retry_s: float,
                      block_ms: int, reader: StreamReaders | None
                      ) -> StreamerError | None:
        while True:
            follower = RedisLogFollower(redis, self.stream_id, prefix=prefix,
                                        block_ms=block_ms, retry_s=retry_s, reader=reader)
            if not self.caught_up.is_set():
                follower.log = self.log  # early subscribers already wait on it
            try:
                await follower.catch_up()
                await self._switch_to(follower)
                await follower.run()
                return None
            except LogGap as gap:
                changed = gap.epoch is not None and gap.epoch != follower.epoch
                if not changed or self.epoch_changes >= MAX_EPOCH_CHANGES:
                    return self._failure(f"the stream's log in redis has a gap: {gap.why}")
                self.epoch_changes += 1
                self.record("epoch_changed", epoch=gap.epoch)
            except RedisUnavailable as exc:
                return self._failure(f"redis unavailable: {exc}")
            except REDIS_ERRORS as exc:  # Redis refused the read (a key of another type…)
                return self._failure(f"redis refused the read: {exc!r}")
            except ValueError as exc:
                return self._failure(f"a malformed record in redis: {exc}")

    def _failure(self, detail: str) -> StreamerError:
        self.failed = not self.caught_up.is_set()
        self.record("replication_failed", caught_up=not self.failed)
        return ReplicationFailed(f"stream {self.stream_id}: {detail}")

    async def _switch_to(self, follower: RedisLogFollower) -> None:
        """Serve from ``follower``'s mirror from now on; the connections that followed the
        previous one (another epoch) resume from their cursors."""
        old_epoch, before = self.epoch, list(self.subscribers)
        self.log, self.epoch = follower.log, follower.epoch or self.epoch
        if not self.caught_up.is_set():
            self.caught_up.set()
            return
        for sub in before:
            connection = next((c for c in self.session.connections
                               if c.connection_id == sub.reader_id), None)
            if connection is None:
                continue
            try:
                await connection.handle_control(ResumeFrom(Cursor(
                    self.stream_id, old_epoch, sub.cursor.seq)))
            except StreamerError:  # pragma: no cover - a resume control refuses nothing
                logger.exception("re-following %s failed", sub.reader_id)

    def _end_mirror(self, error: StreamerError | None) -> None:
        """The mirror is over: finished by its ``end`` record, or here with ``error``."""
        log = self.log
        if not log.finished:
            blocks = log.snapshot()[1] if not log.evicted else []
            markdown = "".join(log.source(0, log.source_count))
            err = ReplicationFailed("the mirror ended early") if error is None else error
            log.finish(StreamComplete(self.session_id, self.stream_id, "error",
                                      "".join(blocks), markdown, None, self.stream_id, None),
                       Error.of(err, session_id=self.session_id, stream_id=self.stream_id))
        complete = log.complete
        self.finish_reason = complete.finish_reason if complete is not None else "error"
        if complete is not None:
            self.markdown, self.html = complete.markdown, complete.html
        self.state = "done"
        self.caught_up.set()
        self.done.set()
        self.services.activity.wake()
        self.record("completed", finish_reason=self.finish_reason, seq=log.last_seq)
