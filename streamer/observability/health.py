"""What a load balancer and Prometheus ask (``docs/operations.md``).

==================  ========================================================================
``GET /healthz``    alive: 200 while the process serves (``web/rest.py``), draining or not
``GET /readyz``     ready for new work: 200 ``{"ready": true, "state": "ready"}``; 503 with
                    ``state`` ``starting`` (until the providers' warm-up at start-up has
                    finished) or ``draining`` (from SIGTERM/SIGINT on: new streams are
                    refused, running ones finish, ``server.py``)
``GET /metrics``    Prometheus text (:mod:`.metrics`) when ``metrics.enabled``; who may read
                    it is ``metrics.access``: ``loopback`` (default: a peer on a loopback
                    address whose request carries no proxy header), ``auth`` (credentials
                    ``[auth]`` accepts) or ``open``
==================  ========================================================================

Neither needs an ``Origin`` (the guard lets them through like ``/healthz``); the ``Host``
check applies as to every request.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Quart, Response, current_app, request

from streamer.errors import Forbidden

if TYPE_CHECKING:
    from streamer.runtime.registry import Registry

#: the key of the app's :class:`Readiness` in ``app.extensions``
READINESS = "streamer.readiness"
#: headers a proxy adds: a request carrying one did not come from a loopback client
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

health = Blueprint("health", __name__)


class Readiness:
    """Whether the app takes new work: ``starting``, ``ready`` or ``draining``.

    Args:
        draining: the registry's drain flag (``Registry.draining``).
    """

    def __init__(self, draining: Callable[[], bool]) -> None:
        self._draining = draining
        self.warmed = False

    @property
    def state(self) -> str:
        if self._draining():
            return "draining"
        return "ready" if self.warmed else "starting"

    async def after(self, warm: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a start-up step (the providers' warm-up), then say ready."""
        try:
            await warm(*args)
        finally:
            self.warmed = True


def install_health(app: Quart, registry: Registry) -> Readiness:
    """Add ``/readyz`` and ``/metrics`` to ``app``; its :class:`Readiness` (the app's
    start-up says when the warm-up is over)."""
    readiness = app.extensions[READINESS] = Readiness(lambda: registry.draining)
    app.register_blueprint(health)
    return readiness


@health.get("/readyz")
async def readyz() -> Response:
    state = current_app.extensions[READINESS].state
    return Response(json.dumps({"ready": state == "ready", "state": state}),
                    status=200 if state == "ready" else 503, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:  # a Unix socket's path, or nothing usable
        return False


async def check_metrics_access(access: str) -> None:
    """Raises:
        Forbidden: ``loopback`` and the peer is not on a loopback address or the request
            came through a proxy; ``auth`` and the credentials prove nothing (the guard's
            :class:`~streamer.errors.Unauthorized`)."""
    if access == "open":
        return
    if access == "auth":
        from streamer.web.guard import request_info

        guard = current_app.extensions["streamer.guard"]
        await guard.identify(request_info(request, "http"), unsafe=False)
        return
    if not is_loopback(request.remote_addr) or any(h in request.headers for h in PROXY_HEADERS):
        raise Forbidden("metrics are served to loopback clients only (metrics.access)")


@health.get("/metrics")
async def metrics() -> Response:
    from streamer.observability.metrics import CONTENT_TYPE

    registry = current_app.extensions["streamer"]
    settings = registry.config.metrics
    if not settings.enabled:
        return Response("not found", status=404, mimetype="text/plain")
    await check_metrics_access(settings.access)
    return Response(registry.metrics.exposition(), content_type=CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})
