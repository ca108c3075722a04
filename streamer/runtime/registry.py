"""The registry: every session of the process, the shared objects built once, and the server
lifetime's housekeeping (the replay window, idle sessions, drain).

::

    Registry (server lifetime; its tasks live in the server nursery it is bound to)
    └── Session (a conversation; its runner task lives in the server nursery)
        └── Stream (one answer: provider → chunker → log; its own nursery and cancel scope,
            owned by the session, never by a connection)
    Connection (a socket; its own nursery: writer, follower, controls)
    └── Subscription (connection x stream: log cursor → pacer → send)

The registry is the :class:`~streamer.runtime.session.Host` of its sessions and their
connections, and hands each stream its :class:`~streamer.runtime.stream.StreamServices`: the
other runtime modules never import it. The web layer and tests hold it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from streamer.config import Config
from streamer.conversation import ROLES, Message
from streamer.errors import (
    Forbidden,
    InvalidMessage,
    ServerShuttingDown,
    SessionNotFound,
    StreamNotFound,
)
from streamer.observability.logs import log_stream_text
from streamer.observability.metrics import Metrics
from streamer.persistence import MessageStore
from streamer.providers import Providers
from streamer.render.markdown import Renderer
from streamer.runtime.offload import Offload
from streamer.runtime.session import Follower, Session
from streamer.runtime.stream import PERSIST_TIMEOUT_S, Stream, StreamServices, new_id
from streamer.runtime.waiter import Waiter
from streamer.security.identity import ANONYMOUS, Identity
from streamer.security.policy import Policy
from streamer.security.ratelimits import ClientLimits
from streamer.tools import BUILTIN_TOOLS, Tools
from streamer.wire.events import Error

if TYPE_CHECKING:
    from streamer.engines.redis_limits import RedisLimits
    from streamer.runtime.replication import RedisEngine

logger = logging.getLogger("streamer.runtime")

#: after cancelling the streams at drain, how long their subscribers get to deliver the end (s)
CANCEL_GRACE_S = 2.0
#: random bytes in a server-made session id (``sess_`` + 22 URL-safe characters: 128 bits)
SESSION_ID_BYTES = 16
#: the prefix of server-made session ids (clients may not choose ids in it)
SERVER_ID_PREFIX = "sess_"


def is_server_id(session_id: str) -> bool:
    return session_id.startswith(SERVER_ID_PREFIX)


def session_key(owner: Identity, session_id: str) -> str:
    """The registry's and the store's name of ``owner``'s session ``session_id``.

    Server-made ids are unique already; a client-chosen id gets its owner's namespace (a
    hash of the subject; ``~`` never occurs in an id), so two identities that choose
    ``chat-0001`` get two sessions and neither can pre-seed the other's. With
    ``auth.mode = "none"`` every client is the one anonymous identity and ids stay as
    they are (stores from before ownership keep working).
    """
    if is_server_id(session_id) or owner.subject == ANONYMOUS.subject:
        return session_id
    digest = hashlib.sha256(owner.subject.encode()).hexdigest()[:16]
    return f"{digest}~{session_id}"


#: how often stored sessions past ``persistence.retention_days`` are purged (s)
PURGE_INTERVAL_S = 3_600


class Registry:
    """All sessions of the process, plus the shared, expensive objects built once.

    Args:
        config: the server's configuration.
        providers: the model providers (default: built from ``config.providers``).
        renderer: the markdown renderer (default: built from ``config.render``).
    """

    def __init__(self, config: Config, providers: Providers | None = None,
                 renderer: Renderer | None = None) -> None:
        self.config = config
        self.providers = providers or Providers(config.providers)
        #: tools the model may call; embedding applications register theirs here
        self.tools = Tools(BUILTIN_TOOLS if config.tools.builtin else [])
        self.renderer = renderer or Renderer(config.render)
        #: one worker thread for the streams' large renders (``render.offload_tail_chars``)
        self.render_threads = trio.CapacityLimiter(1)
        #: what one client may hold and start (``[limits]``)
        self.limits = ClientLimits(config.limits)
        #: worker processes for client-controlled CPU work (the one-shot render)
        self.offload = Offload(config.render.offload_workers, config.render.offload_max_jobs)
        #: what each identity may spend (providers, models, max_tokens, daily budgets)
        self.policy = Policy(config)
        self.sessions: dict[str, Session] = {}
        #: the same sessions by their owner's subject (a limit counts one identity's only)
        self._by_subject: dict[str, dict[str, Session]] = {}
        self.live_connections: set[Follower] = set()
        #: this app's counts for ``GET /metrics`` (the gauges are read from this registry)
        self.metrics = Metrics(self)
        #: woken whenever a stream or a subscription ends (drain waits on it)
        self.activity = Waiter()
        self.active_subscriptions = 0
        self.draining = False
        self.closing = False
        self.started_at = time.time()
        self._nursery: trio.Nursery | None = None
        #: names this process's in-memory logs: a cursor from another epoch cannot replay
        self.epoch = secrets.token_hex(4)
        #: the store (SQLite, or Redis with the redis engine; ``None``: persistence off),
        #: opened by the app at start-up
        self.store: MessageStore | None = None
        #: finished streams whose logs are still in memory, oldest first (replay window)
        #: (when it finished, the stream, its log's bytes then), and the sum of those bytes
        self._finished: dict[str, tuple[float, Stream, int]] = {}
        self._finished_bytes = 0
        #: ``engine.kind = "redis"``: streams and sessions shared through Redis (engines.md)
        self.engine: RedisEngine | None = None
        self.shared_limits: RedisLimits | None = None
        if config.engine.kind == "redis":  # imported here: coredis only when it is used
            from streamer.engines.redis_limits import RedisLimits
            from streamer.runtime.replication import RedisEngine
            self.engine = RedisEngine(config, self.keep_for_replay, self.sessions.get)
            # the streams each identity runs and starts, counted for every process
            self.limits.shared = self.shared_limits = RedisLimits(config)

    # ------------------------------------------------------------------ the host

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the registry is not running (no server nursery)")
        return self._nursery

    def bind(self, nursery: trio.Nursery) -> None:
        """Give the registry the server nursery its session tasks live in (and, with
        ``engine.kind = "redis"``, the engine's task: it raises if Redis does not answer)."""
        self._nursery = nursery
        if self.engine is not None:
            nursery.start_soon(self.engine.run, name="redis engine")
        if self.shared_limits is not None:
            nursery.start_soon(self.shared_limits.run, name="redis limits")

    def start_task(self, fn: Callable[[], Awaitable[None]], name: str) -> None:
        self.nursery.start_soon(fn, name=name)

    def stream_services(self) -> StreamServices:
        return StreamServices(self.config, self.providers, self.renderer, self.tools,
                              lambda: self.store, self.on_stream_finished, self.activity,
                              self.render_threads, self.epoch, self.engine)

    def frame_interval_s(self) -> float:
        """Least time between frames to one connection, raised under load.

        ``max(frame_interval_ms, active subscriptions / frame_budget_per_s)``: the process
        sends about ``frame_budget_per_s`` frames per second at most, whatever the number
        of streams; each frame then carries more characters.
        """
        pacing = self.config.pacing
        return max(pacing.frame_interval_ms / 1000,
                   self.active_subscriptions / pacing.frame_budget_per_s)

    def subscription_started(self) -> None:
        self.active_subscriptions += 1

    def subscription_ended(self) -> None:
        self.active_subscriptions -= 1
        self.activity.wake()

    def connection_opened(self, connection: Follower) -> None:
        self.live_connections.add(connection)
        transport = getattr(connection, "transport", "other")
        self.metrics.connections_opened[transport] += 1
        logger.info("connection opened", extra={"transport": transport})

    def connection_closed(self, connection: Follower) -> None:
        self.live_connections.discard(connection)
        logger.info("connection closed")

    @property
    def connections(self) -> int:
        """Open connections (WebSocket and SSE)."""
        return len(self.live_connections)

    # ------------------------------------------------------------------ sessions

    def get_or_create(self, session_id: str | None = None,
                      owner: Identity = ANONYMOUS) -> Session:
        """The owner's session ``session_id`` in memory, made if missing (no store, no
        ownership check: :meth:`create_session` and :meth:`find_session` are the doors)."""
        session_id = session_id or new_id("sess", SESSION_ID_BYTES)
        key = session_key(owner, session_id)
        session = self.sessions.get(key)
        if session is None:
            session = Session(self, session_id, owner, key)
            self.sessions[key] = session
            self._by_subject.setdefault(owner.subject, {})[key] = session
            self.limits.session_created(owner.subject)
        session.touch()
        return session

    def _forget(self, session: Session) -> None:
        if self.sessions.pop(session.key, None) is not None:
            subject = session.owner.subject
            mine = self._by_subject.get(subject, {})
            mine.pop(session.key, None)
            if not mine:
                self._by_subject.pop(subject, None)
            self.limits.session_forgotten(subject)

    def active_streams(self, subject: str) -> int:
        """Streams of ``subject``'s sessions running or queued now (``[limits]``); the work
        is linear in that identity's sessions (``limits.max_sessions_per_identity``), not in
        every session of the process."""
        return sum(len(s.queue) + (s.current is not None and s.current.state == "running")
                   for s in self._by_subject.get(subject, {}).values())

    async def create_session(self, owner: Identity,
                             session_id: str | None = None) -> tuple[Session, bool]:
        """``POST /api/sessions``: a new session of ``owner`` (``(session, True)``), or its
        existing one of that id (``(session, False)``).

        Without ``session_id`` the server makes one (``sess_`` + 128 random bits). A
        client-chosen id is namespaced under its owner: another identity choosing the same
        id gets a session of its own.

        Raises:
            Forbidden: a server-made id that belongs to another identity.
            InvalidMessage: a client-chosen id in the server's ``sess_`` space that does
                not exist.
            RateLimited: the owner holds ``limits.max_sessions_per_identity`` sessions.
        """
        if session_id is not None:
            try:
                return await self.find_session(owner, session_id), False
            except SessionNotFound:
                if is_server_id(session_id):
                    raise InvalidMessage("session ids starting 'sess_' are made by the "
                                         "server; choose another id or omit it") from None
        self.limits.check_new_session(owner.subject)
        session = self.get_or_create(session_id, owner)
        if self.store is not None:
            await self.store.create_session(session.key, owner.subject)
        if self.engine is not None:
            await self.engine.session_created(session)
        return session, True

    async def find_session(self, owner: Identity, session_id: str) -> Session:
        """The owner's session ``session_id``: in memory, or known to the store (its history
        loaded). Never creates one.

        Raises:
            SessionNotFound: no such session of this owner.
            Forbidden: the session belongs to another identity.
        """
        key = session_key(owner, session_id)
        session = self.sessions.get(key)
        if session is None:
            session = await self._load_session(owner, session_id, key)
        elif session.owner.subject != owner.subject:
            raise Forbidden("this session belongs to another identity")
        if self.engine is not None:  # another process may run its current stream
            await self.engine.follow_current(session)
        session.touch()
        return session

    async def _load_session(self, owner: Identity, session_id: str, key: str) -> Session:
        """A session this process does not hold: from the store, or (redis engine) with the
        identity it was created with on another process. Raises like :meth:`find_session`."""
        if self.engine is not None:  # first: the identity it was created with, policy too
            shared = await self.engine.session_identity(key)
            if shared is not None:
                if shared.subject != owner.subject:
                    raise Forbidden("this session belongs to another identity")
                return await self.open_session(session_id, shared)
        stored_owner = await self.store.session_owner(key) if self.store is not None else None
        if stored_owner is None:
            raise SessionNotFound(f"no session {session_id}")
        if stored_owner != owner.subject:
            raise Forbidden("this session belongs to another identity")
        return await self.open_session(session_id, owner)

    async def resumable(self, session: Session, stream_id: str, after_seq: int = 0
                        ) -> Stream | None:
        """The session's stream ``stream_id`` to resume: in memory, or (redis engine) a
        mirror of another process's stream, caught up with Redis and, if it gets there
        within :data:`~streamer.runtime.replication.CURSOR_WAIT_S`, with ``after_seq`` (a
        client cut off on the generating process may hold entries not yet published)."""
        if self.engine is None:
            return session.streams.get(stream_id)
        return await self.engine.mirror(session, stream_id, until_seq=after_seq)

    async def open_session(self, session_id: str | None = None,
                           owner: Identity = ANONYMOUS) -> Session:
        """:meth:`get_or_create`, loading a known session's history from the store first."""
        key = session_key(owner, session_id) if session_id is not None else None
        if key is not None and key not in self.sessions and self.store is not None:
            records = await self.store.messages(key)
            session = self.get_or_create(session_id, owner)
            if not session.history:
                session.history = [Message(r.role, r.markdown) for r in records
                                   if r.markdown and r.role in ROLES]
            return session
        return self.get_or_create(session_id, owner)

    async def delete_session(self, owner: Identity, session_id: str) -> None:
        """Forget a session: cancel its streams, close its connections, delete it from the
        store.

        Raises:
            SessionNotFound: neither memory nor the store knows it.
            Forbidden: it belongs to another identity.
        """
        session = await self.find_session(owner, session_id)
        self._forget(session)
        session.deleted = True
        for stream in list(session.streams.values()):
            stream.cancel("session deleted")
        for connection in list(session.connections):
            connection.cancel_scope.cancel()
        for stream_id in list(session.streams):
            self._forget_finished(stream_id)
        if self.store is not None:
            # let cancelled streams write their last checkpoint before the delete
            with trio.move_on_after(PERSIST_TIMEOUT_S):
                for stream in list(session.streams.values()):
                    if stream.state == "running":
                        await stream.done.wait()
            await self.store.delete_session(session.key)

    def find_owned_stream(self, owner: Identity, stream_id: str) -> Stream:
        """A stream of one of ``owner``'s sessions (the trace endpoint).

        Raises:
            StreamNotFound: no such stream in memory.
            Forbidden: it belongs to another identity's session.
        """
        stream = self.find_stream(stream_id)
        if stream is None:
            raise StreamNotFound(f"no stream {stream_id}")
        if stream.owner.owner.subject != owner.subject:
            raise Forbidden("this stream belongs to another identity")
        return stream

    def find_stream(self, stream_id: str) -> Stream | None:
        for session in self.sessions.values():
            stream = session.streams.get(stream_id)
            if stream is not None:
                return stream
        return None

    def running_streams(self) -> list[Stream]:
        return [s.current for s in self.sessions.values()
                if s.current is not None and s.current.state == "running"]

    # ------------------------------------------------------------------ housekeeping

    def on_stream_finished(self, stream: Stream) -> None:
        """Keep the finished log for the replay window; evict the oldest beyond the limit."""
        self.metrics.stream_finished(stream)
        self.limits.stream_ended(stream.stream_id)
        if self.config.log.content:
            log_stream_text(stream.stream_id, stream.session_id,
                            stream.request.messages[-1].content, stream.markdown)
        self.keep_for_replay(stream)

    def keep_for_replay(self, stream: Stream) -> None:
        """A finished stream's (or mirror's) log stays for the replay window."""
        self._forget_finished(stream.stream_id)
        size = stream.log.retained_bytes
        self._finished[stream.stream_id] = (trio.current_time(), stream, size)
        self._finished_bytes += size
        self.evict_finished_logs()

    def _forget_finished(self, stream_id: str) -> None:
        kept = self._finished.pop(stream_id, None)
        if kept is not None:
            self._finished_bytes -= kept[2]

    def evict_finished_logs(self) -> None:
        """Drop finished logs, oldest first, past ``resume.window_s``, beyond
        ``resume.max_finished_logs``, and while they hold more than
        ``resume.max_finished_bytes`` (those clients still follow are kept until they
        leave). An evicted stream keeps its final document (a late resume's snapshot).

        O(1) while nothing is due (the oldest log is looked at first, and the bytes are a
        running total of each log's size when it was kept); the sizes are measured again
        only when that total is over the limit (a log kept while readers followed it
        compacts, and shrinks, once they leave)."""
        resume = self.config.resume
        deadline = trio.current_time() - resume.window_s
        excess = len(self._finished) - resume.max_finished_logs
        excess_bytes = self._finished_bytes - resume.max_finished_bytes
        if excess_bytes > 0:
            self._finished = {stream_id: (at, stream, stream.log.retained_bytes)
                              for stream_id, (at, stream, _) in self._finished.items()}
            self._finished_bytes = sum(size for _, _, size in self._finished.values())
            excess_bytes = self._finished_bytes - resume.max_finished_bytes
        evicted = []
        for finished_at, stream, size in self._finished.values():
            if finished_at > deadline and excess <= 0 and excess_bytes <= 0:
                break
            if stream.subscribers:
                continue
            excess_bytes -= size
            evicted.append(stream)
            excess -= 1
        for stream in evicted:
            self._forget_finished(stream.stream_id)
            stream.log.evict()

    def finished_log_bytes(self) -> int:
        """What the finished logs in the replay window hold, estimated (bytes:
        ``MemoryStreamLog.retained_bytes``, measured once per log and state)."""
        return sum(stream.log.retained_bytes for _, stream, _ in self._finished.values())

    async def housekeeping(self) -> None:
        """Every minute (or sooner for short windows): evict finished logs past the replay
        window and purge stored sessions past ``persistence.retention_days``."""
        interval_s = max(0.05, min(60.0, self.config.resume.window_s / 4))
        retention_s = self.config.persistence.retention_days * 86_400
        last_purge = -math.inf
        while True:
            self.evict_finished_logs()
            now = trio.current_time()
            if self.store is not None and retention_s > 0 \
                    and now - last_purge >= PURGE_INTERVAL_S:
                last_purge = now
                await self._purge(retention_s)
            await trio.sleep(interval_s)

    async def _purge(self, retention_s: float) -> None:
        assert self.store is not None
        try:
            purged = await self.store.purge(retention_s)
        except Exception:
            logger.exception("purging old sessions failed")
        else:
            if purged:
                logger.info("purged %d sessions older than %g days", purged,
                            self.config.persistence.retention_days)

    async def reap_idle_sessions(self) -> None:
        """Forget sessions with no connection, no stream and no hold for
        ``session_idle_timeout_s``."""
        timeout_s = self.config.server.session_idle_timeout_s
        while True:
            await trio.sleep(max(1.0, timeout_s / 10))
            now = trio.current_time()
            for session in list(self.sessions.values()):
                if not session.connections and not session.busy and not session.held \
                        and now - session.last_active > timeout_s:
                    self._forget(session)

    async def drain(self, timeout_s: float) -> None:
        """Refuse new streams, let running ones finish for ``timeout_s``, then cancel them
        (``server_shutting_down``), then close every connection with that notice."""
        self.draining = True
        with trio.move_on_after(timeout_s):
            while self.running_streams() or any(s.queue for s in self.sessions.values()):
                await self.activity.wait()
        for session in self.sessions.values():
            for stream in session.queue:  # each ends as cancelled when its turn comes at once
                stream.cancel("server shutdown")  # (counted, persisted, limits released)
        shutting_down = ServerShuttingDown(
            "the server is shutting down",
            retry_after_ms=self.config.server.shutdown_retry_after_ms)
        for stream in self.running_streams():
            stream.cancel("server shutdown", shutting_down)
        with trio.move_on_after(CANCEL_GRACE_S):
            while self.running_streams() or self.active_subscriptions \
                    or any(s.queue for s in self.sessions.values()):
                await self.activity.wait()
        if self.engine is not None:  # the streams' ends reach the other processes
            await self.engine.flush(CANCEL_GRACE_S)
        self.closing = True
        notice = Error.of(shutting_down)
        async with trio.open_nursery() as nursery:
            for connection in list(self.live_connections):
                nursery.start_soon(connection.close_after,
                                   notice.in_session(connection.session_id))

    def status(self) -> dict[str, Any]:
        return {
            "sessions": len(self.sessions),
            "connections": self.connections,
            "active_streams": len(self.running_streams()),
            "queued_streams": sum(len(s.queue) for s in self.sessions.values()),
            "subscriptions": self.active_subscriptions,
            "uptime_s": round(time.time() - self.started_at, 3),
            "draining": self.draining,
        }
