"""Providers: where answers come from (``local``, ``echo``, ``openai``, ``anthropic``)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

import trio

from streamer.config import ProvidersConfig
from streamer.errors import ProviderUnavailable
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

__all__ = ["Finish", "Provider", "ProviderEvent", "ProviderRequest", "Providers", "Queued",
           "ReasoningDelta", "TextDelta", "ToolCallComplete", "ToolCallDelta", "ToolCallStart",
           "ToolRound", "Usage"]

NAMES = ("local", "echo", "openai", "anthropic")


#: the module of each built-in provider (imported lazily, or by :meth:`Providers.warm`)
MODULES = {"echo": "streamer.providers.echo", "local": "streamer.providers.local",
           "openai": "streamer.providers.openai_compat",
           "anthropic": "streamer.providers.anthropic_messages"}
logger = logging.getLogger("streamer.providers")


class Providers:
    """The process's providers, built once from configuration and created on first use."""

    def __init__(self, config: ProvidersConfig) -> None:
        self.config = config
        self._providers: dict[str, Provider] = {}

    def get(self, name: str | None) -> Provider:
        """The provider called ``name`` (``None``: the configured default).

        Raises:
            ProviderUnavailable: no such provider.
        """
        name = name or self.config.default
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        if name == "echo":
            from streamer.providers.echo import EchoProvider
            provider = EchoProvider(self.config.echo)
        elif name == "local":
            from streamer.providers.local import LocalProvider
            provider = LocalProvider(self.config.local)
        elif name == "openai":
            from streamer.providers.openai_compat import OpenAIProvider
            provider = OpenAIProvider(self.config.openai)
        elif name == "anthropic":
            from streamer.providers.anthropic_messages import AnthropicProvider
            provider = AnthropicProvider(self.config.anthropic)
        else:
            unknown = f"unknown provider {name!r}; choose one of {', '.join(NAMES)}"
            raise ProviderUnavailable(unknown, retryable=False, public_message=unknown)
        self._providers[name] = provider
        return provider

    async def warm(self, names: Iterable[str]) -> None:
        """Import these providers' modules (and so their SDKs) in a worker thread, and make
        the SDK clients there too, at start-up: imported on first use, ``openai`` alone held
        the event loop for seconds. Failures are left for the first request to report."""
        for name in names:
            module = MODULES.get(name)
            if module is None:
                continue
            try:
                await trio.to_thread.run_sync(importlib.import_module, module)
                client = getattr(self.get(name), "client", None)
                if client is not None:
                    await client()
            except Exception:  # reported when a stream uses the provider
                logger.debug("warming provider %s failed", name, exc_info=True)

    def register(self, provider: Provider) -> None:
        """Add or replace a provider (embedding applications, tests)."""
        self._providers[provider.name] = provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
