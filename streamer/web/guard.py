"""The trust boundary at the door (``docs/security.md``): every HTTP request and WebSocket
handshake passes here before a route runs.

In order: the ``Host`` must be one of ``security.allowed_hosts`` (DNS rebinding); a request
that acts (anything but the demo page, ``/static`` and ``/healthz``) must come from an allowed
``Origin`` (:mod:`streamer.security.origins`; CORS preflights are answered by ``quart-cors``);
then the caller is identified (:mod:`streamer.security.identity`): an embedding
application's hook first, then the bearer token of ``Authorization``, a WebSocket
subprotocol ``bearer.<token>`` or the cookie ``auth.cookie_name`` (with a cookie,
state-changing requests must pass the double-submit CSRF check). A WebSocket without
credentials in its handshake is identified by its first message (``{"type": "auth",
"token": …}``) within ``auth.ws_auth_timeout_s``.

Every response gets ``X-Content-Type-Options: nosniff``; HTML also a Content-Security-Policy,
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``. The access log has one line
per request and per WebSocket: address, identity, method, path (no query), status, time.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Literal

import trio
from quart import Response, g, request, websocket
from quart.wrappers import Request, Websocket

from streamer.config import Config
from streamer.errors import Forbidden, StreamerError, Unauthorized
from streamer.security.identity import (
    AuthHook,
    Identity,
    RequestInfo,
    bearer_token,
    build_authenticator,
    csrf_ok,
)
from streamer.security.origins import host_allowed, origin_allowed
from streamer.wire.codecs import JSONLimits, decode_json

access_logger = logging.getLogger("streamer.access")

#: paths anyone may GET without credentials or an Origin check: nothing there acts
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = ("/", "/healthz", "/readyz", "/metrics", "/favicon.ico")
#: never served: the bundle's build tooling (``static/build``)
HIDDEN_PREFIXES = ("/static/build/",)
#: methods that change nothing (RFC 9110 §9.2.1); the others need CSRF proof with a cookie
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the subprotocol the server selects when a browser offers ``streamer`` (with its token)
WS_SUBPROTOCOL = "streamer"


#: the demo page: its one inline script, the import map, is allowed by its hash
DEMO_PAGE = resources.files("streamer") / "static" / "demo" / "index.html"
_INLINE_SCRIPT_RE = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)


def inline_script_hashes(html: str) -> str:
    """The CSP hash sources (`` 'sha256-…'``, CSP3 §2.3.1) of ``html``'s inline scripts."""
    return "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
                   for m in _INLINE_SCRIPT_RE.findall(html))


def content_security_policy(allow_images: bool) -> str:
    """The demo page's CSP: its own scripts (and its import map, by hash), styles and sockets
    only; no frames, no plugins, no ``<base>``; images from anywhere over HTTPS only when
    ``render.allow_images``."""
    images = "'self' data: https:" if allow_images else "'self' data:"
    scripts = inline_script_hashes(DEMO_PAGE.read_text(encoding="utf-8"))
    return (f"default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
            f"img-src {images}; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def request_info(r: Request | Websocket, transport: Literal["http", "websocket"]) -> RequestInfo:
    """What an authenticator may see of a Quart request (header names lower-cased)."""
    subprotocols = tuple(r.requested_subprotocols) if isinstance(r, Websocket) else ()
    return RequestInfo({k.lower(): v for k, v in r.headers.items()}, dict(r.cookies),
                       r.remote_addr, r.path, transport, subprotocols)


class Guard:
    """Applies ``[auth]`` and ``[security]`` to requests (installed by ``create_app``).

    Args:
        config: the server's configuration.
        hook: an embedding application's own check, asked first (``None``: it lets the
            configured mode decide).
    """

    def __init__(self, config: Config, hook: AuthHook | None = None) -> None:
        self.config = config
        self.hook = hook
        self.authenticator = build_authenticator(config.auth)
        self.csp = content_security_policy(config.render.allow_images)

    # ------------------------------------------------------------------ checks

    def check_host_and_origin(self, host: str | None, origin: str | None, scheme: str,
                              acts: bool) -> None:
        """Check a request's ``Host`` and ``Origin`` headers (``None``: absent); ``scheme``
        is the request's (``http``, ``https``, ``ws``, ``wss``).

        Raises:
            Forbidden: a ``Host`` not in ``security.allowed_hosts``, or (for a request that
                acts) an ``Origin`` that is neither the server's own nor allowed."""
        security = self.config.security
        if not host_allowed(host, security.allowed_hosts):
            raise Forbidden("this server does not answer to that Host")
        if acts and not origin_allowed(origin, host, scheme, security):
            raise Forbidden("requests from this origin are not allowed")

    async def identify(self, info: RequestInfo, *, unsafe: bool) -> Identity:
        """The caller's identity.

        Raises:
            Unauthorized: no credentials where they are needed, or ones that prove nothing.
            Forbidden: cookie credentials on a state-changing request without the CSRF
                header.
        """
        if self.hook is not None:
            found = await self.hook(info)
            if found is not None:
                return found
        token, source = bearer_token(info, self.config.auth)
        if source == "cookie" and unsafe and not csrf_ok(info, self.config.auth):
            raise Forbidden("a cookie-authenticated request needs the X-CSRF-Token header")
        return await self.authenticator.authenticate(token, info)

    def handshake_has_credentials(self, info: RequestInfo) -> bool:
        return self.hook is not None or self.authenticator.mode == "none" \
            or bearer_token(info, self.config.auth)[0] is not None

    async def websocket_identity(self, info: RequestInfo,
                                 receive: Callable[[], Awaitable[str | bytes]]) -> Identity:
        """The identity of an accepted WebSocket: from its handshake (``info``), else from its
        first message ``{"type": "auth", "token": "…"}`` (``receive()``: the next message's
        data) within ``auth.ws_auth_timeout_s``.

        Raises:
            Unauthorized: no ``auth`` message in time, a first message of another kind, or a
                token that proves nothing.
        """
        if self.handshake_has_credentials(info):
            return await self.identify(info, unsafe=False)
        raw: str | bytes | None = None
        with trio.move_on_after(self.config.auth.ws_auth_timeout_s):
            raw = await receive()
        if raw is None:
            raise Unauthorized("missing credentials: send an auth message first")
        try:
            message = decode_json(raw, JSONLimits.of(self.config.server))
        except StreamerError:  # not JSON within the limits
            message = None
        if not isinstance(message, dict) or message.get("type") != "auth" \
                or not isinstance(message.get("token"), str):
            raise Unauthorized('the first message must be {"type": "auth", "token": "..."}')
        return await self.authenticator.authenticate(message["token"], info)

    # ------------------------------------------------------------------ Quart hooks

    async def before_request(self) -> Response | None:
        """Host, Origin and identity of an HTTP request (``g.identity``)."""
        g.started_at = time.perf_counter()
        path = request.path
        if path.startswith(HIDDEN_PREFIXES):
            return Response("not found", status=404, mimetype="text/plain")
        public = request.method in SAFE_METHODS and (
            path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES))
        acts = not public and request.method != "OPTIONS"
        self.check_host_and_origin(request.headers.get("Host"), request.headers.get("Origin"),
                                   request.scheme, acts)
        if acts:
            g.identity = await self.identify(request_info(request, "http"),
                                             unsafe=request.method not in SAFE_METHODS)
        return None

    async def before_websocket(self) -> None:
        """Host and Origin of a WebSocket handshake: a foreign one is refused before the
        upgrade (403), so a page elsewhere never gets a socket (CSWSH)."""
        g.started_at = time.perf_counter()
        try:
            self.check_host_and_origin(websocket.headers.get("Host"),
                                       websocket.headers.get("Origin"), websocket.scheme, True)
        except Forbidden:
            if self.config.security.access_log:
                log_access(websocket, "refused:forbidden")
            raise

    async def after_request(self, response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", self.csp)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        if self.config.security.access_log:
            log_access(request, response.status_code)
        return response


def log_access(r: Request | Websocket, status: int | str) -> None:
    """:func:`access_record` of a Quart request or WebSocket (its identity and start from
    ``g``)."""
    method = r.method if isinstance(r, Request) else "WEBSOCKET"
    access_record(r.remote_addr, getattr(g, "identity", None), method, r.path, status,
                  g.started_at if "started_at" in g else None)


def access_record(client: str | None, who: Identity | None, method: str, path: str,
                  status: int | str, started_at: float | None) -> None:
    """One access-log record, its fields ``client``, ``identity``, ``method``, ``path``,
    ``status`` and ``duration_ms`` (never the query or a body); ``started_at`` is a
    ``time.perf_counter()`` reading (``None``: duration 0)."""
    name = f"{who.method}:{who.subject}" if who is not None else "-"
    elapsed_ms = (time.perf_counter() - started_at) * 1000 if started_at is not None else 0.0
    access_logger.info("%s %s %s %s %s %.1fms", client or "-", name, method, path,
                       status, elapsed_ms,
                       extra={"client": client or "-", "identity": name, "method": method,
                              "path": path, "status": status,
                              "duration_ms": round(elapsed_ms, 1)})


def identity() -> Identity:
    """The identity :class:`Guard` found for the current request or WebSocket."""
    found: Identity | None = getattr(g, "identity", None)
    if found is None:
        raise StreamerError("no identity: the guard did not run")  # a bug, not the client's
    return found
