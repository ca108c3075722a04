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
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from streamer.providers.base import (
    Finish,
    Provider,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallComplete,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)

#: error ``type`` values of the API's error body that a later attempt may survive
RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error"}


def _retry_after_ms(exc: anthropic.APIStatusError) -> int | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    if value and value.replace(".", "", 1).isdigit():
        return int(float(value) * 1000)
    return None


def translate_error(exc: Exception, config: AnthropicProviderConfig) -> ProviderError:
    """Map an SDK exception to streamer's tree, naming the provider and the setting."""
    where = f"anthropic ({config.base_url})"
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ProviderError(
            f"{where}: the API key was refused ({exc.status_code}); set the environment "
            f"variable {config.api_key_env}", retryable=False)
    if isinstance(exc, anthropic.NotFoundError):
        return ProviderError(
            f"{where}: model not found; check providers.anthropic.model ({exc.message})",
            retryable=False)
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout(f"{where}: timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailable(f"{where}: cannot connect: {exc}")
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        kind = str(error.get("type") or "")
        message = str(error.get("message") or exc.message)
        if kind == "rate_limit_error" or exc.status_code == 429:
            return ProviderRateLimited(f"{where}: rate limited: {message}",
                                       retry_after_ms=_retry_after_ms(exc))
        if kind in RETRYABLE_TYPES or exc.status_code in (429, 529) or exc.status_code >= 500:
            return ProviderUnavailable(f"{where}: {kind or exc.status_code}: {message}",
                                       retry_after_ms=_retry_after_ms(exc))
        return ProviderError(f"{where}: HTTP {exc.status_code} {kind}: {message}",
                             retryable=False)
    return ProviderError(f"{where}: {exc.__class__.__name__}: {exc}", retryable=True)


class AnthropicProvider(Provider):
    """Messages streaming over the ``anthropic`` SDK (which runs under Trio via anyio)."""

    name = "anthropic"

    def __init__(self, config: AnthropicProviderConfig) -> None:
        self.config = config
        self._client: anthropic.AsyncAnthropic | None = None

    def model_for(self, request: ProviderRequest) -> str:
        return request.model or self.config.model

    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                api_key=os.environ.get(self.config.api_key_env) or "no-key-configured",
                base_url=self.config.base_url, max_retries=0,
                timeout=anthropic.Timeout(None, connect=self.config.connect_timeout_s))
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

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        try:
            response = await self.client().messages.create(**self._body(request))
        except anthropic.AnthropicError as exc:
            raise translate_error(exc, self.config) from exc
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        stopped = False
        tools: dict[int, tuple[str, str, list[str]]] = {}
        async with response:  # closes the HTTP response however we leave
            try:
                async for ev in response:
                    kind = ev.type
                    if kind == "message_start":
                        input_tokens = ev.message.usage.input_tokens or 0
                    elif kind == "content_block_start":
                        block = ev.content_block
                        if block.type == "tool_use":
                            tools[ev.index] = (block.id, block.name, [])
                            yield ToolCallStart(block.id, block.name)
                        elif block.type == "text" and block.text:
                            yield TextDelta(block.text)
                    elif kind == "content_block_delta":
                        delta = ev.delta
                        if delta.type == "text_delta" and delta.text:
                            yield TextDelta(delta.text)
                        elif delta.type == "thinking_delta" and delta.thinking:
                            yield ReasoningDelta(delta.thinking)
                        elif delta.type == "input_json_delta" and ev.index in tools:
                            tools[ev.index][2].append(delta.partial_json)
                            if delta.partial_json:
                                yield ToolCallDelta(tools[ev.index][0], delta.partial_json)
                    elif kind == "content_block_stop" and ev.index in tools:
                        call_id, name, parts = tools.pop(ev.index)
                        yield ToolCallComplete(call_id, name, _arguments(name, parts))
                    elif kind == "message_stop":
                        stopped = True
                    elif kind == "message_delta":
                        stop_reason = ev.delta.stop_reason or stop_reason
                        output_tokens = ev.usage.output_tokens or output_tokens
            except anthropic.AnthropicError as exc:
                raise translate_error(exc, self.config) from exc
        if not stopped:  # the body ended before message_stop: the connection dropped
            raise ProviderError(f"anthropic ({self.config.base_url}): the stream ended early, "
                                "before message_stop", retryable=True)
        yield Usage(input_tokens, output_tokens)
        yield Finish({"max_tokens": "length", "tool_use": "tool_calls"}.get(
            stop_reason or "", "stop"))


def _arguments(name: str, parts: list[str]) -> dict[str, Any]:
    text = "".join(parts) or "{}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"anthropic: tool call {name!r} has arguments that are not JSON: "
                            f"{text[:80]!r}", retryable=False) from exc
    return value if isinstance(value, dict) else {}
