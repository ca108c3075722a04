"""The ``openai`` provider: any OpenAI-compatible chat-completions stream, via the official SDK.

OpenAI, Perplexity, Ollama, vLLM and llama.cpp's server all speak it
(``POST {base_url}/chat/completions`` with ``stream: true``: one ``chat.completion.chunk``
per SSE ``data:`` line, then ``data: [DONE]``; openai-python
``types/chat/chat_completion_chunk.py``). ``stream_options.include_usage`` asks for a last
chunk with ``choices: []`` and the usage (a server that ignores it simply gives none).

The API key comes only from the environment variable named by ``api_key_env``. Leaving the
``async with`` of :meth:`OpenAIProvider.stream` closes the HTTP response at once (the
SDK's ``AsyncStream.close``), so the upstream server sees the connection end.
The SDK's own retries are off (``max_retries=0``): retrying is the stream's decision.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncGenerator
from typing import Any

import openai
import trio

from streamer.config import OpenAIProviderConfig
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
    Citations,
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

#: the API's ``finish_reason`` -> ours (anything else, e.g. ``stop``, ``content_filter``: stop)
FINISH_REASONS: dict[str, FinishReason] = {"length": "length", "tool_calls": "tool_calls"}

#: sent when no key is configured: local servers (Ollama, vLLM, llama.cpp) accept anything
NO_KEY = "no-key-configured"


def translate_error(exc: Exception, config: OpenAIProviderConfig) -> ProviderError:
    """Map an exception of the SDK (or, mid-body, of its transport) to streamer's tree
    (httpcore's ``map_exceptions`` habit). Names no transport library: see ``_http``.

    The detail (for the server's log) names the URL, the setting or variable to fix and the
    upstream's status and message; clients read only the fixed texts of :mod:`streamer.errors`.
    """
    where = f"openai ({config.base_url})"
    if not isinstance(exc, openai.OpenAIError):
        return transport_error(where, exc)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError(f"{where}: {key_problem(config.api_key_env)} ({exc.status_code})",
                             retryable=False, public_message=PROVIDER_NOT_CONFIGURED)
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(
            f"{where}: model or endpoint not found; check providers.openai.model "
            f"and providers.openai.base_url ({exc.message})", retryable=False,
            public_message=PROVIDER_NO_MODEL)
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited(f"{where}: rate limited (429): {exc.message}",
                                   retry_after_ms=retry_after_ms(exc.response.headers))
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{where}: timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{where}: cannot connect: {exc}")
    if isinstance(exc, openai.APIStatusError) and _context_overflow(exc):
        return context_exceeded(f"{where}: HTTP {exc.status_code}: {exc.message} "
                                "(providers.openai.max_input_tokens)",
                                config.max_input_tokens or None)
    if isinstance(exc, openai.APIStatusError):
        server_side = exc.status_code >= 500
        return ProviderError(f"{where}: HTTP {exc.status_code}: {exc.message}",
                             retryable=server_side,
                             public_message=None if server_side else PROVIDER_REFUSED)
    return ProviderError(f"{where}: {exc.__class__.__name__}: {exc}", retryable=True)


def _context_overflow(exc: openai.APIStatusError) -> bool:
    """The server refused a request longer than its context: OpenAI's
    ``context_length_exceeded`` (vLLM's "maximum context length" message), llama.cpp server's
    ``exceed_context_size_error``."""
    text = f"{exc.code} {exc.type} {exc.message}".lower()
    return exc.status_code == 400 and any(mark in text for mark in (
        "context_length_exceeded", "maximum context length", "exceed_context_size"))


class _ToolCalls:
    """Assembles streamed tool calls (``delta.tool_calls[i]``: the first piece of call ``i``
    has ``id`` and ``function.name``, later pieces only ``function.arguments`` fragments)."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self._done: set[int] = set()

    def feed(self, call: Any) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        function = call.function
        if call.index not in self._calls:
            call_id = call.id or f"call_{call.index}"
            name = (function.name if function is not None else None) or ""
            self._calls[call.index] = (call_id, name, [])
            out.append(ToolCallStart(call_id, name))
        call_id, _name, parts = self._calls[call.index]
        if function is not None and function.arguments:
            parts.append(function.arguments)
            out.append(ToolCallDelta(call_id, function.arguments))
        return out

    def complete(self) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        for index, (call_id, name, parts) in self._calls.items():
            if index in self._done:
                continue
            self._done.add(index)
            text = "".join(parts) or "{}"
            try:
                arguments = json.loads(text)
            except ValueError as exc:
                raise ProviderError(
                    f"openai: tool call {name!r} has arguments that are not JSON: {text[:80]!r}",
                    retryable=False) from exc
            out.append(ToolCallComplete(call_id, name,
                                        arguments if isinstance(arguments, dict) else {}))
        return out


def _sources(extra: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(url, title)`` of each source: Perplexity's ``search_results`` (``title``, ``url``;
    docs.perplexity.ai, "Chat Completions"), else its ``citations`` (URLs, the title is the
    URL). Numbered as the answer's ``[n]`` markers."""
    results = extra.get("search_results")
    if isinstance(results, list) and results:
        return tuple((str(r["url"]), str(r.get("title") or r["url"])) for r in results
                     if isinstance(r, dict) and r.get("url"))
    return tuple((url, url) for url in extra.get("citations") or () if isinstance(url, str))


#: ``providers.openai.preset`` → (base_url, model, api_key_env), each used where the setting
#: is left empty. Sources: each server's docs (OpenAI API reference; docs.perplexity.ai;
#: Ollama's "OpenAI compatibility"; vLLM's OpenAI-compatible server, port 8000; llama.cpp's
#: ``llama-server``, port 8080). Local servers take any key and serve the model they loaded.
PRESETS: dict[str, tuple[str, str, str]] = {
    "openai": ("https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY"),
    "perplexity": ("https://api.perplexity.ai", "sonar", "PERPLEXITY_API_KEY"),
    "ollama": ("http://127.0.0.1:11434/v1", "llama3.2", ""),
    "vllm": ("http://127.0.0.1:8000/v1", "", ""),
    "llamacpp": ("http://127.0.0.1:8080/v1", "default", ""),
}


def resolve_preset(config: OpenAIProviderConfig) -> OpenAIProviderConfig:
    """``config`` with its empty ``base_url``, ``model`` and ``api_key_env`` taken from its
    ``preset``."""
    base_url, model, key_env = PRESETS.get(config.preset, PRESETS["openai"])
    return dataclasses.replace(config, base_url=config.base_url or base_url,
                               model=config.model or model,
                               api_key_env=config.api_key_env or key_env)


class OpenAIProvider(Provider):
    """Chat completions streaming over the ``openai`` SDK (which runs under Trio via anyio)."""

    name = "openai"

    def __init__(self, config: OpenAIProviderConfig) -> None:
        self.config = resolve_preset(config)
        self._client: openai.AsyncOpenAI | None = None

    def model_for(self, request: ProviderRequest) -> str:
        return request.model or self.config.model

    def input_budget(self, request: ProviderRequest) -> int | None:
        """``providers.openai.max_input_tokens`` (0: none); sizes are estimated
        (:func:`~streamer.providers.base.estimate_tokens`)."""
        return self.config.max_input_tokens or None

    def _make_client(self) -> openai.AsyncOpenAI:
        key_env = self.config.api_key_env
        client = openai.AsyncOpenAI(
            api_key=(os.environ.get(key_env) if key_env else None) or NO_KEY,
            base_url=self.config.base_url,
            max_retries=0,
            timeout=openai.Timeout(None, connect=self.config.connect_timeout_s),
        )
        client.chat.completions  # noqa: B018 - imports the SDK's lazy resource modules here
        return client

    async def client(self) -> openai.AsyncOpenAI:
        """The SDK client, made once, in a worker thread: the first one imports the SDK's
        lazy modules and builds an SSL context (1.7 s measured here), which must not stall
        every other stream on the event loop."""
        if self._client is None:
            made = await trio.to_thread.run_sync(self._make_client)
            if self._client is None:
                self._client = made
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        if not self.model_for(request):
            raise ProviderError(f"openai ({self.config.base_url}): no model: set "
                                "providers.openai.model (the name the server serves)",
                                retryable=False, public_message=PROVIDER_NOT_CONFIGURED)
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        for round_ in request.tool_rounds:  # OpenAI API reference, "Function calling"
            messages.append({"role": "assistant", "content": round_.text or None,
                             "tool_calls": [{"id": c.call_id, "type": "function", "function": {
                                 "name": c.name, "arguments": json.dumps(c.arguments)}}
                                 for c in round_.calls]})
            messages += [{"role": "tool", "tool_call_id": r.call_id, "content": r.content}
                         for r in round_.results]
        body: dict[str, Any] = {
            "model": self.model_for(request),
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens or self.config.max_tokens,
            "temperature": (self.config.temperature if request.temperature is None
                            else request.temperature),
        }
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools]
        return body

    @event_stream
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        try:
            response = await (await self.client()).chat.completions.create(**self._body(request))
        except openai.OpenAIError as exc:  # the SDK wraps its transport's errors here
            raise translate_error(exc, self.config) from exc
        finish = ""
        calls = _ToolCalls()
        sources: tuple[tuple[str, str], ...] = ()
        chunks = SDKStream(response, lambda exc: translate_error(exc, self.config))
        async with response:  # closes the HTTP response however we leave
            async for chunk in chunks:
                extra = chunk.model_extra or {}
                if extra.get("search_results") or extra.get("citations"):
                    sources = _sources(extra)  # Perplexity repeats them on every chunk
                if chunk.usage is not None:
                    yield Usage(chunk.usage.prompt_tokens or 0,
                                chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta is not None:
                        reasoning = (delta.model_extra or {}).get("reasoning_content")
                        if isinstance(reasoning, str) and reasoning:
                            yield ReasoningDelta(reasoning)  # vLLM, llama.cpp, DeepSeek
                        if delta.content:
                            yield TextDelta(delta.content)
                        for call in delta.tool_calls or ():
                            for item in calls.feed(call):
                                yield item
                    if choice.finish_reason:
                        finish = choice.finish_reason
                        for item in calls.complete():
                            yield item
        if not finish:  # the body ended without a finish_reason: the connection dropped
            raise ProviderError(f"openai ({self.config.base_url}): the stream ended early, "
                                "without a finish_reason", retryable=True)
        for item in calls.complete():
            yield item
        if sources:  # the document ends with them as a list; the AI SDK gets source-url parts
            yield Citations(sources)
        yield Finish(FINISH_REASONS.get(finish, "stop"))
