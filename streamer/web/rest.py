"""The JSON endpoints (``docs/protocol.md``, "Other endpoints").

==========================================  =================================================
``GET /healthz``                            ``{"ok": true, "draining": bool}``
``GET /api/stream/status``                  sessions, connections, active streams, uptime
``POST /api/sessions``                      new session (``{"session_id"}`` optional): its
                                            ``session_id``, ``ws_url``, ``events_url``
``GET /api/sessions/{session_id}``          its connections, current stream and queue
``GET /api/sessions/{session_id}/messages`` the stored conversation (partial answers too)
``DELETE /api/sessions/{session_id}``       cancel, disconnect and forget a session
``POST /api/sessions/{session_id}/complete`` REST fallback: the finished message as JSON
``POST /api/render``                        one-shot render ``{"markdown"}`` → ``{"html"}``
``GET /api/streams/{stream_id}/trace``      the stream's trace (why it ended, when)
==========================================  =================================================

Every route but ``/healthz`` runs as the identity :mod:`streamer.web.guard` found; a session
or stream of another identity is ``403 forbidden``, an unknown one ``404``. Only POSTs create
sessions.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from streamer.errors import InvalidMessage, PayloadTooLarge
from streamer.persistence import MessageRecord
from streamer.runtime.offload import render_document
from streamer.runtime.session import Session
from streamer.web.guard import identity
from streamer.web.http import json_response, read_body, read_json, registry, valid_session_id
from streamer.wire.codecs import JSONLimits
from streamer.wire.controls import Start, parse_control

rest = Blueprint("rest", __name__)


@rest.get("/healthz")
async def healthz() -> Response:
    return json_response({"ok": True, "draining": registry().draining})


@rest.get("/api/stream/status")
async def status() -> Response:
    return json_response(registry().status())


@rest.post("/api/sessions")
async def create_session() -> Response:
    """201 with a new session, or 200 with the caller's existing one of the id it chose."""
    reg = registry()
    requested = None
    if request.content_length or request.headers.get("Content-Type"):
        body = await read_json(reg.config.server.max_message_bytes)
        if not isinstance(body, dict) or not isinstance(body.get("session_id", ""), str):
            raise InvalidMessage('sessions: the body is {} or {"session_id": "..."}')
        requested = valid_session_id(body["session_id"]) if "session_id" in body else None
    session, created = await reg.create_session(identity(), requested)
    sid = session.session_id
    root = request.root_path  # the app's path prefix (ASGI root_path), "" at the root
    return json_response({"session_id": sid, "ws_url": f"{root}/ws/stream/{sid}",
                          "events_url": f"{root}/api/sessions/{sid}/events"},
                         201 if created else 200)


@rest.get("/api/sessions/<session_id>")
async def session_info(session_id: str) -> Response:
    session = await registry().find_session(identity(), valid_session_id(session_id))
    return json_response(session.info())


async def _records(session: Session) -> list[MessageRecord]:
    """The stored conversation, a running answer as it is now (newer than its checkpoint)."""
    store = registry().store
    if store is not None:
        records = await store.messages(session.key)
    else:
        records = [r for s in session.started for r in s.records()]
    live = {s.stream_id: s for s in session.started if s.state == "running"}
    return [live[r.message_id].records()[-1] if r.message_id in live else r for r in records]


@rest.get("/api/sessions/<session_id>/messages")
async def session_messages(session_id: str) -> Response:
    session = await registry().find_session(identity(), valid_session_id(session_id))
    records = await _records(session)
    return json_response({"session_id": session_id,
                          "messages": [r.to_json() for r in records]})


@rest.delete("/api/sessions/<session_id>")
async def delete_session(session_id: str) -> Response:
    await registry().delete_session(identity(), valid_session_id(session_id))
    return Response("", status=204)


@rest.post("/api/sessions/<session_id>/complete")
async def complete(session_id: str) -> Response:
    """A ``start`` body; the answer when it is over: ``stream_complete``'s fields, and
    ``error`` (the ``error`` event's) if it failed."""
    reg = registry()
    max_bytes = reg.config.server.max_message_bytes
    raw = await read_body(max_bytes)
    session, _ = await reg.create_session(identity(), valid_session_id(session_id))
    control = parse_control(raw, JSONLimits.of(reg.config.server, max_bytes))
    if not isinstance(control, Start):
        raise InvalidMessage("complete: the body is a 'start' message")
    with session.hold():  # the waiting call counts as a subscriber for the grace period
        stream = await session.start(control)
        await stream.done.wait()
    assert stream.log.complete is not None
    result = stream.log.complete.to_json()
    del result["type"]
    if stream.log.error is not None:
        result["error"] = {k: v for k, v in stream.log.error.to_json().items() if k != "type"}
    return json_response(result)


@rest.post("/api/render")
async def render() -> Response:
    """The one-shot render, in a worker process under a deadline
    (``streamer.runtime.offload``): a hostile document stalls no stream."""
    reg = registry()
    limit = reg.config.render.max_render_chars
    body = await read_json(max(reg.config.server.max_message_bytes, limit * 4))
    if not isinstance(body, dict) or not isinstance(body.get("markdown"), str):
        raise InvalidMessage("render: the body is {\"markdown\": \"...\"}")
    markdown = body["markdown"]
    if len(markdown) > limit:
        raise PayloadTooLarge(f"render: {len(markdown)} characters exceed {limit}")
    html = await reg.offload.run(
        render_document, reg.config.render, markdown, timeout_s=reg.config.render.max_render_s,
        too_slow=PayloadTooLarge(f"render: the document did not render within "
                                 f"{reg.config.render.max_render_s:g} s"))
    return json_response({"html": html})


@rest.get("/api/streams/<stream_id>/trace")
async def trace(stream_id: str) -> Response:
    stream = registry().find_owned_stream(identity(), stream_id)
    return json_response({**stream.info(), "trace": [t.to_json() for t in stream.trace]})
