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

import os
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import openai
import trio

from streamer.config import OpenAIProviderConfig
from streamer.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from streamer.providers.base import (
    Finish,
    Provider,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    Usage,
)

#: sent when no key is configured: local servers (Ollama, vLLM, llama.cpp) accept anything
NO_KEY = "no-key-configured"


def translate_error(exc: Exception, config: OpenAIProviderConfig) -> ProviderError:
    """Map an SDK exception to streamer's tree (httpcore's ``map_exceptions`` habit)."""
    where = f"openai ({config.base_url})"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError(
            f"{where}: the API key was refused ({exc.status_code}); set the environment "
            f"variable {config.api_key_env}", retryable=False)
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(
            f"{where}: model or endpoint not found; check providers.openai.model "
            f"and providers.openai.base_url ({exc.message})", retryable=False)
    if isinstance(exc, openai.RateLimitError):
        retry_after = exc.response.headers.get("retry-after")
        retry_after_ms = None
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            retry_after_ms = int(float(retry_after) * 1000)
        return ProviderUnavailable(f"{where}: rate limited (429)", retry_after_ms=retry_after_ms)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{where}: timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{where}: cannot connect: {exc}")
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(f"{where}: HTTP {exc.status_code}: {exc.message}",
                             retryable=exc.status_code >= 500)
    if isinstance(exc, httpx.HTTPError):
        return ProviderError(f"{where}: {exc.__class__.__name__}: {exc}", retryable=True)
    return ProviderError(f"{where}: {exc}")


class OpenAIProvider(Provider):
    """Chat completions streaming over the ``openai`` SDK (which runs under Trio via anyio)."""

    name = "openai"

    def __init__(self, config: OpenAIProviderConfig) -> None:
        self.config = config
        self._client: openai.AsyncOpenAI | None = None

    def model_for(self, request: ProviderRequest) -> str:
        return request.model or self.config.model

    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=os.environ.get(self.config.api_key_env) or NO_KEY,
                base_url=self.config.base_url,
                max_retries=0,
                timeout=httpx.Timeout(None, connect=self.config.connect_timeout_s),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {
            "model": self.model_for(request),
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens or self.config.max_tokens,
            "temperature": (self.config.temperature if request.temperature is None
                            else request.temperature),
        }
        return body

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        try:
            response = await self.client().chat.completions.create(**self._body(request))
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise translate_error(exc, self.config) from exc
        finish = "stop"
        async with response:  # closes the HTTP response however we leave
            try:
                async for chunk in response:
                    if chunk.usage is not None:
                        yield Usage(chunk.usage.prompt_tokens or 0,
                                    chunk.usage.completion_tokens or 0)
                    for choice in chunk.choices:
                        if choice.index != 0:
                            continue
                        if choice.delta is not None and choice.delta.content:
                            yield TextDelta(choice.delta.content)
                        if choice.finish_reason:
                            finish = choice.finish_reason
            except (openai.OpenAIError, httpx.HTTPError) as exc:
                raise translate_error(exc, self.config) from exc
        yield Finish("length" if finish == "length" else "stop")
