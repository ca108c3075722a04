"""``GET /ws/stream/{session_id}``: the streaming WebSocket, routed before Quart sees it.

:func:`route_websockets` wraps the Quart app's ``asgi_app`` (Quart's own way to add ASGI
middleware, so ``create_app`` still returns the ``QuartTrio`` app): a ``websocket`` scope for
that path (under the scope's ``root_path``, the path prefix) goes to :func:`stream_socket`,
which speaks ASGI to hypercorn directly (``streamer.transports.websocket.ASGIWebSocket``);
every other scope (HTTP, lifespan, any other WebSocket path) goes to Quart unchanged.
An idle WebSocket then holds no Quart machinery (its connection object, message queue and
tasks, its request context): issue 16, memory per idle connection.

The checks are the guard's, as for every Quart request (``streamer.web.guard``): the
``Host`` and ``Origin`` of the handshake (a foreign one is refused before the upgrade: 403,
the ``error`` body), the identity (handshake credentials or a first ``auth`` message), then
the session's owner and a connection slot (``[limits]``); a refusal after the upgrade is an
``error`` event and close 1008 (1013, "try again later", when a limit is reached). One
access-log line per WebSocket.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

from quart_trio import QuartTrio
from werkzeug.http import parse_cookie

from streamer.errors import Forbidden, StreamerError
from streamer.runtime.registry import Registry
from streamer.runtime.session import Session
from streamer.security.identity import Identity, RequestInfo
from streamer.transports.websocket import (
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    ASGIWebSocket,
    PeerGone,
    Receive,
    Send,
    serve_websocket,
)
from streamer.web.guard import WS_SUBPROTOCOL, Guard, access_record
from streamer.web.http import error_response, valid_session_id
from streamer.wire.codecs import encode_json
from streamer.wire.cursor import Cursor, parse_cursor
from streamer.wire.events import Error

#: the streaming WebSocket's path, after the ``root_path`` (the segment: Quart's
#: ``<session_id>``, any characters but ``/``)
STREAM_PATH = re.compile(r"/ws/stream/([^/]+)")
#: the scope extension that lets a WebSocket be refused with an HTTP response (ASGI spec 2.3)
HTTP_RESPONSE_EXTENSION = "websocket.http.response"


def local_path(scope: dict[str, Any]) -> str | None:
    """The scope's path after its ``root_path``, as Quart routes it (``None``: outside the
    prefix, where Quart routes nothing)."""
    path: str = scope["path"]
    path = path if path.startswith("/") else urlparse(path).path
    root: str = scope.get("root_path", "")
    if root:
        if path == root or not path.startswith(root):
            return None
        path = path[len(root):]
    return "/" + path.lstrip("/")


def stream_target(scope: dict[str, Any]) -> tuple[str, str] | None:
    """``(path after the root_path, session id)`` of a WebSocket scope for
    ``/ws/stream/{session_id}``; ``None`` for any other."""
    path = local_path(scope)
    found = STREAM_PATH.fullmatch(path) if path is not None else None
    return (found.string, found.group(1)) if found is not None else None


def route_websockets(app: QuartTrio, registry: Registry, guard: Guard) -> None:
    """Serve ``GET /ws/stream/{session_id}`` WebSockets of ``app`` with :func:`stream_socket`
    (its ``asgi_app`` wrapped); everything else stays Quart's."""
    quart_asgi = app.asgi_app

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        target = stream_target(scope) if scope["type"] == "websocket" else None
        if target is None:
            await quart_asgi(scope, receive, send)
        else:
            await stream_socket(scope, *target, receive, send, registry, guard)

    app.asgi_app = asgi_app  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the checks see of a WebSocket handshake (an ASGI ``websocket`` scope), as a Quart
    ``Websocket`` would show it.

    Attributes:
        path: the path after the ``root_path``.
        headers: header names lower-cased (a repeated header: its last value), and
            ``remote-addr`` (Quart's).
        host: the first ``Host`` header (``None``: none).
        origin: the first ``Origin`` header.
        scheme: ``ws`` or ``wss``.
        client: the peer's address (``"<local>"``: the server gave none).
        subprotocols: the subprotocols the client offered.
        query: the URL's query, the first value of each name.
        cookies: the ``Cookie`` headers' cookies, the first value of each name.
        http_responses: whether the server can refuse with an HTTP response.
    """

    path: str
    headers: dict[str, str]
    host: str | None
    origin: str | None
    scheme: str
    client: str
    subprotocols: tuple[str, ...]
    query: dict[str, str]
    cookies: dict[str, str]
    http_responses: bool

    @classmethod
    def of(cls, scope: dict[str, Any], path: str) -> Handshake:
        client = (scope.get("client") or ("<local>",))[0]
        headers = {"remote-addr": client}
        first: dict[str, str] = {}
        cookies = []
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin1").lower(), raw_value.decode("latin1")
            headers[name] = value
            first.setdefault(name, value)
            if name == "cookie":
                cookies.append(value)
        query: dict[str, str] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode(),
                                    keep_blank_values=True, errors="werkzeug.url_quote"):
            query.setdefault(key, value)
        return cls(path, headers, first.get("host"), first.get("origin"), scope["scheme"],
                   client, tuple(scope.get("subprotocols") or ()), query,
                   parse_cookie(";".join(cookies)).to_dict(),
                   HTTP_RESPONSE_EXTENSION in (scope.get("extensions") or {}))

    def info(self) -> RequestInfo:
        return RequestInfo(self.headers, self.cookies, self.client, self.path, "websocket",
                           self.subprotocols)


class Admission:
    """What the checks of a handshake found: the identity, the session, the resume cursor,
    the connection slot held (``[limits]``), and the access log's status."""

    __slots__ = ("resume", "session", "slot", "status", "who")

    def __init__(self) -> None:
        self.who: Identity | None = None
        self.session: Session | None = None
        self.resume: Cursor | None = None
        self.slot: AbstractContextManager[None] | None = None
        self.status = "closed"


async def stream_socket(scope: dict[str, Any], path: str, session_id: str, receive: Receive,
                        send: Send, registry: Registry, guard: Guard) -> None:
    """Serve one ``GET /ws/stream/{session_id}`` WebSocket (``path``: after the
    ``root_path``): :func:`admit` it, then serve the caller's session until either side
    closes. One access-log line when it ends.

    While it is served, only what serving needs is held (the handshake's parsed headers
    are not: memory per idle connection)."""
    started = time.perf_counter()
    client = (scope.get("client") or ("<local>",))[0]
    ws = ASGIWebSocket(receive, send, HTTP_RESPONSE_EXTENSION in (scope.get("extensions") or {}))
    ticket = Admission()
    try:
        if await admit(Handshake.of(scope, path), ws, registry, guard, session_id, ticket):
            assert ticket.session is not None
            await serve_websocket(ticket.session, ws, ticket.resume)
            await ws.close(CLOSE_NORMAL)  # if the serving ended without closing it
    except PeerGone:
        pass
    finally:
        if ticket.slot is not None:
            ticket.slot.__exit__(None, None, None)
        if guard.config.security.access_log:
            access_record(client, ticket.who, "WEBSOCKET", path, ticket.status, started)


async def admit(hs: Handshake, ws: ASGIWebSocket, registry: Registry, guard: Guard,
                session_id: str, ticket: Admission) -> bool:
    """Check the handshake's ``Host`` and ``Origin`` (403 before the upgrade), accept it
    (selecting the ``streamer`` subprotocol when offered), identify the caller (handshake
    or first ``auth`` message), find the session and take a connection slot (``[limits]``);
    a bad resume cursor in the URL is an ``error`` event (the connection lives, as a new
    one). A refusal after the upgrade is an ``error`` event and close 1008 (1013 when a
    limit is reached). Whether to serve; what was found goes to ``ticket``.

    Raises:
        PeerGone: the peer left first.
    """
    if not await ws.receive_connect():
        return False
    try:
        guard.check_host_and_origin(hs.host, hs.origin, hs.scheme, True)
    except Forbidden as exc:
        ticket.status = "refused:forbidden"
        await refuse(ws, registry, exc)
        return False
    await ws.accept(WS_SUBPROTOCOL if WS_SUBPROTOCOL in hs.subprotocols else None)
    try:
        ticket.who = who = await guard.websocket_identity(hs.info(), ws.receive)
        ticket.session = await registry.find_session(who, valid_session_id(session_id))
        token = await registry.limits.reserve_connection(who.subject, hs.client)
        slot = registry.limits.connection(who.subject, hs.client, token)
        slot.__enter__()
        ticket.slot = slot
    except StreamerError as exc:
        ticket.status = f"refused:{exc.code}"
        registry.metrics.error(exc.code)
        await ws.send(encode_json(Error.of(exc).to_json()))
        await ws.close(CLOSE_TRY_AGAIN_LATER if exc.code == "rate_limited"
                       else CLOSE_POLICY_VIOLATION, exc.code)
        return False
    try:
        ticket.resume = parse_cursor(hs.query.get("stream_id"), hs.query.get("epoch"),
                                     hs.query.get("last_seq"))
    except StreamerError as exc:
        registry.metrics.error(exc.code)
        await ws.send(encode_json(Error.of(exc, session_id=session_id).to_json()))
    return True


async def refuse(ws: ASGIWebSocket, registry: Registry, exc: StreamerError) -> None:
    """Refuse the handshake with ``exc``'s HTTP error response (its status, the ``error``
    JSON body: ``streamer.web.http.error_response``), as Quart answered it."""
    registry.metrics.error(exc.code)
    response = error_response(exc)
    body = await response.get_data(as_text=False)
    await ws.refuse(response.status_code,
                    [(k.lower().encode("latin1"), v.encode("latin1"))
                     for k, v in response.headers.items()], body)
