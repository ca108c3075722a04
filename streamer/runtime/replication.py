"""The redis engine wired into a process (``engine.kind = "redis"``, ``docs/engines.md``).

:class:`RedisEngine` holds the process's Redis clients (its task, :meth:`RedisEngine.run`,
lives in the server nursery; the publishers and mirrors run in its own nursery) and does the
runtime's side of replication. Two clients: one for short commands, and one for the blocking
reads (the mirrors' multi-key reader ``engines/redis_reader.py``, the routed controls' and
the starts' readers, a routed stop's ack wait), so a blocked read never holds a connection
that an ``INCR``, a lookup, a publisher's pipeline or a lease renewal waits for:

- every stream this process runs gets its epoch from Redis (``INCR``, in one ``MULTI``/``EXEC``
  with its lease and its shared metadata) and a
  :class:`~streamer.engines.redis_log.RedisLogPublisher` for its lifetime
  (:meth:`RedisEngine.begin`); a failure to publish is logged and recorded in the stream's
  trace, the stream itself goes on (its clients on this process lose nothing);
- sessions are shared: the identity a session was created with and its current stream
  (``streamer.engines.redis_meta``), so another process checks who may connect and resume;
- a stream this process does not know, asked for by a resume cursor or as the session's
  current stream, is mirrored (:class:`~streamer.runtime.mirror.MirrorStream`);
- one owner per generation (:class:`~streamer.runtime.ownership.Ownership`): a stream's lease
  is held while it runs; a mirror whose owner's lease is gone ends with ``generation_lost``
  and its partial answer; a ``stop`` on a mirror is routed to the owner.

Redis down at start-up: :meth:`RedisEngine.run` raises (``streamer serve`` checks first and
refuses to start with a clear message). Later outages are retried for :data:`RETRY_S`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import coredis
import trio
from coredis.tokens import PureToken

from streamer.config import Config
from streamer.engines.redis_keys import Keys
from streamer.engines.redis_log import (
    CONNECTION_ERRORS,
    REDIS_ERRORS,
    RedisLogPublisher,
    RedisUnavailable,
    connect,
    epoch_of,
    with_retry,
)
from streamer.engines.redis_meta import (
    MIN_TTL_S,
    StreamMeta,
    last_start_id,
    load_session,
    load_stream,
    queue_session,
    read_starts,
    refresh,
    save_session,
)
from streamer.engines.redis_reader import StreamReaders
from streamer.errors import ControlNotDelivered
from streamer.log.stream_log import StreamLog
from streamer.runtime.generation import single_error
from streamer.runtime.mirror import MirrorStream
from streamer.runtime.ownership import Ownership
from streamer.runtime.session import Session
from streamer.runtime.stream import Stream, new_id
from streamer.runtime.waiter import Waiter
from streamer.security.identity import Identity

logger = logging.getLogger("streamer.runtime")

T = TypeVar("T")

#: how long a publisher or a follower retries Redis before it gives up (s)
RETRY_S = 10.0
#: how long a request's lookup (a session, a stream) waits for Redis (s)
LOOKUP_RETRY_S = 2.0
#: one blocking ``XREAD`` of a mirror (ms; a read that times out is repeated)
FOLLOW_BLOCK_MS = 1_000
#: the least time between two pipelines of one stream's publisher (s): at most 50 round trips
#: a second per stream, whatever the model's rate; other processes see entries that much later
PUBLISH_INTERVAL_S = 0.02
#: how often a process that mirrors a watched stream says so, and the generating process
#: looks (s); the mark lives :data:`WATCH_TTL_INTERVALS` times that
WATCH_INTERVAL_S = 1.0
#: how long a long-lived engine task that failed waits before it starts again (s)
RESTART_S = 1.0
WATCH_TTL_INTERVALS = 3
#: how long a resume on a mirror waits for the entries up to the client's cursor (s): a
#: client cut off on the generating process may have entries that are not published yet
#: (at most :data:`PUBLISH_INTERVAL_S` behind, plus Redis round trips)
CURSOR_WAIT_S = 2.0


class RedisEngine:
    """The process's side of the redis engine.

    Args:
        config: the server's configuration (``[engine]``; ``resume.window_s`` is the life
            of every key after its last write).
        keep: called with a mirror once it is finished (the registry's replay window).
        sessions: the session this process holds under a key, if any (a stream begun on
            another process reaches its idle connections here: :meth:`_follow_starts`).
    """

    def __init__(self, config: Config, keep: Callable[[Stream], None],
                 sessions: Callable[[str], Session | None] = lambda key: None) -> None:
        engine = config.engine
        self.url = engine.redis_url
        self.timeout_s = engine.command_timeout_s
        self.prefix = engine.key_prefix
        self.keys = Keys(self.prefix)
        self.maxlen = engine.replay_maxlen
        self.ttl_s = max(config.resume.window_s, MIN_TTL_S)
        self._keep = keep
        self._sessions = sessions
        self._redis: coredis.Redis[Any] | None = None
        #: the client of blocking reads (:attr:`readers`, the control and starts readers,
        #: a routed stop's wait): its connections are never the short commands' ones
        self._blocking: coredis.Redis[Any] | None = None
        self.readers: StreamReaders | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = trio.Event()
        #: this process's name in leases and control streams (new at each start)
        self.process_id = new_id("p", 9)
        self.ownership = Ownership(self.prefix, self.process_id, engine.lease_ttl_s,
                                   self.ttl_s)
        #: publishers running now, and woken when one ends (:meth:`flush`)
        self.publishing = 0
        self._publisher_ended = Waiter()
        #: streams published and mirrored by this process, and publishing failures
        self.published = 0
        self.mirrored = 0
        self.failures = 0

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Hold the client (and the publishers' and mirrors' nursery) until cancelled.

        Raises:
            RedisUnavailable: Redis does not answer at start-up.
        """
        try:
            async with connect(self.url, self.timeout_s) as redis, \
                    connect(self.url, self.timeout_s, blocking=True) as blocking:
                await redis.ping()
                async with trio.open_nursery() as nursery:
                    self._redis, self._nursery = redis, nursery
                    self._blocking = blocking
                    self.readers = StreamReaders(blocking, prefix=self.prefix,
                                                 process_id=self.process_id,
                                                 block_ms=FOLLOW_BLOCK_MS, retry_s=RETRY_S)
                    await nursery.start(self.readers.run)
                    spawn(nursery, "routed controls", self.ownership.serve_controls,
                          blocking, again=True)
                    spawn(nursery, "streams begun elsewhere", self._follow_starts,
                          blocking, nursery, again=True)
                    self._ready.set()
                    task_status.started()
                    await trio.sleep_forever()
        except (*CONNECTION_ERRORS, BaseExceptionGroup) as exc:
            if isinstance(exc, BaseExceptionGroup) and not exc.subgroup(CONNECTION_ERRORS):
                raise
            raise RedisUnavailable(f"redis at {describe_url(self.url)} does not answer"
                                   ) from exc

    async def _client(self) -> tuple[coredis.Redis[Any], trio.Nursery]:
        with trio.fail_after(RETRY_S):
            await self._ready.wait()
        assert self._redis is not None and self._nursery is not None
        return self._redis, self._nursery

    async def _lookup(self, call: Callable[[coredis.Redis[Any]], Awaitable[T]],
                      what: str) -> T | None:
        """A request's read from Redis; ``None`` (logged) when Redis does not answer."""
        redis, _ = await self._client()
        try:
            return await with_retry(lambda: call(redis), LOOKUP_RETRY_S)
        except (RedisUnavailable, ValueError, *REDIS_ERRORS) as exc:
            logger.error("redis engine: %s failed: %s", what, exc)
            return None

    # ------------------------------------------------------------------ queued streams

    async def share_queued(self, session: Session, stream: Stream) -> None:
        """``stream`` waits in ``session``'s queue here (``session.QueueRouter``); Redis
        not ready within :data:`RETRY_S` is recorded in its trace (it stays queued here)."""
        try:
            redis, _ = await self._client()
        except trio.TooSlowError:
            stream.record("queued_not_shared", error="RedisUnavailable")
            return
        await self.ownership.share_queued(redis, session, stream)

    async def route_queue(self, session: Session, action: str, stream_id: str,
                          position: int) -> None:
        """A queue control for a stream queued elsewhere (``session.QueueRouter``).

        Raises:
            StreamNotFound, ControlNotDelivered: as ``Ownership.route_queue``; the latter
                also when Redis is not ready within :data:`RETRY_S`.
        """
        try:
            redis, _ = await self._client()
        except trio.TooSlowError as exc:
            raise ControlNotDelivered("redis is not available") from exc
        await self.ownership.route_queue(redis, session, action, stream_id, position)

    # ------------------------------------------------------------------ publishing

    async def begin(self, stream: Stream) -> str | None:
        """The stream runs on this process: its epoch from Redis, its metadata shared, its
        publisher started. ``None`` (logged, recorded in its trace) when Redis does not
        answer within :data:`RETRY_S` or refuses the writes (``OOM``, ``READONLY``): the
        stream then runs on this process only."""
        owner, prefix, ttl_s = stream.owner, self.prefix, self.ttl_s
        meta = StreamMeta(stream.stream_id, owner.key, stream.provider_name, stream.model,
                          stream.request.pacing.mode, stream.request.pacing.cps)
        try:
            with trio.fail_after(RETRY_S):  # (a frozen Redis: every try times out)
                redis, nursery = await self._client()
                epoch = await with_retry(lambda: self._claim(redis, stream, meta), RETRY_S)
        except (RedisUnavailable, trio.TooSlowError, *REDIS_ERRORS) as exc:
            self.ownership.forget(stream.stream_id)
            self._failed(stream, "begin", exc)
            return None
        publisher = RedisLogPublisher(
            redis, stream.log, prefix=prefix, maxlen=self.maxlen, retry_s=RETRY_S,
            ttl_s=ttl_s, interval_s=PUBLISH_INTERVAL_S,
            on_create=lambda pipe: queue_session(pipe, prefix, owner.key, owner.owner, ttl_s,
                                                 meta))
        publisher.epoch = epoch
        nursery.start_soon(self._publish, redis, stream, publisher, meta,
                           name=f"publish {stream.stream_id}")
        self.published += 1
        self.publishing += 1
        return epoch

    async def _claim(self, redis: coredis.Redis[Any], stream: Stream, meta: StreamMeta
                     ) -> str:
        """One round trip for a new stream, one ``MULTI``/``EXEC``: its epoch (``INCR``), its
        lease (``SET NX PX``, ``runtime/ownership.py``), then its shared metadata, in that
        order, so no process sees the metadata without the lease. Returns the epoch; the
        stream is then this process's (``Ownership.running``). Raises connection errors."""
        own, owner = self.ownership, stream.owner
        async with redis.pipeline(transaction=True) as pipe:
            count = pipe.incr(self.keys.epoch)
            taken = pipe.set(self.keys.lease(stream.stream_id), own.process_id,
                             px=own.lease_ms, condition=PureToken.NX)
            queue_session(pipe, self.prefix, owner.key, owner.owner, self.ttl_s, meta)
        epoch, held = epoch_of(await count), await taken
        if not held:  # a stream id is new: another holder would be a bug
            logger.error("stream %s: its lease is held by another process", stream.stream_id)
            stream.record("lease_not_taken")
        await own.began(redis, stream)
        return epoch

    async def _publish(self, redis: coredis.Redis[Any], stream: Stream,
                       publisher: RedisLogPublisher, meta: StreamMeta) -> None:
        """Run the publisher until the ``end`` is stored, with :meth:`_beside` and the
        lease's renewal while it runs; then mark the lease ended and refresh the shared
        metadata (it then expires with the stream's key)."""
        try:
            with trio.CancelScope() as beside:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._beside, redis, stream, meta)
                    nursery.start_soon(self.ownership.hold, redis, stream)
                    await publisher.run()
                    beside.cancel()
            await self.ownership.release(redis, stream.stream_id, RETRY_S)
            await with_retry(lambda: refresh(redis, self.prefix, meta.session_key,
                                             meta.stream_id, self.ttl_s), RETRY_S)
        except Exception as exc:  # a Redis failure never ends the stream, nor the server
            self._failed(stream, "publish", exc)
        finally:
            self.ownership.running.pop(stream.stream_id, None)
            self.publishing -= 1
            self._publisher_ended.wake()

    async def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every publisher stored its stream's ``end`` and
        marked its lease ended (the drain calls it once its streams are over, before the
        server nursery closes); ``True`` if they all did."""
        with trio.move_on_after(timeout_s):
            while self.publishing:
                await self._publisher_ended.wait()
        return not self.publishing

    async def _beside(self, redis: coredis.Redis[Any], stream: Stream,
                      meta: StreamMeta) -> None:
        """While the stream runs: every :data:`WATCH_INTERVAL_S`, whether another process has
        subscribers of it (its grace period counts them: ``Stream.watched_elsewhere``), and
        every third of the keys' TTL, their refresh. Connection errors are skipped (the
        publisher reports Redis's absence), and so are writes Redis refuses; meanwhile
        nobody elsewhere counts."""
        watched = self.keys.watched(meta.stream_id)
        refreshed = trio.current_time()
        while True:
            await trio.sleep(WATCH_INTERVAL_S)
            try:
                elsewhere = bool(await redis.exists([watched]))
                if trio.current_time() - refreshed >= self.ttl_s / 3:
                    await refresh(redis, self.prefix, meta.session_key, meta.stream_id,
                                  self.ttl_s)
                    refreshed = trio.current_time()
            except REDIS_ERRORS:
                elsewhere = False
            if elsewhere != stream.watched_elsewhere:
                stream.watched_elsewhere = elsewhere
                stream.on_subscribers_changed()

    async def _follow_starts(self, redis: coredis.Redis[Any], nursery: trio.Nursery) -> None:
        """Read ``{prefix}starts`` until cancelled: a stream begun on another process for a
        session that a connection here follows is mirrored as the session's current stream,
        so that connection takes it up without reconnecting. Redis errors are retried after
        a pause (the reader goes on from where it was: nothing is lost while Redis keeps
        it)."""
        last_id: str | None = None
        while True:
            try:
                if last_id is None:
                    last_id = await last_start_id(redis, self.prefix)
                batch = await read_starts(redis, self.prefix, last_id, FOLLOW_BLOCK_MS)
            except REDIS_ERRORS as exc:
                logger.debug("streams begun elsewhere: read failed: %r", exc)
                await trio.sleep(0.5)
                continue
            for entry_id, session_key, stream_id in batch:
                last_id = entry_id
                session = self._sessions(session_key)
                if session is not None and session.watched() \
                        and stream_id not in session.streams:
                    spawn(nursery, f"take up {stream_id}", self._take_up, session,
                          stream_id)

    async def _take_up(self, session: Session, stream_id: str) -> None:
        try:
            await self.mirror(session, stream_id, current=True)
        except (RedisUnavailable, trio.TooSlowError, *REDIS_ERRORS) as exc:
            logger.error("stream %s: not mirrored for session %s: %s", stream_id,
                         session.session_id, exc)

    def _failed(self, stream: Stream, during: str, exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):  # the keep-alive's nursery wraps it
            exc = single_error(exc)
        self.failures += 1
        logger.error("stream %s: replication to redis failed (%s): %s", stream.stream_id,
                     during, exc)
        stream.record("replication_failed", during=during)

    # ------------------------------------------------------------------ sessions

    async def session_created(self, session: Session) -> None:
        """Share a new session's identity, so other processes let its owner in."""
        redis, _ = await self._client()
        try:
            await with_retry(lambda: save_session(redis, self.prefix, session.key,
                                                  session.owner, self.ttl_s), LOOKUP_RETRY_S)
        except (RedisUnavailable, *REDIS_ERRORS) as exc:
            logger.error("session %s: not shared through redis: %s", session.session_id, exc)

    async def session_identity(self, session_key: str) -> Identity | None:
        """The identity a session was created with, on any process (``None``: unknown)."""
        found = await self._lookup(lambda r: load_session(r, self.prefix, session_key),
                                   "a session lookup")
        return found[0] if found is not None else None

    async def follow_current(self, session: Session) -> None:
        """Mirror the session's current stream if another process runs it (a connection
        that arrives here then joins it like a late subscriber)."""
        found = await self._lookup(lambda r: load_session(r, self.prefix, session.key),
                                   "a session lookup")
        current = found[1] if found is not None else None
        if current is not None:  # (a mirror started by another connection: caught up)
            await self.mirror(session, current, current=True)

    async def mirror(self, session: Session, stream_id: str, *, current: bool = False,
                     until_seq: int = 0) -> Stream | None:
        """The session's stream ``stream_id``: this process's own, or a mirror of another's
        (started if needed, caught up with Redis, and waited for up to :data:`CURSOR_WAIT_S`
        until its log reaches ``until_seq`` or ends); ``None`` if neither this process nor
        Redis knows it as this session's (or it cannot be mirrored)."""
        known = session.streams.get(stream_id)
        if known is None:
            meta = await self._lookup(lambda r: load_stream(r, self.prefix, stream_id),
                                      "a stream lookup")
            if meta is None or meta.session_key != session.key:
                return None
            redis, nursery = await self._client()
            known = session.streams.get(stream_id)  # mirrored meanwhile?
            if known is None:
                known = self._start_mirror(redis, nursery, session, meta, current)
        if isinstance(known, MirrorStream):
            await known.caught_up.wait()
            if known.failed:
                return None
            await _reach(known.log, until_seq)
        return known

    def _start_mirror(self, redis: coredis.Redis[Any], nursery: trio.Nursery,
                      session: Session, meta: StreamMeta, current: bool) -> MirrorStream:
        mirror = MirrorStream(session, meta, session.host.stream_services())
        blocking = self._blocking
        assert blocking is not None
        mirror.router = lambda: self.ownership.route_stop(blocking, mirror)
        session.streams[meta.stream_id] = mirror
        if current:
            session.stream_started(mirror)  # its connections take it up
        else:
            session.started.append(mirror)
        self.mirrored += 1

        async def follow() -> None:
            async with trio.open_nursery() as beside:
                beside.start_soon(mirror.announce, redis, self.keys.watched(meta.stream_id),
                                  WATCH_INTERVAL_S, WATCH_TTL_INTERVALS)
                beside.start_soon(self.ownership.watch, redis, mirror)
                await mirror.follow(redis, prefix=self.prefix, retry_s=RETRY_S,
                                    block_ms=FOLLOW_BLOCK_MS, reader=self.readers)
                beside.cancel_scope.cancel()
            if mirror.lost:
                await self.ownership.persist_lost(redis, mirror)
            if mirror.failed:
                session.streams.pop(meta.stream_id, None)
                if mirror in session.started:
                    session.started.remove(mirror)
            else:
                self._keep(mirror)

        spawn(nursery, f"mirror {meta.stream_id}", follow)
        return mirror


def spawn(nursery: trio.Nursery, name: str, fn: Callable[..., Awaitable[None]], *args: Any,
          again: bool = False) -> None:
    """Start ``fn(*args)`` in the engine's ``nursery`` so that its failure ends it alone,
    never the engine's other tasks (a stream's publisher, the mirrors, the readers) nor the
    server: an error is logged, and with ``again`` the task starts again after
    :data:`RESTART_S` (the long-lived readers)."""
    async def guarded() -> None:
        while True:
            try:
                await fn(*args)
                return
            except Exception:
                logger.exception("redis engine: %s failed%s", name,
                                 f"; starting it again in {RESTART_S:g} s" if again else "")
                if not again:
                    return
            await trio.sleep(RESTART_S)

    nursery.start_soon(guarded, name=name)


def describe_url(url: str) -> str:
    """``url`` without its credentials (``redis://:secret@host:6379/0`` → ``host:6379/0``),
    for messages and logs."""
    rest = url.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1]


async def probe(url: str, timeout_s: float = 5.0) -> None:
    """Connect to ``url`` and ``PING``. Raises :class:`RedisUnavailable` with a clear
    message (``streamer serve`` calls it before serving)."""
    try:
        client = connect(url)
    except ValueError as exc:
        raise RedisUnavailable(f"engine.redis_url is not a redis URL ({exc})") from exc
    try:
        with trio.fail_after(timeout_s):
            async with client as redis:
                await redis.ping()
    except (trio.TooSlowError, *CONNECTION_ERRORS, BaseExceptionGroup) as exc:
        if isinstance(exc, BaseExceptionGroup) and not exc.subgroup(CONNECTION_ERRORS):
            raise
        raise RedisUnavailable(f"redis at {describe_url(url)} does not answer"
                               f" ({type(exc).__name__})") from exc


async def _reach(log: StreamLog, seq: int) -> None:
    """Wait up to :data:`CURSOR_WAIT_S` until ``log`` holds ``seq`` or is finished."""
    if log.last_seq >= seq or log.finished:
        return
    waiter = Waiter()
    log.attach(waiter)
    try:
        with trio.move_on_after(CURSOR_WAIT_S):
            while log.last_seq < seq and not log.finished:
                await waiter.wait()
    finally:
        log.detach(waiter)
