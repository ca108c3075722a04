"""Providers: where answers come from (``local``, ``echo``, ``openai``, ``anthropic``, named
instances of their types, plugins, and providers registered from Python): the registry."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import trio

from streamer.config import ProvidersConfig
from streamer.errors import PROVIDER_NOT_CONFIGURED, ProviderUnavailable, StreamerError
from streamer.providers.base import (
    Finish,
    Provider,
    ProviderEvent,
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

__all__ = ["Finish", "Provider", "ProviderEvent", "ProviderInfo", "ProviderRequest", "Providers",
           "Queued",
           "ReasoningDelta", "TextDelta", "ToolCallComplete", "ToolCallDelta", "ToolCallStart",
           "ToolRound", "Usage"]

NAMES = ("local", "echo", "openai", "anthropic")
#: the entry-point group through which installed packages add provider types
PLUGIN_GROUP = "streamer.providers"

#: each built-in provider type: its module (imported lazily, or by :meth:`Providers.warm`)
#: and class; the class takes the type's settings (``streamer.config``)
TYPES = {"echo": ("streamer.providers.echo", "EchoProvider"),
         "local": ("streamer.providers.local", "LocalProvider"),
         "openai_compat": ("streamer.providers.openai_compat", "OpenAIProvider"),
         "anthropic": ("streamer.providers.anthropic_messages", "AnthropicProvider")}
#: the type of each built-in section of ``[providers]`` (``openai`` is an ``openai_compat``)
BUILTIN_TYPES = {"local": "local", "echo": "echo", "openai": "openai_compat",
                 "anthropic": "anthropic"}
#: what to install when a built-in type's module does not import
INSTALL_HINTS = {"local": "pip install 'streamer[local]'"}
logger = logging.getLogger("streamer.providers")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What ``GET /api/providers`` says of one provider.

    Attributes:
        name: what a ``start`` names.
        type: its type (``openai_compat``, ``anthropic``, ``echo``, ``local``, a plugin's entry
            point name, or ``custom`` for one registered from Python).
        model: the model it uses when a ``start`` names none (``None``: unknown).
        tools: it can call the server's tools.
        reasoning: it streams the model's reasoning apart from the answer.
    """

    name: str
    type: str
    model: str | None
    tools: bool
    reasoning: bool


def configured_model(config: ProvidersConfig, name: str) -> str | None:
    """The model provider ``name`` uses when a ``start`` names none, from configuration
    alone (``None``: unknown, e.g. a plugin's or an embedder's provider)."""
    kind, section = _type_of(config, name)
    if kind == "local":
        return Path(section.model_path).stem if section.model_path else section.model_name
    if kind == "echo":
        return "echo"
    if kind == "anthropic":
        return str(section.model)
    if kind == "openai_compat":
        if section.model:
            return str(section.model)
        # the preset's model (imported here: the module loads the openai SDK)
        from streamer.providers.openai_compat import resolve_preset
        return resolve_preset(section).model or None
    return None


def _type_of(config: ProvidersConfig, name: str) -> tuple[str | None, Any]:
    if name in BUILTIN_TYPES:
        return BUILTIN_TYPES[name], getattr(config, name)
    for named in config.named:
        if named.name == name:
            return ("openai_compat" if named.type == "openai" else named.type), named.settings
    return None, None


class Providers:
    """The process's providers, built once from configuration and created on first use.

    Names come from four places: the built-in sections (``local``, ``echo``, ``openai``,
    ``anthropic``), named instances (``[providers.NAME]`` with a ``type``), installed plugins
    (each entry point of :data:`PLUGIN_GROUP` is a type, offered under its own name too) and
    :meth:`register` (an embedding application's own). A plugin's entry point names a
    callable ``factory(name: str, settings: dict) -> Provider`` (a :class:`Provider`
    subclass with that ``__init__`` will do).

    Args:
        config: ``[providers]``.
        plugins: look for plugins (default ``True``).
    """

    def __init__(self, config: ProvidersConfig, *, plugins: bool = True) -> None:
        self.config = config
        self._providers: dict[str, Provider] = {}
        self._plugins: dict[str, EntryPoint] = {}
        if plugins:
            for ep in entry_points(group=PLUGIN_GROUP):
                if ep.name in TYPES or ep.name in BUILTIN_TYPES or ep.name == "openai":
                    logger.warning("provider plugin %s (%s) ignored: a built-in name",
                                   ep.name, ep.value)
                else:
                    self._plugins.setdefault(ep.name, ep)

    def names(self) -> list[str]:
        """Every provider name this process knows, built-ins first."""
        named = [n.name for n in self.config.named]
        found = [*NAMES, *named, *self._plugins, *self._providers]
        return list(dict.fromkeys(found))

    def get(self, name: str | None) -> Provider:
        """The provider called ``name`` (``None``: the configured default).

        Raises:
            ProviderUnavailable: no such provider, or it cannot be set up (not retryable:
                the message says what to install or set).
        """
        name = name or self.config.default
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        kind, section = _type_of(self.config, name)
        if kind is None and name in self._plugins:
            kind, section = name, ()
        if kind is None:
            unknown = f"unknown provider {name!r}; choose one of {', '.join(self.names())}"
            raise ProviderUnavailable(unknown, retryable=False, public_message=unknown)
        provider = self._make(name, kind, section)
        self._providers[name] = provider
        return provider

    def _make(self, name: str, kind: str, section: Any) -> Provider:
        try:
            if kind in TYPES:
                module, cls = TYPES[kind]
                provider: Provider = getattr(importlib.import_module(module), cls)(section)
            else:
                factory = self._plugins[kind].load()
                provider = factory(name, dict(section or ()))
        except ImportError as exc:
            hint = INSTALL_HINTS.get(kind, f"install the package that provides {kind!r}")
            raise ProviderUnavailable(f"provider {name}: {exc}; {hint}", retryable=False,
                                      public_message=PROVIDER_NOT_CONFIGURED) from exc
        except (TypeError, ValueError) as exc:  # a plugin refusing its settings
            raise ProviderUnavailable(f"provider {name} ({kind}): {exc}", retryable=False,
                                      public_message=PROVIDER_NOT_CONFIGURED) from exc
        provider.name = name
        return provider

    def describe(self, name: str) -> ProviderInfo | None:
        """What ``name`` is and supports (``None``: it cannot be set up). Built-in types are
        described from configuration; plugins and registered ones are asked (created)."""
        kind, section = _type_of(self.config, name)
        if kind in TYPES:
            model = configured_model(self.config, name)
            reasoning = kind == "openai_compat" or (
                kind == "anthropic" and section.thinking_budget_tokens > 0)
            return ProviderInfo(name, kind, model, kind in ("openai_compat", "anthropic"),
                                reasoning)
        try:
            provider = self.get(name)
        except StreamerError:
            return None
        try:
            asked: str | None = provider.model_for(ProviderRequest(messages=()))
        except Exception:  # a provider that needs a request to say: unknown
            asked = None
        kind = kind or (name if name in self._plugins else "custom")
        return ProviderInfo(name, kind, asked, bool(getattr(provider, "sends_tools", False)),
                            bool(getattr(provider, "supports_reasoning", False)))

    async def warm(self, names: Iterable[str]) -> None:
        """Import these providers' modules (and so their SDKs) in a worker thread, and make
        the SDK clients there too, at start-up: imported on first use, ``openai`` alone held
        the event loop for seconds. Failures are left for the first request to report."""
        for name in names:
            kind, _section = _type_of(self.config, name)
            if kind not in TYPES and name not in self._plugins:
                continue
            try:
                if kind in TYPES:
                    await trio.to_thread.run_sync(importlib.import_module, TYPES[kind][0])
                else:
                    await trio.to_thread.run_sync(self._plugins[name].load)
                client = getattr(self.get(name), "client", None)
                if client is not None:
                    await client()
            except Exception:  # reported when a stream uses the provider
                logger.debug("warming provider %s failed", name, exc_info=True)

    def register(self, provider: Provider, name: str | None = None) -> None:
        """Add or replace a provider (embedding applications, tests). ``name`` (default
        ``provider.name``) is what a ``start`` names; the policy must allow it
        (``policy.providers``)."""
        if name is not None:
            provider.name = name
        self._providers[provider.name] = provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
