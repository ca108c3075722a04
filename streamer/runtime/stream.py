"""A stream: one generated answer, its lifetime (the *stream* scope of
``docs/architecture.md``), its subscribers and its trace.

A stream is created queued by its session and run in the session's task: provider → chunker →
log (:mod:`.generation`), inside its own cancel scope and nursery (with the watcher of its
subscribers and, with persistence on, its checkpoints), owned by the session, never by a
connection. It ends when it finishes, on ``stop``, on a provider error or timeout, when it
grows past ``max_response_chars``, when no subscriber has been there for ``grace_period_s``,
when every subscriber has held it back for ``paused_limit_s``, or at server drain. Each ending
is recorded with its reason in the stream's trace (:mod:`.trace`) and logged.

A stream knows its session through :class:`StreamOwner` and the process through
:class:`StreamServices`: nothing else.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import trio

from streamer.config import Config
from streamer.conversation import Message
from streamer.delivery.subscription import Subscription
from streamer.errors import PausedTooLong, StreamerError
from streamer.log.stream_log import MemoryStreamLog
from streamer.persistence import MessageRecord, MessageStore
from streamer.providers import Provider, ProviderRequest, Providers, ToolRound
from streamer.render.chunker import Chunker
from streamer.render.markdown import Renderer
from streamer.runtime.generation import Generation, close_chunker, generate, single_error
from streamer.runtime.history import Fitted, fit_request
from streamer.runtime.trace import Trace
from streamer.runtime.waiter import Waiter
from streamer.security.identity import Identity
from streamer.security.policy import Admission
from streamer.tools import Tools
from streamer.wire.controls import Start
from streamer.wire.events import Error, StreamComplete, StreamStart

logger = logging.getLogger("streamer.runtime")

#: the longest a stream's final save may take before it is given up (logged) (s)
PERSIST_TIMEOUT_S = 10.0


def new_id(prefix: str, nbytes: int = 12) -> str:
    """A new id: ``{prefix}_`` and ``nbytes`` random bytes as URL-safe characters (12 bytes:
    16 characters)."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


@dataclass(frozen=True, slots=True)
class StreamServices:
    """What a stream needs of the process (the registry hands it over).

    Attributes:
        config: the server's configuration.
        providers, renderer, tools: the shared, expensive objects built once.
        store: the store now (``None``: persistence off or closed).
        on_finished: called once the stream's log is finished (the replay window keeps it).
        activity: woken when the stream is done, saved included (drain waits on it).
        render_threads: the worker thread(s) a stream's large renders take turns in
            (``render.offload_tail_chars``; one: the renders need the GIL, the loop too).
        epoch: the process's epoch (a stream's, unless its engine gives it one).
        engine: replicates the stream beyond the process (``engine.kind = "redis"``).
    """

    config: Config
    providers: Providers
    renderer: Renderer
    tools: Tools
    store: Callable[[], MessageStore | None]
    on_finished: Callable[[Stream], None]
    activity: Waiter
    render_threads: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(1))
    epoch: str = ""
    engine: StreamEngine | None = None


class StreamEngine(Protocol):
    """Replication of streams beyond the process (``runtime/replication.py``)."""

    async def begin(self, stream: Stream) -> str | None:
        """The stream begins: its epoch from the engine (``None``: not replicated)."""


class StreamOwner(Protocol):
    """What a stream needs of its session."""

    @property
    def session_id(self) -> str: ...

    @property
    def key(self) -> str:
        """The session's name in the store (its id namespaced by owner)."""

    @property
    def owner(self) -> Identity:
        """The identity the session belongs to."""

    @property
    def deleted(self) -> bool:
        """The session was deleted: nothing of it is saved any more."""

    @property
    def history(self) -> Sequence[Message]:
        """The conversation so far, oldest first (read when the stream begins)."""

    def watched(self) -> bool:
        """A connection or a hold keeps the session's current stream (the grace period)."""

    def stream_started(self, stream: Stream) -> None:
        """The stream is the session's running stream now."""


class Stream:
    """One generated answer. Created queued; :meth:`run` generates it in the session's task.

    Attributes:
        stream_id: the stream's id (``s_…``).
        log: its seq-numbered ops and events, its source text and terminal events.
        state: ``queued``, ``running`` or ``done``.
        finish_reason: ``stop``, ``length``, ``cancelled`` or ``error`` once done.
        trace: what happened to it, when (``GET /api/streams/{id}/trace``).
    """

    def __init__(self, owner: StreamOwner, request: Start, services: StreamServices,
                 admission: Admission | None = None,
                 on_end: Callable[[Stream], None] | None = None) -> None:
        self.owner = owner
        self.request = request
        #: what the server's policy let through (effective ``max_tokens``, what it clamped)
        self.admission = admission
        #: called once the answer is over, its markdown and usage known (the policy's charge)
        self.on_end = on_end
        self.services = services
        self.stream_id = new_id("s")
        self.log = MemoryStreamLog(self.stream_id)
        #: names the log its ``seq`` belong to (a cursor's epoch): the process's, or Redis's
        self.epoch = services.epoch
        self.state = "queued"
        self.provider_name = request.provider or services.config.providers.default
        self.model = ""
        self.finish_reason: str | None = None
        self.created_at = time.time()
        self.trace = Trace(self.stream_id, services.config.streams.max_trace_entries,
                           session_id=owner.session_id)
        self.subscribers: set[Subscription] = set()
        self.cancel_scope = trio.CancelScope()
        self.cancel_reason: tuple[str, StreamerError | None] | None = None
        self._progress = Waiter()
        self._subscribers_changed = Waiter()
        #: another process has subscribers of it (the redis engine; the grace period waits)
        self.watched_elsewhere = False
        self.markdown = ""
        self.html = ""
        #: the tools this stream offers the model
        self.tools = services.tools.select(request.tools)
        #: what the provider is sent of the conversation (the session's earlier turns that
        #: fit the history budget, then the ``start``'s own; set when the stream begins)
        self.messages: tuple[Message, ...] = request.messages
        #: the history budget's result (``None`` until the stream begins, or if it failed)
        self.fitted: Fitted | None = None
        self._generation: Generation | None = None
        self._usage: dict[str, Any] | None = None
        self.done = trio.Event()
        #: another stream was running or waiting when this one was submitted
        self.queued_behind = False
        self.record("queued", provider=self.provider_name, max_tokens=request.max_tokens,
                    max_tokens_requested=admission.max_tokens_requested if admission else None)

    @property
    def session_id(self) -> str:
        return self.owner.session_id

    @property
    def uses_history(self) -> bool:
        """The ``start`` gave one message: it continues the session's conversation (a
        ``start`` with several messages brings its own)."""
        return len(self.request.messages) == 1

    @property
    def usage(self) -> dict[str, Any] | None:
        """The provider's usage report (``input_tokens``, ``output_tokens``, ``unit``)."""
        return self._generation.usage if self._generation is not None else self._usage

    @property
    def final_blocks(self) -> list[str]:
        """The finished document's blocks (``[]`` while running): the log keeps them, as
        one string and where each block begins, after its entries are compacted or
        evicted too."""
        return self.log.final_blocks() if self.log.finished else []

    def record(self, name: str, **detail: Any) -> None:
        """Add a trace entry (ms since the stream was created) and log it."""
        self.trace.record(name, **detail)

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

    async def stop_confirmed(self) -> None:
        """Wait until a client's ``stop`` (:meth:`cancel`) is applied: at once here; a mirror
        of another process's stream waits for that process (``runtime/mirror.py``)."""

    # ------------------------------------------------------------------ subscribers

    def start_event(self, *, resumed: bool = False, position: int | None = None
                    ) -> StreamStart:
        """The stream's ``stream_start``: for a subscriber (``resumed``: it has part of it
        already), or for the client that queued it (``position``: streams before it)."""
        admission, fitted = self.admission, self.fitted
        return StreamStart(self.session_id, self.stream_id, self.provider_name, self.model,
                           resumed=resumed, queued=position is not None, position=position,
                           max_tokens=admission.max_tokens if admission else None,
                           max_tokens_requested=admission.max_tokens_requested
                           if admission else None,
                           history_dropped=fitted.dropped if fitted else None,
                           input_tokens=fitted.size if fitted else None,
                           max_input_tokens=fitted.budget if fitted else None)

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
        """A connection or a hold of the session came or went (the grace period watches)."""
        self._subscribers_changed.wake()

    def on_subscriber_progress(self) -> None:
        self._progress.wake()

    def snapshot(self) -> tuple[int, list[str]]:
        """The document as of the latest ``seq``: ``(seq, blocks)`` (from the log, or the
        final blocks once the log is evicted)."""
        if self.log.evicted:
            return self.log.last_seq, self.final_blocks
        return self.log.snapshot()

    def _all_behind(self) -> bool:
        if not self.subscribers:
            return False
        limit = self.services.config.streams.backpressure_chars
        total = self.log.total_chars
        for sub in self.subscribers:  # (per delta: a plain loop, no generator)
            if total - sub.delivered_total <= limit:
                return False
        return True

    def render_limiter(self, chars: int) -> trio.CapacityLimiter | None:
        """A render of ``chars`` characters runs in the render thread from
        ``render.offload_tail_chars`` on (0: never); ``None``: on the event loop."""
        threshold = self.services.config.render.offload_tail_chars
        return self.services.render_threads if threshold and chars >= threshold else None

    def held_back(self) -> bool:
        """Whether :meth:`backpressure` would wait now (every subscriber too far behind)."""
        return self._all_behind()

    async def backpressure(self) -> None:
        """Stop reading the provider while every subscriber is too far behind.

        Raises:
            PausedTooLong: held back for ``streams.paused_limit_s``.
        """
        if not self._all_behind():
            return
        limit_s = self.services.config.streams.paused_limit_s
        self.record("backpressure", subscribers=len(self.subscribers))
        with trio.move_on_after(limit_s) as scope:
            while self._all_behind():
                await self._progress.wait()
        if scope.cancelled_caught:
            raise PausedTooLong(f"every subscriber held the stream back for {limit_s:g} s")
        self.record("backpressure_released")

    async def _watch_subscribers(self) -> None:
        """Cancel the stream once it has had no subscriber for ``grace_period_s``."""
        grace_s = self.services.config.streams.grace_period_s

        def watched() -> bool:
            # a connection of the session follows its current stream, even between attaching
            # (here, or on another process: the redis engine sets ``watched_elsewhere``)
            return bool(self.subscribers) or self.owner.watched() or self.watched_elsewhere

        while True:
            while watched():
                await self._subscribers_changed.wait()
            with trio.move_on_after(grace_s):
                while not watched():
                    await self._subscribers_changed.wait()
                continue
            self.cancel(f"no subscriber for {grace_s:g} s")
            return

    # ------------------------------------------------------------------ generation

    def provider_request(self, rounds: tuple[ToolRound, ...] = ()) -> ProviderRequest:
        req = self.request
        return ProviderRequest(messages=self.messages, system=req.system, model=req.model,
                               max_tokens=req.max_tokens, temperature=req.temperature,
                               echo=req.echo, tools=self.tools, tool_rounds=rounds)

    def _provider(self) -> tuple[Provider | None, StreamerError | None]:
        try:
            provider = self.services.providers.get(self.provider_name)
            self.model = provider.model_for(self.provider_request())
        except StreamerError as exc:
            return None, exc
        return provider, None

    async def _fit(self, provider: Provider) -> StreamerError | None:
        """Fit the conversation to the history budget (:mod:`.history`): the session's
        history now (a ``start`` of one message) or the ``start``'s own earlier messages, then
        its last. Returns the error that ends the stream, if it does not fit."""
        own = self.request.messages
        earlier = (*self.owner.history, *own[:-1]) if self.uses_history else own[:-1]
        request = replace(self.provider_request(), messages=(*earlier, own[-1]))
        try:
            fitted = await fit_request(provider, request,
                                       self.services.config.streams.max_prompt_chars)
        except StreamerError as exc:
            self.record("error", code=exc.code, error_id=exc.error_id)
            return exc
        self.fitted, self.messages = fitted, fitted.messages
        self.record("history", dropped=fitted.dropped, kept=len(fitted.messages) - 1,
                    input_size=fitted.size, budget=fitted.budget, unit=fitted.unit)
        return None

    async def run(self) -> None:
        """Generate the answer into the log, then end it. Never raises for the stream's own
        failures (they end the stream with an ``error``)."""
        services = self.services
        self.state = "running"
        started = trio.current_time()
        gen = self._generation = Generation(
            self.log, Chunker(services.renderer), session_id=self.session_id,
            stream_id=self.stream_id,
            max_response_chars=services.config.streams.max_response_chars)
        provider, error = self._provider()
        if provider is not None:
            error = await self._fit(provider)
            if error is not None:
                provider = None
        if services.engine is not None:
            self.epoch = await services.engine.begin(self) or self.epoch
        self.record("started", provider=self.provider_name, model=self.model)
        self.owner.stream_started(self)
        finish = "error" if error is not None else "stop"
        if provider is not None:
            finish, error = await self._generate(provider, gen)
        await close_chunker(gen, self.render_limiter(gen.chunker.open_chars))
        self._end(gen, finish, error, round((trio.current_time() - started) * 1000))
        # what only generation needed goes: the chunker's state, the step's text pieces
        self._usage, self._generation = gen.usage, None
        gen.release()
        self.log.compact()  # now, or once the last reader has left
        if self.on_end is not None:
            self.on_end(self)
        services.on_finished(self)
        store = services.store()
        if store is not None:
            # the partial or finished answer outlives the process; shielded so a drain's
            # cancellation cannot lose it, bounded so a stuck disk cannot hold the session
            with trio.CancelScope(shield=True), trio.move_on_after(PERSIST_TIMEOUT_S):
                await self._persist(store)
        self.done.set()
        services.activity.wake()
        self.record("completed", finish_reason=self.finish_reason, chars=len(self.markdown),
                    seq=self.log.last_seq, duration_ms=self.log.complete.duration_ms
                    if self.log.complete else None)

    async def _generate(self, provider: Provider, gen: Generation
                        ) -> tuple[str, StreamerError | None]:
        """Generation in the stream's cancel scope and nursery; ``(finish, error)``."""
        config = self.services.config
        store = self.services.store()
        finish, error = "stop", None
        with self.cancel_scope:
            async with trio.open_nursery() as nursery:  # the stream's nursery
                nursery.start_soon(self._watch_subscribers)
                if store is not None:
                    nursery.start_soon(self._checkpoints, store)
                try:
                    finish = await generate(self, gen, provider, self.tools, config.streams,
                                            config.tools.max_steps)
                except Exception as exc:
                    error, finish = self._failed(exc), "error"
                finally:
                    nursery.cancel_scope.cancel()
        if self.cancel_reason is not None:
            reason, cancel_error = self.cancel_reason
            finish = "error" if cancel_error is not None else "cancelled"
            error = cancel_error or error
            self.record("cancelled", reason=reason)
        return finish, error

    def _failed(self, exc: Exception) -> StreamerError:
        """The error generation ended with: a :class:`StreamerError` (alone in an exception
        group, as a nursery raises it, too) as is; anything else is a bug (``internal_error``:
        logged, this stream ends, the others go on)."""
        error = single_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if not isinstance(error, StreamerError):
            error = StreamerError(f"internal error: {exc!r}")
            logger.exception("stream %s failed (%s)", self.stream_id, error.error_id)
        self.record("error", code=error.code, error_id=error.error_id)
        return error

    def _end(self, gen: Generation, finish: str, error: StreamerError | None,
             duration_ms: int | None) -> None:
        """The answer is over: the chunker's last ops, the terminal events, state ``done``."""
        gen.close()
        chunker = gen.chunker
        self.markdown, self.html = chunker.markdown, chunker.html
        err_event = None if error is None else Error.of(
            error, session_id=self.session_id, stream_id=self.stream_id)
        self._finish(finish, gen.usage, duration_ms, err_event, chunker.blocks)

    def _finish(self, finish: str, usage: dict[str, Any] | None, duration_ms: int | None,
                error: Error | None, blocks: list[str] | None = None) -> None:
        """State ``done`` and the log's terminal events (its ``stream_complete``) and final
        document (``blocks``: the chunker's; ``None``: the log replays its ops)."""
        self.finish_reason = finish
        self.state = "done"
        self.log.finish(StreamComplete(self.session_id, self.stream_id,
                                       finish,  # type: ignore[arg-type]
                                       self.html, self.markdown, usage, self.stream_id,
                                       duration_ms), error, blocks)

    def end_crashed(self) -> None:
        """The stream's task crashed (a bug, logged by the session): end it as an error so
        its subscribers finish."""
        if self.log.finished:
            return
        self._finish("error", None, None, None)
        self.done.set()

    # ------------------------------------------------------------------ persistence

    def records(self) -> list[MessageRecord]:
        """The stream's user message and its answer (partial while running), for the store."""
        session_id = self.owner.key
        out = []
        last = self.request.messages[-1] if self.request.messages else None
        if last is not None and last.role == "user":
            out.append(MessageRecord(f"{self.stream_id}_u", session_id, "user", last.content,
                                     created_at=self.created_at,
                                     completed_at=self.created_at))
        # a running answer is read from its log, never from its chunker (which may be busy
        # in the render thread): the source text so far, the blocks the clients were sent
        done = self.state == "done" or self.log.evicted
        markdown = self.markdown if done else "".join(self.log.source(0, self.log.source_count))
        blocks = self.final_blocks if done else self.log.snapshot()[1]
        out.append(MessageRecord(
            self.stream_id, session_id, "assistant", markdown,
            html=self.html if done else "".join(blocks), blocks=blocks,
            provider=self.provider_name, model=self.model, usage=self.usage,
            finish_reason=self.finish_reason if done else None, last_seq=self.log.last_seq,
            created_at=self.created_at, completed_at=time.time() if done else None))
        return out

    async def _persist(self, store: MessageStore) -> None:
        if self.owner.deleted:
            return
        try:
            await store.save_messages(self.records())
        except Exception:  # a disk problem must not end the stream or the server
            logger.exception("stream %s: could not persist the answer", self.stream_id)

    async def _checkpoints(self, store: MessageStore) -> None:
        """Save the user message at once, then the partial answer every checkpoint interval."""
        interval_s = self.services.config.persistence.checkpoint_interval_s
        saved_seq = -1
        while True:
            if self.log.last_seq != saved_seq:
                saved_seq = self.log.last_seq
                await self._persist(store)
            await trio.sleep(interval_s)

    def info(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "state": self.state, "provider": self.provider_name,
                "model": self.model, "finish_reason": self.finish_reason,
                "seq": self.log.last_seq, "subscribers": len(self.subscribers)}
