"""The quart-trio application: its lifecycle and its routes (``rest``, ``streaming``).

``GET /`` is the demo page (``static/demo/index.html``), ``GET /static/…`` the browser
client, the Tiptap bundle and the demo's assets. At start-up the registry is bound to the
server nursery, the store opened (persistence on) and the housekeeping tasks started; at
shutdown the providers and the store are closed (``server.py`` drains before that).
Streaming responses switch Quart's 60 s ``RESPONSE_TIMEOUT`` off and rely on streamer's own
deadlines.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from quart import Response
from quart_trio import QuartTrio

from streamer.config import Config
from streamer.errors import StreamerError
from streamer.persistence import Store
from streamer.runtime.registry import Registry
from streamer.web.http import EXTENSION, error_response
from streamer.web.rest import rest
from streamer.web.streaming import streams

logger = logging.getLogger("streamer.web")

STATIC_DIR = Path(str(resources.files("streamer") / "static"))
#: request bodies Quart itself refuses beyond this (the routes' own limits are lower)
MAX_CONTENT_BYTES = 1 << 20


def create_app(config: Config, registry: Registry | None = None) -> QuartTrio:
    """Build the application. The registry (sessions, providers, renderer) is created once."""
    app = QuartTrio("streamer", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max(config.server.max_message_bytes, MAX_CONTENT_BYTES)
    registry = registry or Registry(config)
    app.extensions[EXTENSION] = registry

    @app.before_serving
    async def start() -> None:
        registry.bind(app.nursery)
        if config.persistence.enabled and registry.store is None:
            registry.store = await Store.open(config.persistence)
            logger.info("persistence: %s", registry.store.path)
        app.nursery.start_soon(registry.reap_idle_sessions, name="session reaper")
        app.nursery.start_soon(registry.housekeeping, name="housekeeping")

    @app.after_serving
    async def stop() -> None:
        await registry.providers.aclose()
        if registry.store is not None:
            store, registry.store = registry.store, None
            await store.aclose()

    @app.errorhandler(StreamerError)
    async def on_streamer_error(exc: StreamerError) -> Response:
        return error_response(exc)

    @app.get("/")
    async def index() -> Response:
        return await app.send_static_file("demo/index.html")

    app.register_blueprint(rest)
    app.register_blueprint(streams)
    return app
