"""Generation: a model call's provider events → one stream's log.

The policy is pure and tested without a clock:

- :class:`Generation`, the step: each provider event (``providers.base``) becomes log entries
  (text → the source text and the chunker's ops; reasoning and tool calls → wire events), the
  answer's size limit (``streams.max_response_chars``: the text is cut at the limit, then
  :class:`~streamer.errors.ResponseTooLarge`), the first-output rule (text, reasoning or a tool
  call's start count; after it nothing is retried), usage and the finish reason, and the
  rounds of tool use (what the model said and asked for, what the tools answered; the text
  after a round is set apart from the text before it by a blank line).
- :func:`next_step`: after a model call, answer, run the tools, or stop at ``tools.max_steps``.
- :func:`retry_delay_s` and :func:`after_first_output`: the retry policy. Before the first
  output, connection errors, 429 and 5xx are retried ``provider_retries`` times, waiting the
  provider's ``retry-after`` or an exponential backoff with full jitter (AWS Architecture
  Blog, "Exponential Backoff and Jitter", 2015), all within ``provider_retry_budget_s``;
  timeouts and errors that are not retryable are not. After it, a failure ends the answer
  (``provider_error``: text would be doubled).

The Trio loop (:func:`generate`) is thin: it reads the provider with the two timeouts, feeds
the step, waits out backpressure and retries, runs the tools, and writes the trace. While the
provider says the call waits its turn at the model (:class:`~streamer.providers.Queued`, the
``local`` provider's fair queue) no timeout runs: the time to first token is counted from the
end of the wait. A provider's error that leaves a nursery wrapped in an exception group
(Trio's strict exception groups) is unwrapped (:func:`single_error`), so it is reported as
itself (and retried if it may be), never as ``internal_error``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import trio

from streamer.config import StreamsConfig
from streamer.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    ResponseTooLarge,
    StreamerError,
    leaves,
)
from streamer.log.stream_log import StreamLog
from streamer.providers import (
    Finish,
    Provider,
    ProviderRequest,
    Queued,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    ToolRound,
    Usage,
)
from streamer.providers.base import Citations
from streamer.render.chunker import Chunker
from streamer.render.ops import Op
from streamer.tools import Tool, ToolResult, Tools
from streamer.wire.events import Reasoning, Retrying, Sources, ToolCall, Waiting

NextStep = Literal["answer", "tools", "exhausted"]


# ------------------------------------------------------------------ the pure step


class Generation:
    """One answer's provider events → its log, its chunker and its tool rounds. Never waits.

    Args:
        log: the stream's log (written here only).
        chunker: the stream's incremental renderer (fed here only).
        session_id, stream_id: stamped on the events it builds.
        max_response_chars: the answer's limit in characters of markdown.
    """

    def __init__(self, log: StreamLog, chunker: Chunker, *, session_id: str, stream_id: str,
                 max_response_chars: int) -> None:
        self.log = log
        self.chunker = chunker
        self.session_id = session_id
        self.stream_id = stream_id
        self.max_response_chars = max_response_chars
        #: this model call produced output (text, reasoning or a tool call): no more retries
        self.first_output = False
        #: the finish reason the provider gave (``stop`` until it says otherwise)
        self.finish = "stop"
        #: ``{"input_tokens", "output_tokens", "unit"}`` once the provider reported usage
        self.usage: dict[str, Any] | None = None
        #: the earlier rounds of tool use (sent back to the model after the conversation)
        self.rounds: tuple[ToolRound, ...] = ()
        #: this step's completed tool calls and text
        self.calls: list[ToolCallComplete] = []
        self.text: list[str] = []
        self._separate = False

    def begin_step(self) -> None:
        """A new model call of the answer (the first, or the one after a round of tools)."""
        self.first_output = False
        self.calls, self.text = [], []

    def begin_call(self) -> None:
        """A new attempt at the step's model call (a retry starts over)."""
        self.finish = "stop"

    def starts_output(self, item: object) -> bool:
        """Whether ``item`` is this model call's first output (text, reasoning or a tool
        call's start); marks it. Call before :meth:`feed`."""
        if self.first_output or not isinstance(item, TextDelta | ReasoningDelta | ToolCallStart):
            return False
        self.first_output = True
        return True

    def feed(self, item: object) -> bool:
        """Apply one provider event. Returns whether it added text to the document (the
        caller then checks backpressure).

        Raises:
            ResponseTooLarge: the text would pass ``max_response_chars`` (what fits is kept).
        """
        if isinstance(item, TextDelta):
            self._text(item.text)
            return True
        if isinstance(item, ReasoningDelta):
            self.log.append_event(Reasoning(self.session_id, self.stream_id, item.text))
        elif isinstance(item, ToolCallStart | ToolCallDelta | ToolCallComplete):
            self._tool_call(item)
        elif isinstance(item, Citations):  # the list ends the document: one source piece
            self.log.append_event(Sources(self.session_id, self.stream_id, item.sources))
            self._text(item.markdown())  # right after the event (the AI SDK door skips it)
            return True
        elif isinstance(item, Usage):
            self.usage = {"input_tokens": item.input_tokens,
                          "output_tokens": item.output_tokens, "unit": item.unit}
        elif isinstance(item, Finish):
            self.finish = item.reason
        elif isinstance(item, Queued):
            self.log.append_event(Waiting(self.session_id, self.stream_id, item.position,
                                          item.eta_ms))
        return False

    def _text(self, text: str) -> None:
        text, overflow = self.take_text(text)
        self.append_ops(self.chunker.feed(text))
        if overflow is not None:
            raise overflow

    def take_text(self, text: str) -> tuple[str, ResponseTooLarge | None]:
        """Admit a text delta: ``(what the chunker is fed, the error to raise after)``. The
        text goes to the source at once (set apart after a round of tools, cut at
        ``max_response_chars``); its ops come from ``chunker.feed`` (here, or off the loop:
        :func:`feed_text`), then :meth:`append_ops`."""
        self.text.append(text)
        if self._separate:  # the answer goes on after a round of tools
            self._separate = False
            text = "\n\n" + text
        room = self.max_response_chars - self.chunker.markdown_chars
        overflow = None
        if len(text) > room:
            text = text[:max(0, room)]
            overflow = ResponseTooLarge(
                f"the answer exceeds {self.max_response_chars} characters")
        if text:
            self.log.append_source(text)
        return text, overflow

    def append_ops(self, ops: list[Op]) -> None:
        """The chunker's ops for text admitted by :meth:`take_text` (or its close) → the log."""
        for op in ops:
            self.log.append(op)

    def _tool_call(self, item: ToolCallStart | ToolCallDelta | ToolCallComplete) -> None:
        sid, stream_id = self.session_id, self.stream_id
        if isinstance(item, ToolCallStart):
            ev = ToolCall.started(sid, stream_id, item.call_id, item.name)
        elif isinstance(item, ToolCallDelta):
            ev = ToolCall.delta(sid, stream_id, item.call_id, item.arguments_delta)
        else:
            self.calls.append(item)
            ev = ToolCall.complete(sid, stream_id, item.call_id, item.name, item.arguments)
        self.log.append_event(ev)

    def tool_result(self, call: ToolCallComplete, result: ToolResult) -> None:
        """A tool answered one of this step's calls."""
        self.log.append_event(ToolCall.answered(self.session_id, self.stream_id, call.call_id,
                                                call.name, result.content, result.is_error))

    def end_round(self, results: list[ToolResult]) -> None:
        """The step's calls are answered: remember the round; later text is set apart."""
        self.rounds = (*self.rounds, ToolRound("".join(self.text), tuple(self.calls),
                                               tuple(results)))
        self._separate = self.chunker.markdown_chars > 0

    def retrying(self, attempt: int, retry_in_ms: int, exc: ProviderError) -> None:
        """Tell subscribers the model call is tried again (a ``state: retrying`` event with
        the error's code and client-safe message)."""
        self.log.append_event(Retrying(self.session_id, self.stream_id, attempt, retry_in_ms,
                                       exc.code, exc.message))

    def close(self) -> None:
        """The answer is over: the chunker's last ops go to the log (once: a no-op when
        :func:`close_chunker` already closed it off the loop)."""
        if not self.chunker.closed:
            self.append_ops(self.chunker.close())

    def release(self) -> None:
        """The answer is over and read: drop what only generating it needed (the chunker,
        the step's text pieces, its tool calls and rounds), even while something still
        holds this object (a traceback's frame in a reference cycle, until the collector
        runs); ``usage`` and ``finish`` stay. Nothing may feed it afterwards."""
        self.text, self.calls, self.rounds = [], [], ()
        del self.chunker


def next_step(finish: str, calls: int, step: int, max_steps: int) -> NextStep:
    """After model call ``step`` (0-based) ended with ``finish`` and ``calls`` tool calls:
    the ``answer`` is done, run the ``tools`` and call the model again, or the rounds are
    ``exhausted`` (``tools.max_steps``)."""
    if finish != "tool_calls" or not calls:
        return "answer"
    return "exhausted" if step >= max_steps else "tools"


def answer_finish(finish: str) -> str:
    """The answer's finish reason for the last call's (``tool_calls`` with nothing to run,
    or rounds exhausted, ends as ``stop``)."""
    return "stop" if finish == "tool_calls" else finish


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``[streams]``: how often, how long to wait at first (ms), the total budget (s)."""

    retries: int
    base_ms: float
    budget_s: float

    @classmethod
    def of(cls, streams: StreamsConfig) -> RetryPolicy:
        return cls(streams.provider_retries, streams.provider_retry_base_ms,
                   streams.provider_retry_budget_s)


def retry_delay_s(exc: ProviderError, attempt: int, policy: RetryPolicy, *,
                  first_output: bool, time_left_s: float,
                  uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """How long to wait before retrying after ``exc``, or ``None`` to give up.

    Args:
        exc: the failure of attempt ``attempt`` (0 = the first call).
        policy: the retry settings.
        first_output: the call already produced output (then never retry).
        time_left_s: what is left of the retry budget.
        uniform: the jitter's random source (``random.uniform``).
    """
    if first_output or not exc.retryable or isinstance(exc, ProviderTimeout) \
            or attempt >= policy.retries:
        return None
    if exc.retry_after_ms is not None:  # the provider said when (retry-after)
        delay_s = exc.retry_after_ms / 1000
    else:  # exponential backoff, full jitter
        delay_s = uniform(0, policy.base_ms / 1000 * 2 ** attempt)
    return None if delay_s > time_left_s else delay_s


def single_error(group: BaseExceptionGroup) -> BaseException:
    """The one exception an exception group holds (nested groups flattened): what a nursery
    raised when a single task, or its body, failed. A group of several is returned as is."""
    found = leaves(group)
    return found[0] if len(found) == 1 else group


def after_first_output(exc: ProviderError) -> ProviderError:
    """The error a failure after the first output ends the answer with: a dropped connection
    or an overload mid-answer is ``provider_error`` (the answer cannot be retried)."""
    if type(exc) in (ProviderUnavailable, ProviderRateLimited):
        return ProviderError(exc.detail, retryable=exc.retryable)
    return exc


# ------------------------------------------------------------------ the Trio loop


class Shell(Protocol):
    """What the loop needs of its stream."""

    @property
    def provider_name(self) -> str: ...

    def record(self, name: str, **detail: Any) -> None: ...

    def provider_request(self, rounds: tuple[ToolRound, ...]) -> ProviderRequest: ...

    def backpressure(self) -> Awaitable[None]:
        """Wait while every subscriber is too far behind (raises when held too long)."""

    def held_back(self) -> bool:
        """Whether :meth:`backpressure` would wait now."""

    def render_limiter(self, chars: int) -> trio.CapacityLimiter | None:
        """Where a render of ``chars`` characters runs: ``None`` on the event loop, else in
        a worker thread under the returned limiter (``render.offload_tail_chars``)."""


async def generate(shell: Shell, gen: Generation, provider: Provider,
                   tools: tuple[Tool, ...], streams: StreamsConfig, max_steps: int) -> str:
    """Generate the answer: model calls, and rounds of tools between them (at most
    ``max_steps``). Returns the finish reason; raises the stream's
    :class:`~streamer.errors.StreamerError`."""
    offered = {tool.name: tool for tool in tools}
    for step in range(max_steps + 1):
        gen.begin_step()
        finish = await _call_with_retries(shell, gen, provider, streams)
        decision = next_step(finish, len(gen.calls), step, max_steps)
        if decision == "answer":
            return answer_finish(finish)
        if decision == "exhausted":
            shell.record("tool_steps_exhausted", steps=max_steps)
            return "stop"
        results = []
        for call in gen.calls:
            shell.record("tool_started", tool=call.name, call_id=call.call_id)
            result = await Tools.call(offered.get(call.name), call.call_id, call.name,
                                      call.arguments)
            shell.record("tool_finished", tool=call.name, call_id=call.call_id,
                         is_error=result.is_error)
            gen.tool_result(call, result)
            results.append(result)
        gen.end_round(results)
    return "stop"  # pragma: no cover - the loop returns


async def _call_with_retries(shell: Shell, gen: Generation, provider: Provider,
                             streams: StreamsConfig) -> str:
    policy = RetryPolicy.of(streams)
    budget_end = trio.current_time() + policy.budget_s
    attempt = 0
    while True:
        try:
            return await _call(shell, gen, provider, streams)
        except ProviderError as exc:
            if gen.first_output:
                ended = after_first_output(exc)
                if ended is exc:
                    raise
                raise ended from exc
            delay_s = retry_delay_s(exc, attempt, policy, first_output=False,
                                    time_left_s=budget_end - trio.current_time())
            if delay_s is None:
                raise
            attempt += 1
            retry_in_ms = round(delay_s * 1000)
            exc.report()  # the detail goes to the log; the trace and the notice get its id
            shell.record("retry", attempt=attempt, code=exc.code, retry_in_ms=retry_in_ms,
                         error_id=exc.error_id)
            gen.retrying(attempt, retry_in_ms, exc)
            await trio.sleep(delay_s)


async def _call(shell: Shell, gen: Generation, provider: Provider,
                streams: StreamsConfig) -> str:
    """One model call: read its events with the time-to-first-token and between-tokens
    timeouts (none while it waits its turn at the model), feed them to the step.

    Raises:
        ProviderError: the provider's own error, unwrapped from an exception group.
        ProviderTimeout: no event within a timeout.
    """
    gen.begin_call()
    opened = False
    try:
        async with provider.stream(shell.provider_request(gen.rounds)) as events:
            opened = True
            shell.record("provider_call_opened")
            await _read(shell, gen, events, streams)
    except BaseException as exc:
        error = single_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if opened:  # recorded once the call's context exited: when the provider saw the end
            shell.record("provider_call_closed", **closed_by(error))
        if error is exc:
            raise
        raise error  # noqa: B904 - the group is only its wrapper; the cause stays the error's
    shell.record("provider_call_closed", closed_by="end", finish=gen.finish)
    return gen.finish


def closed_by(error: BaseException) -> dict[str, Any]:
    """How a model call was closed, for its ``provider_call_closed`` trace entry:
    ``{"closed_by": "cancel"}`` (the stream's cancel scope: stop, grace period, drain; the
    trace adds the reason), else ``{"closed_by": "error", "code": …}`` (the error's code,
    ``internal_error`` for anything that is not a :class:`~streamer.errors.StreamerError`)."""
    if all(isinstance(leaf, trio.Cancelled) for leaf in leaves(error)):
        return {"closed_by": "cancel"}
    return {"closed_by": "error",
            "code": error.code if isinstance(error, StreamerError) else "internal_error"}


class _Timer:
    """The provider timeout of one model call: when the last event came, the limit now."""

    __slots__ = ("last", "limit_s")

    def __init__(self) -> None:
        self.last = trio.current_time()
        self.limit_s = math.inf

    @property
    def deadline(self) -> float:
        return self.last + self.limit_s


async def _read(shell: Shell, gen: Generation, events: trio.abc.ReceiveChannel[object],
                streams: StreamsConfig) -> None:
    """Read the model call's events into the step, with its time-to-first-token and
    between-tokens timeouts (none while it waits its turn at the model).

    The timeout is one cancel scope that lives until it fires, not one per event (a scope,
    or a deadline move, per event was a tenth of the server's time at 100 streams, issue
    16): each event only notes its time, and when the scope's deadline passes, the timeout
    is real only if no event came since; else a new scope waits for the deadline counted
    from the last event. So the timeout is exact, and a busy stream makes a scope once per
    timeout period. While the stream is held back by its subscribers (backpressure has a
    limit of its own) the timer is lifted, and the time held back does not count.

    Raises:
        ProviderTimeout: no event within the timeout.
    """
    timer = _Timer()
    held: list[object] = []  # an event read ahead while batching text deltas
    while True:
        with trio.CancelScope(deadline=timer.deadline) as scope:
            await _read_events(shell, gen, events, streams, timer, scope, held)
            return
        if trio.current_time() < timer.deadline:  # an event came since: wait on
            continue
        what = "between tokens" if gen.first_output else "before the first token"
        raise ProviderTimeout(
            f"{shell.provider_name}: no data for {timer.limit_s:g} s {what}")


async def _read_events(shell: Shell, gen: Generation, events: trio.abc.ReceiveChannel[object],
                       streams: StreamsConfig, timer: _Timer, scope: trio.CancelScope,
                       held: list[object]) -> None:
    """:func:`_read`'s loop, until the provider's end (returns) or ``scope``'s deadline."""
    waiting = False  # the call waits its turn at the model: no timeout runs
    while True:
        if held:
            item = held.pop()
        else:
            limit_s = (math.inf if waiting else streams.provider_timeout_s
                       if gen.first_output else streams.provider_ttft_timeout_s)
            if limit_s != timer.limit_s:
                timer.limit_s = limit_s
                scope.deadline = timer.deadline
            try:
                item = await events.receive()
            except trio.EndOfChannel:
                return
            timer.last = trio.current_time()
        waiting = isinstance(item, Queued) and item.position > 0
        if isinstance(item, Queued):
            shell.record("waiting", position=item.position, eta_ms=item.eta_ms)
        if gen.starts_output(item):
            shell.record("first_token")
        if isinstance(item, TextDelta):
            item = _batch(item, events, held)
            if (limiter := shell.render_limiter(
                    gen.chunker.open_chars + len(item.text))) is not None:
                await feed_text(gen, item.text, limiter)  # shielded: the timer waits
                await _held_back(shell, timer, scope)
                continue
        if gen.feed(item):
            await _held_back(shell, timer, scope)


async def _held_back(shell: Shell, timer: _Timer, scope: trio.CancelScope) -> None:
    """:meth:`Shell.backpressure` with the provider timeout lifted while it waits (the
    timeout then counts from the end of the wait)."""
    if not shell.held_back():
        return
    scope.deadline = math.inf
    await shell.backpressure()
    timer.last = trio.current_time()
    scope.deadline = timer.deadline


def _batch(first: TextDelta, events: trio.abc.ReceiveChannel[object],
           held: list[object]) -> TextDelta:
    """``first`` joined with the text deltas already waiting behind it, up to
    :data:`BATCH_CHARS`, so a backlog is rendered and logged once, not per delta; a waiting
    event of another kind is put in ``held`` for the next round.

    The cap keeps a log entry (which a paced delivery never splits) about a word long: at
    the default 120 chars/s a joined entry shows for at most a quarter of a second.
    """
    receive_nowait = getattr(events, "receive_nowait", None)
    size = len(first.text)
    if receive_nowait is None or size >= BATCH_CHARS:
        return first
    parts = [first.text]
    while size < BATCH_CHARS:
        try:
            item = receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        if not isinstance(item, TextDelta):
            held.append(item)
            break
        parts.append(item.text)
        size += len(item.text)
    return first if len(parts) == 1 else TextDelta("".join(parts))


#: waiting text deltas are joined into one feed up to this many characters
BATCH_CHARS = 32


async def feed_text(gen: Generation, text: str, limiter: trio.CapacityLimiter) -> None:
    """Feed a text delta with the chunker's work in a worker thread, so a large open tail's
    render (~2.5 us per character; docs/chunker.md, "Costs") never holds the event loop.

    The chunker is this stream's alone and nothing else touches it meanwhile (a checkpoint
    reads the log, not the chunker). The wait is shielded: the render is bounded by the
    answer's size limit, and its ops must reach the log once the chunker's state moved on.

    Raises:
        ResponseTooLarge: as :meth:`Generation.feed` (after what fits is appended).
    """
    text, overflow = gen.take_text(text)
    with trio.CancelScope(shield=True):
        ops = await trio.to_thread.run_sync(gen.chunker.feed, text, limiter=limiter)
    gen.append_ops(ops)
    if overflow is not None:
        raise overflow


async def close_chunker(gen: Generation, limiter: trio.CapacityLimiter | None) -> None:
    """Close the chunker (its last render: the open tail) in a worker thread under
    ``limiter`` (``None``: here); shielded like :func:`feed_text`."""
    if gen.chunker.closed:
        return
    if limiter is None:
        gen.close()
        return
    with trio.CancelScope(shield=True):
        ops = await trio.to_thread.run_sync(gen.chunker.close, limiter=limiter)
    gen.append_ops(ops)
