"""``shout``: an example provider plugin for streamer.

Installed (``pip install examples/streamer-plugin-shout``), it is offered as the provider
``shout`` (once ``policy.providers`` lists it), and ``[providers.NAME] type = "shout"`` makes
more instances with their own settings. streamer calls the entry point with the instance's
name and its settings table; a setting it does not know, or of the wrong type, is refused
with a ``ValueError`` (streamer reports it, and does not retry).

Settings: ``delta_chars`` (characters per delta, default 3), ``interval_ms`` (pause between
deltas, default 10), ``suffix`` (added to the answer, default ``"!"``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import trio

from streamer.providers import Finish, Provider, ProviderRequest, TextDelta, Usage

DEFAULTS: dict[str, Any] = {"delta_chars": 3, "interval_ms": 10, "suffix": "!"}


class ShoutProvider(Provider):
    """Answers with the last user message in upper case, cut into deltas."""

    sends_tools = False

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(DEFAULTS)}")
        values = {**DEFAULTS, **settings}
        for key, default in DEFAULTS.items():
            if type(values[key]) is not type(default):
                raise ValueError(f"{key} must be a {type(default).__name__}")
        if values["delta_chars"] < 1 or values["interval_ms"] < 0:
            raise ValueError("delta_chars must be >= 1 and interval_ms >= 0")
        self.name = name
        self.delta_chars: int = values["delta_chars"]
        self.interval_s: float = values["interval_ms"] / 1000
        self.suffix: str = values["suffix"]

    def model_for(self, request: ProviderRequest) -> str:
        return "shout-1"

    @trio.as_safe_channel
    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Any, None]:
        prompt = next(m.content for m in reversed(request.messages) if m.role == "user")
        text = prompt.upper() + self.suffix
        for start in range(0, len(text), self.delta_chars):
            await trio.sleep(self.interval_s)
            yield TextDelta(text[start:start + self.delta_chars])
        yield Usage(len(prompt), len(text), unit="chars")
        yield Finish("stop")
