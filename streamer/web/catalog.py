"""``GET /api/providers``: the providers the caller may name, with their models and features.

::

    {"default": "local" | null,
     "providers": [{"name": "perplexity", "type": "openai_compat", "model": "sonar",
                    "models": ["sonar", "sonar-pro"], "any_model": false,
                    "supports": {"tools": true, "reasoning": true}, "default": false}, …],
     "tools": [{"name": "calculate", "description": "…"}, …]}

Filtered by the caller's policy (``streamer.security.policy``): only providers its
``policy.providers`` lists (an API key's or JWT's own list replaces the global one) and this
process knows (built in, ``[providers.NAME]`` instances, plugins, registered from Python);
``models`` is the configured model plus the ``policy.models`` rules ``provider:model`` it may
name, ``any_model`` when a rule says ``provider:*``. ``default`` is ``providers.default`` when
the caller may use it; ``tools`` are the tools a ``start`` may name. A provider that cannot be
set up (a plugin that fails to load) is left out. The demo page fills its menu from here.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response

from streamer.errors import Forbidden
from streamer.providers import ProviderInfo
from streamer.security.policy import parse_overrides
from streamer.web.guard import identity
from streamer.web.http import json_response, registry

catalog = Blueprint("catalog", __name__)


def entry(info: ProviderInfo, rules: tuple[str, ...], default: str) -> dict[str, Any]:
    """One provider's JSON (see the module docstring)."""
    extra = [rule.split(":", 1)[1] for rule in rules
             if rule.startswith(f"{info.name}:") and not rule.endswith(":*")]
    models = list(dict.fromkeys([*([info.model] if info.model else []), *extra]))
    return {"name": info.name, "type": info.type, "model": info.model, "models": models,
            "any_model": f"{info.name}:*" in rules,
            "supports": {"tools": info.tools, "reasoning": info.reasoning},
            "default": info.name == default}


@catalog.get("/api/providers")
async def providers() -> Response:
    reg = registry()
    try:
        overrides = parse_overrides(identity().policy)
    except ValueError as exc:
        raise Forbidden("this identity's policy is malformed") from exc
    policy = reg.config.policy
    allowed = policy.providers if overrides.providers is None else overrides.providers
    rules = policy.models if overrides.models is None else overrides.models
    names = [name for name in reg.providers.names() if name in allowed]
    # describing an openai_compat provider may import its SDK (seconds, the first time)
    infos = await trio.to_thread.run_sync(lambda: [reg.providers.describe(n) for n in names])
    default = reg.config.providers.default
    listed = [entry(info, rules, default) for info in infos if info is not None]
    tools = [{"name": tool.name, "description": tool.description}
             for tool in map(reg.tools.get, reg.tools.names()) if tool is not None]
    return json_response({"default": default if default in names else None,
                          "providers": listed, "tools": tools})
