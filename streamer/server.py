"""Run the app under hypercorn's Trio worker, with tuned GC (and a full collection every
``server.gc_full_interval_s``) and a graceful drain.

On SIGTERM or SIGINT: stop taking new streams, tell every client ``server_shutting_down``
(with ``retry_after_ms``), let running streams finish for ``drain_timeout_s``, cancel what
is left (their partial answers are kept), close connections cleanly, then exit.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.middleware import ProxyFixMiddleware
from hypercorn.trio import serve as hypercorn_serve

from streamer.config import Config
from streamer.runtime.registry import Registry
from streamer.security.identity import AuthHook, describe_auth, validate_auth
from streamer.security.origins import check_security
from streamer.web.app import create_app, with_root_path

logger = logging.getLogger("streamer.server")

#: hypercorn closes WebSockets whose frames exceed this many times ``max_message_bytes``;
#: smaller oversize messages get a clean ``payload_too_large`` error instead
HARD_FRAME_LIMIT_FACTOR = 4
#: a forwarded HTTP scheme → the WebSocket scheme it stands for
WS_SCHEMES = {"http": "ws", "https": "wss"}


def tune_gc(gen0_threshold: int) -> None:
    """Fewer, cheaper collections: at ~1k connections the default thresholds cost 350 ms p99
    (perf-lab §2c); ``gc.freeze()`` moves start-up objects out of every later collection."""
    if gen0_threshold > 0:
        gc.set_threshold(gen0_threshold, 50, 100)
    gc.freeze()


def collected_since_full() -> bool:
    """Whether a young collection ran since the last full one (``gc.get_count()[1:]``: the
    youngest generation's collections since the middle one's, the middle one's since the
    oldest's): its survivors left the youngest generation, and only a collection of the
    older ones finds their cycles."""
    _, young, middle = gc.get_count()
    return young > 0 or middle > 0


async def collect_garbage(interval_s: float) -> None:
    """Every ``interval_s``: a full collection, if a young collection ran since the last one
    (:func:`collected_since_full`).

    With ``gc_gen0_threshold`` at 100,000 Python collects the middle generation only every
    50 young collections (minutes under load) and the oldest almost never. A closed
    connection's cycle that survived a young collection (a cancellation's traceback holds
    the frames of its tasks, and they hold the connection, its session, hypercorn's
    buffers: about 100 KB) waits there; unreclaimed, that was the soak's RSS growth (issue
    16: about 0.2 MB/s at 16 clients, +54 % in 300 s). Waiting for the oldest generation's
    count, as this did first, never fired before the middle generation's first collection;
    a collection of the middle generation alone leaves the cycles it promotes (the soak
    grew +41 % in 240 s with it). A full collection costs in proportion to the objects
    alive (not frozen at start-up) and in the younger generations: about 0.3 s of CPU on
    the bench VM at 16 clients, where one of the middle generation alone took 0.22 s.
    """
    while True:
        await trio.sleep(interval_s)
        if not collected_since_full():
            continue
        started = time.perf_counter()
        found = gc.collect()
        logger.debug("full garbage collection: %d objects in %.1f ms", found,
                     (time.perf_counter() - started) * 1000)


def hypercorn_config(config: Config) -> HypercornConfig:
    hconfig = HypercornConfig()
    hconfig.bind = [f"{config.server.host}:{config.server.port}"]
    hconfig.websocket_max_message_size = (config.server.max_message_bytes
                                          * HARD_FRAME_LIMIT_FACTOR)
    hconfig.graceful_timeout = config.server.drain_timeout_s + 5
    hconfig.accesslog = None
    # hypercorn's own records go through streamer's handler and format (--log-format)
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    if config.server.certfile:  # TLS (docs/deploy.md); ALPN offers h2 and http/1.1
        hconfig.certfile = config.server.certfile
        hconfig.keyfile = config.server.keyfile
    return hconfig


def behind_proxy(app: Any, trusted_hops: int) -> Any:
    """``app`` that believes ``trusted_hops`` proxies' ``X-Forwarded-For``, ``-Proto`` and
    ``-Host`` (hypercorn's ``ProxyFixMiddleware``, legacy mode): the client address, the
    scheme and the Host the guard and the limits see; ``app`` itself when 0.

    The middleware copies ``X-Forwarded-Proto`` (``http``/``https``) onto WebSocket scopes
    too, whose scheme is ``ws``/``wss`` (ASGI spec, "WebSocket"; Quart then refuses the
    handshake with 400): the scheme is mapped back before the app sees it.
    """
    if trusted_hops <= 0:
        return app

    async def websocket_scheme(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("scheme") in WS_SCHEMES:
            scope = {**scope, "scheme": WS_SCHEMES[scope["scheme"]]}
        await app(scope, receive, send)

    return ProxyFixMiddleware(websocket_scheme,  # type: ignore[arg-type]
                              mode="legacy", trusted_hops=trusted_hops)


async def serve(config: Config, *, shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                registry: Registry | None = None, app: Any = None,
                auth_hook: AuthHook | None = None) -> None:
    """Serve until ``shutdown_trigger`` returns (default: SIGTERM or SIGINT), then drain.

    ``task_status.started`` gets the bound addresses (``["http://127.0.0.1:PORT"]``), so tests
    can bind port 0. ``registry`` (default: a new one) is drained on shutdown; ``app`` (default:
    :func:`~streamer.web.app.create_app` of it, with ``auth_hook``) is any ASGI application,
    e.g. an embedding application's own with streamer's mounted in it. ``server.root_path``
    is the ASGI ``root_path`` of whatever is served (:func:`~streamer.web.app.with_root_path`).

    Raises:
        ConfigError: an unsafe or unusable ``[auth]`` or ``[security]`` (``auth.mode =
            "none"`` off loopback, a missing key file or secret, a malformed origin).
    """
    validate_auth(config, os.environ)
    check_security(config.security)
    logger.info(describe_auth(config))
    tune_gc(config.server.gc_gen0_threshold)
    registry = registry or Registry(config)
    app = with_root_path(app or create_app(config, registry, auth_hook), config.server.root_path)

    async def wait_for_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.info("received %s: draining", signal.Signals(signum).name)
                return

    trigger = shutdown_trigger or wait_for_signal

    async def shutdown() -> None:
        await trigger()
        await registry.drain(config.server.drain_timeout_s)

    async with trio.open_nursery() as nursery:
        if config.server.gc_full_interval_s > 0:
            nursery.start_soon(collect_garbage, config.server.gc_full_interval_s)
        await hypercorn_serve(behind_proxy(app, config.server.proxy_trusted_hops),
                              hypercorn_config(config), shutdown_trigger=shutdown,
                              task_status=task_status)
        nursery.cancel_scope.cancel()
