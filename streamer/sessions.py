"""Sessions, streams and subscriptions: the lifetimes of ``docs/architecture.md``.

::

    Registry (server lifetime; owns the server nursery it is given)
    └── Session (a conversation; its runner task lives in the server nursery)
        └── Stream (one answer: provider → chunker → StreamLog; its own nursery and cancel
            scope, owned by the session, never by a connection)
    Connection (a socket; its tasks live in the transport's nursery)
    └── Subscription (connection x stream: log cursor → Pacer → connection.send)

A stream ends when it finishes, on ``stop``, on a provider error or timeout, when it grows
past ``max_response_chars``, when no subscriber has been there for ``grace_period_s``, when
every subscriber has held it back for ``paused_limit_s``, or at server drain. Each ending is
recorded with its reason in the stream's trace (``GET /api/streams/{id}/trace``) and logged.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from streamer.config import Config
from streamer.conversation import Message
from streamer.delivery.pacer import Pacer
from streamer.delivery.subscription import Subscription
from streamer.errors import (
    PausedTooLong,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    QueueFull,
    ResponseTooLarge,
    ResumeGap,
    ServerShuttingDown,
    StreamerError,
    StreamNotFound,
)
from streamer.log import resume
from streamer.log.stream_log import MemoryStreamLog
from streamer.persistence import MessageRecord, Store
from streamer.providers import (
    Finish,
    ProviderRequest,
    Providers,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    ToolRound,
    Usage,
)
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.tools import BUILTIN_TOOLS, Tools
from streamer.wire.controls import (
    Pause,
    Ping,
    QueueMove,
    QueueRemove,
    Resume,
    ResumeFrom,
    Skip,
    Speed,
    Start,
    Stop,
)
from streamer.wire.cursor import Cursor, event_id
from streamer.wire.events import (
    Error,
    Pong,
    Reasoning,
    Retrying,
    ServerEvent,
    Snapshot,
    State,
    StreamComplete,
    StreamStart,
    ToolCall,
)

logger = logging.getLogger("streamer.sessions")

#: after cancelling the streams at drain, how long their subscribers get to deliver the end (s)
CANCEL_GRACE_S = 2.0
#: the longest a stream's final save may take before it is given up (logged) (s)
PERSIST_TIMEOUT_S = 10.0

#: delivers one event's JSON object and its SSE id (``None``: not part of a stream's sequence)
SendFn = Callable[[dict[str, Any], str | None], Awaitable[None]]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


class Waiter:
    """A re-armable wake-up flag for one task (the log and controls call :meth:`wake`)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = trio.Event()


@dataclass(slots=True)
class TraceEntry:
    t_ms: float
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


class Stream:
    """One generated answer. Created queued; :meth:`run` generates it in the session's task.

    Attributes:
        stream_id: the stream's id (``s_…``).
        log: its seq-numbered ops and terminal events.
        state: ``queued``, ``running`` or ``done``.
        finish_reason: ``stop``, ``length``, ``cancelled`` or ``error`` once done.
    """

    def __init__(self, session: Session, request: Start) -> None:
        self.session = session
        self.request = request
        self.stream_id = new_id("s")
        self.log = MemoryStreamLog(self.stream_id)
        self.state = "queued"
        self.provider_name = request.provider or session.registry.config.providers.default
        self.model = ""
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.created_at = time.time()
        self._t0 = trio.current_time()
        self.trace: list[TraceEntry] = []
        self.subscribers: set[Subscription] = set()
        self.cancel_scope = trio.CancelScope()
        self.cancel_reason: tuple[str, StreamerError | None] | None = None
        self._progress = Waiter()
        self._subscribers_changed = Waiter()
        self.markdown = ""
        self.html = ""
        #: the finished document's blocks (a snapshot source once the log is evicted)
        self.final_blocks: list[str] = []
        self._chunker: Chunker | None = None
        #: the provider has produced output (text, reasoning or a tool call): no more retries
        self._first_output = False
        #: the tools this stream offers the model, and its rounds of tool use so far
        self.tools = session.registry.tools.select(request.tools)
        self._rounds: tuple[ToolRound, ...] = ()
        self._step_calls: list[ToolCallComplete] = []
        self._step_text: list[str] = []
        self._separate = False
        self.done = trio.Event()
        #: another stream was running or waiting when this one was submitted
        self.queued_behind = False
        self.record("queued", provider=self.provider_name)

    # ------------------------------------------------------------------ trace

    def record(self, name: str, **detail: Any) -> None:
        """Add a trace entry (ms since the stream was created) and log it."""
        t_ms = round((trio.current_time() - self._t0) * 1000, 3)
        self.trace.append(TraceEntry(t_ms, name, detail))
        logger.info("stream %s %s %s", self.stream_id, name, detail or "")

    # ------------------------------------------------------------------ control

    def cancel(self, reason: str, error: StreamerError | None = None) -> None:
        """End the stream: generation is cancelled at once; the partial answer is kept.

        Args:
            reason: why, for the trace (``stop from client``, ``grace period over``, …).
            error: the error subscribers are told, if the cancellation is a failure.
        """
        if self.state == "done" or self.cancel_reason is not None:
            return
        self.cancel_reason = (reason, error)
        self.record("cancel_requested", reason=reason)
        self.cancel_scope.cancel()

    @property
    def session_id(self) -> str:
        return self.session.session_id

    def start_event(self, *, resumed: bool) -> StreamStart:
        """The ``stream_start`` a subscriber gets (``resumed``: it has part of it already)."""
        return StreamStart(self.session.session_id, self.stream_id, self.provider_name,
                           self.model, resumed=resumed)

    def attach(self, sub: Subscription) -> None:
        self.subscribers.add(sub)
        self.log.attach(sub.waiter)
        self.record("subscriber_joined", connection=sub.reader_id,
                    subscribers=len(self.subscribers))
        self._subscribers_changed.wake()

    def detach(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            self.log.detach(sub.waiter)
            if self.state != "done":
                self.record("subscriber_left", connection=sub.reader_id,
                            subscribers=len(self.subscribers))
            self._subscribers_changed.wake()
            self._progress.wake()

    def on_subscribers_changed(self) -> None:
        self._subscribers_changed.wake()

    def on_subscriber_progress(self) -> None:
        self._progress.wake()

    def _all_behind(self) -> bool:
        limit = self.session.registry.config.streams.backpressure_chars
        total = self.log.total_chars
        return bool(self.subscribers) and all(
            total - sub.delivered_total > limit for sub in self.subscribers)

    # ------------------------------------------------------------------ generation

    def snapshot(self) -> tuple[int, list[str]]:
        """The document as of the latest ``seq``: ``(seq, blocks)`` (from the log, or the
        final blocks once the log is evicted)."""
        if self.log.evicted:
            return self.log.last_seq, list(self.final_blocks)
        return self.log.snapshot()

    def provider_request(self, rounds: tuple[ToolRound, ...] = ()) -> ProviderRequest:
        req = self.request
        return ProviderRequest(messages=req.messages, system=req.system, model=req.model,
                               max_tokens=req.max_tokens, temperature=req.temperature,
                               echo=req.echo, tools=self.tools, tool_rounds=rounds)

    async def run(self) -> None:
        """Generate the answer into the log. Never raises for the stream's own failures."""
        registry = self.session.registry
        config = registry.config
        chunker = self._chunker = Chunker(registry.renderer)
        provider = None
        error: StreamerError | None = None
        finish: str = "stop"
        self.state = "running"
        started = trio.current_time()
        try:
            provider = registry.providers.get(self.provider_name)
            self.model = provider.model_for(self.provider_request())
        except StreamerError as exc:
            error, finish = exc, "error"
        self.record("started", provider=self.provider_name, model=self.model)
        self.session.broadcast_stream_start(self)
        if provider is not None:
            with self.cancel_scope:
                async with trio.open_nursery() as nursery:  # the stream's nursery
                    nursery.start_soon(self._watch_subscribers)
                    if registry.store is not None:
                        nursery.start_soon(self._checkpoints, registry.store)
                    try:
                        finish = await self._answer(provider, chunker, config)
                    except StreamerError as exc:
                        error, finish = exc, "error"
                        self.record("error", code=exc.code, message=exc.message)
                    except Exception as exc:  # a bug: end this stream, keep the others
                        logger.exception("stream %s failed", self.stream_id)
                        error, finish = StreamerError(f"internal error: {exc!r}"), "error"
                        self.record("error", code="internal_error", message=repr(exc))
                    finally:
                        nursery.cancel_scope.cancel()
            if self.cancel_reason is not None:
                reason, cancel_error = self.cancel_reason
                finish = "error" if cancel_error is not None else "cancelled"
                error = cancel_error or error
                self.record("cancelled", reason=reason)
        for op in chunker.close():
            self.log.append(op)
        self.markdown = chunker.markdown
        self.html = chunker.html
        self.finish_reason = finish
        duration_ms = round((trio.current_time() - started) * 1000)
        complete = StreamComplete(self.session.session_id, self.stream_id, finish, self.html,
                                  self.markdown, self.usage, self.stream_id, duration_ms)
        err_event = None
        if error is not None:
            err_event = Error.of(error, session_id=self.session.session_id,
                                 stream_id=self.stream_id)
        self.final_blocks = list(chunker.blocks)
        self.state = "done"
        self.log.finish(complete, err_event)
        registry.on_stream_finished(self)
        if registry.store is not None:
            # the partial or finished answer outlives the process; shielded so a drain's
            # cancellation cannot lose it, bounded so a stuck disk cannot hold the session
            with trio.CancelScope(shield=True), trio.move_on_after(PERSIST_TIMEOUT_S):
                await self._persist(registry.store)
        self.done.set()
        self.session.registry.activity.wake()
        self.record("completed", finish_reason=finish, chars=len(self.markdown),
                    seq=self.log.last_seq, duration_ms=duration_ms)

    def _tool_event(self, ev: ToolCall) -> None:
        self.log.append_event(ev)

    async def _answer(self, provider: Any, chunker: Chunker, config: Config) -> str:
        """Generate, and while the model asks for tools, run them and let it continue (at
        most ``tools.max_steps`` rounds). Returns the finish reason."""
        max_steps = config.tools.max_steps
        offered = {tool.name: tool for tool in self.tools}
        sid = self.session.session_id
        for step in range(max_steps + 1):
            self._first_output = False
            self._step_calls, self._step_text = [], []
            finish = await self._generate(provider, chunker, config)
            if finish != "tool_calls" or not self._step_calls:
                return "stop" if finish == "tool_calls" else finish
            if step == max_steps:
                self.record("tool_steps_exhausted", steps=max_steps)
                return "stop"
            results = []
            for call in self._step_calls:
                self.record("tool_started", tool=call.name, call_id=call.call_id)
                result = await Tools.call(offered.get(call.name), call.call_id, call.name,
                                          call.arguments)
                self.record("tool_finished", tool=call.name, call_id=call.call_id,
                            is_error=result.is_error)
                self._tool_event(ToolCall.answered(sid, self.stream_id, call.call_id, call.name,
                                                   result.content, result.is_error))
                results.append(result)
            self._rounds = (*self._rounds, ToolRound("".join(self._step_text),
                                                     tuple(self._step_calls), tuple(results)))
            self._separate = chunker.markdown_chars > 0
        return "stop"  # pragma: no cover - the loop returns

    async def _generate(self, provider: Any, chunker: Chunker, config: Config) -> str:
        """Run the model call, retrying before the first token (never after: text would be
        doubled). Returns the finish reason; raises the last :class:`StreamerError`."""
        streams = config.streams
        budget_end = trio.current_time() + streams.provider_retry_budget_s
        attempt = 0
        while True:
            try:
                return await self._generate_once(provider, chunker, config)
            except ProviderError as exc:
                if self._first_output and type(exc) in (ProviderUnavailable, ProviderRateLimited):
                    # after the first token a failure ends the answer: provider_error
                    raise ProviderError(exc.message, retryable=exc.retryable) from exc
                if (self._first_output or not exc.retryable or isinstance(exc, ProviderTimeout)
                        or attempt >= streams.provider_retries):
                    raise
                if exc.retry_after_ms is not None:  # the provider said when (retry-after)
                    delay_s = exc.retry_after_ms / 1000
                else:  # exponential backoff, full jitter (AWS architecture blog, 2015)
                    delay_s = random.uniform(
                        0, streams.provider_retry_base_ms / 1000 * 2 ** attempt)
                if trio.current_time() + delay_s > budget_end:
                    raise
                attempt += 1
                retry_in_ms = round(delay_s * 1000)
                self.record("retry", attempt=attempt, code=exc.code, retry_in_ms=retry_in_ms,
                            message=exc.message)
                self.log.append_event(Retrying(self.session.session_id, self.stream_id, attempt,
                                               retry_in_ms, exc.code, exc.message))
                await trio.sleep(delay_s)

    async def _generate_once(self, provider: Any, chunker: Chunker, config: Config) -> str:
        streams = config.streams
        finish = "stop"
        sid = self.session.session_id
        async with provider.stream(self.provider_request(self._rounds)) as events:
            self.record("provider_call_opened")
            try:
                while True:
                    limit_s = (streams.provider_timeout_s if self._first_output
                               else streams.provider_ttft_timeout_s)
                    with trio.move_on_after(limit_s) as timeout:
                        try:
                            item = await events.receive()
                        except trio.EndOfChannel:
                            break
                    if timeout.cancelled_caught:
                        what = "between tokens" if self._first_output else "before the first token"
                        raise ProviderTimeout(
                            f"{self.provider_name}: no data for {limit_s:g} s {what}")
                    if isinstance(item, TextDelta | ReasoningDelta | ToolCallStart) \
                            and not self._first_output:
                        self._first_output = True
                        self.record("first_token")
                    if isinstance(item, TextDelta):
                        self._step_text.append(item.text)
                        if self._separate:  # the answer goes on after a round of tools
                            self._separate = False
                            item = TextDelta("\n\n" + item.text)
                        if chunker.markdown_chars + len(item.text) > streams.max_response_chars:
                            room = streams.max_response_chars - chunker.markdown_chars
                            if room > 0:
                                self.log.append_source(item.text[:room])
                            for op in chunker.feed(item.text[:max(0, room)]):
                                self.log.append(op)
                            raise ResponseTooLarge(
                                f"the answer exceeds {streams.max_response_chars} characters")
                        self.log.append_source(item.text)
                        for op in chunker.feed(item.text):
                            self.log.append(op)
                        await self._backpressure(streams.paused_limit_s)
                    elif isinstance(item, ReasoningDelta):
                        self.log.append_event(Reasoning(sid, self.stream_id, item.text))
                    elif isinstance(item, ToolCallStart):
                        self._tool_event(ToolCall.started(sid, self.stream_id, item.call_id,
                                                          item.name))
                    elif isinstance(item, ToolCallDelta):
                        self._tool_event(ToolCall.delta(sid, self.stream_id, item.call_id,
                                                        item.arguments_delta))
                    elif isinstance(item, ToolCallComplete):
                        self._step_calls.append(item)
                        self._tool_event(ToolCall.complete(sid, self.stream_id, item.call_id,
                                                           item.name, item.arguments))
                    elif isinstance(item, Usage):
                        self.usage = {"input_tokens": item.input_tokens,
                                      "output_tokens": item.output_tokens, "unit": item.unit}
                    elif isinstance(item, Finish):
                        finish = item.reason
            finally:
                self.record("provider_call_closed")
        return finish

    def records(self) -> list[MessageRecord]:
        """The stream's user message and its answer (partial while running), for the store."""
        session_id = self.session.session_id
        out = []
        last = self.request.messages[-1] if self.request.messages else None
        if last is not None and last.role == "user":
            out.append(MessageRecord(f"{self.stream_id}_u", session_id, "user", last.content,
                                     created_at=self.created_at,
                                     completed_at=self.created_at))
        chunker = self._chunker
        done = self.state == "done"
        markdown = self.markdown if done or chunker is None else chunker.markdown
        blocks = self.final_blocks if done or chunker is None else list(chunker.blocks)
        out.append(MessageRecord(
            self.stream_id, session_id, "assistant", markdown,
            html=self.html if done else "".join(blocks), blocks=blocks,
            provider=self.provider_name, model=self.model, usage=self.usage,
            finish_reason=self.finish_reason if done else None, last_seq=self.log.last_seq,
            created_at=self.created_at, completed_at=time.time() if done else None))
        return out

    async def _persist(self, store: Store) -> None:
        if self.session.deleted:
            return
        try:
            await store.save_messages(self.records())
        except Exception:  # a disk problem must not end the stream or the server
            logger.exception("stream %s: could not persist the answer", self.stream_id)

    async def _checkpoints(self, store: Store) -> None:
        """Save the user message at once, then the partial answer every checkpoint interval."""
        interval_s = self.session.registry.config.persistence.checkpoint_interval_s
        saved_seq = -1
        while True:
            if self.log.last_seq != saved_seq:
                saved_seq = self.log.last_seq
                await self._persist(store)
            await trio.sleep(interval_s)

    async def _backpressure(self, limit_s: float) -> None:
        """Stop reading the provider while every subscriber is too far behind."""
        if not self._all_behind():
            return
        self.record("backpressure", subscribers=len(self.subscribers))
        with trio.move_on_after(limit_s) as scope:
            while self._all_behind():
                await self._progress.wait()
        if scope.cancelled_caught:
            raise PausedTooLong(
                f"every subscriber held the stream back for {limit_s:g} s")
        self.record("backpressure_released")

    async def _watch_subscribers(self) -> None:
        """Cancel the stream once it has had no subscriber for ``grace_period_s``."""
        grace_s = self.session.registry.config.streams.grace_period_s
        session = self.session

        def watched() -> bool:
            # a connection of the session follows its current stream, even between attaching
            return bool(self.subscribers or session.connections or session.pinned)

        while True:
            while watched():
                await self._subscribers_changed.wait()
            with trio.move_on_after(grace_s):
                while not watched():
                    await self._subscribers_changed.wait()
                continue
            self.cancel(f"no subscriber for {grace_s:g} s")
            return

    def info(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "state": self.state, "provider": self.provider_name,
                "model": self.model, "finish_reason": self.finish_reason,
                "seq": self.log.last_seq, "subscribers": len(self.subscribers)}


class Connection:
    """One client connection (WebSocket or SSE) to a session.

    The transport owns the nursery; it runs :meth:`follow` there and delivers what
    :meth:`send` queues (``outbox``: bounded, so a slow client blocks only its own tasks).
    """

    def __init__(self, session: Session, transport: str, send: SendFn) -> None:
        self.session = session
        self.registry = session.registry
        self.transport = transport
        self.connection_id = new_id("c")
        self._send = send
        self.subscription: Subscription | None = None
        #: the stream :attr:`subscription` follows
        self.stream: Stream | None = None
        self.followed: set[str] = set()
        #: where to resume following (set by the transport from the URL, or by ``resume``)
        self.resume: Cursor | None = None
        self._follow_scope: trio.CancelScope | None = None
        #: set by the transport: cancelling it ends the connection's tasks
        self.cancel_scope = trio.CancelScope()
        #: set by the transport: ``None`` sent here makes the writer close the connection
        self.close_outbox: trio.MemorySendChannel[Any] | None = None
        #: set by the transport: events waiting in its outbox
        self.queued_events: Callable[[], int] = lambda: 0

    def info(self) -> dict[str, Any]:
        """What this connection holds: its cursor and queued events (memory is bounded by
        the outbox; a paused or slow client keeps only its cursor into the shared log)."""
        sub = self.subscription
        return {"connection_id": self.connection_id, "transport": self.transport,
                "stream_id": sub.stream.stream_id if sub else None,
                "seq": sub.cursor.seq if sub else None,
                "paused": sub.pacer.paused if sub else False,
                "queued_events": self.queued_events()}

    async def close_after(self, ev: ServerEvent) -> None:
        """Send ``ev`` after what is queued, then close the connection cleanly."""
        with trio.move_on_after(self.registry.config.server.send_timeout_s):
            await self.send(ev, None)
            if self.close_outbox is not None:
                await self.close_outbox.send(None)
                return
        self.cancel_scope.cancel()

    async def send(self, ev: ServerEvent, event_id: str | None) -> None:
        """Send one event (its JSON object goes to the transport's send function)."""
        await self._send(ev.to_json(), event_id)

    async def follow(self) -> None:
        """Follow the session's streams in the order they started, for the connection's life.

        A connection that arrives during a stream joins it late (a ``snapshot``, then live
        events); every later stream is delivered from its first ``seq``, even if this
        connection is still busy with an earlier one (paused, slow) when it starts. With a
        resume cursor (:attr:`resume`, or a ``resume`` message, which restarts following),
        the cursor's stream continues exactly after its ``seq``, or after a ``resume_gap``
        error and a ``snapshot`` when that cannot be exact (protocol.md, "Resume").
        """
        while True:
            cursor, self.resume = self.resume, None
            with trio.CancelScope() as scope:
                self._follow_scope = scope
                await self._follow(cursor)
                return
            if not scope.cancelled_caught:  # pragma: no cover - the scope's own cancel only
                return

    async def _follow(self, cursor: Cursor | None) -> None:
        session = self.session
        waiter = Waiter()
        session.watchers.add(waiter)
        index = max(0, len(session.started) - 1)
        first_cursor: int | None = None  # the first stream's start: None = snapshot
        resumed = False
        if cursor is not None:
            index, first_cursor, resumed = await self._resume_point(cursor)
        first = True
        try:
            while True:
                if index < len(session.started):
                    stream = session.started[index]
                    index += 1
                    if first:
                        start = first_cursor if (cursor is not None or stream.log.last_seq
                                                 ) else 0
                    else:
                        start = 0
                    resumed_here = first and resumed
                    first = False
                    self.followed.add(stream.stream_id)
                    await self.deliver(stream, start, resumed_here)
                    continue
                await waiter.wait()
        finally:
            session.watchers.discard(waiter)

    async def deliver(self, stream: Stream, after_seq: int | None, resumed: bool) -> None:
        """Follow one stream to its end: a :class:`Subscription`, registered while it runs."""
        registry = self.registry
        pacing, defaults = stream.request.pacing, registry.config.pacing
        pacer = Pacer(pacing.mode or defaults.mode, pacing.cps or defaults.cps,
                      max_lag_s=defaults.max_lag_s, frame_interval_s=registry.frame_interval_s(),
                      min_cps=defaults.min_cps, max_cps=defaults.max_cps)
        sub = Subscription(stream, after_seq, pacer=pacer, send=self.send, waiter=Waiter(),
                           epoch=registry.epoch, frame_interval_s=registry.frame_interval_s,
                           progress_interval_s=defaults.progress_interval_ms / 1000,
                           resumed=resumed, reader_id=self.connection_id)
        stream.attach(sub)
        self.subscription, self.stream = sub, stream
        registry.active_subscriptions += 1
        try:
            await sub.run()
        finally:
            registry.active_subscriptions -= 1
            registry.activity.wake()
            if self.subscription is sub:
                self.subscription, self.stream = None, None
            stream.detach(sub)

    async def _resume_point(self, cursor: Cursor) -> tuple[int, int | None, bool]:
        """Where following starts for a resume cursor: ``(index in session.started, the
        first stream's cursor (None = snapshot), resumed)``. Sends ``resume_gap`` (and, for a
        stream only the database still has, its ``snapshot`` and ``stream_complete``)
        when the replay cannot be exact, ``stream_not_found`` when the stream is unknown."""
        session, registry = self.session, self.registry
        sid = session.session_id
        stream = session.streams.get(cursor.stream_id)
        started = stream is not None and stream in session.started
        record = None
        if registry.store is not None and stream is None:
            record = await registry.store.message(cursor.stream_id)
        decision = resume.plan(cursor, stream.log if stream is not None and started else None,
                               registry.epoch, record, sid)
        if stream is not None and started:
            index = session.started.index(stream)
            if isinstance(decision, resume.Exact):
                if decision.ended:
                    return index + 1, 0, False  # the client has all of it: on to later streams
                stream.record("resumed", connection=self.connection_id, seq=cursor.last_seq)
                return index, cursor.last_seq, True
            assert isinstance(decision, resume.Gap)
            stream.record("resume_gap", connection=self.connection_id, seq=cursor.last_seq)
            await self.send(Error.of(ResumeGap(
                f"cannot replay stream {cursor.stream_id} after seq {cursor.last_seq}:"
                f" {decision.why}; a snapshot follows"), session_id=sid,
                stream_id=cursor.stream_id), None)
            return index, None, True
        if isinstance(decision, resume.Stored):
            assert record is not None
            # a stream of an earlier server process (or evicted from memory): its stored answer
            await self.send(Error.of(ResumeGap(
                f"stream {cursor.stream_id} is not in this server's memory; the stored answer "
                "follows as a snapshot"), session_id=sid, stream_id=cursor.stream_id), None)
            ev_id = event_id(cursor.stream_id, registry.epoch, record.last_seq)
            end_id = event_id(cursor.stream_id, registry.epoch, record.last_seq + 1)
            await self.send(StreamStart(sid, cursor.stream_id, record.provider, record.model,
                                        resumed=True), None)
            await self.send(Snapshot(sid, cursor.stream_id, record.last_seq, registry.epoch,
                                     record.blocks or []), ev_id)
            await self.send(StreamComplete(sid, cursor.stream_id,
                                           record.finish_reason or "error",
                                           record.html or "", record.markdown, record.usage,
                                           record.message_id, None), end_id)
            return 0, 0, False
        await self.send(Error.of(StreamNotFound(
            f"no stream {cursor.stream_id} in session {sid} to resume"),
            session_id=sid, stream_id=cursor.stream_id), None)
        return max(0, len(session.started) - 1), None, False

    async def handle_control(self, control: Any) -> None:
        """Apply one parsed control message from this connection (WebSocket or SSE POST)."""
        session = self.session
        sid = session.session_id
        if isinstance(control, Start):
            stream = session.submit(control)
            if stream.queued_behind:
                await self.send(StreamStart(sid, stream.stream_id, stream.provider_name,
                                            stream.model, queued=True,
                                            position=session.queue_position(stream)), None)
            return
        if isinstance(control, Stop):
            session.stop(control.stream_id)
            return
        if isinstance(control, Ping):
            await self.send(Pong(sid, control.ts), None)
            return
        if isinstance(control, QueueRemove):
            session.queue_remove(control.stream_id)
            return
        if isinstance(control, QueueMove):
            session.queue_move(control.stream_id, control.position)
            return
        sub, stream = self.subscription, self.stream
        if isinstance(control, Pause | Skip | Speed | Resume):
            if sub is None or stream is None:
                # nothing to deliver now; tell the client where it stands
                await self.send(State(sid, "streaming", None), None)
                return
            if isinstance(control, Pause):
                state = sub.pause()
            elif isinstance(control, Skip):
                state = sub.skip()
            elif isinstance(control, Speed):
                state = sub.speed(control.cps)
            else:
                state = sub.resume()
            stream.record("control", connection=self.connection_id, state=state)
            await self.send(State(sid, state, sub.pacer.cps, stream.stream_id), None)
            return
        if isinstance(control, ResumeFrom):
            # restart following from the client's cursor (the current subscription ends)
            self.resume = control.cursor
            if self._follow_scope is not None:
                self._follow_scope.cancel()
            return
        raise StreamNotFound("unsupported control")  # pragma: no cover


class Session:
    """A conversation: its history, the running stream and the queue behind it."""

    def __init__(self, registry: Registry, session_id: str) -> None:
        self.registry = registry
        self.session_id = session_id
        self.created_at = time.time()
        self.history: list[Message] = []
        self.streams: dict[str, Stream] = {}
        self.current: Stream | None = None
        #: streams in the order they started (connections follow them in this order)
        self.started: list[Stream] = []
        self.queue: deque[Stream] = deque()
        self.connections: set[Connection] = set()
        self.watchers: set[Waiter] = set()
        #: non-socket holders (a REST ``complete`` call waiting for its answer)
        self.pinned = 0
        #: set by ``DELETE /api/sessions/{id}``: nothing of it is persisted any more
        self.deleted = False
        self.last_active = trio.current_time()
        self._runner_wakeup = Waiter()
        self._runner_started = False

    def touch(self) -> None:
        self.last_active = trio.current_time()

    def add_connection(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.registry.connections += 1
        self.touch()

    def remove_connection(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            self.registry.connections -= 1
            self.touch()
            for stream in list(self.streams.values()):
                if stream.state == "running":
                    stream.on_subscribers_changed()

    def _notify(self) -> None:
        for waiter in self.watchers:
            waiter.wake()

    def submit(self, start: Start) -> Stream:
        """Queue a new stream; it starts when the streams before it are done.

        Raises:
            QueueFull: ``streams.max_queued`` streams are already waiting.
            ServerShuttingDown: the server is draining.
        """
        registry = self.registry
        if registry.draining:
            raise ServerShuttingDown("the server is shutting down",
                                     retry_after_ms=registry.config.server.shutdown_retry_after_ms)
        if len(self.queue) >= registry.config.streams.max_queued:
            raise QueueFull(f"{len(self.queue)} streams are already queued in this session",
                            retry_after_ms=1_000)
        if start.messages and len(start.messages) == 1:
            start = _with_history(start, self.history)
        stream = Stream(self, start)
        stream.queued_behind = self.busy
        try:
            stream.model = registry.providers.get(stream.provider_name).model_for(
                stream.provider_request())
        except StreamerError:
            pass  # reported when the stream runs
        self.streams[stream.stream_id] = stream
        self.queue.append(stream)
        if not self._runner_started:
            self._runner_started = True
            registry.nursery.start_soon(self._runner, name=f"session {self.session_id}")
        self._runner_wakeup.wake()
        return stream

    def queue_position(self, stream: Stream) -> int:
        """How many streams run or wait before this one (0 = it is running)."""
        try:
            ahead = list(self.queue).index(stream)
        except ValueError:
            return 0
        running = self.current is not None and self.current.state == "running"
        return ahead + (1 if running else 0)

    def stop(self, stream_id: str | None) -> None:
        """``stop``: cancel the named (default: running) stream, or drop it from the queue.

        Raises:
            StreamNotFound: no such stream in this session.
        """
        if stream_id is None:
            if self.current is not None and self.current.state == "running":
                self.current.cancel("stop from client")
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            raise StreamNotFound(f"no stream {stream_id} in this session")
        # a queued stream stays in the queue, cancelled: its turn then ends it at once, so
        # every connection still sees its stream_start and stream_complete (cancelled)
        stream.cancel("stop from client")

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

    def broadcast_stream_start(self, stream: Stream) -> None:
        self.current = stream
        self.started.append(stream)
        self._notify()

    async def _runner(self) -> None:
        """Run queued streams one after another (in the server nursery)."""
        while not self.registry.closing:
            while not self.queue:
                await self._runner_wakeup.wait()
            stream = self.queue.popleft()
            try:
                await stream.run()
            except Exception:  # never let one stream's bug take the server nursery down
                logger.exception("session %s: stream %s crashed", self.session_id,
                                 stream.stream_id)
                if not stream.log.finished:
                    stream.state = "done"
                    stream.finish_reason = "error"
                    stream.log.finish(StreamComplete(
                        self.session_id, stream.stream_id, "error", stream.html,
                        stream.markdown, None, stream.stream_id, None))
                    stream.done.set()
            if stream.markdown:
                self.history.extend(stream.request.messages[len(self.history):])
                self.history.append(Message("assistant", stream.markdown))
            self._notify()
            self.touch()

    @property
    def busy(self) -> bool:
        return bool(self.queue) or (self.current is not None and self.current.state == "running")

    def info(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "connections": len(self.connections),
                "current": self.current.info() if self.current else None,
                "queued": [s.stream_id for s in self.queue],
                "subscribers": [c.info() for c in self.connections]}


def _with_history(start: Start, history: list[Message]) -> Start:
    """A ``prompt`` continues the session's conversation: prepend its history."""
    if not history:
        return start
    from dataclasses import replace
    return replace(start, messages=(*history, *start.messages))


class Registry:
    """All sessions of the process, plus the shared, expensive objects built once."""

    def __init__(self, config: Config, providers: Providers | None = None,
                 renderer: Renderer | None = None) -> None:
        from streamer.render.markdown import RenderConfig
        self.config = config
        self.providers = providers or Providers(config.providers)
        #: tools the model may call; embedding applications register theirs here
        self.tools = Tools(BUILTIN_TOOLS if config.tools.builtin else [])
        self.renderer = renderer or Renderer(RenderConfig(allow_images=config.render.allow_images))
        self.sessions: dict[str, Session] = {}
        self.live_connections: set[Connection] = set()
        #: woken whenever a stream or a subscription ends (drain waits on it)
        self.activity = Waiter()
        self.active_subscriptions = 0
        self.connections = 0
        self.draining = False
        self.closing = False
        self.started_at = time.time()
        self._nursery: trio.Nursery | None = None
        #: names this process's in-memory logs: a cursor from another epoch cannot replay
        self.epoch = secrets.token_hex(4)
        #: the SQLite store (``None``: persistence off), opened by the app at start-up
        self.store: Store | None = None
        #: finished streams whose logs are still in memory, oldest first (replay window)
        self._finished: dict[str, tuple[float, Stream]] = {}

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the registry is not running (no server nursery)")
        return self._nursery

    def bind(self, nursery: trio.Nursery) -> None:
        """Give the registry the server nursery its session tasks live in."""
        self._nursery = nursery

    def frame_interval_s(self) -> float:
        """Least time between frames to one connection, raised under load.

        ``max(frame_interval_ms, active subscriptions / frame_budget_per_s)``: the process
        sends about ``frame_budget_per_s`` frames per second at most, whatever the number
        of streams; each frame then carries more characters.
        """
        pacing = self.config.pacing
        return max(pacing.frame_interval_ms / 1000,
                   self.active_subscriptions / pacing.frame_budget_per_s)

    async def open_session(self, session_id: str | None = None) -> Session:
        """:meth:`get_or_create`, loading a known session's history from the store first."""
        if session_id is not None and session_id not in self.sessions \
                and self.store is not None:
            records = await self.store.messages(session_id)
            session = self.get_or_create(session_id)
            if not session.history:
                session.history = [Message(r.role, r.markdown) for r in records
                                   if r.markdown]
            return session
        return self.get_or_create(session_id)

    def on_stream_finished(self, stream: Stream) -> None:
        """Keep the finished log for the replay window; evict the oldest beyond the limit."""
        self._finished[stream.stream_id] = (trio.current_time(), stream)
        self.evict_finished_logs()

    def evict_finished_logs(self) -> None:
        """Drop finished logs past ``resume.window_s`` or beyond ``resume.max_finished_logs``
        (those clients still follow are kept until they leave)."""
        resume = self.config.resume
        deadline = trio.current_time() - resume.window_s
        excess = len(self._finished) - resume.max_finished_logs
        for stream_id, (finished_at, stream) in list(self._finished.items()):
            if finished_at > deadline and excess <= 0:
                break
            if stream.subscribers:
                continue
            stream.log.evict()
            del self._finished[stream_id]
            excess -= 1

    async def housekeeping(self) -> None:
        """Every minute (or sooner for short windows): evict finished logs past the replay
        window and purge stored sessions past ``persistence.retention_days``."""
        interval_s = max(0.05, min(60.0, self.config.resume.window_s / 4))
        retention_s = self.config.persistence.retention_days * 86_400
        last_purge = -math.inf
        while True:
            self.evict_finished_logs()
            now = trio.current_time()
            if self.store is not None and retention_s > 0 and now - last_purge >= 3_600:
                last_purge = now
                try:
                    purged = await self.store.purge(retention_s)
                except Exception:
                    logger.exception("purging old sessions failed")
                else:
                    if purged:
                        logger.info("purged %d sessions older than %g days", purged,
                                    self.config.persistence.retention_days)
            await trio.sleep(interval_s)

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session: cancel its streams, close its connections, delete it from the
        store. Returns ``False`` if neither memory nor the store knew it."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.deleted = True
            for stream in list(session.streams.values()):
                stream.cancel("session deleted")
            for connection in list(session.connections):
                connection.cancel_scope.cancel()
            for stream_id in list(session.streams):
                self._finished.pop(stream_id, None)
        stored = False
        if self.store is not None:
            if session is not None:
                # let cancelled streams write their last checkpoint before the delete
                with trio.move_on_after(PERSIST_TIMEOUT_S):
                    for stream in list(session.streams.values()):
                        if stream.state == "running":
                            await stream.done.wait()
            stored = await self.store.delete_session(session_id)
        return session is not None or stored

    def get_or_create(self, session_id: str | None = None) -> Session:
        session_id = session_id or new_id("sess")
        session = self.sessions.get(session_id)
        if session is None:
            session = Session(self, session_id)
            self.sessions[session_id] = session
        session.touch()
        return session

    def find_stream(self, stream_id: str) -> Stream | None:
        for session in self.sessions.values():
            stream = session.streams.get(stream_id)
            if stream is not None:
                return stream
        return None

    def running_streams(self) -> list[Stream]:
        return [s.current for s in self.sessions.values()
                if s.current is not None and s.current.state == "running"]

    async def reap_idle_sessions(self) -> None:
        """Forget sessions with no connection and no stream for ``session_idle_timeout_s``."""
        timeout_s = self.config.server.session_idle_timeout_s
        while True:
            await trio.sleep(max(1.0, timeout_s / 10))
            now = trio.current_time()
            for session_id, session in list(self.sessions.items()):
                if not session.connections and not session.busy and not session.pinned \
                        and now - session.last_active > timeout_s:
                    del self.sessions[session_id]

    async def drain(self, timeout_s: float) -> None:
        """Refuse new streams, let running ones finish for ``timeout_s``, then cancel them."""
        self.draining = True
        with trio.move_on_after(timeout_s):
            while self.running_streams() or any(s.queue for s in self.sessions.values()):
                await self.activity.wait()
        for session in self.sessions.values():
            for stream in list(session.queue):
                stream.cancel("server shutdown")
            session.queue.clear()
        shutting_down = ServerShuttingDown(
            "the server is shutting down",
            retry_after_ms=self.config.server.shutdown_retry_after_ms)
        for stream in self.running_streams():
            stream.cancel("server shutdown", shutting_down)
        with trio.move_on_after(CANCEL_GRACE_S):
            while self.running_streams() or self.active_subscriptions:
                await self.activity.wait()
        self.closing = True
        notice = Error.of(shutting_down)
        async with trio.open_nursery() as nursery:
            for connection in list(self.live_connections):
                nursery.start_soon(connection.close_after,
                                   notice.in_session(connection.session.session_id))

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


__all__ = ["Connection", "ProviderError", "Registry", "Session", "Stream", "Subscription"]
