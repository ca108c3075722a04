"""The public Python API: run streamer from your own program, or inside your own application.

::

    import streamer

    config = streamer.load_config("streamer.toml")      # file + STREAMER_* variables
    app = streamer.Streamer(config)                      # owns the registry
    app.tools.register(get_weather, description="Weather in a city", parameters={...})
    app.providers.register(MyProvider(), name="mine")    # policy.providers must list "mine"
    trio.run(app.serve)                                  # or: streamer.serve(config, app)

:meth:`Streamer.create_app` gives the quart-trio application (``auth_hook``: your own identity
check, ``docs/security.md``), for mounting under a prefix of an application of your own
(hypercorn's ``TrioDispatcherMiddleware``; ``docs/embedding.md``); :meth:`Streamer.serve`
takes that application back, so the drain on SIGTERM still reaches every stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from quart_trio import QuartTrio

from streamer.config import Config, load_config
from streamer.providers import Provider, Providers
from streamer.runtime.registry import Registry
from streamer.security.identity import AuthHook
from streamer.tools import Tool, ToolFunction, Tools
from streamer.web.app import create_app


class Streamer:
    """One streamer: its configuration, its registry (sessions, providers, tools) and, once
    made, its application.

    Args:
        config: the configuration (default: :func:`~streamer.config.load_config` with no
            arguments: ``$STREAMER_CONFIG`` and the environment).
        auth_hook: an ``async (RequestInfo) -> Identity | None`` asked before the configured
            ``auth.mode`` (``streamer.security.identity.AuthHook``).

    Attributes:
        registry: the :class:`~streamer.runtime.registry.Registry` (every session).
    """

    def __init__(self, config: Config | None = None, *,
                 auth_hook: AuthHook | None = None) -> None:
        self.config = config if config is not None else load_config()
        self.registry = Registry(self.config)
        self.auth_hook = auth_hook
        self._app: QuartTrio | None = None

    @property
    def tools(self) -> Tools:
        """The tools a ``start`` may offer the model (``start.tools`` names them)."""
        return self.registry.tools

    @property
    def providers(self) -> Providers:
        """The providers: built in, ``[providers.NAME]`` instances, plugins, your own."""
        return self.registry.providers

    def tool(self, function: ToolFunction | None = None, **options: Any) -> Any:
        """Register ``function`` as a tool; as a decorator, with or without
        :meth:`~streamer.tools.Tools.register`'s options (``description``, ``parameters``,
        ``timeout_s``, ``blocking``, ``isolated``, ``name``)."""
        def register(fn: ToolFunction) -> ToolFunction:
            self.tools.register(fn, **options)
            return fn
        return register(function) if function is not None else register

    def add_provider(self, provider: Provider, name: str | None = None) -> Provider:
        """Offer ``provider`` under ``name`` (default ``provider.name``). The policy decides
        who may name it: list it in ``policy.providers``."""
        self.providers.register(provider, name)
        return provider

    def create_app(self, auth_hook: AuthHook | None = None) -> QuartTrio:
        """The quart-trio application (made once), its routes at its root: mount it under a
        prefix of your own application, or let :meth:`serve` serve it."""
        if self._app is None:
            self._app = create_app(self.config, self.registry, auth_hook or self.auth_hook)
        return self._app

    async def serve(self, app: Any = None, *,
                    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve ``app`` (default: :meth:`create_app`) on ``server.host``/``server.port``
        until SIGTERM/SIGINT or ``shutdown_trigger``, then drain this streamer's streams.
        ``task_status.started`` gets the bound URLs.

        Raises:
            ConfigError: an unsafe or unusable ``[auth]`` or ``[security]``.
        """
        from streamer.server import serve as serve_app
        await serve_app(self.config, shutdown_trigger=shutdown_trigger, task_status=task_status,
                        registry=self.registry, app=app or self.create_app())


async def serve(config: Config, streamer: Streamer | None = None, *, app: Any = None,
                shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``streamer`` (default: a new :class:`Streamer` of ``config``) and ``app`` (default:
    its own application): :meth:`Streamer.serve`."""
    if streamer is None:
        streamer = Streamer(config)
    elif streamer.config is not config:
        raise ValueError("serve: the streamer was made with another configuration")
    await streamer.serve(app, shutdown_trigger=shutdown_trigger, task_status=task_status)


__all__ = ["Streamer", "Tool", "serve"]
