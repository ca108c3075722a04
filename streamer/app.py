"""The quart-trio application: HTTP, SSE and WebSocket endpoints of ``docs/protocol.md``.

==========================================  =================================================
``GET /``                                   the demo page (``static/demo/index.html``)
``GET /static/…``                           the browser client, Tiptap bundle, demo assets
``GET /healthz``                            ``{"ok": true}``
``GET /api/stream/status``                  sessions, connections, active streams, uptime
``POST /api/sessions``                      new session: ``session_id``, ``ws_url``, ``events_url``
``GET /ws/stream/{session_id}``             WebSocket: events out, control messages in
``GET /api/sessions/{session_id}/events``   SSE events (``text/event-stream``)
``POST /api/sessions/{session_id}/control`` one control message for an SSE connection
``POST /api/sessions/{session_id}/complete`` REST fallback: the finished message as JSON
``POST /api/render``                        one-shot render ``{"markdown"}`` → ``{"html"}``
``GET /api/streams/{stream_id}/trace``      the stream's trace (why it ended, when)
``GET /api/sessions/{session_id}/messages`` the stored conversation (partial answers too)
``DELETE /api/sessions/{session_id}``       cancel, disconnect and forget a session
``POST /api/chat``                          Vercel AI SDK UI message stream (``useChat``)
==========================================  =================================================

Errors are JSON ``{"type": "error", "code", "message", "retryable"}`` with a fitting HTTP
status. Streaming responses switch Quart's 60 s ``RESPONSE_TIMEOUT`` off
(``response.timeout = None``) and rely on streamer's own deadlines.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio

from streamer.config import Config
from streamer.errors import (
    InvalidMessage,
    PayloadTooLarge,
    SessionNotFound,
    StreamerError,
    StreamNotFound,
)
from streamer.persistence import Store
from streamer.runtime.registry import Registry
from streamer.transports.aisdk import ui_message_stream
from streamer.transports.sse import SSEBody
from streamer.transports.websocket import serve_websocket
from streamer.wire import aisdk
from streamer.wire.codecs import encode_json
from streamer.wire.controls import Start, parse_control
from streamer.wire.cursor import SESSION_ID_RE, parse_cursor, parse_event_id
from streamer.wire.events import Error

logger = logging.getLogger("streamer.app")

STATIC_DIR = Path(str(resources.files("streamer") / "static"))

#: HTTP status for each error code
HTTP_STATUS = {
    "invalid_message": 400, "unsupported_protocol": 400, "payload_too_large": 413,
    "session_not_found": 404, "stream_not_found": 404, "rate_limited": 429,
    "provider_unavailable": 503, "provider_error": 502, "provider_timeout": 504,
    "server_shutting_down": 503, "unauthorized": 401, "forbidden": 403,
}


def _error_response(exc: StreamerError) -> Response:
    body = Error.of(exc).to_json()
    headers = {}
    if exc.retry_after_ms:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_ms / 1000)))
    return Response(json.dumps(body), status=HTTP_STATUS.get(exc.code, 500),
                    mimetype="application/json", headers=headers)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/json")


def _session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise InvalidMessage("a session id is 8-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return session_id


async def _body(max_bytes: int) -> bytes:
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds {max_bytes}")
    data = await request.get_data(cache=False, as_text=False)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"request body of {len(data)} bytes exceeds {max_bytes}")
    return data


def create_app(config: Config, registry: Registry | None = None) -> QuartTrio:
    """Build the application. The registry (sessions, providers, renderer) is created once."""
    app = QuartTrio(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = max(config.server.max_message_bytes, 1 << 20)
    registry = registry or Registry(config)
    app.extensions["streamer"] = registry
    max_bytes = config.server.max_message_bytes

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
        return _error_response(exc)

    @app.get("/")
    async def index() -> Response:
        return await app.send_static_file("demo/index.html")

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"ok": True, "draining": registry.draining})

    @app.get("/api/stream/status")
    async def status() -> Response:
        return _json(registry.status())

    @app.post("/api/sessions")
    async def create_session() -> Response:
        session = registry.get_or_create()
        sid = session.session_id
        return _json({"session_id": sid, "ws_url": f"/ws/stream/{sid}",
                      "events_url": f"/api/sessions/{sid}/events"}, 201)

    @app.get("/api/sessions/<session_id>")
    async def session_info(session_id: str) -> Response:
        session = registry.sessions.get(_session_id(session_id))
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        return _json(session.info())

    @app.get("/api/sessions/<session_id>/messages")
    async def session_messages(session_id: str) -> Response:
        _session_id(session_id)
        if registry.store is not None:
            records = await registry.store.messages(session_id)
        else:
            session = registry.sessions.get(session_id)
            records = [r for s in (session.started if session else []) for r in s.records()]
        session = registry.sessions.get(session_id)
        if not records and session is None:
            raise SessionNotFound(f"no session {session_id}")
        if session is not None:  # a running answer: newer than its last checkpoint
            live = {s.stream_id: s for s in session.started if s.state == "running"}
            records = [live[r.message_id].records()[-1] if r.message_id in live else r
                       for r in records]
        return _json({"session_id": session_id,
                      "messages": [r.to_json() for r in records]})

    @app.delete("/api/sessions/<session_id>")
    async def delete_session(session_id: str) -> Response:
        if not await registry.delete_session(_session_id(session_id)):
            raise SessionNotFound(f"no session {session_id}")
        return Response("", status=204)

    @app.get("/api/sessions/<session_id>/events")
    async def sse_events(session_id: str) -> Response:
        session = await registry.open_session(_session_id(session_id))
        last_event_id = request.headers.get("Last-Event-ID") or request.args.get(
            "last_event_id")
        resume = parse_event_id(last_event_id) if last_event_id else None
        response = Response(SSEBody(session, resume), mimetype="text/event-stream",
                            headers={
            "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        response.timeout = None  # Quart would cut the stream at RESPONSE_TIMEOUT (60 s)
        return response

    @app.post("/api/sessions/<session_id>/control")
    async def sse_control(session_id: str) -> Response:
        session = registry.sessions.get(_session_id(session_id))
        if session is None:
            raise SessionNotFound(f"no session {session_id}; open its events stream first")
        connection_id = request.args.get("connection_id")
        raw = await _body(max_bytes)
        connections = [c for c in session.connections
                       if connection_id is None or c.connection_id == connection_id]
        if not connections:
            raise SessionNotFound(f"no connection {connection_id} in session {session_id}")
        control = parse_control(raw, max_bytes)  # errors answer this POST directly
        targets = connections[:1] if isinstance(control, Start) else connections
        with trio.fail_after(config.server.send_timeout_s):
            for connection in targets:
                await connection.handle_control(control)  # errors answer this POST
        return _json({"ok": True}, 202)

    @app.post("/api/sessions/<session_id>/complete")
    async def complete(session_id: str) -> Response:
        session = await registry.open_session(_session_id(session_id))
        control = parse_control(await _body(max_bytes), max_bytes)
        if not isinstance(control, Start):
            raise InvalidMessage("complete: the body is a 'start' message")
        with session.hold():  # the waiting call counts as a subscriber for the grace period
            stream = session.submit(control)
            await stream.done.wait()
        assert stream.log.complete is not None
        result = stream.log.complete.to_json()
        del result["type"]
        if stream.log.error is not None:
            result["error"] = {k: v for k, v in stream.log.error.to_json().items()
                               if k != "type"}
        return _json(result)

    @app.post("/api/chat")
    async def ai_sdk_chat() -> Response:
        try:
            body = json.loads(await _body(max_bytes))
        except ValueError as exc:
            raise InvalidMessage(f"not valid JSON: {exc}") from exc
        session_id, control = aisdk.parse_chat_request(body, max_bytes)
        session = await registry.open_session(session_id)
        stream = session.submit(control)
        response = Response(ui_message_stream(session, stream),
                            mimetype="text/event-stream", headers=aisdk.HEADERS)
        response.timeout = None  # no 60 s cut (Quart's RESPONSE_TIMEOUT)
        return response

    @app.post("/api/render")
    async def render() -> Response:
        try:
            body = json.loads(await _body(max(max_bytes, 1 << 20)))
        except ValueError as exc:
            raise InvalidMessage(f"not valid JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("markdown"), str):
            raise InvalidMessage("render: the body is {\"markdown\": \"...\"}")
        html = registry.renderer.render(body["markdown"])
        return _json({"html": html})

    @app.get("/api/streams/<stream_id>/trace")
    async def trace(stream_id: str) -> Response:
        stream = registry.find_stream(stream_id)
        if stream is None:
            raise StreamNotFound(f"no stream {stream_id}")
        return _json({**stream.info(), "trace": [t.to_json() for t in stream.trace]})

    @app.websocket("/ws/stream/<session_id>")
    async def ws_stream(session_id: str) -> None:
        await websocket.accept()
        try:
            session = await registry.open_session(_session_id(session_id))
        except StreamerError as exc:
            await websocket.send(encode_json(Error.of(exc).to_json()))
            await websocket.close(1008, exc.code)
            return
        args = websocket.args
        try:
            resume = parse_cursor(args.get("stream_id"), args.get("epoch"),
                                  args.get("last_seq"))
        except StreamerError as exc:  # the connection lives; it follows as a new one
            await websocket.send(encode_json(Error.of(exc, session_id=session_id).to_json()))
            resume = None
        await serve_websocket(session, websocket, resume)

    return app
