"""The provider interface: a model call as a cancellation-safe stream of normalized events.

A provider turns a :class:`ProviderRequest` into events (:class:`TextDelta`,
:class:`ReasoningDelta`, :class:`ToolCallStart` / :class:`ToolCallDelta` /
:class:`ToolCallComplete`, :class:`Usage`, :class:`Finish`). :meth:`Provider.stream` returns an
async context manager yielding a Trio ``ReceiveChannel`` of events (built with
:func:`event_stream`, ``trio.as_safe_channel`` with a small buffer, as the built-in providers
do, or with ``trio.as_safe_channel`` itself), so a provider may run tasks or threads inside
and the stream that consumes it cancels it cleanly: leaving the ``async with`` early
(``stop``, timeout, the last subscriber gone) closes the model call at once: the HTTP response
to the provider is closed, or the local model stops between tokens.

Errors are translated at this edge into :mod:`streamer.errors`
(:class:`~streamer.errors.ProviderError` and its subclasses): the detail names the provider,
its URL and the setting to fix (for the server's log); clients read only the fixed texts of
:mod:`streamer.errors` (``PROVIDER_NOT_CONFIGURED``, …).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal, ParamSpec, TypeVar

import trio

from streamer.conversation import EchoOptions, Message
from streamer.errors import ProviderError, leaves
from streamer.tools import Tool, ToolResult

FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What a stream asks of its provider.

    Attributes:
        messages: the conversation, oldest first, ending with the user's message.
        system: a system prompt, or ``None``.
        model: a model name, or ``None`` for the provider's configured default.
        max_tokens: the answer's limit in the provider's units (tokens; characters for ``echo``).
        temperature: sampling temperature, or ``None`` for the provider's default.
        echo: the ``echo`` provider's options (ignored by others).
        tools: the tools the model may call (providers without tool support ignore them).
        tool_rounds: this answer's earlier rounds of tool use, after ``messages``: what the
            model said and asked for, and what the tools answered.
    """

    messages: tuple[Message, ...]
    system: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    echo: EchoOptions = field(default_factory=EchoOptions)
    tools: tuple[Tool, ...] = ()
    tool_rounds: tuple[ToolRound, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolRound:
    """One round of tool use: the model's text and calls, then the tools' results."""

    text: str
    calls: tuple[ToolCallComplete, ...]
    results: tuple[ToolResult, ...]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Answer text, in order; any length, split anywhere (not inside a surrogate pair)."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """The model's reasoning ("thinking"), in order; shown apart, never in the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """The model begins a tool call (``call_id`` is the provider's id for it)."""

    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call's JSON arguments, as the model writes them (partial JSON)."""

    call_id: str
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class ToolCallComplete:
    """A tool call's arguments are complete; ``arguments`` is the parsed JSON object."""

    call_id: str
    name: str
    arguments: dict[str, object]


@dataclass(frozen=True, slots=True)
class Citations:
    """The sources the answer cites (Perplexity's ``search_results`` or ``citations``), in
    the order of its ``[n]`` markers: ``(url, title)`` pairs. Sent once, after the text: the
    answer's document ends with them as a numbered list (:meth:`markdown`), the AI SDK door
    sends them as ``source-url`` parts instead."""

    sources: tuple[tuple[str, str], ...]

    def markdown(self) -> str:
        """The numbered list that ends the answer (``**Sources**``, then ``1. [title](<url>)``
        per source, labels escaped)."""
        lines = [f"{i}. [{_escape_label(title)}](<{url}>)"
                 for i, (url, title) in enumerate(self.sources, 1)]
        return "\n\n**Sources**\n\n" + "\n".join(lines) + "\n"


def _escape_label(text: str) -> str:
    return "".join("\\" + c if c in "[]\\*_`<>" else c for c in text)


@dataclass(frozen=True, slots=True)
class Usage:
    """Size of the call: ``unit`` is ``tokens`` (or ``chars`` for ``echo``)."""

    input_tokens: int
    output_tokens: int
    unit: Literal["tokens", "chars"] = "tokens"


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class Queued:
    """The call waits its turn for a model that serves one request at a time (the ``local``
    provider's fair queue): ``position`` requests run or wait before it, ``eta_ms`` is an
    estimate of the wait (ms). Sent when the call starts waiting and whenever its position
    changes; ``position == 0`` ends the wait (generation begins). Not output: the stream's
    time-to-first-token timeout starts after the wait, not before it."""

    position: int
    eta_ms: int | None = None


ProviderEvent = (TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallComplete
                 | Citations | Usage | Finish | Queued)


def estimate_tokens(text: str) -> int:
    """A token estimate for a model whose tokenizer the server does not have: UTF-8 bytes / 4,
    rounded up (about 4 characters a token for English, the usual rule of thumb for OpenAI's
    and Anthropic's tokenizers; counting bytes rather than characters keeps the estimate
    higher for scripts whose characters take several tokens' worth of bytes)."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 4)


def context_exceeded(detail: str, budget: int | None, unit: str = "tokens") -> ProviderError:
    """The provider refused a request longer than its context (an overflow the history budget
    did not prevent: the estimate was low, or a round of tools grew the request). A
    ``provider_error`` whose client message names the budget."""
    size = f" (its input budget is {budget:,} {unit})" if budget else ""
    return ProviderError(detail, retryable=False,
                         public_message=f"the request is longer than the model accepts{size}")


class Provider(ABC):
    """One configured model source. Subclasses set :attr:`name`.

    The history budget (``streamer.runtime.history``) asks a provider for its
    :meth:`input_budget` and :meth:`measure`; the defaults are no budget and
    :func:`estimate_tokens`.
    """

    name: str
    #: the unit of :meth:`input_budget` and :meth:`measure`: ``tokens`` (``chars`` for echo)
    input_unit: Literal["tokens", "chars"] = "tokens"
    #: :meth:`measure` counts with the model's own tokenizer (else it estimates)
    exact_count: bool = False
    #: the model is sent the tools' schemas (their size counts against the budget)
    sends_tools: bool = True
    #: it streams the model's reasoning as :class:`ReasoningDelta` (``GET /api/providers``)
    supports_reasoning: bool = False
    #: what a message adds besides its text (a chat template's role markers), in input units
    message_overhead: int = 4
    #: what a request adds once (the reply's role marker, a BOS token), in input units
    request_overhead: int = 3

    def input_budget(self, request: ProviderRequest) -> int | None:
        """The most input this request may send, in :attr:`input_unit` (``None``: no budget
        but ``streams.max_prompt_chars``)."""
        return None

    async def measure(self, texts: Sequence[str]) -> list[int]:
        """Each text's size in :attr:`input_unit` (default: :func:`estimate_tokens`).

        Raises:
            ProviderUnavailable: the model the provider counts with cannot be loaded.
        """
        return [estimate_tokens(text) for text in texts]

    @abstractmethod
    def model_for(self, request: ProviderRequest) -> str:
        """The model name this request will use (shown to clients; never a file path)."""

    @abstractmethod
    def stream(self, request: ProviderRequest
               ) -> AbstractAsyncContextManager[trio.abc.ReceiveChannel[ProviderEvent]]:
        """Open the model call; iterate the channel for its events.

        Raises (on entering or while iterating):
            ProviderUnavailable: the provider cannot be reached or is not installed.
            ProviderError: the provider failed (``retryable`` says whether to try again).
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release clients or models held by the provider (server shutdown)."""


P = ParamSpec("P")
T = TypeVar("T")

#: events a provider may produce ahead of the stream that reads them
EVENT_BUFFER = 32


def event_stream(fn: Callable[P, AsyncGenerator[T, None]]
                 ) -> Callable[P, AbstractAsyncContextManager[trio.MemoryReceiveChannel[T]]]:
    """Make an async generator a cancellation-safe provider stream, as
    ``trio.as_safe_channel`` does (the generator runs in a task of its own, in a nursery the
    ``async with`` owns; leaving the block cancels it and closes the generator), but with a
    buffer of :data:`EVENT_BUFFER` events instead of none.

    With ``as_safe_channel`` every event is a round trip between the reader and the
    generator's task (the reader asks, the generator makes one event, hands it over); here
    the generator runs ahead up to the buffer, and a reader that fell behind (a busy server)
    takes what has arrived at once (``receive_nowait``) and renders it as one batch (issue
    16). A full buffer holds the generator back, so backpressure still reaches the model.

    Errors: the generator's exception leaves the ``async with`` as itself, not in an
    exception group (as with ``as_safe_channel``).
    """

    @asynccontextmanager
    @wraps(fn)
    async def open_stream(*args: P.args, **kwargs: P.kwargs
                          ) -> AsyncGenerator[trio.MemoryReceiveChannel[T], None]:
        send, receive = trio.open_memory_channel[T](EVENT_BUFFER)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, fn(*args, **kwargs), send)
                with receive:
                    yield receive
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise _single(group) from None

    return open_stream


async def _pump(agen: AsyncGenerator[Any, None], send: trio.MemorySendChannel[Any]) -> None:
    """Move the generator's items into ``send`` until it ends (the channel then ends)."""
    with send:
        async with aclosing(agen):
            async for item in agen:
                try:
                    # without a checkpoint while there is room: events a generator makes
                    # at once (a network read's worth) reach the reader together
                    send.send_nowait(item)
                except trio.WouldBlock:
                    try:
                        await send.send(item)
                    except trio.BrokenResourceError:  # the reader left
                        return
                except trio.BrokenResourceError:
                    return


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one exception a stream's nursery group stands for: its only error (cancellations
    aside), or its first cancellation; the group itself when there are several errors."""
    found = leaves(group)
    errors = [e for e in found if not isinstance(e, trio.Cancelled)]
    if len(errors) == 1:
        return errors[0]
    return found[0] if not errors and found else group
