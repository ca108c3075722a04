"""The ``anthropic`` provider: Claude through the official ``anthropic`` SDK's Messages stream.

Wire format (Anthropic API docs, "Streaming Messages"; anthropic-python
``types/raw_message_stream_event.py``): SSE events ``message_start`` (input tokens),
``content_block_start`` (a ``text``, ``thinking`` or ``tool_use`` block at ``index``),
``content_block_delta`` (``text_delta``, ``thinking_delta``, ``signature_delta``,
``input_json_delta`` with ``partial_json``), ``content_block_stop``, ``message_delta``
(``stop_reason``, output tokens), ``message_stop``; ``ping`` events at any time (the SDK skips
them); and an ``error`` event that can arrive after HTTP 200 (``overloaded_error``), which the
SDK raises as an ``APIStatusError`` while iterating.

Mapping: text deltas → :class:`TextDelta`; thinking deltas → :class:`ReasoningDelta` (never
part of the answer); ``tool_use`` blocks → :class:`ToolCallStart`, :class:`ToolCallDelta`
(``partial_json``), :class:`ToolCallComplete` (parsed at ``content_block_stop``); usage →
:class:`Usage`; ``stop_reason`` ``max_tokens`` → ``length``, ``tool_use`` → ``tool_calls``.

The key comes only from the environment variable named by ``api_key_env``. The SDK's own
retries are off (``max_retries=0``): the stream retries before the first token. Leaving the
``async with`` closes the HTTP response at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import trio

from streamer.config import AnthropicProviderConfig
from streamer.errors import (
    PROVIDER_NO_MODEL,
    PROVIDER_NOT_CONFIGURED,
    PROVIDER_REFUSED,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from streamer.providers._http import SDKStream, key_problem, retry_after_ms, transport_error
from streamer.providers.base import (
    Finish,
    FinishReason,
    Provider,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    context_exceeded,
    event_stream,
)

#: the API's ``stop_reason`` -> ours (anything else, e.g. ``end_turn``, ``stop_sequence``: stop)
STOP_REASONS: dict[str, FinishReason] = {"max_tokens": "length", "tool_use": "tool_calls"}

#: error ``type`` values of the API's error body that a later attempt may survive
RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error"}


def translate_error(exc: Exception, config: AnthropicProviderConfig) -> ProviderError:
    """Map an exception of the SDK (or, mid-body, of its transport) to streamer's tree, naming
    the provider and the setting in the detail (the server's log; clients read only the fixed
    texts of :mod:`streamer.errors`). Names no transport library: see ``_http``."""
    where = f"anthropic ({config.base_url})"
    if not isinstance(exc, anthropic.AnthropicError):
        return transport_error(where, exc)
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ProviderError(f"{where}: {key_problem(config.api_key_env)} ({exc.status_code})",
                             retryable=False, public_message=PROVIDER_NOT_CONFIGURED)
    if isinstance(exc, anthropic.NotFoundError):
        return ProviderError(
            f"{where}: model not found; check providers.anthropic.model ({exc.message})",
            retryable=False, public_message=PROVIDER_NO_MODEL)
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout(f"{where}: timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailable(f"{where}: cannot connect: {exc}")
    if isinstance(exc, anthropic.APIStatusError):
        body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        kind = str(error.get("type") or "")
        message = str(error.get("message") or exc.message)
        if kind == "rate_limit_error" or exc.status_code == 429:
            return ProviderRateLimited(f"{where}: rate limited: {message}",
                                       retry_after_ms=retry_after_ms(exc.response.headers))
        if kind in RETRYABLE_TYPES or exc.status_code in (429, 529) or exc.status_code >= 500:
            return ProviderUnavailable(f"{where}: {kind or exc.status_code}: {message}",
                                       retry_after_ms=retry_after_ms(exc.response.headers))
        if exc.status_code == 400 and "prompt is too long" in message:
            return context_exceeded(f"{where}: {message} (providers.anthropic.max_input_tokens)",
                                    config.max_input_tokens or None)
        return ProviderError(f"{where}: HTTP {exc.status_code} {kind}: {message}",
                             retryable=False, public_message=PROVIDER_REFUSED)
    return ProviderError(f"{where}: {exc.__class__.__name__}: {exc}", retryable=True)


class AnthropicProvider(Provider):
    """Messages streaming over the ``anthropic`` SDK (which runs under Trio via anyio)."""

    name = "anthropic"

    def __init__(self, config: AnthropicProviderConfig) -> None:
        self.config = config
        self._client: anthropic.AsyncAnthropic | None = None

    def model_for(self, request: ProviderRequest) -> str:
        return request.model or self.config.model

    def input_budget(self, request: ProviderRequest) -> int | None:
        """``providers.anthropic.max_input_tokens`` (0: none); sizes are estimated
        (:func:`~streamer.providers.base.estimate_tokens`)."""
        return self.config.max_input_tokens or None

    def _make_client(self) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(
            api_key=os.environ.get(self.config.api_key_env) or "no-key-configured",
            base_url=self.config.base_url, max_retries=0,
            timeout=anthropic.Timeout(None, connect=self.config.connect_timeout_s))
        client.messages  # noqa: B018 - imports the SDK's lazy resource modules here
        return client

    async def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client, made once, in a worker thread (the first one imports lazy modules
        and builds an SSL context: over a second, never on the event loop)."""
        if self._client is None:
            made = await trio.to_thread.run_sync(self._make_client)
            if self._client is None:
                self._client = made
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        """The Messages request: ``system`` apart, the conversation as ``messages``."""
        messages: list[dict[str, Any]] = [
            {"role": m.role, "content": m.content} for m in request.messages
            if m.role in ("user", "assistant")]
        for round_ in request.tool_rounds:  # Anthropic docs, "Tool use": tool_use, tool_result
            content: list[dict[str, Any]] = [{"type": "text", "text": round_.text}] \
                if round_.text else []
            content += [{"type": "tool_use", "id": c.call_id, "name": c.name,
                         "input": c.arguments} for c in round_.calls]
            messages.append({"role": "assistant", "content": content})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content,
                 "is_error": r.is_error} for r in round_.results]})
        systems = [m.content for m in request.messages if m.role == "system"]
        if request.system:
            systems.insert(0, request.system)
        body: dict[str, Any] = {"model": self.model_for(request), "messages": messages,
                                "max_tokens": request.max_tokens or self.config.max_tokens,
                                "stream": True}
        if systems:
            body["system"] = "\n\n".join(systems)
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description,
                              "input_schema": t.parameters} for t in request.tools]
        budget = self.config.thinking_budget_tokens
        if budget:  # the thinking budget must stay below max_tokens
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            body["max_tokens"] = max(body["max_tokens"], budget + 1)
        # no temperature: the SDK's Messages API (anthropic-python 2.x) takes no sampling
        # parameters; a ``start.temperature`` is ignored for this provider
        return body

    @event_stream
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        try:
            response = await (await self.client()).messages.create(**self._body(request))
        except anthropic.AnthropicError as exc:  # the SDK wraps its transport's errors here
            raise translate_error(exc, self.config) from exc
        message = _Message()
        async with response:  # closes the HTTP response however we leave
            async for ev in SDKStream(response, lambda exc: translate_error(exc, self.config)):
                for item in message.feed(ev):
                    yield item
        if not message.stopped:  # the body ended before message_stop: the connection dropped
            raise ProviderError(f"anthropic ({self.config.base_url}): the stream ended early, "
                                "before message_stop", retryable=True)
        for item in message.finish():
            yield item


class _Message:
    """Sans-IO: the Messages stream's events (Anthropic docs, "Streaming Messages": message_start,
    content_block_start/delta/stop, message_delta, message_stop) -> provider events."""

    def __init__(self) -> None:
        self.input_tokens = self.output_tokens = 0
        self.stop_reason: str | None = None
        self.stopped = False
        self._tools: dict[int, tuple[str, str, list[str]]] = {}

    def feed(self, ev: Any) -> list[ProviderEvent]:
        kind = ev.type
        if kind == "message_start":
            self.input_tokens = ev.message.usage.input_tokens or 0
        elif kind == "content_block_start":
            return self._block_start(ev.index, ev.content_block)
        elif kind == "content_block_delta":
            return self._block_delta(ev.index, ev.delta)
        elif kind == "content_block_stop" and ev.index in self._tools:
            call_id, name, parts = self._tools.pop(ev.index)
            return [ToolCallComplete(call_id, name, _arguments(name, parts))]
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "message_delta":
            self.stop_reason = ev.delta.stop_reason or self.stop_reason
            self.output_tokens = ev.usage.output_tokens or self.output_tokens
        return []

    def _block_start(self, index: int, block: Any) -> list[ProviderEvent]:
        if block.type == "tool_use":
            self._tools[index] = (block.id, block.name, [])
            return [ToolCallStart(block.id, block.name)]
        if block.type == "text" and block.text:
            return [TextDelta(block.text)]
        return []

    def _block_delta(self, index: int, delta: Any) -> list[ProviderEvent]:
        if delta.type == "text_delta" and delta.text:
            return [TextDelta(delta.text)]
        if delta.type == "thinking_delta" and delta.thinking:
            return [ReasoningDelta(delta.thinking)]
        if delta.type == "input_json_delta" and index in self._tools:
            self._tools[index][2].append(delta.partial_json)
            if delta.partial_json:
                return [ToolCallDelta(self._tools[index][0], delta.partial_json)]
        return []

    def finish(self) -> list[ProviderEvent]:
        return [Usage(self.input_tokens, self.output_tokens),
                Finish(STOP_REASONS.get(self.stop_reason or "", "stop"))]


def _arguments(name: str, parts: list[str]) -> dict[str, Any]:
    text = "".join(parts) or "{}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"anthropic: tool call {name!r} has arguments that are not JSON: "
                            f"{text[:80]!r}", retryable=False) from exc
    return value if isinstance(value, dict) else {}
