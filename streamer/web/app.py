"""The quart-trio application: its lifecycle and its routes (``rest``, ``streaming``).

``GET /`` is the demo page (``static/demo/index.html``; ``server.serve_demo = false`` leaves it
out), ``GET /static/…`` the browser client, the Tiptap bundle and the demo's assets. Under a
path prefix (the ASGI ``root_path``: ``server.root_path``, or the prefix an embedding
application mounts the app at) every route moves with it: the demo page names its assets
relative to itself and the client finds the API next to the page. At start-up the registry
is bound to the server nursery, the store opened (persistence on) and the housekeeping tasks
started; at shutdown the providers and the store are closed (``server.py`` drains before that).
Streaming responses switch Quart's 60 s ``RESPONSE_TIMEOUT`` off and rely on streamer's own
deadlines.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from quart import Response
from quart_cors import cors
from quart_trio import QuartTrio

from streamer.config import Config
from streamer.errors import StreamerError
from streamer.observability.health import install_health
from streamer.persistence import open_store
from streamer.runtime.registry import Registry
from streamer.security.identity import AuthHook
from streamer.security.origins import allowed_origins
from streamer.web.catalog import catalog
from streamer.web.guard import Guard
from streamer.web.http import EXTENSION, error_response
from streamer.web.rest import rest
from streamer.web.streaming import streams
from streamer.web.ws_route import route_websockets

logger = logging.getLogger("streamer.web")

STATIC_DIR = Path(str(resources.files("streamer") / "static"))
#: request bodies Quart itself refuses beyond this (the routes' own limits are lower):
#: at least 1 MiB, and room for the one-shot render's longest document in UTF-8
MAX_CONTENT_BYTES = 1 << 20


#: what a page on an allowed origin may send and read (CORS, Fetch standard §3.2)
CORS_HEADERS = ["Authorization", "Content-Type", "X-CSRF-Token", "Last-Event-ID"]
CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_MAX_AGE_S = 600
#: response headers such a page may read (``POST /api/chat``'s stream marker too)
CORS_EXPOSED = ["Retry-After", "x-vercel-ai-ui-message-stream"]


def create_app(config: Config, registry: Registry | None = None,
               auth_hook: AuthHook | None = None) -> QuartTrio:
    """Build the application. The registry (sessions, providers, renderer) is created once.

    Args:
        config: the server's configuration.
        registry: the sessions and shared objects (default: a new one from ``config``).
        auth_hook: an embedding application's own identity check, asked before the
            configured ``auth.mode`` (``streamer.security.identity.AuthHook``).
    """
    app = QuartTrio("streamer", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max(config.server.max_message_bytes, MAX_CONTENT_BYTES,
                                           config.render.max_render_chars * 4)
    registry = registry or Registry(config)
    app.extensions[EXTENSION] = registry
    guard = Guard(config, auth_hook)
    app.extensions["streamer.guard"] = guard
    readiness = install_health(app, registry)
    app.before_request(guard.before_request)
    app.before_websocket(guard.before_websocket)
    app.after_request(guard.after_request)
    # CORS answers only the allowed origins (never "*": credentials are allowed)
    cors(app, allow_origin=allowed_origins(config.security), allow_credentials=True,
         allow_headers=CORS_HEADERS, allow_methods=CORS_METHODS,
         expose_headers=CORS_EXPOSED, max_age=CORS_MAX_AGE_S)

    @app.before_serving
    async def start() -> None:
        registry.bind(app.nursery)
        if config.persistence.enabled and registry.store is None:
            registry.store = await open_store(config, app.nursery)
            logger.info("persistence: %s", registry.store.path)
        app.nursery.start_soon(registry.reap_idle_sessions, name="session reaper")
        app.nursery.start_soon(registry.housekeeping, name="housekeeping")
        app.nursery.start_soon(registry.offload.warm, config.render, name="render worker")
        app.nursery.start_soon(readiness.after, registry.providers.warm,
                               config.policy.providers, name="provider imports")

    @app.after_serving
    async def stop() -> None:
        await registry.providers.aclose()
        if registry.store is not None:
            store, registry.store = registry.store, None
            await store.aclose()

    @app.errorhandler(StreamerError)
    async def on_streamer_error(exc: StreamerError) -> Response:
        registry.metrics.error(exc.code)
        return error_response(exc)

    if config.server.serve_demo:
        @app.get("/")
        async def index() -> Response:
            return await app.send_static_file("demo/index.html")

    app.register_blueprint(rest)
    app.register_blueprint(catalog)
    app.register_blueprint(streams)
    route_websockets(app, registry, guard)  # GET /ws/stream/{session_id}, before Quart
    return app


def with_root_path(app: Any, root_path: str) -> Any:
    """``app`` served under the path prefix ``root_path`` (``"/streamer"``; ``""``: ``app``
    itself): HTTP and WebSocket scopes get it as their ASGI ``root_path`` (the proxy passes
    the full path on; Quart routes what follows the prefix and 404s the rest), as hypercorn's
    own ``root_path`` setting does."""
    prefix = root_path.rstrip("/")
    if not prefix:
        return app

    async def prefixed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": prefix + scope.get("root_path", "")}
        await app(scope, receive, send)

    return prefixed
