"""A session: a conversation, its history, its running stream and the queue behind it.

The session's runner task (in the server nursery) runs its streams one after another; its
connections follow them in the order they started (:attr:`Session.started`). A session outlives
its sockets: it is forgotten when it has had no connection, no stream and no hold for
``server.session_idle_timeout_s``.

A session knows the process only through :class:`Host` (the registry implements it), so
``session.py``, ``stream.py`` and ``connection.py`` never import the registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import trio

from streamer.config import Config
from streamer.conversation import Message, remember
from streamer.errors import (
    PayloadTooLarge,
    QueueFull,
    ServerShuttingDown,
    StreamerError,
    StreamNotFound,
)
from streamer.observability.logs import log_context
from streamer.observability.metrics import Metrics
from streamer.persistence import MessageStore
from streamer.runtime.stream import Stream, StreamServices
from streamer.security.identity import ANONYMOUS, Identity
from streamer.security.policy import Policy, tokens_of
from streamer.security.ratelimits import ClientLimits
from streamer.wire.controls import Control, Start
from streamer.wire.events import ServerEvent

logger = logging.getLogger("streamer.runtime")


class Host(Protocol):
    """What a session, its streams and its connections need of the process."""

    @property
    def config(self) -> Config: ...

    @property
    def epoch(self) -> str:
        """The name of this process's in-memory logs (a cursor's epoch)."""

    @property
    def draining(self) -> bool:
        """New streams are refused (shutdown)."""

    @property
    def closing(self) -> bool:
        """The server is closing: session runners stop."""

    @property
    def store(self) -> MessageStore | None: ...

    @property
    def policy(self) -> Policy:
        """What each identity may spend: providers, models, ``max_tokens``, daily budgets."""

    @property
    def limits(self) -> ClientLimits:
        """What one client may hold and start (``[limits]``)."""

    @property
    def metrics(self) -> Metrics:
        """The app's counts (``GET /metrics``)."""

    def active_streams(self, subject: str) -> int:
        """Streams of ``subject``'s sessions running or queued now."""

    def start_task(self, fn: Callable[[], Awaitable[None]], name: str) -> None:
        """Run ``fn`` in the server nursery."""

    def stream_services(self) -> StreamServices: ...

    async def resumable(self, session: Session, stream_id: str, after_seq: int = 0
                        ) -> Stream | None:
        """The session's stream ``stream_id`` to resume (another process's, mirrored, with
        the redis engine, and caught up to ``after_seq`` if it gets there in time);
        ``None``: not known."""

    def frame_interval_s(self) -> float:
        """The least time between frames to one connection now (it rises under load)."""

    def subscription_started(self) -> None: ...

    def subscription_ended(self) -> None: ...

    def connection_opened(self, connection: Follower) -> None: ...

    def connection_closed(self, connection: Follower) -> None: ...


@runtime_checkable
class QueueRouter(Protocol):
    """An engine that shares queued streams between processes (the redis engine:
    ``runtime/ownership.py``, ``docs/engines.md`` "Controls routed to the owner")."""

    async def share_queued(self, session: Session, stream: Stream) -> None:
        """``stream`` waits in ``session``'s queue on this process: say so to the others."""

    async def route_queue(self, session: Session, action: str, stream_id: str,
                          position: int) -> None:
        """Apply ``queue_remove`` / ``queue_move`` (``action``) on the process holding
        ``stream_id`` queued. Raises ``StreamNotFound`` (none does), ``ControlNotDelivered``."""


class Watcher(Protocol):
    """Told when one of the session's streams starts or ends (a connection's
    :class:`~streamer.runtime.waiter.Waiter`, or what starts its follower)."""

    def wake(self) -> None: ...


class Follower(Protocol):
    """What a session knows of a connection that follows it (``connection.Connection``)."""

    @property
    def connection_id(self) -> str: ...

    @property
    def session_id(self) -> str: ...

    @property
    def cancel_scope(self) -> trio.CancelScope:
        """Cancelling it ends the connection."""

    def info(self) -> dict[str, Any]: ...

    async def close_after(self, ev: ServerEvent) -> None:
        """Send ``ev`` after what is queued, then close the connection cleanly."""

    async def handle_control(self, control: Control) -> None:
        """Apply a control message as if this connection had sent it (SSE's POST)."""


class Session:
    """A conversation: its history, the running stream and the queue behind it."""

    def __init__(self, host: Host, session_id: str, owner: Identity = ANONYMOUS,
                 key: str | None = None) -> None:
        self.host = host
        self.session_id = session_id
        #: the identity that created it: only it may connect, read, control or delete it
        self.owner = owner
        #: the registry's and the store's name for it (``session_id`` namespaced by owner)
        self.key = key or session_id
        self.created_at = time.time()
        self.history: list[Message] = []
        self.streams: dict[str, Stream] = {}
        self.current: Stream | None = None
        #: streams in the order they started (connections follow them in this order)
        self.started: list[Stream] = []
        #: streams waiting their turn, next first (a list: an empty deque costs 760 bytes a
        #: session, issue 16)
        self.queue: list[Stream] = []
        self.connections: set[Follower] = set()
        #: woken when a stream starts or ends (connections following the session wait on it)
        self.watchers: set[Watcher] = set()
        #: set by ``DELETE /api/sessions/{id}``: nothing of it is persisted any more
        self.deleted = False
        self.last_active = trio.current_time()
        self._holds = 0
        #: a runner task is running the queue (it ends when the queue is empty)
        self._runner_started = False

    def touch(self) -> None:
        self.last_active = trio.current_time()

    # ------------------------------------------------------------------ who keeps it

    def add_connection(self, connection: Follower) -> None:
        self.connections.add(connection)
        self.touch()

    def remove_connection(self, connection: Follower) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            self.touch()
            self._subscribers_changed()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """While the block runs, the session's streams count as watched (their grace period
        waits) and the session is not forgotten: a REST ``complete`` call, an AI SDK
        response."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self._subscribers_changed()

    @property
    def held(self) -> bool:
        return self._holds > 0

    def watched(self) -> bool:
        """A connection follows the session's current stream (even between attaching) or a
        holder waits for it."""
        return bool(self.connections) or self.held

    def _subscribers_changed(self) -> None:
        for stream in list(self.streams.values()):
            if stream.state == "running":
                stream.on_subscribers_changed()

    # ------------------------------------------------------------------ streams

    def _notify(self) -> None:
        for waiter in list(self.watchers):  # (a waker may leave the set)
            waiter.wake()

    def submit(self, start: Start) -> Stream:
        """Queue a new stream; it starts when the streams before it are done. A ``prompt``
        continues the session's conversation: when it begins, the history goes first, as much
        of it as fits the provider's budget (``streamer.runtime.history``).

        The server's policy (``host.policy``) admits ``start`` for the session's owner first:
        the stream runs with the admitted ``start`` (provider resolved, ``max_tokens``
        clamped) and charges the owner's daily budgets when it ends.

        Raises:
            PayloadTooLarge: the prompt and ``system`` alone pass ``streams.max_prompt_chars``.
            Forbidden: the policy does not allow the provider or model.
            QuotaExceeded: the owner's daily budget is spent.
            QueueFull: ``streams.max_queued`` streams are already waiting.
            RateLimited: the owner runs ``limits.max_streams_per_identity`` streams, or
                started ``limits.streams_per_minute`` in the last minute.
            ServerShuttingDown: the server is draining.
        """
        host, config = self.host, self.host.config
        if host.draining:
            raise ServerShuttingDown("the server is shutting down",
                                     retry_after_ms=config.server.shutdown_retry_after_ms)
        max_chars = config.streams.max_prompt_chars
        if len(start.system or "") + len(start.messages[-1].content) > max_chars:
            host.metrics.limit_hit("streams.max_prompt_chars")
            raise PayloadTooLarge(f"start: the prompt and system exceed {max_chars:,} characters")
        policy, owner = host.policy, self.owner
        counted = config.limits.max_streams_per_identity  # (0: no limit, nothing to count)
        host.limits.check_new_stream(owner.subject,
                                     host.active_streams(owner.subject) if counted else 0)
        admission = policy.admit(owner, start)
        start = admission.start
        if len(self.queue) >= config.streams.max_queued:
            host.metrics.limit_hit("streams.max_queued")
            raise QueueFull(f"{len(self.queue)} streams are already queued in this session",
                            retry_after_ms=1_000)
        services = host.stream_services()
        stream = Stream(self, start, services, admission, on_end=lambda done: policy.record(
            owner, len(done.markdown), tokens_of(done.usage)))
        stream.queued_behind = self.busy
        stream.trace.listener = host.metrics.stream_observer(stream.provider_name)
        try:
            stream.model = services.providers.get(stream.provider_name).model_for(
                stream.provider_request())
        except StreamerError:
            pass  # reported when the stream runs
        self.streams[stream.stream_id] = stream
        self.queue.append(stream)
        if not self._runner_started:
            self._runner_started = True
            host.start_task(self._runner, f"session {self.session_id}")
        return stream

    async def start(self, start: Start) -> Stream:
        """:meth:`submit`, once the limits every process shares admitted it (the redis
        engine counts the owner's streams and starts in Redis: ``ClientLimits.
        reserve_stream``; with the memory engine :meth:`submit` counts them here).

        Raises:
            RateLimited: as :meth:`submit`, counted over every process.
            (and the other errors of :meth:`submit`)
        """
        limits, subject = self.host.limits, self.owner.subject
        if limits.shared is None:
            stream = self.submit(start)
        else:
            token = await limits.reserve_stream(subject, self.host.active_streams(subject))
            try:
                stream = self.submit(start)
            except BaseException:
                limits.refund(token)
                raise
            limits.admitted(token, stream)
        engine = stream.services.engine
        if stream.queued_behind and isinstance(engine, QueueRouter):
            await engine.share_queued(self, stream)  # its queue controls may come elsewhere
        return stream

    def queue_position(self, stream: Stream) -> int:
        """How many streams run or wait before this one (0 = it is running)."""
        try:
            ahead = self.queue.index(stream)
        except ValueError:
            return 0
        running = self.current is not None and self.current.state == "running"
        return ahead + (1 if running else 0)

    def stop(self, stream_id: str | None) -> Stream | None:
        """``stop``: cancel the named (default: running) stream, or drop it from the queue;
        returns the stream asked to stop (its :meth:`Stream.stop_confirmed` waits for it).

        Raises:
            StreamNotFound: no such stream in this session.
        """
        if stream_id is None:
            if self.current is not None and self.current.state == "running":
                self.current.cancel("stop from client")
                return self.current
            return None
        stream = self.streams.get(stream_id)
        if stream is None:
            raise StreamNotFound(f"no stream {stream_id} in this session")
        # a queued stream stays in the queue, cancelled: its turn then ends it at once, so
        # every connection still sees its stream_start and stream_complete (cancelled)
        stream.cancel("stop from client")
        return stream

    def _queued(self, stream_id: str) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None or stream not in self.queue:
            raise StreamNotFound(f"no queued stream {stream_id} in this session")
        return stream

    def queue_remove(self, stream_id: str) -> None:
        """``queue_remove``: the queued stream ends (cancelled) without generating.

        Raises:
            StreamNotFound: the stream is not waiting in this session's queue.
        """
        self._queued(stream_id).cancel("removed from the queue")

    def queue_move(self, stream_id: str, position: int) -> None:
        """``queue_move``: put a queued stream at ``position`` (0 = next) among the waiting.

        Raises:
            StreamNotFound: the stream is not waiting in this session's queue.
        """
        stream = self._queued(stream_id)
        self.queue.remove(stream)
        self.queue.insert(min(position, len(self.queue)), stream)

    async def queue_control(self, action: str, stream_id: str, position: int = 0) -> None:
        """``queue_remove`` / ``queue_move`` (``action``) from a client: here, or (the redis
        engine) on the process whose queue holds the stream (its ``start`` went there).

        Raises:
            StreamNotFound: no process holds the stream queued in this session.
            ControlNotDelivered: the holder did not confirm in time (the redis engine).
        """
        try:
            if action == "queue_remove":
                self.queue_remove(stream_id)
            else:
                self.queue_move(stream_id, position)
        except StreamNotFound:
            engine = self.host.stream_services().engine
            if stream_id in self.streams or not isinstance(engine, QueueRouter):
                raise
            await engine.route_queue(self, action, stream_id, position)

    def stream_started(self, stream: Stream) -> None:
        """The stream runs now: connections following the session take it up."""
        self.current = stream
        self.started.append(stream)
        self._notify()

    async def _runner(self) -> None:
        """Run queued streams one after another (in the server nursery), then end: an idle
        session holds no task, so a forgotten or deleted session is freed (``submit``
        starts a new runner when work arrives)."""
        try:
            while self.queue and not self.host.closing:
                stream = self.queue.pop(0)
                try:
                    with log_context(session_id=self.session_id, stream_id=stream.stream_id):
                        await stream.run()
                except Exception:  # never let one stream's bug take the server nursery down
                    logger.exception("session %s: stream %s crashed", self.session_id,
                                     stream.stream_id)
                    stream.end_crashed()
                if stream.markdown and not self.deleted:
                    # what it continued (or its own conversation), its messages and answer;
                    # bounded: turns a request could never send again are let go
                    self.history = remember(self.history if stream.uses_history else (),
                                            stream.request.messages, stream.markdown,
                                            self.host.config.streams.max_prompt_chars)
                self._notify()
                self.touch()
        finally:
            self._runner_started = False

    @property
    def busy(self) -> bool:
        return bool(self.queue) or (self.current is not None and self.current.state == "running")

    def info(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "connections": len(self.connections),
                "current": self.current.info() if self.current else None,
                "queued": [s.stream_id for s in self.queue],
                "subscribers": [c.info() for c in self.connections]}
