"""streamer: stream LLM answers into rich-text editors over WebSocket and SSE, on Trio.

The public API (``docs/embedding.md``), imported on first use so that ``import streamer``
stays cheap and the pure packages never pull in the web stack:

- :func:`load_config`, :class:`Config`, :class:`ConfigError` (``streamer.config``);
- :class:`Streamer` (the registry, its ``tools`` and ``providers``, ``create_app``,
  ``serve``) and :func:`serve` (``streamer.api``); :func:`create_app` (``streamer.web.app``);
- for providers of your own: :class:`Provider`, :class:`ProviderRequest` and the events
  :class:`TextDelta`, :class:`ReasoningDelta`, :class:`ToolCallStart`,
  :class:`ToolCallComplete`, :class:`Usage`, :class:`Finish`
  (``streamer.providers``);
- for an auth hook: :class:`Identity`, :class:`RequestInfo` (``streamer.security.identity``)
  and :class:`Unauthorized` (``streamer.errors``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "load_config": "streamer.config", "Config": "streamer.config",
    "ConfigError": "streamer.config",
    "Streamer": "streamer.api", "serve": "streamer.api",
    "create_app": "streamer.web.app",
    "Provider": "streamer.providers", "ProviderRequest": "streamer.providers",
    "TextDelta": "streamer.providers", "ReasoningDelta": "streamer.providers",
    "Usage": "streamer.providers", "Finish": "streamer.providers",
    "ToolCallStart": "streamer.providers", "ToolCallComplete": "streamer.providers",
    "Identity": "streamer.security.identity", "RequestInfo": "streamer.security.identity",
    "Unauthorized": "streamer.errors",
}

__all__ = ["Config", "ConfigError", "Finish", "Identity", "Provider", "ProviderRequest",
           "ReasoningDelta", "RequestInfo", "Streamer", "TextDelta", "ToolCallComplete",
           "ToolCallStart", "Unauthorized", "Usage",
           "__version__", "create_app", "load_config", "serve"]

if TYPE_CHECKING:  # pragma: no cover
    from streamer.api import Streamer, serve
    from streamer.config import Config, ConfigError, load_config
    from streamer.errors import Unauthorized
    from streamer.providers import (
        Finish,
        Provider,
        ProviderRequest,
        ReasoningDelta,
        TextDelta,
        ToolCallComplete,
        ToolCallStart,
        Usage,
    )
    from streamer.security.identity import Identity, RequestInfo
    from streamer.web.app import create_app


def __getattr__(name: str) -> Any:
    """PEP 562: the public names, imported when first asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
